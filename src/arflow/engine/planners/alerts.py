"""Alerts: a condition on a receivable, a customer or an order that calls for attention
once per subject (key ``alert:<rule>:<subject>``).

Receivable alerts are decided for every candidate receivable of a day (none for a balance
under ``settings.min_balance``); customer alerts for every customer the day looks at (the
customers its locks are checked for), on the customer's facts; order alerts when an order
event reaches ``Engine.handle``, on the order's facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from ...decisions import Decision, decision_key
from ...domain import Customer, Receivable
from ...events import (
    BaseEvent,
    OrderApprovalRequested,
    OrderApproved,
    OrderRejected,
    OrderShipped,
    OrderSubmitted,
)
from ...ledger import Applied
from ...rules.facts import order_facts
from ...rules.loader import CompiledRule
from .._context import CustomerFacts, Day
from .._explain import _why
from .._results import Plan, _holds

#: the events about one order that order alerts are decided on
ORDER_EVENTS = (OrderSubmitted, OrderApprovalRequested, OrderApproved, OrderRejected, OrderShipped)


def _alert(
    day: Day,
    rule: CompiledRule,
    subject: tuple[str, str],
    customer: Customer,
    currency: str | None,
    facts: dict[str, Any],
    always: tuple[str, ...],
) -> Decision:
    """The decision of alert ``rule`` on ``subject`` (kind, id), with its why."""
    acts = tuple(rule.spec.actions)
    return Decision(
        key=decision_key("alert", rule.id, subject[1]),
        kind="alert",
        rule=rule.id,
        subject_kind=subject[0],
        subject_id=subject[1],
        customer_id=customer.id,
        currency=currency,
        occurrence=day.as_of,
        as_of=day.as_of,
        actions=acts,
        recipients=day.recipients(customer, acts),
        send_at=day.send_at(customer, acts),
        why=_why(rule.id, facts, [rule.when], {}, always),
    )


class ReceivableAlerts:
    """Alerts on a receivable (a :class:`ReceivablePlanner`)."""

    def plan_receivable(
        self, day: Day, r: Receivable, customer: CustomerFacts, facts: dict[str, Any]
    ) -> None:
        small = facts["balance"] < day.settings.min_balance  # a small balance: no alert
        plan = day.plan
        for rule in day.pack.alerts:
            if rule.subject != "receivable" or rule.when is None or small:
                continue
            if _holds(rule, facts, plan.failures, "receivable", r.id, r.customer_id):
                plan.decisions.append(
                    _alert(
                        day,
                        rule,
                        ("receivable", r.id),
                        customer.customer,
                        r.currency,
                        facts,
                        ("balance", "days_past_due"),
                    )
                )


class CustomerAlerts:
    """Alerts on a customer, once per customer the day looks at (a :class:`CustomerPlanner`)."""

    def customers(self, day: Day) -> Iterable[str]:
        return ()

    def plan_customer(self, plan: Plan, customer_id: str, as_of: date, day: Day) -> None:
        rules = [r for r in day.pack.alerts if r.subject == "customer" and r.when is not None]
        if not rules:
            return
        cf = day.facts.get(customer_id)
        for rule in rules:
            if _holds(rule, cf.facts, plan.failures, "customer", customer_id, customer_id):
                plan.decisions.append(
                    _alert(
                        day,
                        rule,
                        ("customer", customer_id),
                        cf.customer,
                        cf.facts.get("customer.currency"),
                        cf.facts,
                        ("customer.open_balance", "customer.overdue_max_days"),
                    )
                )


class OrderAlerts:
    """Alerts on an order, when an event about it arrives (an :class:`EventPlanner`)."""

    def on_event(self, event: BaseEvent, applied: Applied, day: Day) -> None:
        if not isinstance(event, ORDER_EVENTS):
            return
        rules = [r for r in day.pack.alerts if r.subject == "order" and r.when is not None]
        if not rules:
            return
        order = day.get("order", event.order_id)
        cf = day.facts.get(order.customer_id)
        facts = order_facts(order, cf.facts, day.as_of)
        plan = day.plan
        # an order has many events: an alert decided on an earlier one is not decided again
        known = day.store.known_decisions([decision_key("alert", r.id, order.id) for r in rules])
        for rule in rules:
            if decision_key("alert", rule.id, order.id) in known:
                continue
            if _holds(rule, facts, plan.failures, "order", order.id, order.customer_id):
                plan.decisions.append(
                    _alert(
                        day,
                        rule,
                        ("order", order.id),
                        cf.customer,
                        order.amount.currency,
                        facts,
                        ("order.amount",),
                    )
                )
