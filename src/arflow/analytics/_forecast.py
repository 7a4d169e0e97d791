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

A book is read as its receivables' summaries (``Store.receivable_summaries``: state, dates,
open amount now, closed on; no model built) and, as objects, only the few receivables whose
balance on the forecast's dates is not simply their open amount now (see :class:`_Lean`):
at 1M receivables the forecast reads no million objects. ``_Book`` and ``_project`` read
and project every receivable as an object: the reference the lean reading is tested against.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..domain import CreditNote, Dispute, Payment, PromiseStatus, PromiseToPay, Receivable
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
from ._source import source_of


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


@dataclass
class _Lean:
    """The book for forecasts on dates from ``since`` on, read lean.

    A receivable's open balance on a day ``d >= since`` is its open amount now unless a
    reduction is dated after ``d`` (cash from a payment received after ``d``, a credit note
    issued after it) or it was written off after ``d`` (``Movements.open_on``): so every
    receivable is read as its summary, and as an object only if a payment received or a
    credit note issued after ``since`` reduced it, it was written off after ``since``, or a
    promise or a dispute names it (``touched``). ``moves`` holds the payments and credit notes
    after ``since`` (the only reductions that can count on such a day)."""

    since: date
    #: (customer id, then a summary's fields but ``disputed``: see ``_Row``)
    summaries: list[_Row]
    touched: dict[str, Receivable]
    moves: Movements
    promises: list[PromiseToPay]
    disputes: dict[str, list[Dispute]]
    #: by currency: the touched receivables, and the others with something open now
    #: (customer, issue date, due date, open amount)
    touched_in: dict[str, list[Receivable]] = field(default_factory=dict)
    plain_in: dict[str, list[tuple[str, date, date, Decimal]]] = field(default_factory=dict)
    #: the paid receivables: (customer, paid on, due date)
    paid: list[tuple[str, date, date]] = field(default_factory=list)

    def __post_init__(self) -> None:
        touched, touched_in, plain_in, paid = (
            self.touched,
            self.touched_in,
            self.plain_in,
            self.paid,
        )
        for cid, oid, state, cur, issued, due, amount, closed in self.summaries:
            r = touched.get(oid)
            if r is not None:
                touched_in.setdefault(cur, []).append(r)
            elif amount > 0:
                got = plain_in.get(cur)
                if got is None:
                    got = plain_in[cur] = []
                got.append((cid, issued, due, amount))
            if state == "paid" and closed is not None:
                paid.append((cid, closed, due))

    @classmethod
    def read(cls, store: Store, since: date) -> _Lean:
        ids = sorted(source_of(store).customer_labels())
        summaries = _summaries(store, ids)
        promises = [p for ps in store.find_for_customers("promise", ids).values() for p in ps]
        disputes: dict[str, list[Dispute]] = defaultdict(list)
        for ds in store.find_for_customers("dispute", ids).values():
            for x in ds:
                disputes[x.receivable_id].append(x)
        pays: list[Payment] = _after(store, "payment", "received_on", since, ids)
        notes: list[CreditNote] = _after(store, "credit_note", "issued_on", since, ids)
        moves = Movements.of(pays, notes)
        wanted = set(moves.reductions) | set(disputes)
        wanted.update(i for p in promises for i in p.receivable_ids)
        wanted.update(
            oid
            for _c, oid, state, _cur, _i, _d, _a, closed in summaries
            if state == "written_off" and closed is not None and closed > since
        )
        touched: dict[str, Receivable] = store.get_many("receivable", wanted)
        return cls(since, summaries, touched, moves, promises, disputes)


#: A receivable as the forecast reads it: customer id, id, state, currency, issue date, due
#: date, open amount now, closed on (a ``ReceivableSummary`` without ``disputed``, as a
#: plain tuple: a million of them are made)
_Row = tuple[str, str, str, str, date, date, Decimal, date | None]


