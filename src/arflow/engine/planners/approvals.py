"""Approvals: every order is checked at entry (``Engine.handle(OrderSubmitted)``).

Exposure counts the order itself and every other order not refused and not yet invoiced.
In this order:

1. over the pack's hard ceiling (``settings.order_ceiling_ratio`` times the credit limit):
   rejected, whatever else holds;
2. a lock of the customer with ``on_order: reject``: rejected with the lock's description;
3. a lock with ``on_order: approve`` (its tier, else ``settings.over_limit_tier``), a lock
   without ``on_order`` (to the customer's sales manager, as before), payment terms longer
   than the customer's grade allows (``settings.terms_tier``), an approval tier whose
   condition holds, or exposure over the limit (``settings.over_limit_tier``): sent for
   approval, the roles and who holds them recorded on the order;
4. otherwise, with ``settings.auto_approve_orders``: approved by the engine, and the next
   owners (``settings.order_approved``) get their tasks.

An order approved by a person (``Engine.handle(OrderApproved)``) gets the same tasks.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ...decisions import Decision, decision_key
from ...domain import Customer, Order, OrderLock
from ...events import BaseEvent, OrderApproved, OrderSubmitted
from ...ledger import Applied
from ...rules.facts import order_facts
from ...rules.loader import CompiledRule
from ...rules.schema import Action
from .._context import Day
from .._explain import _why
from .._results import _failure, _holds
from .credit import longer_terms, terms_path

#: the rule of an order that passed the check at entry, and of the tasks after an approval
APPROVED_RULE = "order-approved"
#: the rule of an order over the pack's hard ceiling
CEILING_RULE = "order-ceiling"
#: the rule of an order asking for longer payment terms than its customer's grade allows
TERMS_RULE = "order-terms"


def _applies(lock: OrderLock, order: Order) -> bool:
    return (
        lock.scope == "customer"
        or (lock.scope == "order_type" and lock.ref == order.order_type)
        or (lock.scope == "contract" and lock.ref == order.contract_id)
    )


class ApprovalPlanner:
    """The check of a submitted order at entry, and the tasks after an approval (an
    :class:`EventPlanner`)."""

    def on_event(self, event: BaseEvent, applied: Applied, day: Day) -> None:
        if isinstance(event, OrderApproved):
            self._approved(event, day)
            return
        if not isinstance(event, OrderSubmitted):
            return
        e, as_of, plan = event, day.as_of, day.plan
        cf = day.facts.get(e.customer_id)
        order: Order = day.get("order", e.order_id)
        facts = order_facts(order, cf.facts, as_of)
        customer = cf.customer
        rejects: list[Decision] = []
        approvals: list[Decision] = []

        def decide(
            rule: str,
            outcome: str,
            reason: str | None,
            why: dict[str, Any],
            acts: tuple[Action, ...] = (),
        ) -> Decision:
            return Decision(
                key=decision_key("approval", rule, e.order_id),
                kind="approval",
                rule=rule,
                subject_kind="order",
                subject_id=e.order_id,
                customer_id=e.customer_id,
                currency=e.amount.currency,
                occurrence=as_of,
                as_of=as_of,
                actions=acts,
                recipients=day.recipients(customer, acts),
                reason=reason,
                why={**why, "on_order": outcome},
            )

        def to_roles(
            rule: str,
            roles: tuple[str, ...],
            template: str | None,
            tier_id: str | None,
            reason: str | None,
            why: dict[str, Any],
        ) -> None:
            acts = (
                (Action(type="task", to=roles, template=template, priority="high"),)
                if template
                else ()
            )
            approval: dict[str, Any] = {
                "roles": list(roles),
                "approvers": _holders(day, customer, roles),
            }
            if tier_id is not None:
                approval["tier"] = tier_id
            approvals.append(decide(rule, "approve", reason, {**why, "approval": approval}, acts))

        def to_tier(
            rule: str, tier: CompiledRule | None, reason: str | None, why: dict[str, Any]
        ) -> None:
            if tier is None:  # the default before on_order existed: the sales manager
                template = "approval_request" if "approval_request" in day.pack.templates else None
                to_roles(rule, ("sales_manager",), template, None, reason, why)
            else:
                spec = tier.spec
                to_roles(rule, tuple(spec.approvers), spec.template, tier.id, reason, why)

        tiers = {t.id: t for t in day.pack.approvals}
        specs = {r.id: r.spec for r in day.pack.locks}
        settings = day.settings
        limit = facts.get("customer.credit_limit")
        exposure = facts.get("customer.exposure") or Decimal(0)
        same_currency = facts.get("customer.currency") == e.amount.currency
        ratio = settings.order_ceiling_ratio
        if ratio is not None and limit and same_currency and exposure > limit * ratio:
            rejects.append(
                decide(
                    CEILING_RULE,
                    "reject",
                    f"exposure {exposure} would pass the ceiling of {ratio} times the credit "
                    f"limit {limit} ({limit * ratio}): no approval can pass it",
                    {
                        "rule": CEILING_RULE,
                        "exposure": str(exposure),
                        "ceiling": str(limit * ratio),
                    },
                )
            )
        for lock in customer.locks:
            if not _applies(lock, order):
                continue
            spec = specs.get(lock.lock_id)
            policy = getattr(spec, "on_order", None)
            rule = f"lock-{lock.lock_id}"
            why = {"rule": lock.lock_id, "lock": lock.model_dump(mode="json")}
            if policy == "reject":
                rejects.append(decide(rule, "reject", lock.reason or lock.lock_id, why))
                continue
            reason = f"orders locked by {lock.lock_id} since {lock.since}: {lock.reason}"
            tier = None
            if policy == "approve":
                name = getattr(spec, "approval", None) or settings.over_limit_tier
                tier = tiers.get(name) if name else None
                if tier is None:
                    plan.failures.append(
                        _failure(
                            "order",
                            e.order_id,
                            e.customer_id,
                            lock.lock_id,
                            ValueError(f"lock {lock.lock_id}: no approval tier {name!r}"),
                        )
                    )
            to_tier(rule, tier, reason, why)
        longer = longer_terms(day.pack.scoring, customer, e)
        path = terms_path(day.pack)
        if day.pack.process_for("order_terms") is not None:
            path = None  # the pack's terms process takes over (engine/_processes.py)
        if longer is not None and path is not None:
            _subject, grade, allowed, parts = longer
            asked = parts["terms"]
            terms_why: dict[str, Any] = {
                "rule": TERMS_RULE,
                "grade": grade,
                "allowed_days": allowed,
                "asked_days": asked,
                "asked": f"payment terms of {asked} days",
                "allowed": f"{allowed} days (grade {grade})",
            }
            reason = (
                f"order {e.order_id}: payment terms of {asked} days, longer than grade {grade} "
                f"allows ({allowed} days)"
            )
            to_roles(TERMS_RULE, path.roles, path.template, path.tier, reason, terms_why)
        caught = False
        for t in day.pack.approvals:
            if t.when is None:
                continue
            if not _holds(t, facts, plan.failures, "order", e.order_id, e.customer_id):
                continue
            caught = True
            why = _why(t.id, facts, [t.when], {}, ("order.amount",))
            to_tier(t.id, t, t.spec.description or None, why)
        over = limit is not None and same_currency and exposure > limit
        if over and not caught and settings.over_limit_tier:
            tier = tiers.get(settings.over_limit_tier)
            why = {"rule": settings.over_limit_tier, "exposure": str(exposure), "limit": str(limit)}
            reason = f"exposure {exposure} is over the credit limit {limit}"
            to_tier(f"over-limit-{settings.over_limit_tier}", tier, reason, why)
        if rejects:
            plan.decisions.extend(rejects)
        elif approvals:
            plan.decisions.extend(approvals)
        elif settings.auto_approve_orders and not over and not customer.credit.order_block:
            why = {"rule": APPROVED_RULE, "exposure": str(exposure), "limit": str(limit)}
            plan.decisions.append(
                decide(
                    APPROVED_RULE,
                    "auto",
                    "within the credit limit and not locked",
                    why,
                    tuple(settings.order_approved),
                )
            )

    @staticmethod
    def _approved(e: OrderApproved, day: Day) -> None:
        """An order a person approved: its next owners get their tasks."""
        acts = tuple(day.settings.order_approved)
        if not acts:
            return
        order: Order = day.get("order", e.order_id)
        customer = day.facts.get(order.customer_id).customer
        day.plan.decisions.append(
            Decision(
                key=decision_key("approval", APPROVED_RULE, order.id),
                kind="approval",
                rule=APPROVED_RULE,
                subject_kind="order",
                subject_id=order.id,
                customer_id=order.customer_id,
                currency=order.amount.currency,
                occurrence=day.as_of,
                as_of=day.as_of,
                actions=acts,
                recipients=day.recipients(customer, acts),
                reason=f"approved by {e.approver}",
                why={"rule": APPROVED_RULE, "on_order": "approved", "approver": e.approver},
            )
        )


def _holders(day: Day, customer: Customer, roles: tuple[str, ...]) -> list[str]:
    """Who holds ``roles`` for ``customer``: the addresses (or ids) an approval task to
    them goes to, in the order of the roles, each once."""
    found = day.recipients(customer, (Action(type="task", to=roles, template="-"),))
    out: list[str] = []
    for role in roles:
        who = found.get(role)
        if who and who not in out:
            out.append(who)
    return out
