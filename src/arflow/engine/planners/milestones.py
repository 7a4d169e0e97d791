"""Milestones: when ``MilestoneCompleted`` makes a contract's payment node invoiceable,
an invoice request for finance (``Engine.handle``)."""

from __future__ import annotations

from ...decisions import Decision, decision_key
from ...events import BaseEvent, MilestoneCompleted
from ...ledger import Applied
from .._context import Day
from .._results import _holds


class MilestonePlanner:
    """The milestone rules, per invoice request an event made (an :class:`EventPlanner`)."""

    def on_event(self, event: BaseEvent, applied: Applied, day: Day) -> None:
        if not isinstance(event, MilestoneCompleted):
            return
        plan, as_of = day.plan, day.as_of
        for req in applied.invoice_requests:
            cf = day.facts.get(req.customer_id)
            for rule in day.pack.milestones:
                if not _holds(
                    rule, cf.facts, plan.failures, "contract", req.contract_id, req.customer_id
                ):
                    continue
                acts = tuple(rule.spec.actions)
                plan.decisions.append(
                    Decision(
                        key=decision_key(
                            "milestone", rule.id, req.contract_id, req.payment_node_id
                        ),
                        kind="milestone",
                        rule=rule.id,
                        subject_kind="contract",
                        subject_id=req.contract_id,
                        customer_id=req.customer_id,
                        currency=req.amount.currency,
                        occurrence=as_of,
                        as_of=as_of,
                        actions=acts,
                        recipients=day.recipients(cf.customer, acts),
                        why={
                            "rule": rule.id,
                            "milestone": req.milestone_id,
                            "payment_node": req.payment_node_id,
                            "amount": str(req.amount),
                        },
                    )
                )
