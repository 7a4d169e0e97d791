"""Handlers of the events about who the book deals with and on what terms: customers, their
contacts, contracts (with their projects and milestones) and milestones completed."""

from __future__ import annotations

from typing import Any

from ..domain import Contract, Customer, Milestone, Person
from ..errors import ClosedItem, DuplicateObject, UnknownObject, ValidationError
from ..events import (
    ContactFeedback,
    ContractSigned,
    CreditReviewed,
    CustomerRegistered,
    CustomerUpdated,
    MilestoneCompleted,
    PersonAdded,
    PersonLeft,
    PersonUpdated,
)
from ._context import Ctx, InvoiceRequest
from ._requests import FINANCE_ROLE, from_milestone


def customer_registered(ctx: Ctx, e: CustomerRegistered) -> None:
    """A new customer: refused if the id is taken."""
    ctx.absent("customer", e.customer.id)
    ctx.put(e.customer, None, "registered")


def customer_updated(ctx: Ctx, e: CustomerUpdated) -> None:
    """Change the fields the event sets (a name cannot be removed)."""
    old: Customer = ctx.get("customer", e.customer_id)
    changes: dict[str, Any] = {
        f: getattr(e, f)
        for f in (
            "name",
            "region",
            "salesperson",
            "sales_manager",
            "contacts",
            "credit",
            "profile",
            "tags",
        )
        if f in e.model_fields_set
    }
    if changes.get("name", "x") is None:
        raise ValidationError(f"customer {e.customer_id!r}: name cannot be removed")
    new = old.model_copy(update=changes)
    ctx.put(new, old, "updated " + ", ".join(sorted(changes)) if changes else "no change")


def contact_feedback(ctx: Ctx, e: ContactFeedback) -> None:
    """Mark a customer's contact address bounced, invalid or unsubscribed."""
    old: Customer = ctx.get("customer", e.customer_id)
    field = "email" if e.channel == "email" else "phone"
    flag = {"email": "email_invalid", "phone": "phone_invalid"}[field]
    if e.feedback == "unsubscribed":
        flag = "unsubscribed"
    contacts = []
    hit = False
    for c in old.contacts:
        if getattr(c, field) == e.address:
            c = c.model_copy(update={flag: True})
            hit = True
        contacts.append(c)
    if not hit:
        raise ValidationError(
            f"customer {e.customer_id!r} has no contact with {field} {e.address!r}"
        )
    new = old.model_copy(update={"contacts": tuple(contacts)})
    ctx.put(new, old, f"{e.channel} {e.address}: {e.feedback}")


def contract_signed(ctx: Ctx, e: ContractSigned) -> None:
    """A new contract, with its project (new or the same as stored) and milestones."""
    c = e.contract
    ctx.absent("contract", c.id)
    ctx.get("customer", c.customer_id)
    if e.project is not None:
        if e.project.customer_id != c.customer_id:
            raise ValidationError(
                f"project {e.project.id!r} belongs to customer {e.project.customer_id!r}, "
                f"not {c.customer_id!r}"
            )
        existing = ctx.tx.get("project", e.project.id)
        if existing is None:
            ctx.put(e.project, None, "created with contract " + c.id)
        elif existing != e.project:
            raise DuplicateObject("project", e.project.id)
    if c.project_id is not None and e.project is None:
        ctx.get("project", c.project_id)
    declared = {m.id for m in e.milestones}
    for m in e.milestones:
        if m.contract_id != c.id:
            raise ValidationError(f"milestone {m.id!r} names contract {m.contract_id!r}")
        ctx.absent("milestone", m.id)
    for node in c.payment_nodes:
        mid = node.due.milestone_id
        if mid is not None and mid not in declared and ctx.tx.get("milestone", mid) is None:
            raise UnknownObject("milestone", mid)
    ctx.put(c, None, f"signed, {len(c.payment_nodes)} payment node(s)")
    for m in e.milestones:
        ctx.put(
            m
            if m.project_id or not c.project_id
            else m.model_copy(update={"project_id": c.project_id}),
            None,
            "planned",
        )