def _summaries(store: Store, ids: list[str]) -> list[_Row]:
    """The summaries of the receivables of customers ``ids``, with their customer. A SQL
    store gives them in one query of the columns its summary index holds (built here
    without ``summary_from_text``'s per-row calls: a million of them add seconds); another
    store, or a book with rows stored before summaries were kept, through
    ``Store.receivable_summaries``."""
    engine = getattr(store, "engine", None)
    if engine is not None:
        from ..store.sql import qualified

        wanted = set(ids)
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            table = qualified(engine, "ar_receivable")  # in arflow's schema, if it has one
            cursor.execute(f"SELECT customer_id, id, state, due_date, summary FROM {table}")
            rows = cursor.fetchall()
            cursor.close()
            raw.rollback()
        finally:
            raw.close()
        if all(row[4] is not None for row in rows):
            day = date.fromisoformat
            out: list[_Row] = []
            add = out.append
            for cid, oid, state, due, text in rows:
                if cid not in wanted:
                    continue
                cur, issued, amount, _disputed, closed = text.split("|")
                add(
                    (
                        cid,
                        oid,
                        state,
                        cur,
                        day(issued),
                        due if isinstance(due, date) else day(due),
                        Decimal(amount),
                        day(closed) if closed else None,
                    )
                )
            return out
    return [
        (cid, s.id, s.state, s.currency, s.issue_date, s.due_date, s.open_amount, s.closed_on)
        for cid, ss in store.receivable_summaries(ids).items()
        for s in ss
    ]


def _after(store: Store, kind: str, field: str, since: date, ids: list[str]) -> list[Any]:
    """The ``kind`` objects (payments, credit notes) of customers ``ids`` whose date
    ``field`` is after ``since``. A SQL store picks them by the date in their JSON (ISO
    dates compare as text) and builds only those; another store reads them all."""
    engine = getattr(store, "engine", None)
    if engine is None:
        return [
            x
            for xs in store.find_for_customers(kind, ids).values()
            for x in xs
            if getattr(x, field) > since
        ]
    import sqlalchemy as sa

    from ..store.sql import OBJECT_TABLES

    t = OBJECT_TABLES[kind]
    if engine.dialect.name == "sqlite":
        on: Any = sa.func.json_extract(t.c.data, f"$.{field}")
    else:
        on = sa.cast(t.c.data, sa.JSON)[field].as_string()
    wanted = set(ids)
    with engine.connect() as conn:
        found = [
            oid
            for oid, cid in conn.execute(
                sa.select(t.c.id, t.c.customer_id).where(on > since.isoformat())
            )
            if cid in wanted
        ]
    got = store.get_many(kind, found)
    return [got[i] for i in sorted(got)]


def forecast(
    store_or_ledger: Store | Ledger, as_of: date, weeks: int = 13, *, currency: str
) -> Forecast:
    """Expected receipts in ``currency`` for ``weeks`` weeks (Mondays) from the week of
    ``as_of``, with the forecast made ``weeks`` weeks earlier against what arrived."""
    check_days(weeks, "weeks", most=520)
    check_as_of(as_of, 7 * weeks + 7)
    cur = _currency(currency)
    with _collector_paused():
        book = _Lean.read(store_of(store_or_ledger), as_of - timedelta(7 * weeks))
        return _forecast(book, as_of, cur, weeks)


