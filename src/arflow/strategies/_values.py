"""Days, instants and exact amounts: the building blocks every other strategy draws from."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from ..money import Money, minor_unit

_COMMON_TERMS = (30, 60, 0, 7, 10, 15, 45, 90, 120)


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _at(day: date, second: int = 0) -> datetime:
    """An office-hours instant on ``day``: 09:00 plus ``second`` seconds (events of one day
    keep their order)."""
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(seconds=second)


def _units(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(minor_unit(currency)))


def _money(units: int, currency: str) -> Money:
    return Money(amount=Decimal(units).scaleb(-minor_unit(currency)), currency=currency)


# -- dates and amounts ------------------------------------------------------------------------


def dates(start: date | str, end: date | str) -> SearchStrategy[date]:
    """Days in [``start``, ``end``]: as-of dates for a run, issue dates, payment days.

    Shrinks towards ``start``. ISO text is accepted for either bound.
    """
    lo, hi = _day(start), _day(end)
    if hi < lo:
        raise ValueError(f"dates: end {hi} is before start {lo}")
    return st.dates(min_value=lo, max_value=hi)


def amounts(
    min_value: Decimal | int | str = Decimal("50.00"),
    max_value: Decimal | int | str = Decimal("800000.00"),
    *,
    currency: str = "CNY",
) -> SearchStrategy[Money]:
    """Realistic invoice and payment amounts in ``currency``, for anything that needs money.

    The order of magnitude is drawn first (so 300.00 and 300,000.00 are equally likely,
    as on a real book), then the digits; about half the amounts are round hundreds, as
    invoices often are. Amounts are exact ``Decimal`` values with the currency's minor
    unit (two places for CNY), inside [``min_value``, ``max_value``].
    """
    lo = _units(Decimal(min_value), currency)
    hi = _units(Decimal(max_value), currency)
    if lo < 1 or hi < lo:
        raise ValueError(f"amounts: need 0 < min_value <= max_value, got {min_value}, {max_value}")
    round_step = 100 * 10 ** minor_unit(currency)

    @st.composite
    def draw_amount(draw: DrawFn) -> Money:
        magnitude = draw(st.integers(len(str(lo)) - 1, len(str(hi)) - 1))
        units = draw(st.integers(max(lo, 10**magnitude), min(hi, 10 ** (magnitude + 1) - 1)))
        if draw(st.booleans()) and units - units % round_step >= lo:
            units -= units % round_step
        return _money(units, currency)

    return draw_amount()
