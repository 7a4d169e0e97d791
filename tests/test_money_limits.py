"""Money and dates at their limits: the declared range of amounts and dates, refused at the
edge with a specific error, and the proof that no total of accepted amounts overflows."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, Inexact, InvalidOperation, Rounded, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arflow import Money
from arflow.domain import FIRST_DATE, LAST_DATE, Contact, Customer, DueRule
from arflow.errors import AmountOutOfRange, ArflowError, DateOutOfRange
from arflow.events import InvoiceIssued, PaymentReceived
from arflow.money import AMOUNT_LIMIT, MAX_INTEGER_DIGITS, TOTAL_LIMIT, minor_unit, total
from arflow.testing import BookBuilder

CURRENCIES = ["CNY", "JPY", "KWD", "CLF", "USD"]
AT = datetime(2026, 1, 1, 9, tzinfo=UTC)


def largest(currency: str) -> Money:
    """The largest amount arflow accepts in ``currency``: 15 nines and every decimal."""
    return Money.of(AMOUNT_LIMIT - Decimal(1).scaleb(-minor_unit(currency)), currency)


@pytest.mark.parametrize("digits", [16, 27, 28, 29, 40, 5000])
def test_money_of_refuses_too_many_digits_with_its_own_error(digits: int) -> None:
    """27+ digits raised decimal.InvalidOperation from the rounding."""
    with pytest.raises(AmountOutOfRange, match="at most 15 digits before the decimal point"):
        Money.of("9" * digits, "CNY")
    with pytest.raises(AmountOutOfRange):
        Money.of("-" + "9" * digits + ".5", "CNY")


@pytest.mark.parametrize("currency", CURRENCIES)
def test_the_edge_of_the_range(currency: str) -> None:
    m = largest(currency)
    assert m.amount.adjusted() + 1 == MAX_INTEGER_DIGITS
    assert Money.of(-m.amount, currency).amount == -m.amount
    with pytest.raises(AmountOutOfRange):
        Money.of(AMOUNT_LIMIT, currency)
    if minor_unit(currency) < 4:  # rounds up to 10**15: refused as well
        with pytest.raises(AmountOutOfRange):
            Money.of(m.amount + Decimal(5).scaleb(-minor_unit(currency) - 1), currency)


def test_totals_have_a_hard_bound_beyond_every_sum_of_accepted_amounts() -> None:
    assert Money(amount=TOTAL_LIMIT - 1, currency="CLF").amount == TOTAL_LIMIT - 1
    for bad in (TOTAL_LIMIT, Decimal("1e30"), Decimal("-1e99")):
        with pytest.raises(AmountOutOfRange, match="beyond any total"):
            Money(amount=bad, currency="CNY")


def test_events_refuse_amounts_out_of_range_whatever_way_the_money_was_made() -> None:
    big = Money(amount=Decimal("1e20"), currency="CNY")  # a total may be this large
    with pytest.raises(AmountOutOfRange):
        InvoiceIssued(
            occurred_at=AT,
            actor="t",
            number="I1",
            customer_id="C1",
            issue_date=date(2026, 1, 1),
            amount=big,
        )
    with pytest.raises(AmountOutOfRange):
        PaymentReceived.model_validate_json(
            '{"occurred_at": "2026-01-01T00:00:00Z", "actor": "t", "payment_id": "P1", '
            '"customer_id": "C1", "received_on": "2026-01-01", '
            '"amount": {"amount": "' + "1" * 27 + '", "currency": "CNY"}}'
        )


@pytest.mark.parametrize("currency", CURRENCIES)
def test_two_largest_invoices_keep_balance_and_exposure_exact(currency: str) -> None:
    """Two accepted 26-digit invoices made balance() and exposure() raise."""
    b = BookBuilder(currency=currency)
    b.customer("C1")
    m = largest(currency)
    b.invoice("I1", "C1", m)
    b.invoice("I2", "C1", m)
    b.order("O1", "C1", m)
    b.approve("O1")
    assert b.ledger.balance("C1") == {currency: Money(amount=m.amount * 2, currency=currency)}
    assert b.ledger.exposure("C1")[currency].amount == m.amount * 3


def test_a_sum_of_a_million_largest_amounts_stays_exact() -> None:
    m = largest("CLF")  # 4 decimals: the most digits an accepted amount can have
    with localcontext() as ctx:
        ctx.traps[Inexact] = ctx.traps[Rounded] = True
        assert total(itertools.repeat(m, 10**6), "CLF").amount == m.amount * 10**6


accepted = st.sampled_from(CURRENCIES).flatmap(
    lambda c: st.tuples(
        st.just(c),
        st.lists(
            st.tuples(
                st.integers(-(10 ** (15 + minor_unit(c))) + 1, 10 ** (15 + minor_unit(c)) - 1),
                st.integers(1, 10**7),
            ),
            min_size=1,
            max_size=100,
        ),
    )
)


@settings(max_examples=200)
@given(accepted)
def test_no_sum_of_accepted_amounts_overflows(case: tuple[str, list[tuple[int, int]]]) -> None:
    """Any sum of up to 10**9 accepted amounts (here: up to 100 amounts, each taken up to
    10**7 times) is exact in the default decimal context, in any order of addition, and is
    a valid Money: Inexact and Rounded are trapped, and the result is compared with
    integer arithmetic in minor units."""
    currency, parts = case
    places = minor_unit(currency)
    exact = 0
    with localcontext() as ctx:
        ctx.traps[Inexact] = ctx.traps[Rounded] = True
        acc = Decimal(0)
        for units, times in parts:
            m = Money.of(Decimal(units).scaleb(-places), currency)  # accepted: in range
            acc += m.amount * times
            exact += units * times
            Money(amount=acc, currency=currency)  # every partial total is a Money too
    assert acc == Decimal(exact).scaleb(-places)


def test_the_date_horizon_leaves_room_for_the_longest_terms() -> None:
    longest = DueRule(days=3650, end_of_month=True)
    assert longest.due_date(LAST_DATE) < date.max - timedelta(days=30_000)
    assert FIRST_DATE - timedelta(days=30_000) > date.min


def test_an_invoice_issued_on_the_last_day_of_the_calendar_is_refused() -> None:
    """With default terms it raised a bare ValueError (date out of range) in the ledger."""
    b = BookBuilder()
    b.customer("C1", terms=3650)
    with pytest.raises(DateOutOfRange, match="issue_date 9999-12-31 is outside") as info:
        b.apply(
            InvoiceIssued(
                occurred_at=AT,
                actor="t",
                number="I1",
                customer_id="C1",
                issue_date=date(9999, 12, 31),
                amount=Money.of(1, "CNY"),
            )
        )
    assert isinstance(info.value, ArflowError) and not isinstance(info.value, ValueError)
    b.invoice("I2", "C1", 1, issued=LAST_DATE)  # the horizon itself: due 3650 days later
    assert b.ledger.receivable("I2").due_date == LAST_DATE + timedelta(days=3650)
    assert b.ledger.store.event_count() == 2


@pytest.mark.parametrize("day", [date(1, 1, 1), date(1899, 12, 31), date(9900, 1, 1), date.max])
def test_every_business_date_is_inside_the_horizon(day: date) -> None:
    with pytest.raises(DateOutOfRange, match="outside the dates arflow accepts"):
        PaymentReceived(
            occurred_at=AT,
            actor="t",
            payment_id="P1",
            customer_id="C1",
            amount=Money.of(1, "CNY"),
            received_on=day,
        )
    with pytest.raises(DateOutOfRange):
        PaymentReceived(
            occurred_at=datetime(day.year, 1, 1, tzinfo=UTC),
            actor="t",
            payment_id="P1",
            customer_id="C1",
            amount=Money.of(1, "CNY"),
            received_on=date(2026, 1, 1),
        )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("C\x001", "U+0000"),
        ("C\n1", "U+000A"),
        ("C\r1", "U+000D"),
        ("C\u20281", "U+2028"),
        ("C" * 101, "at most 100"),
    ],
)
def test_identifiers_are_printable_lines_on_every_backend(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        Customer(id=value, name="x")
    with pytest.raises(ValueError, match=re.escape(why)):
        InvoiceIssued(
            occurred_at=AT,
            actor="t",
            number="I1",
            customer_id=value,
            issue_date=date(2026, 1, 1),
            amount=Money.of(1, "CNY"),
        )


@pytest.mark.parametrize(
    ("email", "why"),
    [
        ("a@x.com, b@y.com", "one address per contact"),
        ("a@x.com;b@y.com", "one address per contact"),
        ("Ann <a@x.com>", "not an e-mail address"),
        ("a@x.com\nBcc: b@y.com", "U+000A"),
        ("a@x.com\x00", "U+0000"),
        ("a b@x.com", "not an e-mail address"),
    ],
)
def test_a_contact_email_is_one_address(email: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        Contact(name="Ann", email=email)
    assert Contact(name="Ann", email="ann.lee+ar@mail.example.cn").email


def test_money_of_never_raises_a_decimal_error() -> None:
    for text in ["1" * 27, "1e999999", "-1e400", "9" * 30 + ".999", "0." + "0" * 5000 + "1"]:
        try:
            Money.of(text, "CNY")
        except InvalidOperation:  # pragma: no cover - the defect this pins
            pytest.fail(f"Money.of({text[:20]!r}) raised InvalidOperation")
        except AmountOutOfRange:
            pass


def test_names_and_addresses_may_hold_any_space_but_no_line_break() -> None:
    """An ideographic space in a Chinese name is text; a line break in an address could add
    a header to a message. Identifiers are stricter: printable characters only."""
    assert Contact(name="王\u3000伟", phone="+86\u00a021 5555").name == "王\u3000伟"
    for bad in ("王\n伟", "王\u2028伟", "王\x00伟", "王\t伟"):
        with pytest.raises(ValueError, match="only printable text on one line"):
            Contact(name=bad)
    with pytest.raises(ValueError, match=re.escape("U+3000")):
        Customer(id="C\u30001", name="x")
