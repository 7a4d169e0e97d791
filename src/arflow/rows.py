"""The stored rows a plain invoice creates, written without building models.

An import is mostly ``InvoiceIssued`` events without contract, payment node or order. Each
one writes three JSON documents: the event itself, the new receivable and its audit record.
Building the receivable and the audit record as pydantic models only to serialise them
again cost more than SQLite takes to store them, so :func:`plain_invoice` writes the three
documents directly from the already validated event, all but the few parts that depend on
the customer (the due date by its payment terms, its salesperson and region), which
:func:`plain_rows` adds.

The output must be byte for byte what ``json_of`` (``model_dump_json`` leaving out the
fields that are None) gives for the same models: the stored book, the event log and the
audit trail are the same whichever path wrote them.
``tests/test_rows.py`` checks that on generated events (any text, currency, tag list,
time zone), and the field lists below are checked against the models when this module is
imported, so that a new field cannot be forgotten here silently.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, NamedTuple, TypeGuard

from pydantic import TypeAdapter

from .domain import AuditRecord, Receivable
from .events import InvoiceIssued
from .money import Money, minor_unit
from .summary import plain_summary_text

_RECEIVABLE_FIELDS = (
    "id customer_id contract_id payment_node_id order_id issue_date due_date amount paid "
    "credited written_off disputed_amount open_balance state dunning_level dunning_block "
    "dunning_block_reason salesperson region product_line tags promise_id closed_on "
    "last_dunned_on risk_level invoice_request_id stage sent_on confirmed_on"
).split()
_AUDIT_FIELDS = (
    "event_id event_type subject_kind subject_id actor occurred_at reason summary "
    "before_state after_state before_balance after_balance refused"
).split()
_EVENT_FIELDS = (
    "event_id occurred_at actor reason type number customer_id issue_date due_date amount "
    "contract_id payment_node_id order_id salesperson region product_line tags "
    "invoice_request_id"
).split()
for _model, _fields in (
    (Receivable, _RECEIVABLE_FIELDS),
    (AuditRecord, _AUDIT_FIELDS),
    (InvoiceIssued, _EVENT_FIELDS),
):
    if list(_model.model_fields) != _fields:  # pragma: no cover - a developer's mistake
        raise ImportError(f"arflow.rows is out of date with {_model.__name__}'s fields")

_dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
_instant_json = TypeAdapter(datetime).dump_json

#: JSON of strings seen before (ids of customers, actors, regions, tags repeat a lot).
_TEXT: dict[str, str] = {}
_TEXT_MAX = 50_000
#: JSON of instants seen before, by (instant, UTC offset): equal instants in different
#: offsets are written differently.
_INSTANTS: dict[tuple[datetime, Any], str] = {}
#: JSON of the zero amount, by currency.
_ZEROS: dict[str, str] = {}


def _text(s: str) -> str:
    found = _TEXT.get(s)
    if found is None:
        found = _dumps(s)
        if len(_TEXT) >= _TEXT_MAX:
            _TEXT.clear()
        _TEXT[s] = found
    return found


def _field(name: str, s: str | None) -> str:
    """``,"name":"s"``, or nothing when ``s`` is None (stored JSON leaves None out)."""
    return "" if s is None else f',"{name}":{_text(s)}'


def _unique(s: str) -> str:
    """JSON of a string unlikely to repeat (a number, an event id)."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    return _dumps(s)


def _instant(at: datetime) -> str:
    key = (at, at.utcoffset())
    found = _INSTANTS.get(key)
    if found is None:
        found = _instant_json(at).decode()
        if len(_INSTANTS) >= _TEXT_MAX:
            _INSTANTS.clear()
        _INSTANTS[key] = found
    return found


def _money(m: Money) -> str:
    return f'{{"amount":"{m.amount}","currency":{_text(m.currency)}}}'


def _nothing(currency: str) -> str:
    found = _ZEROS.get(currency)
    if found is None:
        found = _ZEROS[currency] = _money(Money.zero(currency))
    return found


def _day(d: date) -> str:
    return f'"{d.isoformat()}"'


