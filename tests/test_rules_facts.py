"""Derived facts: computed by plain code from the book and the date, checked by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arflow import Money
from arflow.money import minor_unit
from arflow.rules.expr import Type
from arflow.rules.facts import (
    CUSTOMER_FACTS,
    ORDER_FACTS,
    RECEIVABLE_FACTS,
    customer_facts,
    fact_types,
    order_facts,
    receivable_facts,
)
from arflow.testing import BookBuilder


class Weekdays:
    """Business days Monday to Friday, no holidays: enough to test the facts."""

    def business_days_between(self, a: date, b: date) -> int:
        sign = 1 if b >= a else -1
        lo, hi = (a, b) if b >= a else (b, a)
        n = sum(
            1
            for i in range(1, (hi - lo).days + 1)
            if date.fromordinal(lo.toordinal() + i).weekday() < 5
        )
        return sign * n


@pytest.fixture
def book() -> BookBuilder:
    b = BookBuilder()
    b.customer("C1", limit=10_000, grade="B", tags=["key-account"])
    b.invoice("I-old", "C1", 1_000, issued="2026-01-01", due="2026-01-31")  # 41 days late
    b.invoice("I-new", "C1", 2_000, issued="2026-02-20", due="2026-03-22")  # not yet due
    b.invoice("I-paid-on-time", "C1", 500, issued="2026-01-01", due="2026-01-31")
    b.invoice("I-paid-late", "C1", 300, issued="2026-01-05", due="2026-01-20")
    b.invoice("I-usd", "C1", Money.of(999, "USD"), issued="2026-01-01", due="2026-01-02")
    b.pay("P1", "C1", 500, on="2026-01-30", to=[("I-paid-on-time", 500)])
    b.pay("P2", "C1", 300, on="2026-02-09", to=[("I-paid-late", 300)])
    b.dispute("D1", "I-new", 200)
    b.order("O1", "C1", 4_000)
    b.approve("O1")
    b.order("O2", "C1", 9_000)  # submitted: exposure too (issue 12)
    return b


def facts_of(b: BookBuilder, as_of: date) -> dict[str, object]:
    s = b.ledger.store
    c = b.ledger.customer("C1")
    return customer_facts(
        c,
        s.find("receivable", customer_id="C1"),
        s.find("order", customer_id="C1"),
        s.find("promise", customer_id="C1"),
        as_of,
    )


def test_customer_facts(book: BookBuilder) -> None:
    f = facts_of(book, date(2026, 3, 13))
    assert f["customer.currency"] == "CNY"  # the USD invoice is left out of the sums
    assert f["customer.open_balance"] == Decimal(3000)
    assert f["customer.overdue_balance"] == Decimal(1000)
    assert f["customer.overdue_count"] == 1
    assert f["customer.overdue_max_days"] == 41
    # issue 12: the submitted order O2 counts toward exposure
    assert f["customer.exposure"] == Decimal(16000)
    assert f["customer.exposure_ratio"] == Decimal("1.6")
    assert f["customer.credit_available"] == Decimal(-6000)
    assert f["customer.open_disputes"] == 1
    assert f["customer.paid_invoices"] == 2
    assert f["customer.on_time_rate"] == Decimal("0.5")
    assert f["customer.average_days_to_pay"] == Decimal("32")  # (29 + 35) / 2
    assert f["customer.average_days_late"] == Decimal(20)
    assert f["customer.late_payments_180d"] == 1
    assert f["customer.grade"] == "B"
    assert f["customer.tags"] == ("key-account",)
    assert f["customer.years_established"] is None


def test_receivable_facts(book: BookBuilder) -> None:
    as_of = date(2026, 3, 13)  # a Friday
    cf = facts_of(book, as_of)
    old = receivable_facts(book.ledger.receivable("I-old"), cf, as_of, Weekdays())
    assert old["days_past_due"] == 41
    assert old["days_to_due"] == -41
    assert old["business_days_past_due"] == 30
    assert old["balance"] == Decimal(1000)
    assert old["customer.grade"] == "B"
    new = receivable_facts(book.ledger.receivable("I-new"), cf, as_of, Weekdays())
    assert new["days_past_due"] == -9
    assert new["disputed"] is True
    assert new["undisputed_balance"] == Decimal(1800)
    assert new["promised"] is False and new["promise_date"] is None


@given(
    st.sampled_from(["CNY", "JPY", "KWD"]),
    st.integers(0, 10**15 - 1),  # arflow's amounts are below 10**15 (AMOUNT_LIMIT)
    st.integers(0, 10**15 - 1),
)
def test_the_undisputed_balance_fact_is_the_receivables_own(
    currency: str, balance: int, disputed: int
) -> None:
    """The fact is computed on Decimals, not through Money: it must be the same number,
    to the digit (the dunning minimum and templates read it)."""
    unit = Decimal(1).scaleb(-minor_unit(currency))
    base = BookBuilder(currency=currency)
    base.customer("C1")
    base.invoice("I", "C1", 100, issued="2026-01-01", due="2026-01-31")
    r = base.ledger.receivable("I").model_copy(
        update={
            "open_balance": Money.of(balance * unit, currency),
            "disputed_amount": Money.of(disputed * unit, currency),
        }
    )
    got = receivable_facts(r, {}, date(2026, 3, 1), Weekdays())["undisputed_balance"]
    assert str(got) == str(r.undisputed_balance.amount)


def test_order_facts(book: BookBuilder) -> None:
    as_of = date(2026, 3, 13)
    f = order_facts(book.ledger.get("order", "O2"), facts_of(book, as_of), as_of)
    assert f["order.amount"] == Decimal(9000)
    assert f["order.state"] == "submitted"
    assert f["customer.exposure"] == Decimal(16000)  # the order itself included (issue 12)


def _type_of(v: object) -> set[Type]:
    if v is None:
        return set(Type)
    if isinstance(v, bool):
        return {Type.BOOL}
    if isinstance(v, Decimal):
        return {Type.NUMBER}
    if isinstance(v, date):
        return {Type.DATE}
    if isinstance(v, tuple):
        return {Type.STRING_LIST}
    return {Type.STRING}


def test_every_catalogued_fact_is_computed_with_its_declared_type(book: BookBuilder) -> None:
    as_of = date(2026, 3, 13)
    cf = facts_of(book, as_of)
    rf = receivable_facts(book.ledger.receivable("I-old"), cf, as_of, Weekdays())
    of = order_facts(book.ledger.get("order", "O1"), cf, as_of)
    for subject, values in (("receivable", rf), ("order", of)):
        types = fact_types(subject)
        assert set(values) == set(types), subject
        for name, t in types.items():
            assert t in _type_of(values[name]), (name, values[name])
    assert len(RECEIVABLE_FACTS) + len(CUSTOMER_FACTS) + len(ORDER_FACTS) > 60


def test_docs_list_every_fact() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "rules.md").read_text("utf-8")
    for prefix, spec in (
        ("", RECEIVABLE_FACTS),
        ("customer.", CUSTOMER_FACTS),
        ("order.", ORDER_FACTS),
    ):
        for name, f in spec.items():
            assert f"| `{prefix}{name}` | {f.type} | {f.description} |" in text, name
