"""One planner per rule kind (see :mod:`arflow.engine._planner` for the protocols they
follow and the points of a day or an event they are called at)."""

from __future__ import annotations

from .alerts import CustomerAlerts, OrderAlerts, ReceivableAlerts
from .approvals import ApprovalPlanner
from .credit import (
    ContractTermsPlanner,
    CreditReviewPlanner,
    CreditScore,
    check_grades,
    check_terms,
    review_event,
    score_customer,
    with_grade_terms,
)
from .dunning import DunningPlanner
from .locks import LockPlanner
from .milestones import MilestonePlanner
from .patterns import PatternPlanner

__all__ = [
    "ApprovalPlanner",
    "ContractTermsPlanner",
    "CreditReviewPlanner",
    "CreditScore",
    "CustomerAlerts",
    "DunningPlanner",
    "LockPlanner",
    "MilestonePlanner",
    "OrderAlerts",
    "PatternPlanner",
    "ReceivableAlerts",
    "check_grades",
    "check_terms",
    "review_event",
    "score_customer",
    "with_grade_terms",
]
