"""Money: an exact ``Decimal`` amount with an ISO 4217 currency.

Amounts are rounded (half up) to the currency's minor unit when a ``Money`` is made, and
arithmetic across currencies is refused: converting needs an explicit rate, which is a
business decision, not an accident of addition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Strict, field_validator, model_validator

from .errors import AmountOutOfRange, CurrencyMismatch

# Active ISO 4217 codes (2024 list) and their minor units where they differ from 2.
_ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD
    IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL
    MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN
    SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES
    VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()
)
_MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    "CLF": 4,
    "UYW": 4,
}
_QUANTUM = {n: Decimal(1).scaleb(-n) for n in range(5)}

#: Digits before the decimal point of an amount arflow takes in (``Money.of``, every event,
#: every import): below one quadrillion (10**15) in any currency. With at most 4 decimals
#: that is 19 significant digits, so a sum of up to 10**9 accepted amounts needs at most
#: 28 digits and stays exact in Python's default decimal context (precision 28).
MAX_INTEGER_DIGITS = 15
#: Largest magnitude of an accepted amount (exclusive).
AMOUNT_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
#: Largest magnitude of any Money, a total included (exclusive): 10**9 times the accepted
#: limit. Beyond it rounding to 4 decimals would no longer be exact.
TOTAL_LIMIT = AMOUNT_LIMIT * 10**9


T = TypeVar("T")


if TYPE_CHECKING:
    Seq: TypeAlias = Sequence[T]
else:
    # An immutable sequence field that also accepts a list (strict mode takes only tuples).
    # Field-level non-strictness, not a before-validator: a before-validator would make the
    # items validate as Python input, so stored JSON (dates as text) would no longer parse.
    Seq = Annotated[tuple[T, ...], Strict(False)]


def minor_unit(currency: str) -> int:
    """Digits after the decimal point for ``currency`` (2 for most, 0 for JPY, 3 for KWD)."""
    return _MINOR_UNITS.get(currency, 2)


def check_currency(code: object) -> str:
    """Return ``code`` if it is an active ISO 4217 code, else raise ``ValueError``."""
    if not isinstance(code, str) or code not in _ISO_4217:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


def to_decimal(value: object, what: str = "amount") -> Decimal:
    """Turn a ``Decimal``, ``int`` or numeric string into a finite ``Decimal``.

    Floats are refused: ``0.1`` is not a price anybody wrote down.
    """
    if isinstance(value, bool | float):
        raise ValueError(f"{what} must be a Decimal, int or string, not {type(value).__name__}")
    if isinstance(value, Decimal):
        d = value
    elif type(value) is str:
        try:
            d = Decimal(value)
        except InvalidOperation:
            try:
                d = Decimal(value.strip().replace(",", "").replace("_", ""))
            except InvalidOperation:
                raise ValueError(f"{what} {value!r} is not a number") from None
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip().replace(",", "").replace("_", ""))
        except InvalidOperation:
            raise ValueError(f"{what} {value!r} is not a number") from None
    else:
        raise ValueError(f"{what} must be a Decimal, int or string, not {type(value).__name__}")
    if not d.is_finite():
        raise ValueError(f"{what} {value!r} is not a finite number")
    return d


class Money(BaseModel):
    """An amount in one currency, exact to the currency's minor unit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Decimal
    currency: str

    # Hot: every stored receivable holds six of these, parsed from JSON on every read. A
    # field validator and an "after" model validator, not a "before" model validator: that
    # one makes pydantic turn each JSON object into a Python dict first (8.5 us per Money
    # parsed from JSON; this is 5).
    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        return value if type(value) is Decimal else to_decimal(value)

    @model_validator(mode="after")
    def _normalise(self) -> Money:
        """Check the currency; round to its minor unit (half up); no negative zero."""
        cur = self.currency
        if cur not in _ISO_4217:
            check_currency(cur)
        d = self.amount
        if not d.is_finite():
            raise ValueError(f"amount {d!r} is not a finite number")
        if d.adjusted() >= 24:  # abs(d) >= TOTAL_LIMIT
            raise AmountOutOfRange(
                f"amount {_shown(d)} {cur} is beyond any total arflow keeps (below 10**24)", d
            )
        q = d.quantize(_QUANTUM[_MINOR_UNITS.get(cur, 2)], rounding=ROUND_HALF_UP)
        if q.is_zero():
            q = q + 0
        object.__setattr__(self, "amount", q)  # still being built: frozen comes after
        return self

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        """``Money.of("1200.50", "CNY")``: an amount taken in, so it must be in the accepted
        range (:func:`check_amount`), else :class:`~arflow.errors.AmountOutOfRange`."""
        return check_amount(cls(amount=_in_range(amount), currency=currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal(0), currency=currency)

    def _same(self, other: Money, op: str) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {op} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency, op)

    def __add__(self, other: Money) -> Money:
        self._same(other, "add")
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other, "subtract")
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise TypeError("multiply Money by a Decimal or int, not a float")
        return Money(amount=self.amount * factor, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other, "compare")
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other, "compare")
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other, "compare")
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other, "compare")
        return self.amount >= other.amount

    def __bool__(self) -> bool:
        return self.amount != 0

    def __str__(self) -> str:
        return f"{self.amount:,.{minor_unit(self.currency)}f} {self.currency}"

    @property
    def is_positive(self) -> bool:
        return self.amount > 0

    def min(self, other: Money) -> Money:
        self._same(other, "compare")
        return self if self.amount <= other.amount else other

    def split(self, weights: Sequence[Decimal | int]) -> list[Money]:
        """Split into parts proportional to ``weights`` that add up exactly to ``self``.

        Rounding leftovers go to the parts in order, one minor unit each, so that
        ``sum(parts) == self`` always holds.
        """
        if not weights or any(Decimal(w) < 0 for w in weights):
            raise ValueError("weights must be a non-empty list of non-negative numbers")
        total_w = sum(Decimal(w) for w in weights)
        if total_w == 0:
            raise ValueError("weights must not all be zero")
        q = _QUANTUM[minor_unit(self.currency)]
        parts = [
            (self.amount * Decimal(w) / total_w).quantize(q, rounding="ROUND_DOWN") for w in weights
        ]
        rest = self.amount - sum(parts)
        step = q if rest >= 0 else -q
        i = 0
        while rest != 0:
            parts[i % len(parts)] += step
            rest -= step
            i += 1
        return [Money(amount=p, currency=self.currency) for p in parts]


