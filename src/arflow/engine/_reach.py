"""Schedule reach (how far from its anchor a step can fire) and condition bounds (the
least N of ``fact > N``): the arithmetic that tells which receivables a day reads."""

from __future__ import annotations

import functools
from typing import Any

from ..calendar import Schedule
from ..rules.expr import Condition


def _reach_days(offset: Any) -> tuple[int, int]:
    """Calendar-day bounds of an offset from its anchor (business days and months widened)."""
    n = int(offset.n)
    unit = offset.unit
    if unit == "d":
        return n, n
    if unit == "w":
        return 7 * n, 7 * n
    if unit == "m":
        return (28 * n, 31 * n) if n >= 0 else (31 * n, 28 * n)
    # business days: at least n calendar days, at most about 7/5 n plus a long holiday
    wide = (n * 7) // 5 + 15 if n >= 0 else (n * 7) // 5 - 15
    return (n, wide) if n >= 0 else (wide, n)


def schedule_reach(schedule: Any) -> tuple[int, int | None]:
    """(earliest, latest) calendar days after the anchor at which ``schedule`` can fire;
    latest is None for a recurrence without ``until``."""
    start = schedule.start
    lo, hi = _reach_days(start)
    if schedule.every is None:
        return lo, hi
    if schedule.until is None:
        return lo, None
    return lo, _reach_days(schedule.until)[1]


@functools.cache
def _due_reach(schedule: Schedule) -> tuple[int, int | None] | None:
    """``schedule_reach`` as calendar days after the *due date*, or None when the schedule
    starts from another anchor. An ``until`` on the issue date is bounded as if on the due
    date (a receivable is never due before it is issued); one on another anchor leaves the
    reach open."""
    if schedule.start.anchor != "due":
        return None
    lo, hi = schedule_reach(schedule)
    if schedule.until is not None and schedule.until.anchor not in ("due", "issue"):
        hi = None
    return lo, hi


def _lower_bound(cond: Condition | None, fact: str) -> int | None:
    """N when ``cond`` is ``fact > N - 1`` or ``fact >= N``, alone or in a top-level ``and``."""
    from ..rules.expr import BoolOp, Compare, Fact
    from ..rules.expr import Literal as Lit

    if cond is None:
        return None
    tree = cond.tree
    parts = tree.items if isinstance(tree, BoolOp) and tree.op == "and" else (tree,)
    bound: int | None = None
    for p in parts:
        if (
            isinstance(p, Compare)
            and isinstance(p.left, Fact)
            and p.left.path == fact
            and isinstance(p.right, Lit)
            and p.op in (">", ">=")
        ):
            n = int(p.right.value) + (1 if p.op == ">" else 0)
            bound = n if bound is None else max(bound, n)
    return bound
