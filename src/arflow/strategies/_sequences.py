"""Whole histories of a small book that the ledger accepts, in the order they happened."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from ..domain import Customer
from ..events import (
    CreditNoteIssued,
    CustomerRegistered,
    DisputeOpened,
    DisputeResolved,
    DunningBlockChanged,
    Event,
    InvoiceIssued,
    PaymentReceived,
    PromiseBroken,
    PromiseMade,
    WrittenOff,
)
from ..money import Money
from ._parties import _PEOPLE, customers
from ._receivables import _TERMS
from ._values import _at, _day, _money, _units, amounts

#: What :func:`event_sequences` can generate besides registrations and invoices, by name.
EVENT_KINDS: frozenset[str] = frozenset(
    {
        "invoice",
        "payment",
        "dispute",
        "resolve_dispute",
        "promise",
        "break_promise",
        "credit_note",
        "write_off",
        "dunning_block",
    }
)

# How often each kind is tried (a kind with nothing to act on is skipped). The first
# entry is what hypothesis shrinks towards: a history of invoices only.
_WEIGHTS: dict[str, int] = {
    "invoice": 5,
    "payment": 4,
    "dispute": 2,
    "promise": 2,
    "credit_note": 2,
    "resolve_dispute": 1,
    "break_promise": 1,
    "write_off": 1,
    "dunning_block": 1,
}

_DISPUTE_CODES = ("quality", "quantity", "price", "not-received", "duplicate")
_RESOLUTIONS = ("rejected", "accepted", "withdrawn", "settled by credit note")

_LIVE = ("open", "partially_paid", "disputed", "promised")


@dataclass
class _Item:
    """What the generator must know of a receivable to keep the next event valid."""

    id: str
    customer_id: str
    issue: date
    due: date
    open: int  # in minor units
    disputed: int = 0
    state: str = "open"
    reduced: bool = False
    promise_id: str | None = None
    blocked: bool = False

    @property
    def undisputed(self) -> int:
        return self.open - min(self.open, self.disputed)

    @property
    def live(self) -> bool:
        return self.state in _LIVE

    def settle_state(self) -> str:
        return "partially_paid" if self.reduced else "open"


@dataclass
class _Dispute:
    id: str
    item: _Item
    amount: int
    open: bool = True


@dataclass
class _Promise:
    id: str
    items: tuple[_Item, ...]
    amount: int
    promised: date
    received: int = 0
    open: bool = True


class _Book:
    """The generator's model of the book: just enough to make every event valid (the
    allocation order and state moves documented for :class:`arflow.Ledger`)."""

    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.items: list[_Item] = []
        self.disputes: list[_Dispute] = []
        self.promises: list[_Promise] = []
        #: the customers' credit the ledger applies to their next invoices (issue 12):
        #: [customer, (day, 0 cash / 1 credit note, id), units left, "paid" / "credited"]
        self.credits: list[list[Any]] = []

    def apply_credit(self, r: _Item) -> None:
        """What ``Ledger(apply_unapplied_cash=True)`` does to a new invoice: the customer's
        credit applied oldest first."""
        for c in sorted(self.credits, key=lambda c: c[1]):
            if c[0] != r.customer_id or not c[2]:
                continue
            take = min(c[2], r.undisputed)
            if not take:
                break
            self.reduce(r, take, c[3])
            c[2] -= take

    def live(self, customer_id: str | None = None) -> list[_Item]:
        return [
            r
            for r in self.items
            if r.live and (customer_id is None or r.customer_id == customer_id)
        ]

    def reduce(self, r: _Item, units: int, how: str) -> None:
        r.open -= units
        r.reduced = True
        if r.open == 0:
            r.state = "paid" if how == "paid" else "credited"
        elif r.state in ("open", "partially_paid"):
            r.state = "partially_paid"

    def pay(self, customer_id: str, units: int, key: tuple[date, int, str] | None = None) -> None:
        """Automatic allocation: oldest due first (then issue date, then number), never the
        disputed part; promises on the items paid are tracked as the ledger does."""
        plan: list[tuple[_Item, int]] = []
        left = units
        for r in sorted(self.live(customer_id), key=lambda r: (r.due, r.issue, r.id)):
            if not left:
                break
            take = min(left, r.undisputed)
            if take:
                plan.append((r, take))
                left -= take
        if left and key is not None:
            self.credits.append([customer_id, key, left, "paid"])
        touched: list[str] = []
        for r, take in plan:
            if r.promise_id is not None and r.promise_id not in touched:
                touched.append(r.promise_id)
            self.reduce(r, take, "paid")
        for pid in touched:
            p = next(p for p in self.promises if p.id == pid)
            if not p.open:
                continue
            ids = {r.id for r in p.items}
            p.received += sum(take for r, take in plan if r.id in ids)
            if p.received >= p.amount or all(not r.live for r in p.items):
                p.open = False
                for r in p.items:
                    if r.state == "promised" and r.promise_id == p.id:
                        r.state = r.settle_state()


@st.composite
def _sequence(
    draw: DrawFn,
    start: date,
    end: date,
    n_customers: tuple[int, int],
    n_events: tuple[int, int],
    n_opening: tuple[int, int],
    opening_age: int,
    currency: str,
    kinds: tuple[str, ...],
    customer_models: SearchStrategy[Customer],
    money: SearchStrategy[Money],
) -> list[Event]:
    events: list[Event] = []
    counters: dict[str, int] = {}

    def next_id(kind: str) -> str:
        counters[kind] = counters.get(kind, 0) + 1
        return f"{kind}-{counters[kind]:04d}"

    second = 0
    today = start

    def meta(actor: str) -> dict[str, Any]:
        nonlocal second
        second += 1
        return {
            "event_id": f"e{len(events) + 1:04d}",
            "occurred_at": _at(today, second),
            "actor": actor,
        }

    cids = [f"C{i:02d}" for i in range(1, draw(st.integers(*n_customers)) + 1)]
    for cid in cids:
        c = draw(customer_models).model_copy(update={"id": cid})
        events.append(CustomerRegistered(**meta("crm"), customer=c))
    book = _Book(currency)

    def invoice(issued: date) -> InvoiceIssued:
        number = next_id("INV")
        due = issued + timedelta(days=draw(_TERMS))
        amount = draw(money)
        cid = draw(st.sampled_from(cids))
        book.items.append(_Item(number, cid, issued, due, _units(amount.amount, currency)))
        book.apply_credit(book.items[-1])
        return InvoiceIssued(
            **meta("billing"),
            number=number,
            customer_id=cid,
            issue_date=issued,
            due_date=due,
            amount=amount,
        )

    for _ in range(draw(st.integers(*n_opening))):  # a book taken over on ``start``
        events.append(invoice(start - timedelta(days=draw(st.integers(0, opening_age)))))
    span = (end - start).days
    target = draw(st.integers(*n_events))
    max_gap = max(1, (2 * span) // max(target, 1))
    menu = [k for k in _WEIGHTS for _ in range(_WEIGHTS[k]) if k in kinds]
    menu.sort(key=lambda k: k != "invoice")  # invoices first: what examples shrink to
    for _ in range(target if menu else 0):
        gap = draw(st.integers(0, max_gap))
        if gap:
            today += timedelta(days=gap)
            second = 0
        if today > end:
            break
        kind = draw(st.sampled_from(menu))
        event: Event | None = None
        if kind == "invoice":
            event = invoice(today)
        elif kind == "payment":
            payers = sorted({r.customer_id for r in book.live() if r.undisputed})
            if payers:
                cid = draw(st.sampled_from(payers))
                owed = sorted(
                    (r for r in book.live(cid) if r.undisputed),
                    key=lambda r: (r.due, r.issue, r.id),
                )
                everything = sum(r.undisputed for r in owed)
                # mostly one invoice or part of the balance; sometimes all, or too much
                how = draw(st.sampled_from(("oldest", "part", "oldest", "part", "all", "more")))
                if how == "oldest":
                    units = owed[0].undisputed
                elif how == "all":
                    units = everything
                elif how == "more":  # the rest stays on the account as unapplied cash
                    units = everything + draw(st.integers(1, 10**6))
                else:
                    units = draw(st.integers(1, everything))
                pid = next_id("PAY")
                event = PaymentReceived(
                    **meta("bank"),
                    payment_id=pid,
                    customer_id=cid,
                    amount=_money(units, currency),
                    received_on=today,
                    reference=f"bank-ref-{len(events) + 1}",
                )
                book.pay(cid, units, (today, 0, pid))
        elif kind == "dispute":
            open_items = [r for r in book.live() if r.undisputed]
            if open_items:
                r = draw(st.sampled_from(open_items))
                whole = draw(st.booleans())
                units = r.undisputed if whole else draw(st.integers(1, r.undisputed))
                did = next_id("DSP")
                event = DisputeOpened(
                    **meta("collector"),
                    dispute_id=did,
                    receivable_id=r.id,
                    amount=None if whole else _money(units, currency),
                    reason_code=draw(st.sampled_from(_DISPUTE_CODES)),
                    opened_on=today,
                )
                r.disputed += units
                r.state = "disputed"
                book.disputes.append(_Dispute(did, r, units))
        elif kind == "resolve_dispute":
            open_disputes = [d for d in book.disputes if d.open]
            if open_disputes:
                dsp = draw(st.sampled_from(open_disputes))
                event = DisputeResolved(
                    **meta("collector"),
                    dispute_id=dsp.id,
                    resolved_on=today,
                    resolution=draw(st.sampled_from(_RESOLUTIONS)),
                )
                dsp.open = False
                r = dsp.item
                left = r.disputed - min(r.disputed, dsp.amount)
                if r.state == "disputed" and not left:
                    r.state = r.settle_state()
                r.disputed = left
        elif kind == "promise":
            # never over an item an open promise already covers: after a dispute on a
            # promised item it is "open" again, but its promise still stands
            covered = {r.id for p in book.promises if p.open for r in p.items}
            can = [
                r
                for r in book.live()
                if r.state in ("open", "partially_paid") and r.id not in covered
            ]
            if can:
                cid = draw(st.sampled_from(sorted({r.customer_id for r in can})))
                mine = [r for r in can if r.customer_id == cid]
                chosen = draw(
                    st.lists(
                        st.sampled_from(mine), min_size=1, max_size=3, unique_by=lambda r: r.id
                    )
                )
                promised_units = sum(r.open for r in chosen)
                units = (
                    promised_units if draw(st.booleans()) else draw(st.integers(1, promised_units))
                )
                pid = next_id("PTP")
                promised = today + timedelta(days=draw(st.integers(1, 30)))
                event = PromiseMade(
                    **meta("collector"),
                    promise_id=pid,
                    customer_id=cid,
                    receivable_ids=tuple(r.id for r in chosen),
                    amount=_money(units, currency),
                    promised_date=promised,
                    promised_by=draw(st.sampled_from(_PEOPLE)),
                    made_on=today,
                )
                for r in chosen:
                    r.state, r.promise_id = "promised", pid
                book.promises.append(_Promise(pid, tuple(chosen), units, promised))
        elif kind == "break_promise":
            overdue = [p for p in book.promises if p.open and p.promised < today]
            if overdue:
                p = draw(st.sampled_from(overdue))
                event = PromiseBroken(**meta("collector"), promise_id=p.id, broken_on=today)
                p.open = False
                for r in p.items:
                    if r.state == "promised" and r.promise_id == p.id:
                        r.state = r.settle_state()
        elif kind == "credit_note":
            live = book.live()
            on_account = not live or draw(st.integers(0, 4)) == 0
            cnid = next_id("CN")
            if on_account:
                event = CreditNoteIssued(
                    **meta("finance"),
                    credit_note_id=cnid,
                    customer_id=draw(st.sampled_from(cids)),
                    amount=draw(money),
                    issued_on=today,
                )
                units = _units(event.amount.amount, currency)
                book.credits.append([event.customer_id, (today, 1, cnid), units, "credited"])
            else:
                r = draw(st.sampled_from(live))
                units = r.open if draw(st.booleans()) else draw(st.integers(1, r.open))
                event = CreditNoteIssued(
                    **meta("finance"),
                    credit_note_id=cnid,
                    customer_id=r.customer_id,
                    receivable_id=r.id,
                    amount=_money(units, currency),
                    issued_on=today,
                )
                book.reduce(r, units, "credited")
        elif kind == "write_off":
            live = book.live()
            if live:
                r = draw(st.sampled_from(live))
                event = WrittenOff(**meta("finance"), receivable_id=r.id, written_off_on=today)
                r.open, r.state = 0, "written_off"
        elif kind == "dunning_block":
            live = book.live()
            if live:
                r = draw(st.sampled_from(live))
                r.blocked = not r.blocked
                event = DunningBlockChanged(
                    **meta("collector"),
                    receivable_id=r.id,
                    blocked=r.blocked,
                    reason="customer in talks with sales" if r.blocked else "talks ended",
                )
        if event is not None:
            events.append(event)
    return events


def _bounds(n: int | tuple[int, int], what: str, least: int) -> tuple[int, int]:
    lo, hi = (n, n) if isinstance(n, int) else n
    if lo < least or hi < lo:
        raise ValueError(f"event_sequences: bad bounds for {what}: {n!r}")
    return lo, hi


def event_sequences(
    *,
    start: date | str = date(2026, 1, 1),
    end: date | str = date(2026, 4, 30),
    n_customers: int | tuple[int, int] = (1, 3),
    n_events: int | tuple[int, int] = (1, 40),
    opening: int | tuple[int, int] = 0,
    opening_age: int = 120,
    currency: str = "CNY",
    kinds: Collection[str] = EVENT_KINDS,
    customer_models: SearchStrategy[Customer] | None = None,
    amount: SearchStrategy[Money] | None = None,
) -> SearchStrategy[list[Event]]:
    """Histories of a small book that the ledger accepts, to test rules and reports against
    what really happens to receivables: first the customers' registrations on ``start``
    (from ``customer_models``, default :func:`customers`), then, day after day until
    ``end``, invoices, payments with automatic allocation (of the oldest item, part of the
    balance, all of it, or more than owed, leaving unapplied cash), whole and partial
    disputes and their resolution, promises to pay over one to three items (broken after
    their date, or kept by payments), credit notes on an invoice or on account,
    write-offs and dunning blocks on an item (``kinds`` narrows these; see
    :data:`EVENT_KINDS`).

    ``opening`` invoices are on the book from the start, as when a book is taken over:
    they are logged on ``start`` but were issued up to ``opening_age`` days before it, so
    some are already due or long overdue (what a first run on an existing book meets).

    The list is in chronological order (``occurred_at`` strictly increasing, business
    dates such as ``received_on`` equal to its day) and every event applies to an empty
    ledger in order: one that applies unapplied cash and credit notes on account to the
    next invoice (``Ledger(apply_unapplied_cash=True)``, the default). Ids are deterministic: events ``e0001``..., customers ``C01``...,
    invoices ``INV-0001``..., payments ``PAY-0001``..., disputes ``DSP-``, promises
    ``PTP-``, credit notes ``CN-``. ``n_events`` bounds the events after the registrations
    (fewer when the days run out or a kind has nothing to act on).
    """
    lo, hi = _day(start), _day(end)
    if hi < lo:
        raise ValueError(f"event_sequences: end {hi} is before start {lo}")
    unknown = set(kinds) - EVENT_KINDS
    if unknown:
        raise ValueError(f"event_sequences: unknown kinds {sorted(unknown)}")
    nc = _bounds(n_customers, "n_customers", 1)
    ne = _bounds(n_events, "n_events", 0)
    no = _bounds(opening, "opening", 0)
    if "invoice" not in kinds and no[1] == 0:
        raise ValueError("event_sequences: no invoices (kinds without 'invoice', no opening)")
    if opening_age < 0:
        raise ValueError("event_sequences: opening_age must not be negative")
    return _sequence(
        lo,
        hi,
        nc,
        ne,
        no,
        opening_age,
        currency,
        tuple(sorted(kinds)),
        customer_models if customer_models is not None else customers(currency=currency),
        amount if amount is not None else amounts(currency=currency),
    )
