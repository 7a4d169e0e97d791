"""What a store keeps: the kinds of object in the book, and the records beside them (the
decision ledger, run records, the outbox) with the outbox's claim arithmetic.

Plain data shared by every backend and by the buffered unit of work (``_buffered``); the
protocols a backend follows are in :mod:`arflow.store.base`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_json

from ..domain import (
    Contract,
    CreditNote,
    Customer,
    Dispute,
    InvoiceRequest,
    Milestone,
    Order,
    Payment,
    Person,
    ProcessInstance,
    Project,
    PromiseToPay,
    Receivable,
    Task,
)
from ..errors import StoreError


@dataclass(frozen=True)
class Kind:
    """One kind of object in the book and the columns a backend indexes it by."""

    name: str
    model: type[BaseModel]
    customer_id: Callable[[Any], str | None]
    state: Callable[[Any], str | None] = lambda _m: None
    due_date: Callable[[Any], date | None] = lambda _m: None


def task_sweep_day(t: Task) -> date | None:
    """The first day on which the daily run's task sweep changes ``t`` by the calendar
    alone (the task's ``due_date`` column, indexed with its state): the day after its
    deadline while it is open (it falls overdue), its escalation day while it is not
    escalated yet; None for a closed task or one with neither. A task whose escalation
    day has come but whose owner has no manager keeps that day: each run looks again."""
    if str(t.status) not in ("open", "overdue"):
        return None
    days: list[date] = []
    if str(t.status) == "open" and t.deadline is not None and t.deadline < date.max:
        days.append(t.deadline + timedelta(days=1))
    if t.escalate_on is not None and t.escalated_to is None:
        days.append(t.escalate_on)
    return min(days) if days else None


def _cust(m: Any) -> str | None:
    return m.customer_id  # type: ignore[no-any-return]


#: The state of a payment or credit note with money left to apply: the column the day's
#: customer facts (``customer.unapplied_credit``) and the ledger's credit application read
#: by, so that they skip the (many) fully applied ones. Schema step 8 fills it in for the
#: rows stored before.
UNAPPLIED = "unapplied"


def _payment_state(m: Payment) -> str:
    """``reversed``; ``unapplied`` while cash is left to apply; ``applied`` otherwise
    (allocated to invoices, refunded, or both)."""
    if m.reversed:
        return "reversed"
    return UNAPPLIED if m.unapplied.amount > 0 else "applied"


def _credit_note_state(m: CreditNote) -> str:
    """``unapplied`` while some of the credit is left to apply; ``applied`` otherwise."""
    return UNAPPLIED if m.unapplied.amount > 0 else "applied"


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("customer", Customer, lambda m: m.id, lambda m: "locked" if m.locks else "active"),
        Kind("contract", Contract, _cust),
        Kind("project", Project, _cust),
        Kind("milestone", Milestone, lambda _m: None),
        Kind("receivable", Receivable, _cust, lambda m: str(m.state), lambda m: m.due_date),
        Kind("payment", Payment, _cust, _payment_state),
        Kind("credit_note", CreditNote, _cust, _credit_note_state),
        Kind("dispute", Dispute, _cust, lambda m: m.status),
        Kind("promise", PromiseToPay, _cust, lambda m: str(m.status)),
        Kind("order", Order, _cust, lambda m: str(m.state)),
        Kind("person", Person, lambda _m: None, lambda m: "active" if m.active else "inactive"),
        Kind("task", Task, _cust, lambda m: str(m.status), lambda m: task_sweep_day(m)),
        Kind("invoice_request", InvoiceRequest, _cust, lambda m: str(m.state)),
        Kind("process", ProcessInstance, _cust, lambda m: "open" if m.is_open else m.state),
    )
}
KIND_OF: dict[type[BaseModel], Kind] = {k.model: k for k in KINDS.values()}

M = TypeVar("M", bound=BaseModel)


def kind_of(obj: BaseModel) -> Kind:
    return KIND_OF[type(obj)]


def json_of(obj: BaseModel) -> str:
    """How objects, events and audit records are stored: ``obj.model_dump_json()`` leaving
    out the fields that are None. Every field that can be None defaults to None (checked
    by ``tests/test_store.py``), so parsing gives the same object back; an invoice's three
    documents are a quarter smaller, which an import of a million of them feels."""
    return obj.__pydantic_serializer__.to_json(obj, exclude_none=True).decode()


@dataclass(frozen=True)
class DecisionRecord:
    """One decided action in the decision ledger; ``key`` is unique in the store."""

    key: str
    as_of: date
    kind: str
    customer_id: str
    subject_id: str
    status: str  # planned, released, skipped, held
    body: str  # the decision as JSON


#: How the body of a decision recorded as the difference from another one begins (a
#: decision's own JSON begins with its key): ``{"same_as": KEY, field: value, ...}``, the
#: decision's own key being the record's
SAME_AS_PREFIX = '{"same_as":'


def same_as_body(base_key: str, diff: dict[str, Any]) -> str | None:
    """The body of a decision recorded as ``diff`` from the decision ``base_key``: its
    fields that differ (but its key, which the record holds), ``why`` by its entries that
    differ; None when a value of ``diff`` cannot be serialised. The engine records a
    receivable's skipped steps so: one whole, the others as their differences from it (a
    first run's millions of stale steps)."""
    try:  # pydantic's own serialiser: the values come out as in the decision's JSON
        return to_json({"same_as": base_key, **diff}).decode()
    except (PydanticSerializationError, ValueError):
        return None


def expanded(
    record: DecisionRecord, base_of: Callable[[str], DecisionRecord | None]
) -> DecisionRecord:
    """``record`` with the whole decision as its body, read from the decision its body is
    a difference from (``base_of(key)``, itself recorded whole) when it is one."""
    if not record.body.startswith(SAME_AS_PREFIX):
        return record
    diff = json.loads(record.body)
    base_key = diff.pop("same_as")
    base = base_of(base_key)
    if base is None or base.body.startswith(SAME_AS_PREFIX):
        raise StoreError(
            f"decision {record.key!r} is stored as a difference from {base_key!r}, "
            "which the decision ledger does not hold whole"
        )
    whole = json.loads(base.body)
    why = diff.pop("why", None)
    whole["key"] = record.key
    whole.update(diff)
    if why is not None:
        whole["why"] = {**whole["why"], **why}
    return replace(record, body=json.dumps(whole, separators=(",", ":"), ensure_ascii=False))


def expanded_all(
    records: list[DecisionRecord], base_of: Callable[[str], DecisionRecord | None]
) -> list[DecisionRecord]:
    """:func:`expanded` of each of ``records``, looking a base up among them first."""
    if not any(r.body.startswith(SAME_AS_PREFIX) for r in records):
        return records
    by_key = {r.key: r for r in records}

    def lookup(key: str) -> DecisionRecord | None:
        found = by_key.get(key)
        return found if found is not None else base_of(key)

    return [expanded(r, lookup) for r in records]


@dataclass(frozen=True)
class RunRecord:
    """What one ``Engine.run`` did: counts, failures and why."""

    as_of: date
    body: str  # JSON


@dataclass(frozen=True)
class OutboxRecord:
    """One action waiting for, or done with, delivery.

    ``key`` is the action's idempotency key (unique in the store). Instants are UTC
    microseconds since the epoch. ``status``: ``pending`` (due at ``next_at``), ``sending``
    (claimed by ``claimed_by`` until ``lease_until``), ``sent``, ``dead``. ``claim`` is the
    token of the claim being delivered: a new one with every claim, so a dispatcher whose
    lease ran out (and was taken over) can neither renew nor settle what it no longer holds."""

    key: str
    channel: str
    customer_id: str
    body: str  # the message as JSON
    status: str = "pending"
    attempts: int = 0
    next_at: int = 0
    created_at: int = 0
    claimed_by: str | None = None
    lease_until: int | None = None
    sent_at: int | None = None
    last_error: str | None = None
    receipt: str | None = None
    claim: str | None = None


OUTBOX_STATUSES = ("pending", "sending", "sent", "dead")


@dataclass(frozen=True)
class Settle:
    """The outcome of one delivery attempt, recorded by the dispatcher that claimed it.

    ``status``: ``sent``, ``pending`` (retry at ``next_at``) or ``dead``. ``follow_up`` is
    queued in the same transaction (the next channel of a fallback chain). ``claim`` is the
    token of the claim the attempt was made under: the outcome is recorded only while the
    action still holds it."""

    status: str
    now: int
    next_at: int | None = None
    error: str | None = None
    receipt: str | None = None
    follow_up: OutboxRecord | None = None
    claim: str | None = None


def new_claim() -> str:
    """A fresh claim token: random, so no two claims (of any dispatcher) share one."""
    return secrets.token_hex(16)


def claimable(r: OutboxRecord, now: int) -> bool:
    """Due and pending, or claimed by a dispatcher whose lease ran out (it crashed)."""
    if r.status == "pending":
        return r.next_at <= now
    return r.status == "sending" and r.lease_until is not None and r.lease_until < now


def claimed(r: OutboxRecord, worker: str, now: int, lease: int, claim: str) -> OutboxRecord:
    return replace(
        r,
        status="sending",
        claimed_by=worker,
        lease_until=now + lease,
        attempts=r.attempts + 1,
        claim=claim,
    )


def holds(r: OutboxRecord, claim: str | None) -> bool:
    """Whether ``r`` is being sent under the claim ``claim`` (any claim when None)."""
    return r.status == "sending" and (claim is None or r.claim == claim)


def settled(r: OutboxRecord, s: Settle) -> OutboxRecord:
    return replace(
        r,
        status=s.status,
        next_at=s.next_at if s.next_at is not None else r.next_at,
        lease_until=None,
        claim=None,
        sent_at=s.now if s.status == "sent" else r.sent_at,
        last_error=s.error if s.error is not None else r.last_error,
        receipt=s.receipt if s.receipt is not None else r.receipt,
    )


def retried(r: OutboxRecord, now: int) -> OutboxRecord:
    """A dead letter given a fresh start by an operator (``arflow outbox retry``)."""
    return replace(
        r, status="pending", attempts=0, next_at=now, claimed_by=None, lease_until=None, claim=None
    )


#: A new object as stored: (customer, state, due date, JSON, receivable summary text).
ObjectRow = tuple[str | None, str, date | None, str, str | None]
#: An audit record as stored: (subject kind, subject id, event id, JSON of the record).
AuditRow = tuple[str, str, str, str]


@dataclass
class StagedRows:
    """A transaction's staged writes as plain rows (see ``_SqlTx.staged_rows``): INSERTs
    by table, upserts (and the outbox's insert-if-absent) by kind, run records."""

    inserts: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    upserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)


