"""The cash forecast: expected receipts per week, and last quarter's forecast against what
arrived (``docs/analytics.md``).

Each open receivable is expected on its due date shifted by its customer's observed
lateness: the mean, rounded to whole days (halves away from zero), of ``paid on - due``
over the customer's receivables paid in full by the forecast's date (any currency; early
payments count negative). A customer with no such receivable gets the mean over every
paid receivable of the book (the pooled lateness), and 0 days when nothing was ever paid.

An open promise to pay is expected on its promised date for what is left of it, and that
amount is taken off the receivables it covers (oldest due first), so no money is counted
twice. What is under dispute is not expected within the weeks (``Forecast.later``), nor is
what is expected after the last week; anything expected before the forecast's date (a
customer late beyond its habit, a promise past its date) is expected in the first week.
Per currency, never summed across currencies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from ..domain import Dispute, PromiseStatus, PromiseToPay, Receivable
from ..errors import ValidationError
from ..ledger import Ledger
from ..money import Money, check_currency
from ..store.base import Store
from ._book import (
    ALL_STATES,
    Movements,
    check_as_of,
    check_days,
    disputed_on,
    promise_open_on,
    store_of,
)
from ._results import Forecast, ForecastWeek


@dataclass
class _Book:
    """Every receivable, with its customers' payments, credit notes, promises and disputes."""

    receivables: list[Receivable]
    moves: Movements
    promises: list[PromiseToPay]
    disputes: dict[str, list[Dispute]]

    @classmethod
    def read(cls, store: Store) -> _Book:
        rs = store.find_due(date.min, date.max, ALL_STATES)  # every due date
        ids = sorted({r.customer_id for r in rs})
        promises = [p for ps in store.find_for_customers("promise", ids).values() for p in ps]
        disputes: dict[str, list[Dispute]] = defaultdict(list)
        for ds in store.find_for_customers("dispute", ids).values():
            for x in ds:
                disputes[x.receivable_id].append(x)
        return cls(rs, Movements.read(store, ids), promises, disputes)


def forecast(
    store_or_ledger: Store | Ledger, as_of: date, weeks: int = 13, *, currency: str
) -> Forecast:
    """Expected receipts in ``currency`` for ``weeks`` weeks (Mondays) from the week of
    ``as_of``, with the forecast made ``weeks`` weeks earlier against what arrived."""
    check_days(weeks, "weeks", most=520)
    check_as_of(as_of, 7 * weeks + 7)
    cur = _currency(currency)
    return _forecast(_Book.read(store_of(store_or_ledger)), as_of, cur, weeks)


def forecasts(
    store_or_ledger: Store | Ledger, as_of: date, weeks: int = 13
) -> tuple[Forecast, ...]:
    """:func:`forecast` for every currency of the receivables issued by ``as_of``."""
    check_days(weeks, "weeks", most=520)
    check_as_of(as_of, 7 * weeks + 7)
    book = _Book.read(store_of(store_or_ledger))
    currencies = sorted({r.currency for r in book.receivables if r.issue_date <= as_of})
    return tuple(_forecast(book, as_of, cur, weeks) for cur in currencies)


def _currency(code: str) -> str:
    try:
        return check_currency(code)
    except ValueError as exc:
        raise ValidationError(f"forecast currency: {exc}") from None


def _forecast(book: _Book, as_of: date, cur: str, weeks: int) -> Forecast:
    ahead, later, lateness = _project(book, as_of, cur, weeks)
    then = as_of - timedelta(7 * weeks)
    back, _later, _lateness = _project(book, then, cur, weeks)
    arrived: dict[date, Money] = {}
    start = _monday(then)
    end = start + timedelta(7 * weeks)
    for p in book.moves.payments:
        if p.amount.currency == cur and then < p.received_on < end:
            w = _monday(p.received_on)
            arrived[w] = arrived.get(w, Money.zero(cur)) + p.amount
    backtest = tuple(
        ForecastWeek(
            week_start=w.week_start,
            currency=cur,
            expected=w.expected,
            from_due=w.from_due,
            from_promises=w.from_promises,
            actual=arrived.get(w.week_start, Money.zero(cur)),
        )
        for w in back
    )
    return Forecast(
        as_of=as_of,
        currency=cur,
        weeks=ahead,
        backtest=backtest,
        later=later,
        lateness=tuple(sorted(lateness.items())),
    )


def _monday(d: date) -> date:
    return d - timedelta(d.weekday())


def lateness_days(receivables: Iterable[Receivable], on: date) -> tuple[dict[str, int], int]:
    """Each customer's observed lateness on ``on`` (whole days; see the module's note) and
    the pooled lateness for customers with no history."""
    per: dict[str, list[int]] = defaultdict(list)
    for r in receivables:
        if str(r.state) == "paid" and r.closed_on is not None and r.closed_on <= on:
            per[r.customer_id].append((r.closed_on - r.due_date).days)
    pooled = [d for ds in per.values() for d in ds]
    return {c: _mean_days(ds) for c, ds in per.items()}, _mean_days(pooled)


def _mean_days(days: list[int]) -> int:
    if not days:
        return 0
    mean = Decimal(sum(days)) / len(days)
    return int(mean.to_integral_value(rounding=ROUND_HALF_UP))


def _project(
    book: _Book, on: date, cur: str, weeks: int
) -> tuple[tuple[ForecastWeek, ...], Money, dict[str, int]]:
    """The weeks from the Monday of ``on``'s week as the book stood on ``on``, what is
    left for later, and the lateness used per customer."""
    zero = Money.zero(cur)
    start = _monday(on)
    end = start + timedelta(7 * weeks)
    per_customer, pooled = lateness_days(book.receivables, on)
    due = [zero] * weeks
    promised = [zero] * weeks
    later = zero
    expectable: dict[str, Money] = {}
    open_rs: dict[str, Receivable] = {}
    for r in book.receivables:
        if r.currency != cur or r.issue_date > on:
            continue
        bal = book.moves.open_on(r, on)
        if not bal.is_positive:
            continue
        held = disputed_on(r, book.disputes.get(r.id, ()), on, bal)
        later = later + held
        expectable[r.id] = bal - held
        open_rs[r.id] = r

    def place(d: date, amount: Money, into: list[Money]) -> None:
        nonlocal later
        d = max(d, on)
        if d >= end:
            later = later + amount
        else:
            i = (d - start).days // 7
            into[i] = into[i] + amount

    for p in sorted(book.promises, key=lambda p: (p.promised_date, p.id)):
        if p.amount.currency != cur or not promise_open_on(p, on):
            continue
        left = p.amount - p.received if p.status == PromiseStatus.OPEN else p.amount
        covered = sorted(
            (open_rs[i] for i in p.receivable_ids if i in open_rs),
            key=lambda r: (r.due_date, r.issue_date, r.id),
        )
        taken = zero
        for r in covered:
            if not left.is_positive:
                break
            take = left.min(expectable[r.id])
            expectable[r.id] = expectable[r.id] - take
            left = left - take
            taken = taken + take
        if taken.is_positive:
            place(p.promised_date, taken, promised)
    used: dict[str, int] = {}
    for rid, amount in expectable.items():
        if not amount.is_positive:
            continue
        r = open_rs[rid]
        days = per_customer.get(r.customer_id, pooled)
        used[r.customer_id] = days
        place(r.due_date + timedelta(days), amount, due)
    out = tuple(
        ForecastWeek(
            week_start=start + timedelta(7 * i),
            currency=cur,
            expected=due[i] + promised[i],
            from_due=due[i],
            from_promises=promised[i],
        )
        for i in range(weeks)
    )
    return out, later, used
