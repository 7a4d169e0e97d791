"""arflow.analytics on a small worked book: every figure against the number computed by hand
(the same numbers, with each formula, are in docs/analytics.md), on every backend; and bad
input: unknown dimensions, mixed currencies, empty books, periods without sales."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from arflow import (
    AllocationRequest,
    Analytics,
    CreditNoteIssued,
    CreditProfile,
    Customer,
    CustomerRegistered,
    InvalidDates,
    InvoiceIssued,
    Ledger,
    Money,
    PaymentReceived,
    Store,
    UnknownDimension,
    ValidationError,
    WrittenOff,
)
from arflow.analytics import Rates
from arflow.errors import CurrencyMismatch

AT = datetime(2026, 1, 1, tzinfo=UTC)
D = Decimal


def cny(x: int | str) -> Money:
    return Money.of(x, "CNY")


def worked_book(store: Store) -> Ledger:
    """The book of docs/analytics.md ("A worked example")."""
    ledger = Ledger(store)
    for cid, name, sp, grade, team, region in (
        ("C1", "Acme", "li", "A", "east", "north"),
        ("C2", "Bolt", "wang", "B", "west", "south"),
    ):
        ledger.apply(
            CustomerRegistered(
                occurred_at=AT,
                actor="t",
                customer=Customer(
                    id=cid,
                    name=name,
                    salesperson=sp,
                    region=region,
                    credit=CreditProfile(grade=grade),
                    tags=(f"team:{team}",),
                ),
            )
        )
    invoices = [
        ("I1", "C1", date(2026, 1, 5), date(2026, 2, 4), 1000),
        ("I2", "C1", date(2026, 2, 10), date(2026, 3, 12), 2000),
        ("I3", "C2", date(2026, 1, 20), date(2026, 2, 19), 3000),
        ("I4", "C2", date(2026, 3, 1), date(2026, 3, 31), 4000),
    ]
    ledger.apply_all(
        InvoiceIssued(
            occurred_at=AT,
            actor="t",
            number=n,
            customer_id=c,
            issue_date=issued,
            due_date=due,
            amount=cny(amount),
            product_line="pumps" if c == "C1" else "valves",
        )
        for n, c, issued, due, amount in invoices
    )
    for pid, cid, rid, amount, on in (
        ("P1", "C1", "I1", 1000, date(2026, 2, 1)),
        ("P2", "C2", "I3", 1200, date(2026, 3, 10)),
    ):
        ledger.apply(
            PaymentReceived(
                occurred_at=AT,
                actor="t",
                payment_id=pid,
                customer_id=cid,
                amount=cny(amount),
                received_on=on,
                allocations=(AllocationRequest(receivable_id=rid, amount=cny(amount)),),
            )
        )
    ledger.apply(
        CreditNoteIssued(
            occurred_at=AT,
            actor="t",
            credit_note_id="CN1",
            customer_id="C2",
            receivable_id="I3",
            amount=cny(500),
            issued_on=date(2026, 3, 15),
        )
    )
    ledger.apply(
        WrittenOff(occurred_at=AT, actor="t", receivable_id="I3", written_off_on=date(2026, 3, 25))
    )
    return ledger


MARCH = date(2026, 3, 31)
FEB = date(2026, 2, 28)


def one(figures: tuple) -> Decimal | None:  # type: ignore[type-arg]
    assert len(figures) == 1
    return figures[0].value  # type: ignore[no-any-return]


@pytest.fixture
def analytics(store: Store) -> Analytics:
    worked_book(store)
    return Analytics(store, dso_target_days=45)


def test_aging_by_hand(analytics: Analytics) -> None:
    (a,) = analytics.aging(MARCH)
    assert a.currency == "CNY" and a.group == ()
    got = [(b.label, b.amount.amount, b.count, b.share) for b in a.buckets]
    assert got == [
        ("current", D("4000.00"), 1, D("0.6667")),
        ("1-30", D("2000.00"), 1, D("0.3333")),
        ("31-60", D("0.00"), 0, D(0)),
        ("61-90", D("0.00"), 0, D(0)),
        ("90+", D("0.00"), 0, D(0)),
    ]
    assert a.total == cny(6000) and a.overdue == cny(2000)
    (feb,) = analytics.aging(FEB)
    assert [b.amount.amount for b in feb.buckets[:2]] == [D(2000), D(3000)]
    by = analytics.aging(FEB, by=("customer",))
    assert [(x.group, x.total.amount, x.overdue.amount) for x in by] == [
        ((("customer", "C1"),), D(2000), D(0)),
        ((("customer", "C2"),), D(3000), D(3000)),
    ]
    (custom,) = analytics.aging(MARCH, buckets=(10, 20))
    assert [(b.label, b.amount.amount) for b in custom.buckets] == [
        ("current", D(4000)),
        ("1-10", D(0)),
        ("11-20", D(2000)),
        ("20+", D(0)),
    ]


def test_period_figures_by_hand(analytics: Analytics) -> None:
    dso = analytics.dso(MARCH)[0]
    assert (dso.value, dso.period_start, dso.period_end) == (D("54.00"), date(2026, 1, 1), MARCH)
    assert dso.target == D(45) and dso.unit == "days"
    assert one(analytics.dso(MARCH, method="countback")) == D("59.00")
    assert one(analytics.art(MARCH)) == D("3.33")
    assert one(analytics.add(MARCH)) == D("18.00")
    assert one(analytics.cei(MARCH)) == D("0.6667")
    assert one(analytics.overdue_rate(MARCH)) == D("0.3333")
    assert one(analytics.collection_rate(MARCH)) == D("0.2200")
    assert one(analytics.collection_rate_mtd(MARCH)) == D("0.1333")
    assert one(analytics.written_off_ratio(MARCH)) == D("0.1300")
    assert one(analytics.on_time_rate(MARCH)) == D("0.4545")


def test_rankings_by_hand(analytics: Analytics) -> None:
    (overdue,) = analytics.ranking("overdue", "customer", MARCH)
    assert [(e.rank, e.key, e.label, e.value) for e in overdue.entries] == [
        (1, "C1", "Acme", D("2000.00")),
        (2, "C2", "Bolt", D("0.00")),
    ]
    (cash,) = analytics.ranking("cash_collected", "salesperson", MARCH)
    assert [(e.key, e.value) for e in cash.entries] == [
        ("wang", D("1200.00")),
        ("li", D("1000.00")),
    ]
    (dso,) = analytics.ranking("dso", "team", MARCH)
    assert [(e.key, e.value) for e in dso.entries] == [("west", D("51.43")), ("east", D("60.00"))]
    (on_time,) = analytics.ranking("on_time_rate", "customer", MARCH)
    assert [(e.key, e.value) for e in on_time.entries] == [("C1", D(1)), ("C2", D(0))]
    (lines,) = analytics.ranking("overdue", "product_line", MARCH, limit=1)
    assert [(e.key, e.value) for e in lines.entries] == [("pumps", D("2000.00"))]


def test_trends_and_headline_by_hand(analytics: Analytics) -> None:
    (trend,) = analytics.trend("overdue_rate", date(2026, 1, 1), date(2026, 3, 1))
    assert [(p.month_end, p.value) for p in trend.points] == [
        (date(2026, 1, 31), D(0)),
        (FEB, D("0.6000")),
        (MARCH, D("0.3333")),
    ]
    (dso,) = analytics.trend("dso", date(2026, 1, 1), date(2026, 3, 1))
    assert [p.value for p in dso.points] == [D("90.00"), D("75.00"), D("54.00")]
    assert dso.target == D(45)
    (early,) = analytics.trend("total", date(2025, 12, 1), date(2026, 1, 1))
    assert [(p.value, p.undefined is None) for p in early.points] == [
        (None, False),
        (D("4000.00"), True),
    ]
    (h,) = analytics.headline(MARCH)
    assert (h.total, h.overdue, h.dso.value, h.collection_rate_mtd.value) == (
        cny(6000),
        cny(2000),
        D("54.00"),
        D("0.1333"),
    )
    assert (h.cei.value, h.overdue_rate.value) == (D("0.6667"), D("0.3333"))
    assert analytics.grades() == (("A", 1), ("B", 1))


def test_filters(analytics: Analytics) -> None:
    def total(**where: object) -> Decimal:
        (a,) = analytics.aging(MARCH, where=where)  # type: ignore[arg-type]
        return a.total.amount

    assert total(salesperson="li") == D(2000)
    assert total(team=["east", "west"]) == D(6000)
    assert total(tag="team:west") == D(4000)
    assert total(grade="B", region="south") == D(4000)
    assert total(product_line="pumps", customer="C1") == D(2000)
    assert analytics.aging(MARCH, where={"salesperson": "nobody"}) == ()
    assert analytics.aging(MARCH, where={"contract": None}) == analytics.aging(MARCH)
    by_grade = analytics.dso(MARCH, by=("grade", "sales_manager"))
    assert [(f.group, f.value) for f in by_grade] == [
        ((("grade", "A"), ("sales_manager", None)), D("60.00")),
        ((("grade", "B"), ("sales_manager", None)), D("51.43")),
    ]


def test_sql_equals_the_python_reference(store: Store) -> None:
    worked_book(store)
    sql, ref = Analytics(store), Analytics(store, reference=True)
    for day in (date(2025, 12, 31), date(2026, 1, 31), FEB, MARCH, date(2026, 9, 30)):
        for by in ((), ("customer",), ("team", "product_line")):
            assert sql.aging(day, by=by) == ref.aging(day, by=by)
            assert sql.dso(day, by=by) == ref.dso(day, by=by)
            assert sql.dso(day, by=by, method="countback") == ref.dso(
                day, by=by, method="countback"
            )
            assert sql.cei(day, by=by) == ref.cei(day, by=by)
            assert sql.on_time_rate(day, by=by) == ref.on_time_rate(day, by=by)


def test_undefined_and_empty(store: Store) -> None:
    empty = Analytics(store)
    assert empty.aging(MARCH) == ()
    (f,) = empty.dso(MARCH)
    assert f.value is None and f.currency is None and "no receivables" in (f.undefined or "")
    assert empty.ranking("overdue", "customer", MARCH) == ()
    assert empty.headline(MARCH) == ()
    assert empty.grades() == ()
    worked_book(store)
    a = Analytics(store)
    (no_sales,) = a.dso(MARCH, start=date(2026, 3, 20))
    assert no_sales.value is None and no_sales.undefined == "no sales in the period"
    (short,) = a.dso(MARCH, start=date(2026, 3, 1), method="countback")
    assert short.value is None and "exceed" in (short.undefined or "")
    (before,) = a.overdue_rate(date(2025, 6, 30))
    assert before.value is None and before.undefined


def test_bad_input(store: Store) -> None:
    worked_book(store)
    a = Analytics(store)
    with pytest.raises(UnknownDimension, match="colour"):
        a.aging(MARCH, by=("colour",))
    with pytest.raises(UnknownDimension, match="colour"):
        a.dso(MARCH, where={"colour": "red"})
    with pytest.raises(UnknownDimension, match="colour"):
        a.ranking("overdue", "colour", MARCH)
    with pytest.raises(UnknownDimension):
        a.ranking("overdue", "planet", MARCH)
    with pytest.raises(ValidationError, match="metric"):
        a.ranking("happiness", "customer", MARCH)
    with pytest.raises(ValidationError, match="where"):
        a.aging(MARCH, where={"customer": 5})
    with pytest.raises(ValidationError, match="where"):
        a.aging(MARCH, where={"customer": []})
    assert a.aging(MARCH, by="customer") == a.aging(MARCH, by=("customer",))
    with pytest.raises(ValidationError, match="buckets"):
        a.aging(MARCH, buckets=(60, 30))
    with pytest.raises(ValidationError, match="method"):
        a.dso(MARCH, method="guess")
    with pytest.raises(InvalidDates):
        a.dso(FEB, start=MARCH)
    with pytest.raises(InvalidDates):
        a.trend("dso", MARCH, FEB)
    with pytest.raises(InvalidDates):
        a.aging("2026-03-31")  # type: ignore[arg-type]


def test_currencies_are_summed_only_with_rates(store: Store) -> None:
    ledger = worked_book(store)
    ledger.apply(
        InvoiceIssued(
            occurred_at=AT,
            actor="t",
            number="U1",
            customer_id="C1",
            issue_date=date(2026, 3, 20),
            due_date=date(2026, 4, 19),
            amount=Money.of(100, "USD"),
        )
    )
    a = Analytics(store)
    assert [(x.currency, x.total.amount) for x in a.aging(MARCH)] == [
        ("CNY", D(6000)),
        ("USD", D(100)),
    ]
    (together,) = a.aging(MARCH, rates=Rates("CNY", {"USD": D("7.1")}))
    assert (together.currency, together.total.amount) == ("CNY", D(6710))
    assert [f.currency for f in a.dso(MARCH)] == ["CNY", "USD"]
    with pytest.raises(CurrencyMismatch, match="USD"):
        a.aging(MARCH, rates=Rates("CNY", {}))


def test_the_docs_worked_example_runs() -> None:
    """docs/analytics.md's worked example, as written (its numbers are the ones above)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "analytics.md").read_text("utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert blocks
    for block in blocks:  # the worked example, and how to ask a set of figures together
        exec(compile(block, "docs/analytics.md", "exec"), {})
