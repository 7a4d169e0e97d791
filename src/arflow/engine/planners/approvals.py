"""Approvals: an order submitted while its customer (or its order type or contract) is
locked, or that meets an approval tier's condition, needs someone to approve it
(``Engine.handle(OrderSubmitted)``)."""

from __future__ import annotations

from ...decisions import Decision, decision_key
from ...events import BaseEvent, OrderSubmitted
from ...ledger import Applied
from ...rules.facts import order_facts
from ...rules.schema import Action
from .._context import Day
from .._explain import _why
from .._results import _holds


class ApprovalPlanner:
    """Lock approvals and approval tiers of a submitted order (an :class:`EventPlanner`)."""

    def on_event(self, event: BaseEvent, applied: Applied, day: Day) -> None:
        if not isinstance(event, OrderSubmitted):
            return
        e, as_of, plan = event, day.as_of, day.plan
        cf = day.facts.get(e.customer_id)
        order = day.ledger.get("order", e.order_id)
        facts = order_facts(order, cf.facts, as_of)
        customer = cf.customer
        for lock in customer.locks:
            applies = (
                lock.scope == "customer"
                or (lock.scope == "order_type" and lock.ref == order.order_type)
                or (lock.scope == "contract" and lock.ref == order.contract_id)
            )
            if not applies:
                continue
            acts = (
                (
                    Action(
                        type="task",
                        to=("sales_manager",),
                        template="approval_request",
                        priority="high",
                    ),
                )
                if "approval_request" in day.pack.templates
                else ()
            )
            plan.decisions.append(
                Decision(
                    key=decision_key("approval", f"lock-{lock.lock_id}", e.order_id),
                    kind="approval",
                    rule=f"lock-{lock.lock_id}",
                    subject_kind="order",
                    subject_id=e.order_id,
                    customer_id=e.customer_id,
                    currency=e.amount.currency,
                    occurrence=as_of,
                    as_of=as_of,
                    actions=acts,
                    recipients=day.recipients(customer, acts),
                    reason=f"orders locked by {lock.lock_id} since {lock.since}: {lock.reason}",
                    why={"rule": lock.lock_id, "lock": lock.model_dump(mode="json")},
                )
            )
        for rule in day.pack.approvals:
            if rule.when is None:
                continue
            if not _holds(rule, facts, plan.failures, "order", e.order_id, e.customer_id):
                continue
            tier = rule.spec
            acts = (
                Action(type="task", to=tier.approvers, template=tier.template, priority="high"),
            )
            plan.decisions.append(
                Decision(
                    key=decision_key("approval", rule.id, e.order_id),
                    kind="approval",
                    rule=rule.id,
                    subject_kind="order",
                    subject_id=e.order_id,
                    customer_id=e.customer_id,
                    currency=e.amount.currency,
                    occurrence=as_of,
                    as_of=as_of,
                    actions=acts,
                    recipients=day.recipients(customer, acts),
                    reason=tier.description or None,
                    why=_why(rule.id, facts, [rule.when], {}, ("order.amount",)),
                )
            )
