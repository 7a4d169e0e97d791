"""The cash forecast and its backtest on the book of ``docs/analytics_views.md`` (every
number computed by hand there), on every store; and, for generated books, that the
forecast accounts for every open balance exactly once, and that the book as it stood on a
past date is what a ledger fed only the events up to that date holds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from arflow import Ledger, MemoryStore, Money, Store
from arflow.analytics import Forecast, forecast, forecasts, lateness_days
from arflow.analytics._book import Movements
from arflow.analytics._forecast import _forecasts_reference
from arflow.errors import DateOutOfRange, ValidationError
from arflow.strategies import event_sequences
from tests.analytics_book import AS_OF, build, cny, usd
from tests.test_analytics_store import _book


def weeks_of(f: Forecast) -> list[tuple[date, Money, Money, Money]]:
    return [(w.week_start, w.expected, w.from_due, w.from_promises) for w in f.weeks]


def test_forecast_by_hand(store: Store) -> None:
    build(store)
    f = forecast(store, AS_OF, currency="CNY")
    assert (f.as_of, f.currency, len(f.weeks)) == (AS_OF, "CNY", 13)
    assert f.lateness == (("C1", 7), ("C2", 4))
    got = weeks_of(f)
    assert [w for w, *_ in got] == [AS_OF + timedelta(7 * i) for i in range(13)]
    z = cny(0)
    assert got[:4] == [
        # B0 and B1 (expected before today: now) 1,100 + P1 300
        (date(2026, 3, 16), cny(1400), cny(1100), cny(300)),
        (date(2026, 3, 23), cny(900), cny(900), z),  # A1 900 on 20 Mar + 7
        (date(2026, 3, 30), cny(250), cny(250), z),  # B3 400 - 150 disputed, 30 Mar + 4
        (date(2026, 4, 6), cny(200), cny(200), z),  # A2 500 - 300 promised, 1 Apr + 7
    ]
    assert all(e == z for _w, e, _d, _p in got[4:])
    assert f.later == cny(2150)  # B2 2,000 (5 Jul) + B3's 150 under dispute
    total = sum((w.expected.amount for w in f.weeks), Decimal(0)) + f.later.amount
    assert total == Decimal(4900)  # every open CNY balance: 900 + 500 + 300 + 800 + 2,000 + 400


def test_backtest_by_hand(store: Store) -> None:
    build(store)
    f = forecast(Ledger(store), AS_OF, currency="CNY")
    back = f.backtest
    assert [w.week_start for w in back] == [
        date(2025, 12, 15) + timedelta(7 * i) for i in range(13)
    ]
    expected = {w.week_start: w.expected for w in back if w.expected.is_positive}
    # on 15 Dec 2025 only H1 (600, due 10 Jan) and B0 (300, due 31 Dec) were open, and
    # nothing had been paid yet: no lateness observed, 0 days
    assert expected == {date(2025, 12, 29): cny(300), date(2026, 1, 5): cny(600)}
    actual = {w.week_start: w.actual for w in back if w.actual and w.actual.is_positive}
    assert actual == {date(2026, 1, 19): cny(1000), date(2026, 3, 2): cny(100)}
    assert all(w.actual is not None for w in back)


def test_forecast_in_dollars(store: Store) -> None:
    build(store)
    f = forecast(store, AS_OF, currency="USD", weeks=2)
    assert weeks_of(f) == [
        (date(2026, 3, 16), usd(0), usd(0), usd(0)),
        (date(2026, 3, 23), usd(1000), usd(1000), usd(0)),  # U1 25 Mar - 2 days
    ]
    assert f.later == usd(0) and f.lateness == (("C3", -2),)
    assert [(w.week_start, w.actual) for w in f.backtest] == [
        (date(2026, 3, 2), usd(0)),
        (date(2026, 3, 9), usd(0)),
    ]
    assert [x.currency for x in forecasts(store, AS_OF)] == ["CNY", "USD"]


def test_lateness_estimator(store: Store) -> None:
    build(store)
    rs = store.find_due(date(1900, 1, 1), date(9899, 12, 31), ["paid", "open"])
    assert lateness_days(rs, AS_OF) == ({"C1": 7, "C3": -2}, 4)
    assert lateness_days(rs, date(2026, 1, 21)) == ({"C1": 10}, 10)
    assert lateness_days(rs, date(2026, 1, 19)) == ({}, 0)


def test_forecast_refuses_bad_input(store: Store) -> None:
    build(store)
    with pytest.raises(DateOutOfRange):
        forecast(store, date(1900, 2, 1), currency="CNY")  # its backtest would start in 1899
    for weeks in (0, -1, True, 521):
        with pytest.raises(ValidationError, match="weeks"):
            forecast(store, AS_OF, currency="CNY", weeks=weeks)
        with pytest.raises(ValidationError, match="weeks"):
            forecasts(store, AS_OF, weeks=weeks)
    with pytest.raises(ValidationError, match="'ABC' is not an ISO 4217 currency code"):
        forecast(store, AS_OF, currency="ABC")
    # a real currency the book does not hold: an explicitly empty forecast
    f = forecast(store, AS_OF, currency="EUR", weeks=1)
    assert f.weeks[0].expected == Money.zero("EUR") and f.later == Money.zero("EUR")


START, END = date(2026, 1, 1), date(2026, 4, 30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=event_sequences(start=START, end=END, n_events=(5, 40), opening=(0, 4)),
    offset=st.integers(0, (END - START).days),
    weeks=st.integers(1, 14),
)
def test_every_open_balance_once(events: list, offset: int, weeks: int) -> None:  # type: ignore[type-arg]
    full = Ledger(MemoryStore())
    for e in events:
        full.apply(e)
    store = full.store
    # on the last day the forecast accounts for each open balance exactly once
    for f in forecasts(store, END, weeks=weeks):
        _accounts_for(f, [r for r in store.all("receivable") if r.currency == f.currency])
    # on a day in between, the book as it stood then is what a ledger fed only the events
    # up to that day holds, and the forecast from then accounts for that
    day = START + timedelta(offset)
    then = Ledger(MemoryStore())
    for e in events:
        if e.occurred_at.date() <= day:
            then.apply(e)
    moves = Movements.read(store, {r.customer_id for r in store.all("receivable")})
    past = {r.id: r for r in then.store.all("receivable")}
    for r in store.all("receivable"):
        was = past.get(r.id)
        assert moves.open_on(r, day) == (was.open_balance if was else Money.zero(r.currency))
    for f in forecasts(store, day, weeks=weeks):
        _accounts_for(f, [r for r in past.values() if r.currency == f.currency])


def _accounts_for(f: Forecast, receivables: list) -> None:  # type: ignore[type-arg]
    assert f.later is not None
    parts: dict[str, Decimal] = defaultdict(Decimal)
    for w in f.weeks:
        assert w.currency == f.currency
        assert w.expected == w.from_due + w.from_promises
        assert not (w.from_due.amount < 0 or w.from_promises.amount < 0)
        parts["weeks"] += w.expected.amount
    assert f.later.amount >= 0
    open_total = sum((r.open_balance.amount for r in receivables), Decimal(0))
    assert parts["weeks"] + f.later.amount == open_total


#: generated books per backend: PostgreSQL makes a schema per book, and a few books show
#: that its SQL agrees; SQLite, the cheaper SQL backend, searches wider
GENERATED_BOOKS = {"sqlite": 25, "postgres": 10}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_sql_forecast_is_the_reference_on_generated_books(
    backend: str, store_factory: Callable[[], Store]
) -> None:
    """The forecast in SQL (set-based over the journal) is the Python reference (the
    journal, one receivable at a time), on the memory store and on SQL, on days before,
    within and after the book's events (and after a payment is reversed); see also
    ``tests/test_analytics_forecast_sql.py``."""

    @settings(
        max_examples=GENERATED_BOOKS[backend],
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    @given(
        events=event_sequences(
            start=START, end=END, n_customers=(1, 3), n_events=(5, 40), opening=(0, 4)
        ),
        reverse=st.booleans(),
        offset=st.integers(0, (END - START).days + 40),
        weeks=st.integers(1, 14),
    )
    def check(events: list, reverse: bool, offset: int, weeks: int) -> None:  # type: ignore[type-arg]
        _sql_is_reference(store_factory(), events, reverse, offset, weeks)

    check()


def _sql_is_reference(
    sql: Store,
    events: list,  # type: ignore[type-arg]
    reverse: bool,
    offset: int,
    weeks: int,
) -> None:
    memory = MemoryStore()
    _book(sql, events, reverse)
    _book(memory, events, reverse)
    day = START + timedelta(offset)
    expected = _forecasts_reference(memory, day, weeks)
    assert _forecasts_reference(sql, day, weeks) == expected
    assert forecasts(memory, day, weeks) == expected
    assert forecasts(sql, day, weeks) == expected
    for f in expected:
        assert forecast(sql, day, weeks, currency=f.currency) == f
