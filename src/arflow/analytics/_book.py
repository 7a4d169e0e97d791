"""The book as it stood on a past date, from the objects as they stand now.

A receivable's open balance on day ``d`` is its open balance now plus every reduction
dated after ``d``: cash allocated from payments received after ``d``, credit notes issued
after ``d`` and a write-off after ``d``. Cash or credit applied later than it arrived
(``CashApplied``, credit applied when an invoice is issued) counts from the later of its
own date and the invoice's issue date. A payment reversed since is left out altogether
(the reversal's date is not kept), as are the reductions it made.

The views and the forecast read the receivables they need through indexed reads and the
payments, credit notes, promises and disputes of those receivables' customers in a few
queries (``find_for_customers``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from ..domain import (
    CLOSED_RECEIVABLE_STATES,
    FIRST_DATE,
    LAST_DATE,
    CreditNote,
    Dispute,
    Payment,
    PromiseStatus,
    PromiseToPay,
    Receivable,
    ReceivableState,
)
from ..errors import DateOutOfRange, ValidationError
from ..ledger import Ledger
from ..money import Money
from ..store.base import Store

#: Receivable states that still have something open.
OPEN_STATES: tuple[str, ...] = tuple(
    str(s) for s in ReceivableState if s not in CLOSED_RECEIVABLE_STATES
)
ALL_STATES: tuple[str, ...] = tuple(str(s) for s in ReceivableState)


def store_of(store_or_ledger: Store | Ledger) -> Store:
    """The store behind a ledger, or the store itself."""
    if isinstance(store_or_ledger, Ledger):
        return store_or_ledger.store
    return store_or_ledger


def check_days(n: int, what: str, least: int = 1, most: int = 3660) -> int:
    """``n`` if it is a whole number in [``least``, ``most``], else
    :class:`ValidationError`."""
    if isinstance(n, bool) or not isinstance(n, int) or not least <= n <= most:
        raise ValidationError(f"{what} must be a whole number from {least} to {most}, not {n!r}")
    return n


def check_as_of(d: date, reach: int = 0) -> date:
    """``d`` if it is a date (not a datetime) whose ``reach`` days before and after stay in
    the horizon arflow accepts, else :class:`ValidationError` or :class:`DateOutOfRange`."""
    if not isinstance(d, date) or isinstance(d, datetime):
        raise ValidationError(f"as_of must be a date, not {d!r}")
    if not FIRST_DATE.toordinal() + reach <= d.toordinal() <= LAST_DATE.toordinal() - reach:
        raise DateOutOfRange(
            f"as_of {d.isoformat()} is too close to the edge of the dates arflow accepts "
            f"({FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()})",
            d,
        )
    return d


@dataclass
class Movements:
    """What reduced each receivable, and when: from its customers' payments and credit
    notes (``reductions``: receivable id to ``(date, amount, cash?)``)."""

    reductions: dict[str, list[tuple[date, Money, bool]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    payments: list[Payment] = field(default_factory=list)

    @classmethod
    def read(cls, store: Store, customer_ids: Iterable[str]) -> Movements:
        ids = sorted(set(customer_ids))
        if not ids:
            return cls()
        pays: dict[str, list[Payment]] = store.find_for_customers("payment", ids)
        notes: dict[str, list[CreditNote]] = store.find_for_customers("credit_note", ids)
        return cls.of(
            (p for plist in pays.values() for p in plist),
            (n for nlist in notes.values() for n in nlist),
        )

    @classmethod
    def of(cls, payments: Iterable[Payment], notes: Iterable[CreditNote]) -> Movements:
        """The reductions made by ``payments`` (those not reversed) and credit ``notes``."""
        out = cls()
        for p in payments:
            if p.reversed:
                continue
            out.payments.append(p)
            for a in p.allocations:
                out.reductions[a.receivable_id].append((p.received_on, a.amount, True))
        for n in notes:
            if n.receivable_id is not None:
                # taken off its invoice when issued: the whole amount
                out.reductions[n.receivable_id].append((n.issued_on, n.amount, False))
            for a in n.applications:
                out.reductions[a.receivable_id].append((n.issued_on, a.amount, False))
        return out

    def open_on(self, r: Receivable, d: date) -> Money:
        """``r``'s open balance on ``d`` (zero before it was issued)."""
        if r.issue_date > d:
            return Money.zero(r.currency)
        bal = r.open_balance
        for on, amount, _cash in self.reductions.get(r.id, ()):
            if max(on, r.issue_date) > d and amount.currency == r.currency:
                bal = bal + amount
        if r.state == ReceivableState.WRITTEN_OFF and r.closed_on is not None and r.closed_on > d:
            bal = bal + r.written_off
        return bal.min(r.amount)

    def collected_by(self, r: Receivable, d: date) -> Money:
        """Cash allocated to ``r`` from payments received on or before ``d``."""
        got = Money.zero(r.currency)
        for on, amount, cash in self.reductions.get(r.id, ()):
            if cash and max(on, r.issue_date) <= d and amount.currency == r.currency:
                got = got + amount
        return got


def disputed_on(r: Receivable, disputes: Iterable[Dispute], d: date, balance: Money) -> Money:
    """What of ``balance`` was under dispute on ``d``: disputes opened by then and not yet
    resolved (at most the balance)."""
    held = Money.zero(r.currency)
    for x in disputes:
        if x.receivable_id != r.id or x.opened_on > d or x.amount.currency != r.currency:
            continue
        if x.status == "open" or (x.resolved_on is not None and x.resolved_on > d):
            held = held + x.amount
    return held.min(balance)


def promise_open_on(p: PromiseToPay, d: date) -> bool:
    """Whether ``p`` was open on ``d``: made by then and still open, or settled (kept or
    broken) only after its promised date, which was not yet past on ``d``."""
    if p.made_on > d:
        return False
    return p.status == PromiseStatus.OPEN or p.promised_date >= d
