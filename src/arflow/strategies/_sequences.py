"""Hypothesis strategies for testing rules, and code built on arflow, against random books.

A rule author pins a policy with a few hand-written scenarios (:mod:`arflow.testing`);
these strategies add the scenarios nobody thought of: customers with and without limits,
grades, contacts and company profiles; invoices of every size and payment term; and whole
histories of invoices, payments, disputes, promises, credit notes and write-offs that the
ledger accepts, in the order they happened::

    from hypothesis import given
    from arflow import Ledger
    from arflow.strategies import event_sequences

    @given(event_sequences(start=date(2026, 1, 1), end=date(2026, 3, 31)))
    def test_my_policy(events):
        ledger = Ledger()
        for e in events:
            ledger.apply(e)
        ...

Everything is exact: amounts are ``Money`` with a ``Decimal`` rounded to the currency's
minor unit (never a float), and every id (events, customers, invoices, payments...) is
derived from the draw, so a failing example shrinks and replays to the same book.

Hypothesis is an optional dependency (``pip install arflow[test]``): import this module
from tests only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from .domain import CompanyProfile, Contact, CreditProfile, Customer
from .events import (
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
from .money import Money, minor_unit

__all__ = [
    "EVENT_KINDS",
    "amounts",
    "customers",
    "dates",
    "event_sequences",
    "receivables_for",
]

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

_COMMON_TERMS = (30, 60, 0, 7, 10, 15, 45, 90, 120)
_CITIES = ("上海", "北京", "深圳", "Suzhou", "Ningbo", "Chengdu", "Wuhan", "Hangzhou")
_TRADES = (
    "精密机械",
    "电子科技",
    "Logistics",
    "Trading",
    "新材料",
    "Pharma",
    "Foods",
    "Auto Parts",
)
_FORMS = ("有限公司", "股份有限公司", "Co., Ltd.", "Group", "Holdings")
_PEOPLE = ("王芳", "李伟", "张敏", "刘洋", "陈静", "Anna Schmidt", "John Miller", "Mei Lin")
_MAILBOXES = ("ap", "finance", "accounts", "cfo", "wang.fang", "li.wei")
_ZONES = ("Asia/Shanghai", "UTC", "Asia/Hong_Kong", "Europe/Berlin", "America/New_York")
_REGIONS = ("East", "North", "South", "West", "Overseas")
_SALES = ("li.wei", "zhang.min", "chen.jing", "liu.yang")
_TAGS = ("key-account", "vip", "export", "government", "no-dunning-charges")
_INDUSTRIES = ("manufacturing", "retail", "construction", "healthcare", "logistics", "energy")
_RATINGS = ("AAA", "AA", "A", "BBB", "BB", "B", "C")
_DISPUTE_CODES = ("quality", "quantity", "price", "not-received", "duplicate")
_RESOLUTIONS = ("rejected", "accepted", "withdrawn", "settled by credit note")


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


# -- customers --------------------------------------------------------------------------------


@st.composite
def _contact(draw: DrawFn, domain: str) -> Contact:
    name = draw(st.sampled_from(_PEOPLE))
    has_email = draw(st.booleans())
    has_phone = draw(st.booleans()) or not has_email
    return Contact(
        name=name,
        email=f"{draw(st.sampled_from(_MAILBOXES))}@{domain}" if has_email else None,
        phone=f"+86 1{draw(st.integers(30, 99))}{draw(st.integers(0, 99_999_999)):08d}"
        if has_phone
        else None,
        preferred_channel=draw(st.sampled_from(("email", "sms", "phone", "letter"))),
        locale=draw(st.sampled_from(("zh_CN", "en"))),
        timezone=draw(st.sampled_from(_ZONES)),
        role=draw(st.sampled_from((None, "accounts payable", "finance manager", "owner"))),
    )


def _company_profiles(currency: str) -> SearchStrategy[CompanyProfile]:
    return st.builds(
        CompanyProfile,
        enterprise_type=st.sampled_from(
            (None, "private", "state_owned", "listed", "foreign", "individual")
        ),
        registered_capital=st.none()
        | amounts(Decimal(100_000), Decimal(500_000_000), currency=currency),
        established_on=st.none() | dates(date(1980, 1, 1), date(2025, 12, 31)),
        industry=st.none() | st.sampled_from(_INDUSTRIES),
        industry_risk=st.none() | st.integers(1, 5),
        third_party_rating=st.none() | st.sampled_from(_RATINGS),
        bank_reference=st.sampled_from((None, "good", "fair", "poor")),
    )


@st.composite
def _customer(
    draw: DrawFn,
    ids: SearchStrategy[str],
    currency: str,
    grades: Sequence[str | None],
    dunning_block: bool | None,
    order_block: bool | None,
) -> Customer:
    cid = draw(ids)
    parts = [draw(st.sampled_from(options)) for options in (_CITIES, _TRADES, _FORMS)]
    # 上海精密机械有限公司, but Ningbo Logistics Co., Ltd.
    name = "".join(parts) if not any(p.isascii() for p in parts) else " ".join(parts)
    domain = f"{cid.lower().replace('_', '-')}.example.com"
    blocked = draw(st.booleans()) if dunning_block is None else dunning_block
    limit = draw(st.none() | amounts(Decimal(10_000), Decimal(5_000_000), currency=currency))
    credit = CreditProfile(
        grade=draw(st.sampled_from(tuple(grades))),
        credit_limit=limit,
        payment_terms_days=draw(st.sampled_from(_COMMON_TERMS)),
        prepayment_percent=draw(st.sampled_from((Decimal(0), Decimal(30), Decimal(100)))),
        order_block=draw(st.booleans()) if order_block is None else order_block,
        dunning_block=blocked,
        dunning_block_reason="legal hold" if blocked else None,
    )
    has_profile = draw(st.booleans())
    return Customer(
        id=cid,
        name=name,
        region=draw(st.none() | st.sampled_from(_REGIONS)),
        salesperson=draw(st.none() | st.sampled_from(_SALES)),
        sales_manager=draw(st.none() | st.sampled_from(_SALES)),
        contacts=tuple(draw(st.lists(_contact(domain), max_size=3))),
        credit=credit,
        profile=draw(_company_profiles(currency)) if has_profile else CompanyProfile(),
        tags=tuple(draw(st.lists(st.sampled_from(_TAGS), max_size=2, unique=True))),
    )


def customers(
    ids: SearchStrategy[str] | str | None = None,
    *,
    currency: str = "CNY",
    grades: Sequence[str | None] = ("A", "B", "C", "D", None),
    dunning_block: bool | None = False,
    order_block: bool | None = False,
) -> SearchStrategy[Customer]:
    """Customers as credit control sees them, to register (``CustomerRegistered``) before
    invoicing them: a credit profile (grade from ``grades``, a credit limit in ``currency``
    or none, payment terms, prepayment), no, one or several contacts (e-mail and/or phone,
    locale, time zone), and a company profile for credit scoring or none.

    ``ids`` is a strategy or a fixed id (default ``C0001``...``C9999``). ``dunning_block``
    and ``order_block`` are fixed (``False`` by default: a blocked customer is never
    dunned, which hides most of a ladder) or drawn when ``None``.
    """
    id_strategy: SearchStrategy[str]
    if ids is None:
        id_strategy = st.integers(1, 9999).map(lambda n: f"C{n:04d}")
    elif isinstance(ids, str):
        id_strategy = st.just(ids)
    else:
        id_strategy = ids
    if not grades:
        raise ValueError("customers: grades must not be empty")
    return _customer(id_strategy, currency, grades, dunning_block, order_block)


# -- invoices ---------------------------------------------------------------------------------

_TERMS = st.sampled_from(_COMMON_TERMS) | st.integers(0, 120)


@st.composite
def _invoice(
    draw: DrawFn,
    customer_ids: Sequence[str],
    start: date,
    end: date,
    money: SearchStrategy[Money],
    terms: SearchStrategy[int],
) -> InvoiceIssued:
    issued = draw(dates(start, end))
    number = f"INV-{issued:%Y%m}-{draw(st.integers(1, 99_999)):05d}"
    return InvoiceIssued(
        event_id=f"invoice:{number}",
        occurred_at=_at(issued),
        actor="billing",
        number=number,
        customer_id=draw(st.sampled_from(tuple(customer_ids))),
        issue_date=issued,
        due_date=issued + timedelta(days=draw(terms)),
        amount=draw(money),
    )


def receivables_for(
    customer_ids: Sequence[str],
    *,
    start: date | str,
    end: date | str,
    currency: str = "CNY",
    amount: SearchStrategy[Money] | None = None,
    terms: SearchStrategy[int] | None = None,
) -> SearchStrategy[InvoiceIssued]:
    """``InvoiceIssued`` events for customers already registered, to put receivables on a
    book: issued on a day in [``start``, ``end``], due after common payment terms (net 0
    to net 120 days, mostly 30 or 60), for a realistic amount (:func:`amounts`, in
    ``currency``).

    The event id is ``invoice:<number>`` and the number ``INV-<yyyymm>-<nnnnn>``; draw a
    batch with unique numbers with
    ``st.lists(receivables_for(ids, ...), unique_by=lambda e: e.number)`` and apply it in
    issue order.
    """
    if not customer_ids:
        raise ValueError("receivables_for: no customer ids")
    lo, hi = _day(start), _day(end)
    if hi < lo:
        raise ValueError(f"receivables_for: end {hi} is before start {lo}")
    return _invoice(
        list(customer_ids),
        lo,
        hi,
        amount if amount is not None else amounts(currency=currency),
        terms if terms is not None else _TERMS,
    )


# -- whole histories --------------------------------------------------------------------------

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

    def pay(self, customer_id: str, units: int) -> None:
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
                event = PaymentReceived(
                    **meta("bank"),
                    payment_id=next_id("PAY"),
                    customer_id=cid,
                    amount=_money(units, currency),
                    received_on=today,
                    reference=f"bank-ref-{len(events) + 1}",
                )
                book.pay(cid, units)
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
    ledger in order. Ids are deterministic: events ``e0001``..., customers ``C01``...,
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