def _shown(d: Decimal) -> str:
    """An amount for a message: whole when short, else its first digits and its size."""
    text = str(d)
    return text if len(text) <= 40 else f"{text[:12]}... ({d.adjusted() + 1} digits)"


def _in_range(amount: object) -> object:
    """``amount`` unchanged, unless it is a number far beyond the accepted range (which
    would not even round): refused with :class:`AmountOutOfRange` before it is rounded."""
    if isinstance(amount, bool | float):
        return amount  # Money refuses these with its own message
    try:
        d = to_decimal(amount)
    except ValueError:
        return amount  # Money refuses it with its own message
    if abs(d) >= AMOUNT_LIMIT:
        _too_large(d)
    return d


def _too_large(d: Decimal, currency: str = "") -> None:
    cur = f" {currency}" if currency else ""
    raise AmountOutOfRange(
        f"amount {_shown(d)}{cur} is out of range: arflow accepts at most "
        f"{MAX_INTEGER_DIGITS} digits before the decimal point (below 10**{MAX_INTEGER_DIGITS})",
        d,
    )


def check_amount(m: Money) -> Money:
    """``m`` if its amount is in the range arflow accepts (fewer than
    :data:`MAX_INTEGER_DIGITS` digits before the point), else :class:`AmountOutOfRange`.

    Applied to every amount taken in (``Money.of``, events, imports) and not to totals,
    which may grow up to :data:`TOTAL_LIMIT`.
    """
    if abs(m.amount) >= AMOUNT_LIMIT:
        _too_large(m.amount, m.currency)
    return m


def total(items: Iterable[Money], currency: str) -> Money:
    """Sum of ``items``, all in ``currency`` (zero when empty)."""
    acc = Decimal(0)
    for m in items:
        if m.currency != currency:
            raise CurrencyMismatch(currency, m.currency, "sum")
        acc += m.amount
    return Money(amount=acc, currency=currency)