class PlainInvoice(NamedTuple):
    """A validated ``InvoiceIssued`` without contract, payment node or order, as the ledger's
    bulk path applies it: whatever of its stored rows does not depend on the customer is
    written already. :func:`plain_invoice` makes it from the event (in the ledger, or in the
    importer's reader process, which hands it over as a tuple of strings and integers at a
    fraction of the cost of a pydantic model); :func:`plain_rows` finishes the rows once the
    customer is known. Only the ledger's bulk path and the importer use it."""

    event_id: str
    number: str
    customer_id: str
    issued: int  #: the issue date's ordinal
    due: int | None  #: the due date's ordinal; None: by the customer's payment terms
    salesperson: str | None
    region: str | None
    money: str  #: the amount as ``str(Money)`` (for messages)
    positive: bool  #: whether the amount is above zero
    body: str  #: the event's stored JSON
    receivable: tuple[str, str, str]  #: the receivable's JSON before the due date, after
    #: it up to the salesperson, and after the region
    audit: tuple[str, str]  #: the audit record's JSON before and after its summary
    summary: str  #: the receivable's summary column (``plain_summary_text``)
    currency: str = ""  #: the amount's currency
    minor: int = 0  #: the amount in the currency's minor units (the movement journal)
    product_line: str | None = None


def is_plain(event: object) -> TypeGuard[InvoiceIssued]:
    """Whether ``event`` is an InvoiceIssued without contract, payment node or order: one
    the bulk path takes (as :func:`plain_invoice` makes it)."""
    return (
        type(event) is InvoiceIssued
        and event.contract_id is None
        and event.payment_node_id is None
        and event.order_id is None
        and event.invoice_request_id is None
    )


def plain_invoice(e: InvoiceIssued) -> PlainInvoice:
    """``e`` (without contract, payment node or order) made ready for the bulk path."""
    number = _unique(e.number)
    customer = _text(e.customer_id)
    event_id = _unique(e.event_id)
    actor = _text(e.actor)
    at = _instant(e.occurred_at)
    reason = _field("reason", e.reason)
    issued = _day(e.issue_date)
    amount = _money(e.amount)
    nothing = _nothing(e.amount.currency)
    product_line = _field("product_line", e.product_line)
    tags = "[" + ",".join(_text(t) for t in e.tags) + "]"
    event_due = "" if e.due_date is None else f',"due_date":{_day(e.due_date)}'
    body = (
        f'{{"event_id":{event_id},"occurred_at":{at},"actor":{actor}{reason},'
        f'"type":"InvoiceIssued","number":{number},"customer_id":{customer},'
        f'"issue_date":{issued}{event_due},"amount":{amount}'
        f"{_field('salesperson', e.salesperson)}{_field('region', e.region)}{product_line}"
        f',"tags":{tags}}}'
    )
    money = str(e.amount)
    return PlainInvoice(
        e.event_id,
        e.number,
        e.customer_id,
        e.issue_date.toordinal(),
        None if e.due_date is None else e.due_date.toordinal(),
        e.salesperson,
        e.region,
        money,
        e.amount.amount > 0,
        body,
        (
            f'{{"id":{number},"customer_id":{customer},"issue_date":{issued},"due_date":',
            f',"amount":{amount},"paid":{nothing},"credited":{nothing},'
            f'"written_off":{nothing},"disputed_amount":{nothing},"open_balance":{amount},'
            f'"state":"open","dunning_level":0,"dunning_block":false',
            f'{product_line},"tags":{tags}}}',
        ),
        (
            f'{{"event_id":{event_id},"event_type":"InvoiceIssued","subject_kind":"receivable",'
            f'"subject_id":{number},"actor":{actor},"occurred_at":{at}{reason},"summary":',
            f',"after_state":"open","after_balance":{amount}}}',
        ),
        plain_summary_text(e.amount.currency, e.issue_date, e.amount.amount),
        e.amount.currency,
        int(e.amount.amount.scaleb(minor_unit(e.amount.currency))),
        e.product_line,
    )


def plain_rows(
    p: PlainInvoice, due: date, salesperson: str | None, region: str | None
) -> tuple[str, str]:
    """(receivable, audit record) JSON of ``p`` due on ``due``, with the salesperson and
    region it takes (its own, or else the customer's): what ``Ledger._invoice_issued``
    stores."""
    head, mid, tail = p.receivable
    receivable = (
        f"{head}{_day(due)}{mid}{_field('salesperson', salesperson)}"
        f"{_field('region', region)}{tail}"
    )
    return receivable, f"{p.audit[0]}{_unique(issued_summary(p.money, due))}{p.audit[1]}"


def issued_summary(money: str, due: date) -> str:
    """The audit summary of an issued invoice: ``issued <amount>, due <date>``."""
    return f"issued {money}, due {due}"
