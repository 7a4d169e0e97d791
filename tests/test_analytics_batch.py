"""Sums asked together: ``SqlSource.sums_many`` (queries that differ only in their period
asked as one GROUP BY over date intervals) gives what ``PySource.sums`` gives each query
alone, and ``build_report``'s prefetched numbers are those of the Python reference
(generated books, SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from arflow import AllocationRequest, Analytics, Ledger, PaymentReceived, Store
from arflow.analytics import build_report
from arflow.analytics._build import _numbers
from arflow.analytics._source import PySource, Query, source_of
from arflow.strategies import event_sequences

SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
DAYS = [date(2025, 12, 31) + timedelta(days=n) for n in range(0, 240, 9)]
KINDS = (None, ("invoiced",), ("paid", "reversed"), ("paid",), ("written_off",))
BYS = ((), ("customer",), ("salesperson",), ("team", "product_line"), ("grade",))
SPLITS = (None, "due", "on", "late", "band")


@st.composite
def periods(draw: st.DrawFn) -> tuple[date | None, date]:
    to = draw(st.sampled_from(DAYS))
    start = draw(st.none() | st.sampled_from([d for d in DAYS if d <= to]))
    return start, to


@st.composite
def query_lists(draw: st.DrawFn) -> list[Query]:
    """A few families of queries (same by, kinds, split, where), each over several periods."""
    out = []
    for _family in range(draw(st.integers(1, 3))):
        by = draw(st.sampled_from(BYS))
        kinds = draw(st.sampled_from(KINDS))
        split = draw(st.sampled_from(SPLITS))
        where = draw(st.sampled_from(((), (("currency", ("EUR",)),), (("customer", (None,)),))))
        for on_from, on_to in draw(st.lists(periods(), min_size=1, max_size=5)):
            out.append(
                Query(
                    on_to=on_to,
                    on_from=on_from,
                    kinds=kinds,
                    by=by,
                    where=where,
                    split=split,
                    bands=(30, 60, 90) if split == "band" else (),
                )
            )
    return out


def _book(store: Store, events: list) -> None:  # type: ignore[type-arg]
    Ledger(store).apply_all(events)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    events=event_sequences(n_customers=(1, 3), n_events=(5, 40), opening=(0, 4)),
    data=st.data(),
)
def test_sums_asked_together_equal_each_alone(
    store_factory: Callable[[], Store],
    events: list,  # type: ignore[type-arg]
    data: st.DataObject,
) -> None:
    store = store_factory()
    _book(store, events)
    sql, ref = source_of(store), PySource(store)
    for _round in range(3):
        qs = data.draw(query_lists())
        assert sql.sums_many(qs) == [ref.sums(q) for q in qs]
        assert [sql.sums(q) for q in qs] == [ref.sums(q) for q in qs]


def _numbers_of(a: Analytics, as_of: date) -> object:
    first = a.source.first_day()
    return _numbers(a, as_of, first, 12)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    events=event_sequences(n_customers=(1, 3), n_events=(5, 40), opening=(0, 4)),
    as_of=st.sampled_from(DAYS),
)
def test_the_reports_numbers_equal_the_reference(
    store_factory: Callable[[], Store],
    events: list,  # type: ignore[type-arg]
    as_of: date,
) -> None:
    store = store_factory()
    _book(store, events)
    report = build_report(store, as_of, max_contracts=0)
    expected = _numbers_of(Analytics(store, reference=True), as_of)
    assert (
        report.figures,
        report.trends,
        report.rankings,
        report.headline,
        report.aging,
    ) == expected


@pytest.mark.parametrize("backend", SQL_BACKENDS)
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    events=event_sequences(n_customers=(1, 3), n_events=(5, 40), opening=(0, 4)),
    later=st.integers(1, 60),
)
def test_a_past_months_trend_point_does_not_change_with_later_data(
    store_factory: Callable[[], Store],
    events: list,  # type: ignore[type-arg]
    later: int,
) -> None:
    """Cash received after a month end leaves that month's trend points as they were."""
    store = store_factory()
    _book(store, events)
    as_of = date(2026, 8, 31)
    before = build_report(store, as_of, max_contracts=0).trends
    open_ = [r for r in store.all("receivable") if r.open_balance.is_positive]
    if not open_:
        return
    r = open_[0]
    on = as_of + timedelta(days=later)
    Ledger(store).apply(
        PaymentReceived(
            event_id="late-cash",
            occurred_at=datetime(on.year, on.month, on.day, tzinfo=UTC),
            actor="t",
            payment_id="LATE-CASH",
            customer_id=r.customer_id,
            amount=r.open_balance,
            received_on=on,
            allocations=(AllocationRequest(receivable_id=r.id, amount=r.open_balance),),
        )
    )
    after = build_report(store, on, max_contracts=0).trends
    old = {(t.metric, t.currency, t.group, p.month_end): p for t in before for p in t.points}
    new = {(t.metric, t.currency, t.group, p.month_end): p for t in after for p in t.points}
    for key, point in new.items():
        if key[3] <= as_of and key in old:
            assert point == old[key]
