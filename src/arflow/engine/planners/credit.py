"""Credit scoring: weighted points per factor of a customer's facts, and the grade (with
its limit, terms and prepayment) the total reaches (``Engine.score``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...rules.schema import Scoring


@dataclass(frozen=True)
class CreditScore:
    score: Decimal
    grade: str
    credit_limit: Decimal
    payment_terms_days: int
    prepayment_percent: Decimal
    breakdown: dict[str, Decimal]


def score_customer(scoring: Scoring, facts: Mapping[str, Any]) -> CreditScore:
    """Weighted points per factor; the grade is the first whose min_score is reached."""
    total = Decimal(0)
    breakdown: dict[str, Decimal] = {}
    for f in scoring.factors:
        v = facts.get(f.fact)
        if v is None:
            pts = f.missing
        elif f.points is not None:
            pts = f.points.get(str(v), f.missing)
        else:
            pts = f.missing
            for band in f.bands or ():
                if band.min is None or Decimal(v) >= band.min:
                    pts = band.points
                    break
        breakdown[f.fact] = pts * f.weight
        total += pts * f.weight
    for g in scoring.grades:
        if total >= g.min_score:
            return CreditScore(
                total,
                g.grade,
                g.credit_limit,
                g.payment_terms_days,
                g.prepayment_percent,
                breakdown,
            )
    last = scoring.grades[-1]
    return CreditScore(
        total,
        last.grade,
        last.credit_limit,
        last.payment_terms_days,
        last.prepayment_percent,
        breakdown,
    )
