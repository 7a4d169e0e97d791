"""Grouping figures by tag: a customer counts in each of its tags' groups (the groups
overlap), one without tags in the ``None`` group; SQL (SQLite, PostgreSQL) equals the Python
reference on generated books whose customers have 0..3 tags, changed by CustomerUpdated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from arflow import (
    AllocationRequest,
    Analytics,
    Customer,
    CustomerRegistered,
    CustomerUpdated,
    InvoiceIssued,
    Ledger,
    MemoryStore,
    Money,
    PaymentReceived,
    Store,
)

SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
AT = datetime(2026, 1, 1, tzinfo=UTC)
START = date(2026, 1, 1)
DAYS = (date(2026, 2, 28), date(2026, 4, 30))
TAGS = ("vip", "east", "gov", "team:x")
tag_sets = st.lists(st.sampled_from(TAGS), max_size=3, unique=True).map(tuple)


@st.composite
def tagged_books(draw: st.DrawFn) -> list[object]:
    """Customers with 0..3 tags, invoices in two currencies, some paid, and tags changed."""
    n = draw(st.integers(1, 4))
    events: list[object] = [
        CustomerRegistered(
            occurred_at=AT,
            actor="t",
            customer=Customer(id=f"C{i}", name=f"c{i}", tags=draw(tag_sets)),
        )
        for i in range(n)
    ]
    for k in range(draw(st.integers(1, 8))):
        cid = f"C{draw(st.integers(0, n - 1))}"
        issued = START + timedelta(days=draw(st.integers(0, 100)))
        amount = Money.of(draw(st.integers(1, 50)) * 100, draw(st.sampled_from(["CNY", "USD"])))
        events.append(
            InvoiceIssued(
                occurred_at=AT,
                actor="t",
                number=f"I{k}",
                customer_id=cid,
                issue_date=issued,
                due_date=issued + timedelta(days=draw(st.sampled_from([0, 15, 30]))),
                amount=amount,
            )
        )
        if draw(st.booleans()):
            paid = Money.of(amount.amount / 2, amount.currency)
            events.append(
                PaymentReceived(
                    occurred_at=AT,
                    actor="t",
                    payment_id=f"P{k}",
                    customer_id=cid,
                    amount=paid,
                    received_on=issued + timedelta(days=draw(st.integers(0, 60))),
                    allocations=(AllocationRequest(receivable_id=f"I{k}", amount=paid),),
                )
            )
    for _ in range(draw(st.integers(0, 3))):  # tags as they stand now are what counts
        events.append(
            CustomerUpdated(
                occurred_at=AT,
                actor="t",
                customer_id=f"C{draw(st.integers(0, n - 1))}",
                tags=draw(tag_sets),
            )
        )
    return events


def _figures(a: Analytics, by: tuple[str, ...]) -> list[object]:
    out: list[object] = []
    for day in DAYS:
        out += [
            a.aging(day, by=by),
            a.dso(day, by=by),
            a.dso(day, by=by, method="countback"),
            a.cei(day, by=by),
            a.collection_rate(day, by=by),
            a.on_time_rate(day, by=by),
            a.ranking("overdue", by[0], day),
            a.ranking("cash_collected", by[0], day),
        ]
    return out


def _agree(sql: Store, events: list[object]) -> None:
    memory = MemoryStore()
    for s in (sql, memory):
        Ledger(s).apply_all(events)  # type: ignore[arg-type]
    for by in (("tag",), ("tag", "currency"), ("customer", "tag")):
        expected = _figures(Analytics(memory), by)
        assert _figures(Analytics(sql), by) == expected
        assert _figures(Analytics(sql, reference=True), by) == expected
    # filtered by tag and grouped by tag: the customers picked, in all their tags' groups
    for where in ({"tag": "vip"}, {"tag": ["gov", None]}):
        for day in DAYS:
            expected_aging = Analytics(memory).aging(day, by="tag", where=where)
            assert Analytics(sql).aging(day, by="tag", where=where) == expected_aging
            expected_cei = Analytics(memory).cei(day, by="tag", where=where)
            assert Analytics(sql).cei(day, by="tag", where=where) == expected_cei
    # batched as the report asks (one ``sums_many`` for all of them) gives the same
    a = Analytics(sql)
    assert a.together(lambda: _figures(a, ("tag",))) == _figures(Analytics(memory), ("tag",))
    # every tag group is the sum over the customers that carry the tag now
    for day in DAYS:
        ungrouped = {x.currency: x.total.amount for x in Analytics(memory).aging(day)}
        per_tag = Analytics(memory).aging(day, by="tag")
        per_customer = {
            (x.currency, dict(x.group)["customer"]): x.total.amount
            for x in Analytics(memory).aging(day, by="customer")
        }
        tags_now = {c.id: set(c.tags) for c in memory.all("customer")}
        for x in per_tag:
            tag = dict(x.group)["tag"]
            want = sum(
                (
                    v
                    for (cur, cid), v in per_customer.items()
                    if cur == x.currency
                    and (tag in tags_now[cid] if tag is not None else not tags_now[cid])
                ),
                Decimal(0),
            )
            assert x.total.amount == want
            assert x.total.amount <= ungrouped[x.currency]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_grouped_by_tag_sql_equals_the_reference(
    backend: str, store_factory: Callable[[], Store]
) -> None:
    @settings(
        max_examples={"sqlite": 15, "postgres": 5}[backend],
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    @given(events=tagged_books())
    def check(events: list[object]) -> None:
        _agree(store_factory(), events)

    check()


@pytest.mark.parametrize("backend", ["memory", *SQL_BACKENDS])
def test_tag_filter_none_means_no_tags(backend: str, store_factory: Callable[[], Store]) -> None:
    store = store_factory()
    ledger = Ledger(store)
    for cid, tags in (("A", ("vip",)), ("B", ())):
        ledger.apply(
            CustomerRegistered(
                occurred_at=AT, actor="t", customer=Customer(id=cid, name=cid, tags=tags)
            )
        )
        ledger.apply(
            InvoiceIssued(
                occurred_at=AT,
                actor="t",
                number=f"I{cid}",
                customer_id=cid,
                issue_date=START,
                due_date=START,
                amount=Money.of(100 if cid == "A" else 40, "CNY"),
            )
        )
    a = Analytics(store)
    day = date(2026, 1, 31)
    assert [x.total.amount for x in a.aging(day, where={"tag": None})] == [Decimal(40)]
    assert [x.total.amount for x in a.aging(day, where={"tag": ["vip", None]})] == [Decimal(140)]
    got = {dict(x.group)["tag"]: x.total.amount for x in a.aging(day, by="tag")}
    assert got == {"vip": Decimal(100), None: Decimal(40)}
