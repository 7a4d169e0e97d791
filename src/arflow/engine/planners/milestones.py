"""Milestones: when ``MilestoneCompleted`` makes a contract's payment node invoiceable,
the milestone rules' tasks for finance (``Engine.handle``). The ledger has made the
node's invoice request in the book already (``IR-<contract>-<node>``, see
docs/workflows.md); the decision names it, with the milestone and the contract by name."""

from __future__ import annotations

from ...decisions import Decision, decision_key
from ...events import BaseEvent, MilestoneCompleted
from ...ledger import Applied, request_id
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
                            **_names(day, req.contract_id, req.milestone_id),
                            "invoice_request": request_id(req.contract_id, req.payment_node_id),
                        },
                    )
                )


def _names(day: Day, contract_id: str, milestone_id: str) -> dict[str, str]:
    """The contract's title and the milestone's name, for the people who read the task."""
    contract = day.get("contract", contract_id)
    milestone = day.get("milestone", milestone_id)
    return {
        "contract_title": contract.title or contract.id,
        "milestone_name": milestone.name or milestone.id,
    }
