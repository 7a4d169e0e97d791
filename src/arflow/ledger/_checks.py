"""Small checks and values every event family of the ledger shares: pure, on plain values."""

from __future__ import annotations

from ..domain import Receivable, ReceivableState
from ..errors import ClosedItem, CurrencyMismatch, InvalidAmount
from ..lifecycle import LIVE_STATES as LIVE_STATES
from ..lifecycle import UNINVOICED_ORDER_STATES as UNINVOICED_ORDER_STATES
from ..money import Money

R = ReceivableState

_ZEROS: dict[str, Money] = {}


def zero(currency: str) -> Money:
    """``Money.zero(currency)``, made once per currency (Money is immutable)."""
    z = _ZEROS.get(currency)
    if z is None:
        z = _ZEROS[currency] = Money.zero(currency)
    return z


def positive(m: Money, what: str) -> None:
    """Refuse a zero or negative amount, naming ``what`` it is."""
    if m.amount <= 0:
        raise not_positive(what, m)


def not_positive(what: str, amount: object) -> InvalidAmount:
    """The refusal of an amount that is not positive (the plain-invoice path raises it too)."""
    return InvalidAmount(f"{what} must be positive, got {amount}")


def same_currency(a: Money, b: Money, where: str) -> None:
    """Refuse mixing currencies, naming ``where`` they met."""
    if a.currency != b.currency:
        raise CurrencyMismatch(a.currency, b.currency, where)


def live(r: Receivable, event: str) -> None:
    """Refuse ``event`` on a receivable that is closed (paid, credited, written off)."""
    if r.is_closed:
        raise ClosedItem("receivable", r.id, str(r.state), event)
