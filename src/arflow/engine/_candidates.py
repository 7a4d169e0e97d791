"""Which receivables and customers a day reads: the receivables whose due date lets a step,
alert or lock fire in the day's window (an index read, not the book), and the locked
customers whose lock may have to lift."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from ..calendar import due_reach as _due_reach
from ..domain import Customer, Receivable
from ..lifecycle import LIVE_STATES
from ..rules.expr import Condition
from ..rules.expr import lower_bound as _lower_bound
from ..rules.loader import RulePack
from ..store.base import Store
from ._context import DayBook

#: customer facts that can fall with time alone (counts over a trailing window)
_WINDOWED_FACTS = frozenset(
    {"customer.late_payments_180d", "customer.broken_promises_180d", "customer.call_attempts_30d"}
)

#: Events that change no customer fact a lock condition can read (a run's own dunning steps,
#: risk flags and locks): a customer they touched need not be re-checked for a lift.
_LOCK_NEUTRAL_EVENTS = frozenset(
    {
        "DunningStepRecorded",
        "RiskFlagged",
        "OrderLockPlaced",
        "OrderLockLifted",
        # tracked tasks given, passed on, gone overdue or cancelled (a done call is a
        # contact fact, which a lock rule may read)
        "TaskCreated",
        "TaskReassigned",
        "TaskOverdue",
        "TaskCancelled",
    }
)


def _shift(d: date, days: int) -> date:
    """``d`` plus ``days``, held to the calendar's range: a window reaching past it holds
    no due date out there."""
    try:
        return d + timedelta(days)
    except OverflowError:
        return date.max if days > 0 else date.min


def candidates(
    store: Store,
    pack: RulePack,
    as_of: date,
    since: date | None,
    mine: Callable[[str], bool] | None,
) -> list[Receivable]:
    """Live receivables whose due date lets some step fire in [since, as_of]."""
    seen: dict[str, Receivable] = {}
    for lo_d, hi_d in due_windows(pack, as_of, since):
        for r in store.find_due(lo_d, hi_d, LIVE_STATES, customers=mine):
            seen[r.id] = r
    return sorted(seen.values(), key=lambda r: (r.customer_id, r.due_date, r.id))


def due_windows(pack: RulePack, as_of: date, since: date | None) -> list[tuple[date, date]]:
    """The due dates (disjoint windows) of the receivables a step, alert or lock can
    fire for in [since, as_of]; every due date when a step hangs off another anchor."""
    windows: list[tuple[date, date]] = []
    first = date.min if since is None else since
    for ladder in pack.ladders:
        for st in ladder.steps:
            reach = _due_reach(st.schedule)
            if reach is None:
                return [(date.min, date.max)]
            lo, hi = reach
            start = date.min if hi is None or first == date.min else _shift(first, -hi)
            windows.append((start, _shift(as_of, -lo)))
    for rule in pack.alerts:
        if rule.subject == "receivable":
            w = threshold_window(rule.when, "days_past_due", as_of, first)
            windows.append(w if w is not None else (date.min, date.max))
    for rule in pack.locks:
        w = threshold_window(rule.when, "customer.overdue_max_days", as_of, first)
        if w is not None:
            windows.append(w)
    for rule in pack.alerts:
        if rule.subject == "customer":  # read like a lock's: the day it crosses its threshold
            w = threshold_window(rule.when, "customer.overdue_max_days", as_of, first)
            if w is not None:
                windows.append(w)
    windows.sort()
    merged: list[tuple[date, date]] = []
    for lo_d, hi_d in windows:
        last = merged[-1][1] if merged else None
        if last is not None and (last == date.max or lo_d <= last + timedelta(1)):
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi_d))
        else:
            merged.append((lo_d, hi_d))
    return merged


def threshold_window(
    cond: Condition | None, fact: str, as_of: date, first: date
) -> tuple[date, date] | None:
    """Receivables that can have crossed ``fact > N`` (an alert or lock threshold on
    days past due) since ``first``: due in [first - N, as_of - N]. None when the
    condition has no such bound (then it changes only with events)."""
    bound = _lower_bound(cond, fact)
    if bound is None:
        return None
    lo = date.min if first == date.min else _shift(first, -bound)
    return lo, _shift(as_of, -bound)


def locked_customers(
    store: DayBook, pack: RulePack, mark: int | None, mine: Callable[[str], bool] | None
) -> list[Customer]:
    """The locked customers whose lock may have to lift today. A lock's cause goes only
    through events (a payment, a credit note, a limit raised), so after a run that left a
    mark only the locked customers the book changed for since are looked at: the day's
    cost does not grow with the number of locked customers. Conditions on facts that
    fall with time alone (counts over a trailing window) re-check every locked customer."""
    return [c for c in lock_customers(store, pack, mark, mine) if c.locks]


def lock_customers(
    store: DayBook, pack: RulePack, mark: int | None, mine: Callable[[str], bool] | None
) -> list[Customer]:
    """The customers whose locks a day's run judges besides those of its candidates: the
    locked ones whose lock may have to lift (see :func:`locked_customers`), and, after a
    run that left a mark, every customer the book changed for since, locked or not. An
    event applied by ``Ledger.apply`` (an order recorded by the host) is judged by no rule
    when it is applied; the next day's run places the lock it calls for. A first run (no
    mark) judges every customer: a book imported before it (an invoice at 95% of the limit
    due in two months) has changed for all of them, and none was judged."""
    if not pack.locks:
        return []
    if mark is None:
        return [c for c in store.all("customer") if mine is None or mine(c.id)]
    windowed = any(
        rule.when is not None and rule.when.facts & _WINDOWED_FACTS for rule in pack.locks
    )
    if windowed:
        locked = store.find("customer", states=["locked"])
        found = {c.id: c for c in locked if mine is None or mine(c.id)}
    else:
        found = {}
    changed = store.customers_changed_since(mark, ignore=_LOCK_NEUTRAL_EVENTS)
    if mine is not None:
        changed = {c for c in changed if mine(c)}
    found.update(store.get_many("customer", sorted(changed - found.keys())))
    return [found[k] for k in sorted(found)]
