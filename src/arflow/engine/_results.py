"""What a plan and a run return: the plan, the run's result, and the failures a day went on
without."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ..decisions import Decision, Notice
from ..errors import ArflowError
from ..messages import group_notices
from ..rules.loader import CompiledRule


@dataclass
class Failure:
    """A rule or subject the plan could not decide for, and why; the rest of the day goes on."""

    subject_kind: str
    subject_id: str
    error: str
    #: whose book the subject is in (None: not one customer's)
    customer_id: str | None = None
    #: the rule that failed on the subject (None: the subject itself could not be read)
    rule: str | None = None


@dataclass
class Plan:
    as_of: date
    since: date | None
    decisions: list[Decision] = field(default_factory=list)
    skipped: list[Decision] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    candidates: int = 0
    audit_mark: int | None = None  # the book's audit position when the plan was made
    #: where the decisions of the receivables end and where those of the patterns end
    #: (the customers' locks and alerts follow, customer by customer): :func:`merge_plans`
    #: keeps that order
    segments: tuple[int, int] = (0, 0)
    #: more than one: a run planned and recorded this many slices of the customers one
    #: after the other (``Engine.slice_candidates``), whose decisions are in the decision
    #: ledger only (``decisions`` and ``skipped`` are left empty)
    slices: int = 1
    #: customers whose book changed between planning and recording (a payment committed
    #: meanwhile): planned again, as the book stood when the run recorded its decisions
    replanned: int = 0

    @property
    def notices(self) -> list[Notice]:
        return group_notices(self.decisions)


@dataclass
class RunResult:
    as_of: date
    recorded: int
    skipped: int
    failures: list[Failure]
    plan: Plan


def _failure(kind: str, subject: str, customer: str, rule: str | None, exc: Exception) -> Failure:
    """``rule`` (None: reading the subject) failed on ``subject``: an arflow error as it
    says, anything else with its class (reported, not raised: the day goes on without it)."""
    error = str(exc) if isinstance(exc, ArflowError) else f"{type(exc).__name__}: {exc}"
    return Failure(kind, subject, error, customer, rule)


def _holds(
    rule: CompiledRule,
    facts: Mapping[str, Any],
    failures: list[Failure],
    kind: str,
    subject: str,
    customer: str,
) -> bool:
    """Whether ``rule``'s condition holds (no condition: it does); one that raises is a
    failure of that rule and subject, and does not hold."""
    if rule.when is None:
        return True
    try:
        return rule.when(facts)
    except Exception as exc:
        failures.append(_failure(kind, subject, customer, rule.id, exc))
        return False
