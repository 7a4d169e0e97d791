"""``arflow.rows`` writes the JSON of a plain invoice's event, receivable and audit record
without building the models: it must be byte for byte what the models serialise to, for
any text, currency, amount, tag list and time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from arflow.domain import Contact, CreditProfile, Customer
from arflow.events import InvoiceIssued
from arflow.ledger import _audit, _issued, _issued_summary
from arflow.money import Money, minor_unit
from arflow.rows import plain_invoice, plain_rows
from arflow.store.base import json_of
from arflow.summary import summary_text

# Any text pydantic can write: every code point but lone surrogates, quotes, backslashes,
# control characters, non-ASCII and astral characters included.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
# Identifiers and addresses: printable text on one line (``arflow.domain.check_identifier``).
LINE = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zl", "Zp", "Zs"))
    | st.just(" "),
    max_size=12,
)
IDS = st.one_of(st.from_regex(r"[A-Z]{1,3}-[0-9]{1,6}", fullmatch=True), LINE.filter(bool))
CURRENCIES = st.sampled_from(["CNY", "JPY", "KWD", "USD", "EUR", "CLF", "BHD"])
OFFSETS = st.one_of(
    st.just(UTC),
    st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
    st.integers(-50_000, 50_000).map(lambda s: timezone(timedelta(seconds=s))),
)


@st.composite
def invoices(draw: st.DrawFn) -> tuple[InvoiceIssued, Customer]:
    currency = draw(CURRENCIES)
    places = minor_unit(currency)
    units = draw(st.integers(1, 10**15 - 1))
    amount = Money(amount=Decimal(units).scaleb(-places), currency=currency)
    issued = draw(st.dates(date(1990, 1, 1), date(2090, 1, 1)))
    at = datetime(issued.year, issued.month, issued.day, tzinfo=draw(OFFSETS)) + timedelta(
        seconds=draw(st.integers(0, 86_399)), microseconds=draw(st.sampled_from([0, 1, 500_000]))
    )
    customer = Customer(
        id=draw(IDS),
        name="x",
        region=draw(st.none() | TEXT),
        salesperson=draw(st.none() | LINE),
        contacts=(Contact(name="a"),),
        credit=CreditProfile(payment_terms_days=draw(st.integers(0, 400))),
    )
    event = InvoiceIssued(
        event_id=draw(IDS),
        occurred_at=at,
        actor=draw(TEXT.filter(bool)),
        reason=draw(st.none() | TEXT),
        number=draw(IDS),
        customer_id=customer.id,
        issue_date=issued,
        due_date=draw(st.none() | st.just(issued + timedelta(days=draw(st.integers(0, 500))))),
        amount=amount,
        salesperson=draw(st.none() | LINE),
        region=draw(st.none() | TEXT),
        product_line=draw(st.none() | TEXT),
        tags=tuple(draw(st.lists(TEXT, max_size=3))),
    )
    return event, customer


def _due(e: InvoiceIssued, customer: Customer) -> date:
    return e.due_date or e.issue_date + timedelta(days=customer.credit.payment_terms_days)


def _by_models(e: InvoiceIssued, customer: Customer) -> tuple[str, str, str]:
    """What the general path (``Ledger._invoice_issued``) stores for ``e``."""
    due = _due(e, customer)
    r = _issued(e, customer, due, e.salesperson or customer.salesperson)
    audit = _audit(e, r, None, _issued_summary(e, due))
    return json_of(e), json_of(r), json_of(audit)


def _by_rows(e: InvoiceIssued, customer: Customer) -> tuple[str, str, str]:
    p = plain_invoice(e)
    receivable, audit = plain_rows(
        p, _due(e, customer), e.salesperson or customer.salesperson, e.region or customer.region
    )
    return p.body, receivable, audit


@settings(max_examples=400)
@given(invoices())
def test_rows_are_what_the_models_serialise_to(case: tuple[InvoiceIssued, Customer]) -> None:
    event, customer = case
    assert _by_rows(event, customer) == _by_models(event, customer)
    due = _due(event, customer)
    r = _issued(event, customer, due, event.salesperson or customer.salesperson)
    p = plain_invoice(event)
    assert p.summary == summary_text(r)
    assert (p.issued, p.due) == (
        event.issue_date.toordinal(),
        None if event.due_date is None else event.due_date.toordinal(),
    )
    assert (p.money, p.positive) == (str(event.amount), True)


@given(invoices())
@example(None)
def test_the_same_instant_in_two_offsets_is_written_as_each_offset(
    case: tuple[InvoiceIssued, Customer] | None,
) -> None:
    """Equal instants in different offsets are equal datetimes: the cache of written
    instants must not hand one's text to the other."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    if case is None:
        event = InvoiceIssued(
            occurred_at=base,
            actor="a",
            number="N1",
            customer_id="C1",
            issue_date=date(2026, 1, 1),
            amount=Money.of("1", "CNY"),
        )
        customer = Customer(id="C1", name="x")
    else:
        event, customer = case
    for tz in (UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))):
        shifted = event.model_copy(update={"occurred_at": base.astimezone(tz)})
        assert _by_rows(shifted, customer) == _by_models(shifted, customer)
