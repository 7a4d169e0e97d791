"""Money: exact, rounded to the minor unit, one currency at a time."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arflow import CurrencyMismatch, Money
from arflow.money import minor_unit, total


def test_rounds_half_up_to_the_minor_unit() -> None:
    assert Money.of("10.005", "CNY").amount == Decimal("10.01")
    assert Money.of("10.004", "CNY").amount == Decimal("10.00")
    assert Money.of("1500.5", "JPY").amount == Decimal("1501")
    assert Money.of("1.0005", "KWD").amount == Decimal("1.001")
    assert Money.of("1,234.50", "USD").amount == Decimal("1234.50")
    assert str(Money.of(1234567, "CNY")) == "1,234,567.00 CNY"


@pytest.mark.parametrize("bad", [0.1, float("nan"), "abc", "Infinity", None, True, [1]])
def test_refuses_floats_and_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError):
        Money(amount=bad, currency="CNY")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("XXX", "ISO 4217"),
        ("cny", "ISO 4217"),
        ("RMB", "ISO 4217"),
        ("", "ISO 4217"),
        (156, "valid string"),  # CNY's numeric code is not the code
    ],
)
def test_refuses_unknown_currencies(code: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Money(amount=Decimal(1), currency=code)  # type: ignore[arg-type]


def test_arithmetic_across_currencies_is_refused() -> None:
    a, b = Money.of(1, "CNY"), Money.of(1, "USD")
    for op in (lambda: a + b, lambda: a - b, lambda: a < b, lambda: total([a, b], "CNY")):
        with pytest.raises(CurrencyMismatch):
            op()
    with pytest.raises(TypeError):
        a * 1.5  # type: ignore[operator]


def test_json_round_trip_keeps_the_exact_amount() -> None:
    m = Money.of("12345678901234.56", "CNY")
    assert Money.model_validate_json(m.model_dump_json()) == m


amounts = st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=2)
currencies = st.sampled_from(["CNY", "USD", "JPY", "KWD", "EUR"])
weights = st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12).filter(
    lambda w: sum(w) > 0
)


@given(amounts, currencies, weights)
def test_split_conserves_money(amount: Decimal, cur: str, w: list[int]) -> None:
    m = Money.of(amount, cur)
    parts = m.split(w)
    assert len(parts) == len(w)
    assert total(parts, cur) == m
    unit = Decimal(1).scaleb(-minor_unit(cur))
    tw = sum(w)
    for part, wi in zip(parts, w, strict=True):
        assert abs(part.amount - m.amount * wi / tw) < unit * 2  # never off by a whole unit+


@given(amounts, amounts, currencies)
def test_add_and_subtract_are_exact(a: Decimal, b: Decimal, cur: str) -> None:
    x, y = Money.of(a, cur), Money.of(b, cur)
    assert (x + y) - y == x
    assert (x + y).amount == x.amount + y.amount