def milestone_completed(ctx: Ctx, e: MilestoneCompleted, finance: str = FINANCE_ROLE) -> None:
    """Mark a milestone done and ask for the invoices of the payment nodes it triggers: an
    invoice request in the book per node (``_requests.from_milestone``), and the
    ``InvoiceRequest`` notes of ``Applied`` the milestone rules read."""
    m: Milestone = ctx.get("milestone", e.milestone_id)
    if m.status == "done":
        raise ClosedItem("milestone", m.id, m.status, "MilestoneCompleted")
    new = m.model_copy(update={"status": "done", "actual_date": e.completed_on})
    ctx.put(new, m, f"completed on {e.completed_on}")
    contract: Contract = ctx.get("contract", m.contract_id)
    for node in contract.payment_nodes:
        if node.due.basis == "milestone" and node.due.milestone_id == m.id:
            ctx.requests.append(
                InvoiceRequest(
                    contract.customer_id, contract.id, node.id, m.id, contract.node_amount(node)
                )
            )
            from_milestone(ctx, new, contract, node, e.completed_on, finance)


# -- people ------------------------------------------------------------------------------------

_PERSON_FIELDS = ("name", "roles", "manager", "addresses", "locale", "timezone", "active")


def _manager_known(ctx: Ctx, person: Person) -> None:
    """A person's manager is someone in the directory (refused otherwise: an ERP syncs
    managers before their reports)."""
    if person.manager is not None:
        ctx.get("person", person.manager)


def person_added(ctx: Ctx, e: PersonAdded) -> None:
    """A new person in the directory: refused if the id is taken or the manager unknown."""
    ctx.absent("person", e.person.id)
    _manager_known(ctx, e.person)
    ctx.put(e.person, None, "added, roles: " + (", ".join(e.person.roles) or "none"))


def person_updated(ctx: Ctx, e: PersonUpdated) -> None:
    """Change the fields the event sets (a name cannot be removed); the result is checked
    as a whole, as a new person would be."""
    old: Person = ctx.get("person", e.person_id)
    changes: dict[str, Any] = {f: getattr(e, f) for f in _PERSON_FIELDS if f in e.model_fields_set}
    for f in ("name", "roles", "addresses", "locale", "timezone", "active"):
        if f in changes and changes[f] is None:
            raise ValidationError(f"person {e.person_id!r}: {f} cannot be removed")
    try:
        new = Person.model_validate({**old.model_dump(), **changes})
    except ValueError as exc:
        raise ValidationError(f"person {e.person_id!r}: {exc}") from None
    _manager_known(ctx, new)
    ctx.put(new, old, "updated " + ", ".join(sorted(changes)) if changes else "no change")


def person_left(ctx: Ctx, e: PersonLeft) -> None:
    """The person is kept, inactive: rules no longer reach them."""
    old: Person = ctx.get("person", e.person_id)
    if not old.active:
        raise ClosedItem("person", old.id, "inactive", "PersonLeft")
    ctx.put(old.model_copy(update={"active": False}), old, f"left on {e.left_on}")


def credit_reviewed(ctx: Ctx, e: CreditReviewed) -> None:
    """Apply a credit review to the customer's profile: grade, limit, terms, prepayment and
    the review date. The audit record says what changed and why (the score and the points
    of each factor, or the reviewer and the comment). Any well-formed grade name is taken:
    the ledger has no pack; the engine refuses a grade its pack does not define."""
    old: Customer = ctx.get("customer", e.customer_id)
    was = old.credit
    update: dict[str, Any] = {"grade": e.grade, "reviewed_on": e.reviewed_on}
    for f in ("credit_limit", "payment_terms_days", "prepayment_percent"):
        if getattr(e, f) is not None:
            update[f] = getattr(e, f)
    credit = was.model_copy(update=update)
    changes = [
        f"{f} {getattr(was, f)} -> {getattr(credit, f)}"
        for f in ("grade", "credit_limit", "payment_terms_days", "prepayment_percent")
        if getattr(was, f) != getattr(credit, f)
    ]
    if e.score is not None:
        points = ", ".join(f"{f.fact} {f.points.normalize():f}" for f in e.factors)
        why = f"score {e.score.normalize():f}" + (f" ({points})" if points else "")
    else:
        why = ""
    if e.reviewer is not None:
        why = "; ".join(
            x for x in (why, f"by {e.reviewer}", e.comment and f"comment: {e.comment}") if x
        )
    summary = "reviewed: " + ("; ".join(changes) or "no change") + "; " + why
    ctx.put(old.model_copy(update={"credit": credit}), old, summary)
