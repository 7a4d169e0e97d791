"""The planner protocols: every kind of rule is planned by one planner, which the engine
calls at one of four points of a day or an event.

- :class:`ReceivablePlanner`: once per candidate receivable of the day, with its facts
  (dunning ladders, receivable alerts); the hot path of a run.
- :class:`HistoryPlanner`: once per day, over the histories of many customers at once
  (patterns, matched by the matcher the pack chose).
- :class:`CustomerPlanner`: once per customer the day looks at (the candidates' customers,
  those the history planners read, and those any customer planner asks for), with the
  customer's facts (locks, customer alerts).
- :class:`EventPlanner`: once per event given to ``Engine.handle`` (milestones, approvals,
  order alerts, late-payment patterns, locks of the customers the event touched).

Each appends its decisions to ``day.plan`` (skipped ones to ``day.plan.skipped``) and its
failures to ``day.plan.failures``: a rule that raises on a subject is a failure of that rule
and subject, and the others go on. Adding a rule kind is a planner module in
``arflow.engine.planners`` plus its schema entry; the engine lists the planners in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, Protocol

from ..domain import Receivable
from ..events import BaseEvent
from ..ledger import Applied
from ._context import CustomerFacts, Day
from ._results import Plan


class ReceivablePlanner(Protocol):
    """Decides for one receivable of the day."""

    def plan_receivable(
        self, day: Day, r: Receivable, customer: CustomerFacts, facts: dict[str, Any]
    ) -> None: ...


class HistoryPlanner(Protocol):
    """Decides once a day over many customers' histories (after the receivables)."""

    def plan_day(self, day: Day) -> None: ...


class CustomerPlanner(Protocol):
    """Decides for one customer the day looks at (after the histories)."""

    def customers(self, day: Day) -> Iterable[str]:
        """Customers to look at besides those the day has read already."""
        ...

    def plan_customer(self, plan: Plan, customer_id: str, as_of: date, day: Day) -> None:
        """Decide for ``customer_id`` into ``plan`` (the day's, or an event's)."""
        ...


class EventPlanner(Protocol):
    """Decides what an applied event triggers (``Engine.handle``)."""

    def on_event(self, event: BaseEvent, applied: Applied, day: Day) -> None: ...