# -- the receivable movement journal (what arflow.analytics sums) ------------------------------
#: The columns of a movement: one change of one receivable's open balance. ``amount`` is
#: in the currency's minor units (an exact integer: cents for CNY), positive when the
#: balance grows (invoiced, payment reversed) and negative when it shrinks (paid, credited,
#: written off); ``open_delta`` is +1 when the movement opens the receivable (its balance
#: leaves zero), -1 when it closes it (the balance reaches zero), else 0, so that the sum of
#: ``open_delta`` up to a date counts the receivables open on that date. The rest are the
#: receivable's dimensions, copied so that figures group by them without a join.
MOVEMENT_COLUMNS = (
    "receivable_id",
    "customer_id",
    "currency",
    "kind",
    "on_date",
    "amount",
    "open_delta",
    "issue_date",
    "due_date",
    "salesperson",
    "region",
    "product_line",
    "contract_id",
    "project_id",
)
#: One movement, in ``MOVEMENT_COLUMNS`` order (dates as ``date``).
Movement = tuple[
    str, str, str, str, date, int, int, date, date, str | None, str | None, str | None,
    str | None, str | None,
]  # fmt: skip
#: The kinds of movement, by sign: + invoiced, reversed (a payment undone), adjusted (the
#: amount changed); - paid, credited, written_off.
MOVEMENT_KINDS = ("invoiced", "paid", "reversed", "credited", "written_off", "adjusted")
#: The business date of an event that changes balances: the field that holds it, by event
#: type (other events: the day of ``occurred_at``, in UTC).
BUSINESS_DATE = {
    "InvoiceIssued": "issue_date",
    "PaymentReceived": "received_on",
    "PaymentReversed": "reversed_on",
    "CreditNoteIssued": "issued_on",
    "CashApplied": "applied_on",
    "WrittenOff": "written_off_on",
    "RefundIssued": "refunded_on",
    "DisputeOpened": "opened_on",
    "DisputeResolved": "resolved_on",
}
#: The customer dimension: what figures group customers by (``ar_customer_dim``).
CUSTOMER_DIM_COLUMNS = (
    "id", "name", "grade", "salesperson", "sales_manager", "team", "region", "tags",
)  # fmt: skip
#: A customer's team is its first tag ``team:<name>`` (the model has no team field).
TEAM_TAG = "team:"