def forecasts(
    store_or_ledger: Store | Ledger, as_of: date, weeks: int = 13
) -> tuple[Forecast, ...]:
    """:func:`forecast` for every currency of the receivables issued by ``as_of``."""
    check_days(weeks, "weeks", most=520)
    check_as_of(as_of, 7 * weeks + 7)
    with _collector_paused():
        book = _Lean.read(store_of(store_or_ledger), as_of - timedelta(7 * weeks))
        currencies = sorted({row[3] for row in book.summaries if row[4] <= as_of})
        return tuple(_forecast(book, as_of, cur, weeks) for cur in currencies)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a forecast: a big book's million summaries are
    objects that live until the forecast is made, and the collector's full passes over
    them as they (and the weeks' items) are made cost more than making them. Nothing the
    forecast makes holds a cycle; the collector is back on (if it was) after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _forecasts_reference(store: Store, as_of: date, weeks: int = 13) -> tuple[Forecast, ...]:
    """:func:`forecasts` from every receivable as an object (``_Book``): the reference."""
    book = _Book.read(store)
    currencies = sorted({r.currency for r in book.receivables if r.issue_date <= as_of})
    return tuple(_forecast(book, as_of, cur, weeks) for cur in currencies)


def _currency(code: str) -> str:
    try:
        return check_currency(code)
    except ValueError as exc:
        raise ValidationError(f"forecast currency: {exc}") from None


def _forecast(book: _Book | _Lean, as_of: date, cur: str, weeks: int) -> Forecast:
    then = as_of - timedelta(7 * weeks)
    if isinstance(book, _Book):
        ahead, later, lateness = _project(book, as_of, cur, weeks)
        back, _later, _lateness = _project(book, then, cur, weeks)
    else:
        ahead, later, lateness = _project_lean(book, as_of, cur, weeks)
        back, _later, _lateness = _project_lean(book, then, cur, weeks)
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
    per_customer, pooled = lateness_days(book.receivables, on)
    items = [
        (r, book.moves.open_on(r, on))
        for r in book.receivables
        if r.currency == cur and r.issue_date <= on
    ]
    return _place(on, cur, weeks, items, (), book, per_customer, pooled)


def _project_lean(
    book: _Lean, on: date, cur: str, weeks: int
) -> tuple[tuple[ForecastWeek, ...], Money, dict[str, int]]:
    """``_project`` of the lean reading: the same weeks, from the summaries."""
    if on < book.since:
        raise ValueError(f"a forecast on {on} from a book read for dates from {book.since}")
    per_customer, pooled = _lateness_of_summaries(book, on)
    items = [
        (r, book.moves.open_on(r, on)) for r in book.touched_in.get(cur, ()) if r.issue_date <= on
    ]
    plain = (
        (cid, due, amount)
        for cid, issued, due, amount in book.plain_in.get(cur, ())
        if issued <= on
    )
    return _place(on, cur, weeks, items, plain, book, per_customer, pooled)


def _lateness_of_summaries(book: _Lean, on: date) -> tuple[dict[str, int], int]:
    """``lateness_days`` from the summaries."""
    per: dict[str, list[int]] = defaultdict(list)
    for cid, closed, due in book.paid:
        if closed <= on:
            per[cid].append((closed - due).days)
    pooled = [d for ds in per.values() for d in ds]
    return {c: _mean_days(ds) for c, ds in per.items()}, _mean_days(pooled)


def _place(
    on: date,
    cur: str,
    weeks: int,
    items: list[tuple[Receivable, Money]],
    plain: Iterable[tuple[str, date, Decimal]],
    book: _Book | _Lean,
    per_customer: dict[str, int],
    pooled: int,
) -> tuple[tuple[ForecastWeek, ...], Money, dict[str, int]]:
    """Place ``items`` (receivables and their balances on ``on``: disputes and promises
    apply) and ``plain`` ones (customer, due date, balance: neither applies) in the weeks."""
    zero = Money.zero(cur)
    start = _monday(on)
    end = start + timedelta(7 * weeks)
    due = [zero] * weeks
    promised = [zero] * weeks
    later = zero
    expectable: dict[str, Money] = {}
    open_rs: dict[str, Receivable] = {}
    for r, bal in items:
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
    # the plain ones as exact sums (ordinals: no date built per receivable)
    on_n, start_n, end_n = on.toordinal(), start.toordinal(), end.toordinal()
    sums = [Decimal(0)] * weeks
    beyond = Decimal(0)
    for cid, due_date, open_amount in plain:
        days = per_customer.get(cid, pooled)
        used[cid] = days
        at = max(due_date.toordinal() + days, on_n)
        if at >= end_n:
            beyond += open_amount
        else:
            sums[(at - start_n) // 7] += open_amount
    if beyond:
        later = later + Money(amount=beyond, currency=cur)
    for i, total in enumerate(sums):
        if total:
            due[i] = due[i] + Money(amount=total, currency=cur)
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
