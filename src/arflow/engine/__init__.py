"""The engine: the book plus a rule pack, as of a date, give a list of explained decisions.

``Engine`` (:mod:`._engine`) is the orchestrator: it holds one planner per rule kind
(:mod:`.planners`, behind the protocols of :mod:`._planner`) and calls them over the
receivables a day reads (:mod:`._candidates`), with the customers' facts read once
(:mod:`._context`); it records a plan (:mod:`._record`), holds it for review
(:mod:`._review`) and runs a large day in slices or helper processes (:mod:`._parallel`).
"""

from __future__ import annotations

from ..decisions import Decision, DecisionKind, Notice, Status, decision_key
from ..messages import group_notices
from ._candidates import _shift as _shift
from ._context import CustomerFacts, Day, FactCache
from ._engine import Engine
from ._explain import _jsonable as _jsonable
from ._explain import _jsonable_deep as _jsonable_deep
from ._explain import _why as _why
from ._parallel import _in_slice as _in_slice
from ._parallel import _without as _without
from ._parallel import merge_plans, pack_digest
from ._planner import CustomerPlanner, EventPlanner, HistoryPlanner, ReceivablePlanner
from ._record import ENGINE_ACTOR
from ._record import _effect_id as _effect_id
from ._results import Failure, Plan, RunResult
from ._review import CustomerProposal, ProposedMessage
from .planners import CreditScore, review_event, score_customer

__all__ = [
    "ENGINE_ACTOR",
    "CreditScore",
    "CustomerFacts",
    "CustomerPlanner",
    "CustomerProposal",
    "Day",
    "Decision",
    "DecisionKind",
    "Engine",
    "EventPlanner",
    "FactCache",
    "Failure",
    "HistoryPlanner",
    "Notice",
    "Plan",
    "ProposedMessage",
    "ReceivablePlanner",
    "RunResult",
    "Status",
    "decision_key",
    "group_notices",
    "merge_plans",
    "pack_digest",
    "review_event",
    "score_customer",
]