def customer_dim(c: Customer) -> tuple[Any, ...]:
    """A customer's row of the customer dimension, in ``CUSTOMER_DIM_COLUMNS`` order; its
    tags as ``|a|b|`` (a tag filter is one LIKE)."""
    team = next((t[len(TEAM_TAG) :] for t in c.tags if t.startswith(TEAM_TAG)), None)
    tags = "|" + "|".join(c.tags) + "|" if c.tags else ""
    return (
        c.id, c.name, c.credit.grade, c.salesperson, c.sales_manager, team, c.region, tags,
    )  # fmt: skip


def minor_units(m: Any) -> int:
    """``m`` (a Money) in its currency's minor units, exactly."""
    from ..money import minor_unit

    return int(m.amount.scaleb(minor_unit(m.currency)))


def movements_of(
    new: Receivable, old: Receivable | None, on: date, project_id: str | None
) -> list[Movement]:
    """The movements of ``old`` becoming ``new`` (None: issued) on ``on``: one per field
    of the balance that changed (amount, paid, credited, written off)."""
    changes: list[tuple[str, int]] = []
    if old is None:
        if new.amount:
            changes.append(("invoiced", minor_units(new.amount)))
        before_open = False
        deltas = (
            ("paid", minor_units(new.paid)),
            ("credited", minor_units(new.credited)),
            ("written_off", minor_units(new.written_off)),
        )
    else:
        before_open = bool(old.open_balance)
        grew = minor_units(new.amount) - minor_units(old.amount)
        if grew:
            changes.append(("adjusted", grew))
        deltas = (
            ("paid", minor_units(new.paid) - minor_units(old.paid)),
            ("credited", minor_units(new.credited) - minor_units(old.credited)),
            ("written_off", minor_units(new.written_off) - minor_units(old.written_off)),
        )
    for kind, d in deltas:
        if d > 0:
            changes.append((kind, -d))
        elif d < 0:
            changes.append(("reversed" if kind == "paid" else "adjusted", -d))
    if not changes:
        return []
    after_open = bool(new.open_balance)
    opened = (1 if after_open else 0) - (1 if before_open else 0)
    out: list[Movement] = []
    last = len(changes) - 1
    for i, (kind, amount) in enumerate(changes):
        out.append(
            (
                new.id,
                new.customer_id,
                new.currency,
                kind,
                on,
                amount,
                opened if i == last else 0,
                new.issue_date,
                new.due_date,
                new.salesperson,
                new.region,
                new.product_line,
                new.contract_id,
                project_id,
            )
        )
    return out
