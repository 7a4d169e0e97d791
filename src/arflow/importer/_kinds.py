"""The flat row kinds (people, customers, invoices, payments): what a record of each becomes, as an
event validated by its model, pydantic's complaints mapped back to the record's columns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import ValidationError as PydanticValidationError

from ..errors import AmountOutOfRange, DateOutOfRange
from ..events import (
    BaseEvent,
    CustomerRegistered,
    Event,
    InvoiceIssued,
    PaymentReceived,
    PersonAdded,
)
from ..money import Money
from ._cells import _json_type, _Row, parse_amount
from ._schema import PERSON_CHANNELS

#: Where a pydantic error location points in the input: (row, column).
ColumnOf = Callable[[tuple[Any, ...]], tuple[int, str]]
E = TypeVar("E", bound=BaseEvent)


def _build(r: _Row, cls: type[E], payload: dict[str, Any], column_of: ColumnOf) -> E | None:
    """Validate ``payload`` as event ``cls``; report pydantic's errors against columns.

    ``column_of(loc)`` names the (row, column) a pydantic error location points at. A row
    that already failed is still validated, so that all its problems are reported at once.
    """
    try:
        # cls.model_validate(payload), minus its keyword handling
        event: E = cls.__pydantic_validator__.validate_python(payload)
    except PydanticValidationError as exc:
        _report_pydantic(r, exc, column_of)
        return None
    except (AmountOutOfRange, DateOutOfRange) as exc:
        # The models raise these themselves (not through pydantic): no location comes with
        # them. The columns are checked before, so this is a guard; name the column by value.
        r.fail(_column_holding(r.rec, exc), str(exc))
        return None
    return None if r.bad else event


def _column_holding(rec: dict[str, Any], exc: AmountOutOfRange | DateOutOfRange) -> str:
    """The column of ``rec`` whose text is the value ``exc`` refuses, else ``-``."""
    value = exc.amount if isinstance(exc, AmountOutOfRange) else exc.value
    if isinstance(value, date | datetime):
        shown = value.isoformat()
        return next((c for c, v in rec.items() if isinstance(v, str) and shown in v), "-")
    return next((c for c, v in rec.items() if isinstance(v, str) and v == str(value)), "-")


def _report_pydantic(r: _Row, exc: PydanticValidationError, column_of: ColumnOf) -> None:
    for err in exc.errors(include_url=False):
        row, column = column_of(err["loc"])
        if r.failed is not None and (row, column) in r.failed:
            continue  # already reported in the importer's own words
        msg = str(err["msg"]).removeprefix("Value error, ")
        given = err.get("input")
        if isinstance(given, str | int | Decimal) and not isinstance(given, bool):
            shown = repr(given if not isinstance(given, Decimal) else str(given))
            if shown not in msg and len(shown) <= 60:
                msg = f"{msg} (got {shown})"
        r.fail(column, msg, row)


# -- people -------------------------------------------------------------------------------------
def _person(r: _Row) -> PersonAdded | None:
    """A row of the people directory: its addresses one column per channel, its roles
    separated by ``;`` (a list in JSON). A manager must come before the people they manage
    (in an earlier row or file, or already in the book)."""
    pid = r.need("id")
    r.claim("person", pid, "id")
    person: dict[str, Any] = {
        "id": pid,
        "name": r.need("name"),
        "roles": r.tags("roles"),
        "manager": r.text("manager"),
        "addresses": [
            {"channel": ch, "address": v} for ch in PERSON_CHANNELS if (v := r.text(ch)) is not None
        ],
    }
    for col in ("locale", "timezone"):
        if (v := r.text(col)) is not None:
            person[col] = v
    if (active := r.boolean("active")) is not None:
        person["active"] = active
    at = r.instant("occurred_at")
    payload = {
        "event_id": f"import:person:{pid}",
        "occurred_at": at or r.run.now,
        "actor": r.run.actor,
        "person": person,
    }
    channels = [a["channel"] for a in person["addresses"]]

    def column_of(loc: tuple[Any, ...]) -> tuple[int, str]:
        if loc[:2] == ("person", "addresses") and len(loc) > 2 and isinstance(loc[2], int):
            return r.row, channels[loc[2]]
        if loc[:1] == ("person",) and len(loc) > 1:
            return r.row, str(loc[1])
        if loc[:1] == ("person",):
            return r.row, "id"  # the person as a whole (their own manager, ...)
        return r.row, "id" if loc[:1] == ("event_id",) else str(loc[0]) if loc else "-"

    return _build(r, PersonAdded, payload, column_of)


# -- customers ----------------------------------------------------------------------------------
_CUSTOMER_LOC = {
    ("customer", "contacts", 0, "name"): "contact_name",
    ("customer", "contacts", 0, "email"): "contact_email",
    ("customer", "contacts", 0, "phone"): "contact_phone",
    ("customer", "contacts", 0, "preferred_channel"): "preferred_channel",
    ("customer", "contacts", 0, "locale"): "locale",
    ("customer", "contacts", 0, "timezone"): "timezone",
    ("event_id",): "id",
}
_CONTACT = {
    "contact_name": "name",
    "contact_email": "email",
    "contact_phone": "phone",
    "preferred_channel": "preferred_channel",
    "locale": "locale",
    "timezone": "timezone",
}


def _customer(r: _Row) -> CustomerRegistered | None:
    cid = r.need("id")
    r.claim("customer", cid, "id")
    name = r.need("name")
    currency = r.currency("currency", required=False)
    credit: dict[str, Any] = {}
    if r.has("credit_limit"):
        if currency is None and not r.has("currency"):
            r.fail("currency", "required when credit_limit is set")
        limit = r.amount("credit_limit", currency, zero_ok=True)
        if limit is not None and currency is not None:
            credit["credit_limit"] = Money(amount=limit, currency=currency)
    if (grade := r.text("grade")) is not None:
        credit["grade"] = grade
    if (terms := r.integer("payment_terms_days")) is not None:
        credit["payment_terms_days"] = terms
    if (pp := r.percent("prepayment_percent")) is not None:
        credit["prepayment_percent"] = pp
    contact = {field: v for col, field in _CONTACT.items() if (v := r.text(col)) is not None}
    tags = r.tags("tags")
    at = r.instant("occurred_at")
    customer: dict[str, Any] = {
        "id": cid,
        "name": name,
        "region": r.text("region"),
        "salesperson": r.text("salesperson"),
        "sales_manager": r.text("sales_manager"),
        "credit": credit,
        "tags": tags,
    }
    if contact:
        contact.setdefault("name", name)
        customer["contacts"] = [contact]
    payload = {
        "event_id": f"import:customer:{cid}",
        "occurred_at": at or r.run.now,
        "actor": r.run.actor,
        "customer": customer,
    }

    def column_of(loc: tuple[Any, ...]) -> tuple[int, str]:
        found = _CUSTOMER_LOC.get(loc[:4]) or _CUSTOMER_LOC.get(loc[:1])
        if found is not None:
            return r.row, found
        if loc[:2] == ("customer", "credit") and len(loc) > 2:
            return r.row, str(loc[2])  # credit columns are named as the fields
        if loc[:1] == ("customer",) and len(loc) > 1:
            return r.row, str(loc[1])
        return r.row, str(loc[0]) if loc else "-"

    return _build(r, CustomerRegistered, payload, column_of)


# -- invoices --------------------------------------------------------------------------------------
def _invoice(r: _Row) -> InvoiceIssued | None:
    number = r.need("number")
    r.claim("invoice", number, "number")
    customer_id = r.need("customer_id")
    issued = r.date("issue_date", required=True)
    due = r.date("due_date")
    currency = r.currency("currency")
    amount = r.amount("amount", currency)
    at = r.instant("occurred_at")
    tags = r.tags("tags")
    if r.bad or amount is None or currency is None or issued is None:
        return None
    payload = {
        "event_id": f"import:invoice:{number}",
        "occurred_at": at or r.run.midnight(issued),
        "actor": r.run.actor,
        "number": number,
        "customer_id": customer_id,
        "issue_date": issued,
        "due_date": due,
        "amount": {"amount": amount, "currency": currency},
        "contract_id": r.text("contract_id"),
        "payment_node_id": r.text("payment_node_id"),
        "order_id": r.text("order_id"),
        "salesperson": r.text("salesperson"),
        "region": r.text("region"),
        "product_line": r.text("product_line"),
        "tags": tags,
    }
    return _build(r, InvoiceIssued, payload, lambda loc: (r.row, _flat_column(loc, "number")))


def _flat_column(loc: tuple[Any, ...], key_column: str) -> str:
    if not loc:
        return "-"
    return key_column if loc[0] == "event_id" else str(loc[0])


# -- payments --------------------------------------------------------------------------------------
def _payment(r: _Row) -> PaymentReceived | None:
    payment_id = r.need("payment_id")
    r.claim("payment", payment_id, "payment_id")
    customer_id = r.need("customer_id")
    received = r.date("received_on", required=True)
    currency = r.currency("currency")
    amount = r.amount("amount", currency)
    reference = r.text("reference")
    at = r.instant("occurred_at")
    allocations = _allocations(r, currency)
    if r.bad or amount is None or currency is None or received is None:
        return None
    payload = {
        "event_id": f"import:payment:{payment_id}",
        "occurred_at": at or r.run.midnight(received),
        "actor": r.run.actor,
        "payment_id": payment_id,
        "customer_id": customer_id,
        "amount": Money(amount=amount, currency=currency),
        "received_on": received,
        "reference": reference,
        "allocations": allocations,
    }

    def column_of(loc: tuple[Any, ...]) -> tuple[int, str]:
        if loc and loc[0] == "allocations":
            return r.row, "allocate_to"
        return r.row, _flat_column(loc, "payment_id")

    return _build(r, PaymentReceived, payload, column_of)


def _allocations(r: _Row, currency: str | None) -> list[dict[str, Any]] | None:
    """``allocate_to``: empty for oldest-due-first, ``-`` for none, else
    ``INV-1:100.00;INV-2:50`` (in JSON also a list of {"invoice", "amount"} objects)."""
    col = "allocate_to"
    v = r.rec.get(col)
    if isinstance(v, str):
        v = v.strip()
    if v is None or v == "":
        return None
    pairs: list[tuple[str, str]] = []
    if isinstance(v, str):
        if v == "-":
            return []
        for part in v.split(";"):
            part = part.strip()
            if not part:
                continue
            number, sep, amount = part.rpartition(":")
            if not sep or not number.strip() or not amount.strip():
                r.fail(col, f"{part!r} is not INVOICE:AMOUNT")
                continue
            pairs.append((number.strip(), amount.strip()))
    elif isinstance(v, list):
        for i, item in enumerate(v, 1):
            ok = isinstance(item, dict) and set(item) == {"invoice", "amount"}
            if not ok or not isinstance(item["invoice"], str):
                r.fail(col, f"item {i} is not an object {{'invoice': ..., 'amount': ...}}")
                continue
            amt = item["amount"]
            if isinstance(amt, int | Decimal) and not isinstance(amt, bool):
                amt = str(amt)
            if not isinstance(amt, str):
                r.fail(col, f"item {i}: amount must be text or a number")
                continue
            pairs.append((item["invoice"].strip(), amt))
    else:
        r.fail(col, f"expected text, got {_json_type(v)}")
        return None
    if not pairs and not r.bad:
        r.fail(col, "no allocation given (leave empty for oldest-due-first, '-' for none)")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, text in pairs:
        if number in seen:
            r.fail(col, f"invoice {number!r} is listed twice")
        seen.add(number)
        try:
            d = parse_amount(text, currency)
        except ValueError as exc:
            r.fail(col, f"{number}: {exc}")
            continue
        if d <= 0:
            r.fail(col, f"{number}: amount {text!r} must be positive")
        elif currency is not None:
            out.append({"receivable_id": number, "amount": Money(amount=d, currency=currency)})
    return out


_BUILDERS: dict[str, Callable[[_Row], Event | None]] = {
    "people": _person,
    "customers": _customer,
    "invoices": _invoice,
    "payments": _payment,
}
