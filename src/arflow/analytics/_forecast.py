"""The cash forecast: expected receipts per week, and last quarter's forecast against what
arrived (``docs/analytics_views.md``, "The cash forecast").

Everything is read from the receivable movement journal (``MOVEMENT_COLUMNS``), so the
forecast dates money exactly as the other figures do: a receivable's balance on day ``d``
is the sum of its movements dated up to ``d`` (cash on its business date: received on,
applied on for ``CashApplied``, and a reversal adds the cash back on the day it was
reversed). A customer's lateness on ``d`` is the mean, rounded to whole days (halves away
from zero), of ``closed on - due`` over the journal's cash closings dated up to ``d`` (a
``paid`` movement that brought a balance to zero; any currency); a customer with none gets
the pooled mean of every customer's closings, 0 days when there is none.

An open promise to pay is expected on its promised date for what is left of it, and that
amount is taken off the receivables it covers (oldest due first), so no money is counted
twice. What is under dispute is not expected within the weeks (``Forecast.later``), nor is
what is expected after the last week; anything expected before the forecast's date (a
customer late beyond its habit, a promise past its date) is expected in the first week.
Per currency, never summed across currencies.

A SQL store answers with a few set-based queries (:class:`_Sql`): the balances summed per
currency, customer and week in the database (the customers' lateness joined in the same
statement); only the receivables a promise or a dispute names are read one by one.
:class:`_Reference` computes the same from ``Store.movements()`` in Python, one receivable
at a time: the reference the SQL is tested against, and what the memory store uses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from ..domain import Dispute, PromiseStatus, PromiseToPay, Receivable
from ..errors import ValidationError
from ..ledger import Ledger
from ..money import Money, check_currency, minor_unit
from ..store.base import Store
from ._book import check_as_of, check_days, promise_open_on, store_of
from ._results import Forecast, ForecastWeek
from ._source import source_of


#: A receivable as the forecast places it one by one: id, customer, currency, issue date,
#: due date (its balance beside it)
class _Item(NamedTuple):
    id: str
    customer_id: str
    currency: str
    issue_date: date
    due_date: date


#: The lateness samples by customer: (sum of days, count)
_Samples = dict[str, tuple[int, int]]


@dataclass
class _Basis:
    """What the weeks of one currency on one date are made of: the customers' lateness,
    the receivables placed one by one (``items``: those a promise or a dispute names, or
    every one in the reference) with their balances, and the rest as sums in minor units
    per customer and week index (``weeks``: later)."""

    per_customer: dict[str, int]
    pooled: int
    items: list[tuple[_Item, Money]]
    plain: dict[tuple[str, int], int] = field(default_factory=dict)


def _lateness(samples: _Samples) -> tuple[dict[str, int], int]:
    per = {c: _rounded(s, n) for c, (s, n) in samples.items() if n}
    total = sum(s for s, _n in samples.values())
    count = sum(n for _s, n in samples.values())
    return per, _rounded(total, count)


def _rounded(total: int, count: int) -> int:
    """``total / count`` to whole days, halves away from zero (0 without samples)."""
    if not count:
        return 0
    mean = Decimal(total) / count
    return int(mean.to_integral_value(rounding=ROUND_HALF_UP))


def _week_index(due: date, days: int, on: date, weeks: int) -> int:
    """The week (0 ..) of ``due + days`` from the Monday of ``on``'s week, a date before
    ``on`` in the first; ``weeks`` for one after the last."""
    start = _monday(on)
    x = (due - start).days + days
    if x < (on - start).days:
        return 0
    return weeks if x >= 7 * weeks else x // 7


class _Reference:
    """The forecast's inputs computed in Python from the journal (``Store.movements()``)
    one receivable at a time: the reference the SQL is tested against, and what a store
    without SQL uses."""

    def __init__(self, store: Store, as_of: date, weeks: int) -> None:
        self.as_of, self.nweeks = as_of, weeks
        self.moves = list(store.movements())
        ids = sorted({m[1] for m in self.moves})
        self.promises, self.disputes = _promises_disputes(store, ids)

    def currencies(self) -> list[str]:
        return sorted({m[2] for m in self.moves if m[3] == "invoiced" and m[4] <= self.as_of})

    def basis(self, on: date, cur: str) -> _Basis:
        samples: dict[str, tuple[int, int]] = {}
        balances: dict[str, int] = {}
        item: dict[str, _Item] = {}
        for rid, cid, mcur, kind, day, amount, delta, issued, due, *_rest in self.moves:
            if day > on:
                continue
            if kind == "paid" and delta == -1:
                s, n = samples.get(cid, (0, 0))
                samples[cid] = (s + (day - due).days, n + 1)
            if mcur == cur:
                balances[rid] = balances.get(rid, 0) + amount
                item[rid] = _Item(rid, cid, mcur, issued, due)
        per, pooled = _lateness(samples)
        items = [(item[r], _money(b, cur)) for r, b in sorted(balances.items()) if b > 0]
        return _Basis(per, pooled, items)

    def arrived(self, cur: str, after: date, end: date) -> dict[date, int]:
        got: dict[date, int] = {}
        for m in self.moves:
            if m[2] == cur and m[3] in ("paid", "reversed") and after < m[4] < end:
                w = _monday(m[4])
                got[w] = got.get(w, 0) - m[5]
        return got


class _Sql:
    """The forecast's inputs as a few set-based queries of the journal (SQLAlchemy Core):
    the lateness samples per customer for both dates in one ``GROUP BY``; per date, the
    balances summed per currency, customer and week index (each customer's lateness joined
    in, computed in the same statement); the cash per day of the backtest's weeks; and,
    one by one, only the receivables a promise or a dispute names."""

    def __init__(self, store: Store, engine: Any, as_of: date, weeks: int) -> None:
        import sqlalchemy as sa

        from ..store.sql import MOVEMENTS

        self.engine, self.as_of, self.nweeks = engine, as_of, weeks
        self.then = as_of - timedelta(7 * weeks)
        m = MOVEMENTS.c
        ids = sorted(source_of(store).customer_labels())
        self.promises, self.disputes = _promises_disputes(store, ids)
        named = {i: p.customer_id for p in self.promises for i in p.receivable_ids}
        named.update((i, xs[0].customer_id) for i, xs in self.disputes.items() if xs)
        self._sqlite = engine.dialect.name == "sqlite"
        closing = (m.kind == "paid") & (m.open_delta == -1)
        late = self._days(m.on_date, m.due_date)
        cols = []
        for d in (as_of, self.then):
            when = m.on_date <= d
            cols += [
                sa.func.sum(sa.case((when, late), else_=0)),
                sa.func.sum(sa.case((when, 1), else_=0)),
            ]
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(m.customer_id, *cols)
                .where(closing, m.on_date <= as_of)
                .group_by(m.customer_id)
            ).all()
            self.samples: dict[date, _Samples] = {
                as_of: {r[0]: (int(r[1]), int(r[2])) for r in rows if r[2]},
                self.then: {r[0]: (int(r[3]), int(r[4])) for r in rows if r[4]},
            }
            self.currency_list = sorted(
                c
                for (c,) in conn.execute(
                    sa.select(m.currency).where(m.kind == "invoiced", m.on_date <= as_of).distinct()
                )
            )
            self.named = self._named(conn, named)

    def _days(self, a: Any, b: Any) -> Any:
        """Days from ``b`` to ``a`` (dates) as an integer SQL expression."""
        import sqlalchemy as sa

        if self._sqlite:
            return sa.cast(sa.func.julianday(a) - sa.func.julianday(b), sa.Integer)
        return sa.cast(a - b, sa.Integer)

    def _named(self, conn: Any, named: dict[str, str]) -> list[tuple[_Item, int, int]]:
        """The receivables ``named`` (id to customer) with their balances on ``as_of`` and
        on the backtest's date (minor units), read by their customers (the journal's
        customer index)."""
        import sqlalchemy as sa

        from ..store.sql import MOVEMENTS

        m = MOVEMENTS.c
        out: list[tuple[_Item, int, int]] = []
        ids = sorted(named)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            customers = sorted({named[x] for x in chunk})
            stmt = (
                sa.select(
                    m.receivable_id,
                    m.customer_id,
                    m.currency,
                    m.issue_date,
                    m.due_date,
                    sa.func.sum(sa.case((m.on_date <= self.as_of, m.amount), else_=0)),
                    sa.func.sum(sa.case((m.on_date <= self.then, m.amount), else_=0)),
                )
                .where(m.customer_id.in_(customers), m.receivable_id.in_(chunk))
                .group_by(m.receivable_id, m.customer_id, m.currency, m.issue_date, m.due_date)
            )
            for rid, cid, cur, issued, due, now, then in conn.execute(stmt):
                out.append((_Item(rid, cid, cur, issued, due), int(now), int(then)))
        return out

    def currencies(self) -> list[str]:
        return self.currency_list

    def basis(self, on: date, cur: str) -> _Basis:
        import sqlalchemy as sa

        from ..store.sql import MOVEMENTS

        per, pooled = _lateness(self.samples[on])
        m = MOVEMENTS.c
        weeks = self.nweeks
        start = _monday(on)
        # each customer's lateness, rounded as ``_rounded`` does (integers only)
        s, n = sa.func.sum(self._days(m.on_date, m.due_date)), sa.func.count()
        lat = (
            sa.select(
                m.customer_id.label("cid"),
                sa.case((s >= 0, (2 * s + n) // (2 * n)), else_=-((-2 * s + n) // (2 * n))).label(
                    "days"
                ),
            )
            .where(m.kind == "paid", m.open_delta == -1, m.on_date <= on)
            .group_by(m.customer_id)
            .subquery("lat")
        )
        start_d = (
            sa.cast(sa.literal(start.isoformat()), sa.Date)
            if not self._sqlite
            else sa.literal(start.isoformat())
        )
        x = self._days(m.due_date, start_d) + sa.func.coalesce(lat.c.days, pooled)
        week = sa.case((x < (on - start).days, 0), (x >= 7 * weeks, weeks), else_=x // 7).label("w")
        in_cur = m.currency == cur
        if self._sqlite:
            # read the customer index, which holds every column read (a condition on the
            # currency alone makes SQLite take the due index, which lacks the customer:
            # each of its million rows would be looked up in the table)
            in_cur = m.currency.concat("") == cur
        stmt = (
            sa.select(m.customer_id, week, sa.func.sum(m.amount))
            .select_from(MOVEMENTS.outerjoin(lat, lat.c.cid == m.customer_id))
            .where(in_cur, m.on_date <= on)
            .group_by(m.customer_id, week)
        )
        plain: dict[tuple[str, int], int] = {}
        with self.engine.connect() as conn:
            for cid, w, amount in conn.execute(stmt):
                if amount:
                    plain[(cid, int(w))] = int(amount)
        items: list[tuple[_Item, Money]] = []
        for it, now, then in self.named:
            bal = now if on == self.as_of else then
            if it.currency != cur or not bal:
                continue
            days = per.get(it.customer_id, pooled)
            key = (it.customer_id, _week_index(it.due_date, days, on, weeks))
            plain[key] = plain.get(key, 0) - bal
            if not plain[key]:
                del plain[key]
            if bal > 0:
                items.append((it, _money(bal, cur)))
        return _Basis(per, pooled, items, plain)

    def arrived(self, cur: str, after: date, end: date) -> dict[date, int]:
        import sqlalchemy as sa

        from ..store.sql import MOVEMENTS

        m = MOVEMENTS.c
        stmt = (
            sa.select(m.on_date, sa.func.sum(m.amount))
            .where(
                m.kind.in_(("paid", "reversed")),
                m.on_date > after,
                m.on_date < end,
                m.currency == cur,
            )
            .group_by(m.on_date)
        )
        got: dict[date, int] = {}
        with self.engine.connect() as conn:
            for day, amount in conn.execute(stmt):
                if isinstance(day, str):
                    day = date.fromisoformat(day)
                w = _monday(day)
                got[w] = got.get(w, 0) - int(amount)
        return got


def _promises_disputes(
    store: Store, ids: list[str]
) -> tuple[list[PromiseToPay], dict[str, list[Dispute]]]:
    promises = [p for ps in store.find_for_customers("promise", ids).values() for p in ps]
    disputes: dict[str, list[Dispute]] = defaultdict(list)
    for ds in store.find_for_customers("dispute", ids).values():
        for x in ds:
            disputes[x.receivable_id].append(x)
    return promises, disputes


def _money(units: int, cur: str) -> Money:
    return Money(amount=Decimal(units).scaleb(-minor_unit(cur)), currency=cur)


def _reader(store: Store, as_of: date, weeks: int) -> _Sql | _Reference:
    engine = getattr(store, "engine", None)
    if engine is not None:
        return _Sql(store, engine, as_of, weeks)
    return _Reference(store, as_of, weeks)


def forecast(
    store_or_ledger: Store | Ledger, as_of: date, weeks: int = 13, *, currency: str
) -> Forecast:
    """Expected receipts in ``currency`` for ``weeks`` weeks (Mondays) from the week of
    ``as_of``, with the forecast made ``weeks`` weeks earlier against what arrived."""
    check_days(weeks, "weeks", most=520)
    check_as_of(as_of, 7 * weeks + 7)
    cur = _currency(currency)
    return _forecast(_reader(store_of(store_or_ledger), as_of, weeks), as_of, cur, weeks)


def forecasts(
    store_or_ledger: Store | Ledger, as_of: date, weeks: int = 13
) -> tuple[Forecast, ...]:
    """:func:`forecast` for every currency of the receivables issued by ``as_of``."""
    check_days(weeks, "weeks", most=520)
    check_as_of(as_of, 7 * weeks + 7)
    book = _reader(store_of(store_or_ledger), as_of, weeks)
    return tuple(_forecast(book, as_of, cur, weeks) for cur in book.currencies())


def _forecasts_reference(store: Store, as_of: date, weeks: int = 13) -> tuple[Forecast, ...]:
    """:func:`forecasts` computed in Python from the journal, one receivable at a time:
    the reference."""
    book = _Reference(store, as_of, weeks)
    return tuple(_forecast(book, as_of, cur, weeks) for cur in book.currencies())


def _currency(code: str) -> str:
    try:
        return check_currency(code)
    except ValueError as exc:
        raise ValidationError(f"forecast currency: {exc}") from None


def _forecast(book: _Sql | _Reference, as_of: date, cur: str, weeks: int) -> Forecast:
    then = as_of - timedelta(7 * weeks)
    ahead, later, lateness = _place(as_of, cur, weeks, book.basis(as_of, cur), book)
    back, _later, _lateness = _place(then, cur, weeks, book.basis(then, cur), book)
    start = _monday(then)
    arrived = book.arrived(cur, then, start + timedelta(7 * weeks))
    backtest = tuple(
        ForecastWeek(
            week_start=w.week_start,
            currency=cur,
            expected=w.expected,
            from_due=w.from_due,
            from_promises=w.from_promises,
            actual=_money(arrived.get(w.week_start, 0), cur),
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
    """Each customer's observed lateness on ``on`` from receivables as objects: the mean
    of ``closed on - due`` over those paid now and closed by ``on`` (whole days, halves
    away from zero), and the pooled lateness for customers with no history. The forecast
    takes its samples from the journal (``docs/analytics_views.md``): the same for a book
    where no payment was reversed."""
    per: dict[str, list[int]] = defaultdict(list)
    for r in receivables:
        if str(r.state) == "paid" and r.closed_on is not None and r.closed_on <= on:
            per[r.customer_id].append((r.closed_on - r.due_date).days)
    samples = {c: (sum(ds), len(ds)) for c, ds in per.items()}
    return _lateness(samples)


def _held(it: _Item, disputes: Iterable[Dispute], d: date, balance: Money) -> Money:
    """What of ``balance`` was under dispute on ``d`` (``disputed_on`` of an item)."""
    held = Money.zero(it.currency)
    for x in disputes:
        if x.receivable_id != it.id or x.opened_on > d or x.amount.currency != it.currency:
            continue
        if x.status == "open" or (x.resolved_on is not None and x.resolved_on > d):
            held = held + x.amount
    return held.min(balance)


def _place(
    on: date, cur: str, weeks: int, basis: _Basis, book: _Sql | _Reference
) -> tuple[tuple[ForecastWeek, ...], Money, dict[str, int]]:
    """Place the basis's ``items`` (disputes and promises apply) and ``plain`` sums in
    the weeks from the Monday of ``on``'s week: the weeks, what is left for later, and
    the lateness used per customer."""
    zero = Money.zero(cur)
    start = _monday(on)
    end = start + timedelta(7 * weeks)
    due = [zero] * weeks
    promised = [zero] * weeks
    later = zero
    expectable: dict[str, Money] = {}
    open_rs: dict[str, _Item] = {}
    per_customer, pooled = basis.per_customer, basis.pooled
    for r, bal in basis.items:
        if not bal.is_positive:
            continue
        held = _held(r, book.disputes.get(r.id, ()), on, bal)
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
    sums = [0] * (weeks + 1)
    for (cid, w), units in basis.plain.items():
        if units > 0:
            used[cid] = per_customer.get(cid, pooled)
        sums[w] += units
    if sums[weeks]:
        later = later + _money(sums[weeks], cur)
    for i in range(weeks):
        if sums[i]:
            due[i] = due[i] + _money(sums[i], cur)
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
