"""Importing an ERP export: customers, contracts, invoices and payments from CSV or JSON.

Each row becomes one event whose id comes from its kind and natural key
(``import:invoice:INV-1``), so importing the same file again changes nothing. All the files
of one call are checked and applied in one transaction, customers first and payments last:
one bad row anywhere rejects the whole import with :class:`~arflow.errors.ImportRejected`,
which lists every problem as ``(file, row, column, reason)``. Rows are read, turned into
events and applied one at a time, so memory does not grow with the size of the files.

The columns, formats and rules are documented in ``docs/import.md``.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO, TypeVar

from pydantic import ValidationError as PydanticValidationError

from ._gc import fewer_gc_passes
from ._reader import ReaderFailed
from .domain import FIRST_DATE, LAST_DATE, check_identifier
from .errors import (
    AmountOutOfRange,
    ArflowError,
    ClosedItem,
    CurrencyMismatch,
    DateOutOfRange,
    DuplicateObject,
    ImportRejected,
    InvalidAmount,
    InvalidDates,
    OverAllocation,
    UnknownObject,
)
from .events import (
    BaseEvent,
    ContractSigned,
    CustomerRegistered,
    Event,
    InvoiceIssued,
    PaymentReceived,
    parse_event,
)
from .ledger import Ledger
from .money import AMOUNT_LIMIT, MAX_INTEGER_DIGITS, Money, check_currency, minor_unit
from .rows import PlainInvoice

__all__ = ["COLUMNS", "KINDS", "ImportReport", "ReaderFailed", "import_files"]

#: The kinds of file, in the order they are applied (each may refer to the ones before).
KINDS = ("customers", "contracts", "invoices", "payments")

#: Per kind: (required columns, optional columns). JSON records use the same names, except
#: contracts in JSON, which use the nested form of the models (see docs/import.md).
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "customers": (
        ("id", "name"),
        (
            "region",
            "salesperson",
            "sales_manager",
            "contact_name",
            "contact_email",
            "contact_phone",
            "preferred_channel",
            "locale",
            "timezone",
            "grade",
            "credit_limit",
            "currency",
            "payment_terms_days",
            "prepayment_percent",
            "tags",
            "occurred_at",
        ),
    ),
    "contracts": (
        ("contract_id", "customer_id", "signed_on", "amount", "currency"),
        (
            "title",
            "project_id",
            "project_name",
            "salesperson",
            "node_id",
            "node_label",
            "node_amount",
            "node_percent",
            "due_days",
            "due_end_of_month",
            "due_milestone_id",
            "milestone_name",
            "milestone_planned_date",
            "occurred_at",
        ),
    ),
    "invoices": (
        ("number", "customer_id", "issue_date", "amount", "currency"),
        (
            "due_date",
            "contract_id",
            "payment_node_id",
            "order_id",
            "salesperson",
            "region",
            "product_line",
            "tags",
            "occurred_at",
        ),
    ),
    "payments": (
        ("payment_id", "customer_id", "amount", "currency", "received_on"),
        ("reference", "allocate_to", "occurred_at"),
    ),
}

_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl"}
_CONTRACT_COLUMNS = (
    "customer_id",
    "title",
    "signed_on",
    "amount",
    "currency",
    "project_id",
    "project_name",
    "salesperson",
    "occurred_at",
)
_NODE_COLUMNS = (
    "node_label",
    "node_amount",
    "node_percent",
    "due_days",
    "due_end_of_month",
    "due_milestone_id",
    "milestone_name",
    "milestone_planned_date",
)
_CHUNK = 1 << 16
_MAX_JSON_RECORD = 1 << 24
#: Longest JSON integer read (digits); a longer one is refused, not converted.
_MAX_JSON_INT = 40
#: Deepest nesting of a JSON contract record (a contract, its nodes, their due rules...).
_MAX_JSON_DEPTH = 16
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_GROUPED_NUMBER = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_DATE = re.compile(r"([0-9]{4})([-/])([0-9]{2})\2([0-9]{2})")
_INTEGER = re.compile(r"[0-9]{1,9}")
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_QUANTA = {n: Decimal(1).scaleb(-n) for n in range(5)}

_HORIZON = f"{FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}"

Problem = tuple[str, int, str, str]
Where = tuple[str, int, str, str]  # file, row, kind, format
#: How many recent events' rows are kept, for a ledger that reads ahead of the one it
#: refuses and names it (``exc.event_id``).
_RECENT = 4096
#: Files larger than this in all are read by a second process (``arflow._reader``).
READER_PROCESS_BYTES = 16 * 1024 * 1024
#: Where a pydantic error location points in the input: (row, column).
ColumnOf = Callable[[tuple[Any, ...]], tuple[int, str]]
E = TypeVar("E", bound=BaseEvent)


@dataclass(frozen=True)
class ImportReport:
    """What an import did: events read per kind, and how many were new to the book."""

    files: tuple[str, ...]
    customers: int = 0
    contracts: int = 0
    invoices: int = 0
    payments: int = 0
    applied: int = 0

    @property
    def events(self) -> int:
        """Events read from the files (one per customer, contract, invoice, payment)."""
        return self.customers + self.contracts + self.invoices + self.payments

    @property
    def already_imported(self) -> int:
        """Events whose id the book already held: rows imported before, skipped."""
        return self.events - self.applied

    def __str__(self) -> str:
        return (
            f"imported {len(self.files)} file(s): {self.customers} customer(s), "
            f"{self.contracts} contract(s), {self.invoices} invoice(s), "
            f"{self.payments} payment(s); {self.applied} new event(s) applied, "
            f"{self.already_imported} already in the book"
        )


class _Rejected(Exception):
    """Raised inside the event stream so that the ledger's transaction rolls back."""


class _Run:
    """State shared by the event stream and :func:`import_files`: problems so far, the
    keys already seen, and where the event being applied came from."""

    def __init__(self, files: int, actor: str, now: datetime) -> None:
        self.problems: list[Problem] = []
        self.actor = actor
        self.now = now
        self.files: list[str] = []
        self._nfiles = max(files, 1)
        self._seen: dict[str, int] = {}
        self.counts = dict.fromkeys(KINDS, 0)
        self.where: Where | None = None  # of the event handed to the ledger last
        self.recent: dict[str, Where] = {}  # of the last events handed over, by event id
        self._ring: list[str | None] = [None] * _RECENT  # their ids, oldest one next
        self._ring_at = 0
        self.dates: dict[str, date] = {}
        self._midnights: dict[date, datetime] = {}

    def handed_over(self, event_id: str, where: Where) -> None:
        """Remember where the event handed to the ledger came from (the last ``_RECENT``)."""
        self.where = where
        ring, at = self._ring, self._ring_at
        oldest = ring[at]
        if oldest is not None:
            self.recent.pop(oldest, None)
        ring[at] = event_id
        self._ring_at = (at + 1) % _RECENT
        self.recent[event_id] = where

    def problem(self, file: str, row: int, column: str, reason: str) -> None:
        self.problems.append((file, row, column, reason))

    def claim(self, key: str, file_no: int, row: int) -> tuple[str, int] | None:
        """Record ``key`` as taken at (file, row); if it was taken before, say where."""
        packed = row * self._nfiles + file_no
        first = self._seen.setdefault(key, packed)
        if first == packed:
            return None
        first_row, first_file = divmod(first, self._nfiles)
        return self.files[first_file], first_row

    def parse_date(self, text: str) -> date:
        """``YYYY-MM-DD`` (or ``YYYY/MM/DD``) to a date; raises ``ValueError`` with why."""
        found = self.dates.get(text)
        if found is not None:
            return found
        m = _DATE.fullmatch(text)
        if m is None:
            raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
        try:
            d = date(int(m[1]), int(m[3]), int(m[4]))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a date: {exc}") from None
        if not FIRST_DATE <= d <= LAST_DATE:
            raise ValueError(f"{text!r} is outside the dates arflow accepts ({_HORIZON})")
        if len(self.dates) < 100_000:
            self.dates[text] = d
        return d

    def midnight(self, d: date) -> datetime:
        """00:00 UTC of ``d``: the moment an imported row happened unless it says otherwise."""
        at = self._midnights.get(d)
        if at is None:
            at = self._midnights[d] = datetime(d.year, d.month, d.day, tzinfo=UTC)
        return at


def _short(text: str) -> str:
    """``text`` for a message: whole when short, else its start and its length."""
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def parse_amount(text: str, currency: str | None) -> Decimal:
    """An exact amount from its text, refusing anything whose meaning is not certain.

    ``1234.5`` and ``1,234,567.89`` (commas grouping thousands) are read; a decimal comma
    (``1234,50``), ``1,000`` in a currency with three decimals, exponents (``1.2E+3``),
    currency signs and more decimals than the currency has (``0.30000000000000004``: a
    float that leaked into the export) are refused with ``ValueError`` saying why, because
    guessing would book a wrong amount.
    """
    t = text.strip()
    if _PLAIN_NUMBER.fullmatch(t):
        d = Decimal(t)
    elif _GROUPED_NUMBER.fullmatch(t):
        if "." not in t and currency is not None and minor_unit(currency) == 3:
            raise ValueError(
                f"{text!r} is ambiguous in {currency}, which has 3 decimals: is ',' a thousands "
                "separator or the decimal point? write 1000.000 or 1.000"
            )
        d = Decimal(t.replace(",", ""))
    elif "," in t:
        raise ValueError(
            f"{text!r} is ambiguous: ',' is accepted only as a thousands separator in groups "
            "of three (1,234,567.89); write the decimal point as '.'"
        )
    elif "e" in t.lower() and any(c.isdigit() for c in t):
        raise ValueError(f"{text!r} uses exponent notation: write the plain decimal amount")
    else:
        raise ValueError(f"{_short(text)!r} is not a decimal amount (such as 1234.50)")
    if abs(d) >= AMOUNT_LIMIT:
        raise ValueError(
            f"{_short(t)!r} is out of range: arflow accepts at most {MAX_INTEGER_DIGITS} digits "
            "before the decimal point"
        )
    if currency is not None:
        digits = minor_unit(currency)
        if d != d.quantize(_QUANTA[digits]):
            raise ValueError(
                f"{text!r} has more decimals than {currency} allows ({digits}): a float "
                "rounding artefact? round it in the export"
            )
    return d


class _Row:
    """One input record on its way to becoming an event: typed reads of its values, each
    reporting a problem against its column instead of raising."""

    __slots__ = ("bad", "failed", "file", "file_no", "rec", "row", "run")

    def __init__(self, run: _Run, file_no: int, row: int, rec: dict[str, Any]) -> None:
        self.run = run
        self.file_no = file_no
        self.file = run.files[file_no]
        self.row = row
        self.rec = rec
        self.bad = False
        self.failed: set[tuple[int, str]] | None = None

    def fail(self, column: str, reason: str, row: int | None = None) -> None:
        at = self.row if row is None else row
        self.run.problem(self.file, at, column, reason)
        self.bad = True
        if self.failed is None:
            self.failed = set()
        self.failed.add((at, column))

    def mark(self, column: str) -> None:
        """Count ``column`` as reported: pydantic's follow-up complaint about it is noise."""
        self.failed = (self.failed or set()) | {(self.row, column)}

    def absorb(self, other: _Row) -> None:
        """Take over another row's failures (the rows of one contract are one record)."""
        if other.bad:
            self.bad = True
            self.failed = (self.failed or set()) | (other.failed or set())

    def failed_at(self, col: str) -> bool:
        return self.failed is not None and (self.row, col) in self.failed

    def text(self, col: str) -> str | None:
        """The column's text (the readers strip it); None when it is empty."""
        return self.rec.get(col) or None

    def has(self, col: str) -> bool:
        return bool(self.rec.get(col))

    def need(self, col: str) -> str:
        v = self.rec.get(col)
        if v:
            return v  # type: ignore[no-any-return]
        if not self.failed_at(col):
            self.fail(col, "required, but empty")
        return ""

    def claim(self, kind: str, key: str, col: str) -> None:
        if not key:
            return
        try:
            check_identifier(key, "the invoice number" if kind == "invoice" else f"the {kind} id")
        except ValueError as exc:
            self.fail(col, str(exc))  # said once, not again for the event id made of it
            return
        first = self.run.claim(f"{kind}:{key}", self.file_no, self.row)
        if first is not None:
            self.fail(col, f"{kind} {key!r} appears twice in this import (first at {_at(first)})")

    def date(self, col: str, *, required: bool = False) -> date | None:
        v = self.rec.get(col)
        if v:
            found = self.run.dates.get(v)
            if found is not None:
                return found
        elif required:
            self.need(col)
            return None
        else:
            return None
        try:
            return self.run.parse_date(v)
        except ValueError as exc:
            self.fail(col, str(exc))
            return None

    def instant(self, col: str) -> datetime | None:
        """An ``occurred_at``: ISO 8601 with a UTC offset, or a date (00:00 UTC)."""
        v = self.rec.get(col)
        return self.instant_of(col, v) if v else None

    def instant_of(self, col: str, v: Any) -> datetime | None:
        if v is None:
            return None
        if not isinstance(v, str):
            self.fail(col, f"expected text, got {_json_type(v)}")
            return None
        v = v.strip()
        if not v:
            return None
        if _DATE.fullmatch(v):
            try:
                return self.run.midnight(self.run.parse_date(v))
            except ValueError as exc:
                self.fail(col, str(exc))
                return None
        try:
            at = datetime.fromisoformat(v)
        except ValueError:
            self.fail(col, f"{v!r} is not a date-time (2026-01-05T09:30:00+08:00)")
            return None
        if at.tzinfo is None:
            self.fail(col, f"{v!r} has no UTC offset (add Z or +08:00): the moment is ambiguous")
            return None
        if not FIRST_DATE.year <= at.year <= LAST_DATE.year:
            self.fail(col, f"{v!r} is outside the dates arflow accepts ({_HORIZON})")
            return None
        return at

    def currency(self, col: str, *, required: bool = True) -> str | None:
        v = self.need(col) if required else self.text(col)
        if not v:
            return None
        code = v.upper()
        try:
            return check_currency(code)
        except ValueError as exc:
            hint = " (the ISO code of renminbi is CNY)" if code == "RMB" else ""
            self.fail(col, f"{exc}{hint}")
            return None

    def amount(
        self, col: str, currency: str | None, *, required: bool = True, zero_ok: bool = False
    ) -> Decimal | None:
        v = self.need(col) if required else self.text(col)
        if not v:
            return None
        try:
            d = parse_amount(v, currency)
        except ValueError as exc:
            self.fail(col, str(exc))
            return None
        if d < 0 or (d == 0 and not zero_ok):
            self.fail(col, f"{v!r}: must be {'zero or more' if zero_ok else 'positive'}")
            return None
        return d

    def integer(self, col: str) -> int | None:
        v = self.text(col)
        if not v:
            return None
        if not _INTEGER.fullmatch(v):
            self.fail(col, f"{v!r} is not a whole number of days")
            return None
        return int(v)

    def percent(self, col: str) -> Decimal | None:
        v = self.text(col)
        if not v:
            return None
        try:
            d = parse_amount(v.removesuffix("%").strip(), None)
        except ValueError as exc:
            self.fail(col, str(exc).replace("amount", "percentage"))
            return None
        if not 0 <= d <= 100:
            self.fail(col, f"{v!r} is outside 0..100")
            return None
        return d

    def boolean(self, col: str) -> bool | None:
        v = self.text(col)
        if not v:
            return None
        b = _BOOLEANS.get(v.lower())
        if b is None:
            self.fail(col, f"{v!r} is not true/false (yes/no, 1/0)")
        return b

    def tags(self, col: str) -> tuple[str, ...]:
        v = self.rec.get(col)
        if not v:
            return ()
        if isinstance(v, str):
            return tuple(t for t in (p.strip() for p in v.split(";")) if t)
        if all(isinstance(t, str) for t in v):
            return tuple(t.strip() for t in v if t.strip())
        self.fail(col, "expected a list of texts")
        return ()


def _at(where: tuple[str, int]) -> str:
    return f"{where[0]}:{where[1]}"


def _json_type(v: object) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


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


# -- contracts (CSV: one row per payment node) --------------------------------------------------
def _contract_groups(
    rows: Iterable[tuple[int, dict[str, Any]]],
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """Consecutive rows with the same ``contract_id``: one contract and its payment nodes."""
    group: list[tuple[int, dict[str, Any]]] = []
    for row, raw in rows:
        rec = {c: v for c, v in raw.items() if v}
        if group and rec.get("contract_id") != group[0][1].get("contract_id"):
            yield group
            group = []
        group.append((row, rec))
    if group:
        yield group


def _contract_rows(
    run: _Run, file_no: int, group: list[tuple[int, dict[str, Any]]]
) -> ContractSigned | None:
    first_row, first = group[0]
    r = _Row(run, file_no, first_row, dict(first))
    cid = r.need("contract_id")
    r.claim("contract", cid, "contract_id")
    # Contract columns: set on the first row, and on later rows either empty or the same.
    for row, rec in group[1:]:
        for col in _CONTRACT_COLUMNS:
            v = rec.get(col)
            if v is None:
                continue
            have = r.rec.get(col)
            if have is None:
                r.rec[col] = v
            elif have != v:
                r.fail(col, f"{v!r} differs from {have!r} on row {first_row}", row)
    customer_id = r.need("customer_id")
    signed = r.date("signed_on", required=True)
    currency = r.currency("currency")
    amount = r.amount("amount", currency)
    at = r.instant("occurred_at")
    project_id = r.text("project_id")
    contract: dict[str, Any] = {
        "id": cid,
        "customer_id": customer_id,
        "title": r.text("title") or "",
        "signed_on": signed,
        "project_id": project_id,
        "salesperson": r.text("salesperson"),
    }
    nodes: list[dict[str, Any]] = []
    node_rows: list[int] = []
    milestones: dict[str, dict[str, Any]] = {}
    milestone_rows: list[int] = []
    for row, rec in group:
        n = _Row(run, file_no, row, rec)
        node_id = n.text("node_id")
        if node_id is None:
            stray = [c for c in _NODE_COLUMNS if rec.get(c) is not None]
            if stray:
                n.fail("node_id", f"required when {', '.join(stray)} is set")
            elif len(group) > 1:
                n.fail("node_id", "every row of a contract with several rows is a payment node")
        else:
            node_amount = n.amount("node_amount", currency, required=False)
            node: dict[str, Any] = {"id": node_id, "label": n.text("node_label") or ""}
            if node_amount is not None and currency is not None:
                node["amount"] = Money(amount=node_amount, currency=currency)
            if (pct := n.percent("node_percent")) is not None:
                node["percent"] = pct
            due: dict[str, Any] = {}
            if (days := n.integer("due_days")) is not None:
                due["days"] = days
            if n.boolean("due_end_of_month"):
                due["end_of_month"] = True
            if (mid := n.text("due_milestone_id")) is not None:
                due["basis"] = "milestone"
                due["milestone_id"] = mid
                declared = {
                    "id": mid,
                    "contract_id": cid,
                    "name": n.text("milestone_name") or "",
                    "planned_date": n.date("milestone_planned_date"),
                }
                before = milestones.get(mid)
                if before is None:
                    milestones[mid] = declared
                    milestone_rows.append(row)
                elif before != declared:
                    n.fail("milestone_name", f"milestone {mid!r} is described differently above")
            else:
                for col in ("milestone_name", "milestone_planned_date"):
                    if rec.get(col) is not None:
                        n.fail(col, "only with due_milestone_id")
            if n.failed_at("node_percent"):
                n.mark("node_amount")  # not "needs one of amount or percent": it had one
            node["due"] = due
            nodes.append(node)
            node_rows.append(row)
        r.absorb(n)
    if signed is None or currency is None or amount is None:
        return None
    contract["amount"] = Money(amount=amount, currency=currency)
    contract["payment_nodes"] = nodes
    payload: dict[str, Any] = {
        "event_id": f"import:contract:{cid}",
        "occurred_at": at or run.midnight(signed),
        "actor": run.actor,
        "contract": contract,
        "milestones": list(milestones.values()),
    }
    if project_id is not None:
        name = r.text("project_name") or ""
        payload["project"] = {"id": project_id, "customer_id": customer_id, "name": name}

    node_cols = {
        "id": "node_id",
        "label": "node_label",
        "amount": "node_amount",
        "percent": "node_percent",
        "due": "due_milestone_id",
    }
    milestone_cols = {"name": "milestone_name", "planned_date": "milestone_planned_date"}

    def column_of(loc: tuple[Any, ...]) -> tuple[int, str]:
        head = loc[:1]
        if head == ("contract",) and len(loc) >= 3 and loc[1] == "payment_nodes":
            row = node_rows[loc[2]]
            if len(loc) == 3:
                return row, "node_amount"
            if loc[3] == "due" and len(loc) > 4:
                sub = {"days": "due_days", "end_of_month": "due_end_of_month"}
                return row, sub.get(str(loc[4]), "due_milestone_id")
            return row, node_cols.get(str(loc[3]), "node_id")
        if head == ("contract",):
            field = str(loc[1]) if len(loc) > 1 else "amount"
            return first_row, {"id": "contract_id"}.get(field, field)
        if head == ("milestones",) and len(loc) >= 2:
            field = str(loc[2]) if len(loc) > 2 else ""
            return milestone_rows[loc[1]], milestone_cols.get(field, "due_milestone_id")
        if head == ("project",):
            return first_row, "project_name" if loc[1:2] == ("name",) else "project_id"
        return first_row, _flat_column(loc, "contract_id")

    return _build(r, ContractSigned, payload, column_of)


# -- contracts (JSON: the nested model form) ------------------------------------------------------
def _contract_json(run: _Run, file_no: int, row: int, value: Any) -> ContractSigned | None:
    r = _Row(run, file_no, row, {})
    if not isinstance(value, dict):
        r.fail("-", f"expected a JSON object, got {_json_type(value)}")
        return None
    if _too_deep(value, _MAX_JSON_DEPTH):
        r.fail("-", f"nested more than {_MAX_JSON_DEPTH} levels deep: not a contract record")
        return None
    contract = dict(value)
    milestones = contract.pop("milestones", [])
    project = contract.pop("project", None)
    at_text = contract.pop("occurred_at", None)
    cid = contract.get("id")
    if isinstance(cid, str) and cid:
        r.claim("contract", cid, "id")
    currency: str | None = None
    money = contract.get("amount")
    if isinstance(money, dict) and isinstance(money.get("currency"), str):
        currency = money["currency"]
    _check_json_money(r, money, currency, "amount")
    nodes = contract.get("payment_nodes")
    if isinstance(nodes, list):
        for i, node in enumerate(nodes):
            if isinstance(node, dict):
                _check_json_money(r, node.get("amount"), currency, f"payment_nodes[{i}].amount")
    if isinstance(milestones, list) and isinstance(cid, str):
        milestones = [{"contract_id": cid, **m} if isinstance(m, dict) else m for m in milestones]
    if isinstance(project, dict) and isinstance(contract.get("customer_id"), str):
        project = {"customer_id": contract["customer_id"], **project}
    at: datetime | None = None
    if at_text is not None:
        at = r.instant_of("occurred_at", at_text)
    elif isinstance(contract.get("signed_on"), str):
        try:
            at = run.midnight(run.parse_date(contract["signed_on"]))
        except ValueError:
            at = None  # pydantic reports signed_on below
    payload = {
        "type": "ContractSigned",
        "event_id": f"import:contract:{cid}",
        "occurred_at": (at or run.now).isoformat(),
        "actor": run.actor,
        "contract": contract,
        "project": project,
        "milestones": milestones,
    }
    try:
        event = ContractSigned.model_validate_json(
            json.dumps(payload, default=_json_default, ensure_ascii=False)
        )
    except PydanticValidationError as exc:
        _report_pydantic(r, exc, lambda loc: (row, _dotted(loc)))
        return None
    except (AmountOutOfRange, DateOutOfRange) as exc:
        r.fail(_path_holding(payload, exc), str(exc))
        return None
    return None if r.bad else event


def _path_holding(payload: dict[str, Any], exc: AmountOutOfRange | DateOutOfRange) -> str:
    """Where in a JSON contract record the value ``exc`` refuses is (``signed_on``,
    ``milestones[0].planned_date``), else ``-``."""
    value = exc.amount if isinstance(exc, AmountOutOfRange) else exc.value
    shown = value.isoformat() if isinstance(value, date | datetime) else str(value)
    todo: list[tuple[tuple[Any, ...], Any]] = [((), payload)]
    while todo:
        loc, v = todo.pop(0)
        if isinstance(v, dict):
            todo.extend(((*loc, k), x) for k, x in v.items())
        elif isinstance(v, list):
            todo.extend(((*loc, i), x) for i, x in enumerate(v))
        elif loc and str(v) == shown:
            return _dotted(loc)
    return "-"


def _check_json_money(r: _Row, money: Any, currency: str | None, column: str) -> None:
    """Apply the importer's amount rules to a nested ``{"amount", "currency"}`` object."""
    if not isinstance(money, dict):
        return
    amount = money.get("amount")
    if isinstance(amount, int | Decimal) and not isinstance(amount, bool):
        amount = str(amount)
    if not isinstance(amount, str):
        return  # pydantic says what is wrong with it
    cur = money.get("currency")
    try:
        money["amount"] = str(parse_amount(amount, cur if isinstance(cur, str) else currency))
    except ValueError as exc:
        r.fail(column, str(exc))


def _dotted(loc: tuple[Any, ...]) -> str:
    parts = list(loc[1:] if loc[:1] == ("contract",) else loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "id"


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# -- reading files ---------------------------------------------------------------------------------
def _lines(run: _Run, name: str, fh: Any) -> Iterator[str]:
    """The file's lines as text; a line that is not UTF-8 is reported (once per file) and
    read with replacement characters, so the rest of the file is still checked."""
    reported = False
    for n, raw in enumerate(fh, 1):
        try:
            line: str = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not reported:
                run.problem(
                    name,
                    n,
                    "-",
                    f"not UTF-8 text (byte {exc.start + 1} of the line): save the export as "
                    "UTF-8 ('CSV UTF-8' in Excel), not GBK or ANSI",
                )
                reported = True
            line = raw.decode("utf-8", errors="replace")
        if n == 1:
            line = line.removeprefix("\ufeff")
        yield line


def _csv_records(
    run: _Run, name: str, path: Path, kind: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    required, optional = COLUMNS[kind]
    known = {*required, *optional}
    with path.open("rb") as fh:
        reader = csv.reader(_lines(run, name, fh), strict=True)
        try:
            header = next(reader, None)
            if header is None:
                run.problem(name, 1, "-", "the file is empty: the first row must name the columns")
                return
            cols = [h.strip().lower() for h in header]
            for i, col in enumerate(cols):
                if col and col not in known:
                    run.problem(name, 1, col, f"unknown column for {kind}")
                elif col and col in cols[:i]:
                    run.problem(name, 1, col, "the column appears twice")
            missing = [c for c in required if c not in cols]
            for col in missing:
                run.problem(name, 1, col, "required column is missing")
            if missing:
                return
            width = len(cols)
            unnamed = [i for i, c in enumerate(cols) if not c]
            last = reader.line_num
            for fields in reader:
                row = last + 1
                last = reader.line_num
                if not fields or not "".join(fields).strip():
                    continue  # a blank line, or one of only commas
                if len(fields) != width:
                    hint = (
                        " (a ',' inside a value that is not quoted?)" if len(fields) > width else ""
                    )
                    run.problem(
                        name, row, "-", f"{len(fields)} fields, the header has {width}{hint}"
                    )
                    continue
                if unnamed and any(fields[i].strip() for i in unnamed):
                    run.problem(name, row, "-", "a value in a column without a name")
                    continue
                yield row, dict(zip(cols, map(str.strip, fields), strict=True))
        except csv.Error as exc:
            run.problem(name, reader.line_num, "-", f"CSV syntax: {exc}")


def _jsonl_records(run: _Run, name: str, path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as fh:
        for row, line in enumerate(_lines(run, name, fh), 1):
            if not line.strip():
                continue
            try:
                value = _DECODER.decode(line)
            except json.JSONDecodeError as exc:
                run.problem(name, row, "-", f"invalid JSON: {exc.msg} (column {exc.colno})")
            except _JsonLimit as exc:
                run.problem(name, row, "-", str(exc))
            except RecursionError:
                run.problem(name, row, "-", _TOO_DEEP)
            else:
                yield row, value


class _JsonLimit(Exception):
    """A JSON value beyond what the importer reads (an integer of thousands of digits)."""


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_JSON_INT:
        raise _JsonLimit(
            f"a JSON number of {len(text.lstrip('-'))} digits: at most {_MAX_JSON_INT} are read"
        )
    return int(text)


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal, parse_int=_json_int)
_TOO_DEEP = "invalid JSON: nested too deep (lists or objects inside each other)"


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels deep."""
    level: list[Any] = [value]
    for _ in range(limit + 1):
        inner: list[Any] = []
        for v in level:
            if isinstance(v, dict):
                inner.extend(v.values())
            elif isinstance(v, list):
                inner.extend(v)
        if not inner:
            return False
        level = inner
    return True


class _JsonSyntax(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def _json_list(fh: TextIO) -> Iterator[tuple[int, Any]]:
    """The items of a top-level JSON list, read chunk by chunk: memory holds one record,
    not the file. Raises ``_JsonSyntax`` with the record index where the JSON is broken."""
    decoder = _DECODER
    ws = re.compile(r"[ \t\n\r]*")
    buf, pos, eof = "", 0, False

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        # Read as much again as is pending: a record cut short is decoded again after each
        # read, and doubling keeps that linear in its size (a long unterminated record was
        # decoded once per 64 KiB: seconds per megabyte).
        chunk = fh.read(min(max(_CHUNK, len(buf) - pos), _MAX_JSON_RECORD))
        if not chunk:
            eof = True
            return False
        buf, pos = buf[pos:] + chunk, 0
        return True

    def peek() -> str:
        nonlocal pos
        while True:
            m = ws.match(buf, pos)
            pos = m.end() if m else pos
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    if peek() != "[":
        raise _JsonSyntax(0, "expected a JSON list of objects: [{...}, {...}]")
    pos += 1
    index = 0
    if peek() == "]":
        pos += 1
    else:
        while True:
            index += 1
            peek()
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                except json.JSONDecodeError as exc:
                    if len(buf) - pos < _MAX_JSON_RECORD and more():
                        continue  # the record goes on in the next chunk
                    raise _JsonSyntax(index, f"invalid JSON: {exc.msg}") from None
                except _JsonLimit as exc:
                    raise _JsonSyntax(index, str(exc)) from None
                except RecursionError:
                    raise _JsonSyntax(index, _TOO_DEEP) from None
                if end == len(buf) and more():
                    continue  # a number may go on in the next chunk
                break
            pos = end
            yield index, value
            c = peek()
            pos += 1
            if c == "]":
                break
            if c != ",":
                raise _JsonSyntax(index, "invalid JSON: expected ',' or ']' after the record")
            if peek() == "]":
                raise _JsonSyntax(index, "invalid JSON: a ',' before the closing ']'")
    if peek():
        raise _JsonSyntax(index, "invalid JSON: more data after the closing ']'")


def _json_records(run: _Run, name: str, path: Path) -> Iterator[tuple[int, Any]]:
    index = 0
    try:
        with path.open(encoding="utf-8-sig") as fh:
            for index, value in _json_list(fh):
                yield index, value
    except _JsonSyntax as exc:
        run.problem(name, exc.index, "-", str(exc))
    except UnicodeDecodeError:
        run.problem(name, index + 1, "-", "not UTF-8 text: save the export as UTF-8")


_LIST_COLUMNS = frozenset({"tags", "allocate_to"})


def _flat(r: _Row, kind: str, value: dict[Any, Any]) -> None:
    """Fill ``r.rec`` from a JSON record of a flat kind the way a CSV row gives it: text
    stripped, numbers as their exact text. Unknown keys and values of other JSON types are
    reported here, so that the column readers can count on text."""
    required, optional = COLUMNS[kind]
    rec = r.rec
    for key, v in value.items():
        if key not in required and key not in optional:
            shown = key if key and key.isprintable() and len(key) <= 40 else repr(_short(key))
            r.fail(shown, f"unknown column for {kind}")
        elif isinstance(v, str):
            rec[key] = v.strip()
        elif isinstance(v, int | Decimal) and not isinstance(v, bool):
            rec[key] = str(v)
        elif isinstance(v, list) and key in _LIST_COLUMNS:
            rec[key] = v
        elif v is not None:
            r.fail(
                key,
                f"expected text{' or a list' if key in _LIST_COLUMNS else ''}, got {_json_type(v)}",
            )


_BUILDERS: dict[str, Callable[[_Row], Event | None]] = {
    "customers": _customer,
    "invoices": _invoice,
    "payments": _payment,
}


def _file_events(
    run: _Run, file_no: int, path: Path, kind: str, fmt: str
) -> Iterator[tuple[int, Event]]:
    """(row, event) for every good record of one file; problems go to ``run``."""
    name = run.files[file_no]
    records: Iterator[tuple[int, Any]]
    if fmt == "csv":
        records = _csv_records(run, name, path, kind)
    elif fmt == "jsonl":
        records = _jsonl_records(run, name, path)
    else:
        records = _json_records(run, name, path)
    if kind == "contracts":
        if fmt == "csv":
            for group in _contract_groups(records):
                signed = _contract_rows(run, file_no, group)
                if signed is not None:
                    yield group[0][0], signed
        else:
            for row, value in records:
                signed = _contract_json(run, file_no, row, value)
                if signed is not None:
                    yield row, signed
        return
    build = _BUILDERS[kind]
    for row, value in records:
        if fmt == "csv":
            r = _Row(run, file_no, row, value)
        elif isinstance(value, dict):
            r = _Row(run, file_no, row, {})
            _flat(r, kind, value)
        else:
            run.problem(name, row, "-", f"expected a JSON object, got {_json_type(value)}")
            continue
        event = build(r)
        if event is not None:
            yield row, event


def _sourced(
    run: _Run, plan: list[tuple[int, Path, str, str]]
) -> Generator[tuple[int, int, Event], None, None]:
    """(file number, row, event) for the events to hand to the ledger. Once any problem
    is known it stops giving events (later rows may depend on the bad one) but keeps
    reading, so that every bad row is reported; at the end it raises ``_Rejected`` so the
    transaction rolls back."""
    for file_no, path, kind, fmt in plan:
        for row, event in _file_events(run, file_no, path, kind, fmt):
            run.counts[kind] += 1
            if not run.problems:
                yield file_no, row, event
    if run.problems:
        raise _Rejected


def _events(
    run: _Run, plan: list[tuple[int, Path, str, str]]
) -> Generator[Event | PlainInvoice, None, None]:
    """The event stream fed to ``Ledger.apply_all``, read in this process."""
    return _handed_over(run, plan, _sourced(run, plan))


def _from_reader(
    run: _Run, plan: list[tuple[int, Path, str, str]]
) -> Generator[Event | PlainInvoice, None, None]:
    """The event stream fed to the ledger, read by a second process (``arflow._reader``):
    the files are parsed and checked there while this process applies what it sent, so
    an import uses both cores of a small machine."""
    return _handed_over(run, plan, _read_by_reader(run, plan))


def _handed_over(
    run: _Run,
    plan: list[tuple[int, Path, str, str]],
    sourced: Generator[tuple[int, int, Event | PlainInvoice], None, None],
) -> Generator[Event | PlainInvoice, None, None]:
    """The events of ``sourced``, each remembered as handed to the ledger (with where it
    came from, for a refusal's row); closing this closes ``sourced``."""
    kinds = {file_no: (kind, fmt) for file_no, _path, kind, fmt in plan}
    try:
        for file_no, row, event in sourced:
            run.handed_over(event.event_id, (run.files[file_no], row, *kinds[file_no]))
            yield event
    finally:
        run.where = None
        sourced.close()


def _read_by_reader(
    run: _Run, plan: list[tuple[int, Path, str, str]]
) -> Generator[tuple[int, int, Event | PlainInvoice], None, None]:
    """:func:`_sourced`, read by the reader process: plain invoices come as
    :class:`~arflow.rows.PlainInvoice`, other events as their JSON; problems and counts
    arrive at the end, then ``_Rejected`` is raised as by :func:`_sourced`."""
    from . import _reader

    spec = {
        "files": run.files,
        "plan": [(file_no, str(path), kind, fmt) for file_no, path, kind, fmt in plan],
        "actor": run.actor,
        "now": run.now.isoformat(),
    }
    for message in _reader.messages(spec):
        if message[0] == "end":
            run.problems.extend(message[1])
            run.counts.update(message[2])
            break
        for file_no, row, item in message[1]:
            yield file_no, row, parse_event(item) if type(item) is str else item
    if run.problems:
        raise _Rejected


# -- which column a ledger refusal is about -------------------------------------------------------
_REFUSAL_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {"customer": "id"},
    "contracts": {
        "contract": "contract_id",
        "customer": "customer_id",
        "project": "project_id",
        "milestone": "due_milestone_id",
    },
    "invoices": {
        "receivable": "number",
        "customer": "customer_id",
        "contract": "contract_id",
        "payment node": "payment_node_id",
        "milestone": "payment_node_id",
        "order": "order_id",
    },
    "payments": {"payment": "payment_id", "customer": "customer_id", "receivable": "allocate_to"},
}
_REFUSAL_DEFAULTS: dict[type[ArflowError], str] = {
    InvalidDates: "due_date",
    InvalidAmount: "amount",
    CurrencyMismatch: "currency",
    OverAllocation: "allocate_to",
    ClosedItem: "allocate_to",
}


def _refusal_column(kind: str, fmt: str, exc: ArflowError) -> str:
    if kind == "contracts" and fmt != "csv":
        nested = {"contract": "id", "customer": "customer_id", "milestone": "milestones"}
        return nested.get(getattr(exc, "kind", ""), "-")
    if isinstance(exc, UnknownObject | DuplicateObject | ClosedItem):
        col = _REFUSAL_COLUMNS[kind].get(exc.kind)
        if col is not None:
            return col
    for cls, col in _REFUSAL_DEFAULTS.items():
        if isinstance(exc, cls) and col in {*COLUMNS[kind][0], *COLUMNS[kind][1]}:
            return col
    return "-"


# -- the entry point ----------------------------------------------------------------------------
def _kind_of(path: Path, kind: str | None) -> str | None:
    if kind is not None:
        return kind
    stem = path.name.lower()
    return next((k for k in KINDS if stem.startswith(k.removesuffix("s"))), None)


def _in_order(run: _Run, plan: list[tuple[int, Path, str, str]]) -> list[Problem]:
    """Problems by file (files that could not be read first, then in the order applied)
    and row; a ledger that reads ahead may find them out of that order."""
    rank = {run.files[item[0]]: i for i, item in enumerate(plan)}
    return sorted(run.problems, key=lambda p: (rank.get(p[0], -1), p[1]))


def import_files(
    ledger: Ledger,
    paths: Sequence[str | Path],
    *,
    kind: str | None = None,
    actor: str = "import",
    now: datetime | None = None,
    reader_process: bool | None = None,
) -> ImportReport:
    """Import ERP export files into the book, all of them or nothing.

    The kind of each file comes from its name (``customers*.csv``, ``contracts*.json``,
    ``invoices*.jsonl``, ``payments*.csv``...; singular names work too) unless ``kind``
    (``"customers"``, ``"contracts"``, ``"invoices"`` or ``"payments"``) is given, which
    then applies to every path. Files are applied customers first, payments last, whatever
    order they are given in. ``actor`` is recorded as who made the events; ``now`` is when
    customers were registered (rows without a date of their own), default the current time.
    ``reader_process``: read and check the files in a second process while this one applies
    them (about a third faster on a machine with two cores or more); default: when the
    files hold more than 16 MiB.

    Raises :class:`ImportRejected` listing every bad row as (file, row, column, reason),
    with nothing imported. Rows already imported (same kind and key) are skipped.
    """
    if kind is not None:
        plural = kind if kind in KINDS else kind + "s"
        if plural not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        kind = plural
    if not actor:
        raise ValueError("actor must not be empty")
    run = _Run(len(paths), actor, now or datetime.now(UTC))
    plan: list[tuple[int, Path, str, str]] = []
    for file_no, p in enumerate(paths):
        path = Path(p)
        name = str(p)
        run.files.append(name)
        found = _kind_of(path, kind)
        fmt = _FORMATS.get(path.suffix.lower())
        if found is None:
            run.problem(
                name,
                0,
                "-",
                "cannot tell what the file holds: name it customers*, contracts*, invoices* or "
                "payments* (or pass the kind)",
            )
        if fmt is None:
            run.problem(name, 0, "-", "unknown format: use .csv, .json or .jsonl")
        if not path.is_file():
            run.problem(name, 0, "-", "no such file")
        elif found is not None and fmt is not None:
            plan.append((file_no, path, found, fmt))
    plan.sort(key=lambda item: KINDS.index(item[2]))
    if reader_process is None:
        size = sum(path.stat().st_size for _file_no, path, _kind, _fmt in plan)
        reader_process = size > READER_PROCESS_BYTES and bool(sys.executable)
    stream: Generator[Event | PlainInvoice, None, None]
    stream = _from_reader(run, plan) if reader_process else _events(run, plan)
    try:
        try:
            with fewer_gc_passes():
                applied = ledger.apply_all(stream)
        except _Rejected:
            raise ImportRejected(_in_order(run, plan)) from None
        except ArflowError as exc:
            # The refused event is the last one handed over, unless the ledger read ahead and
            # says which it was.
            where = run.recent.get(getattr(exc, "event_id", ""), run.where)
            if where is None:
                raise
            file, row, kind_, fmt_ = where
            run.problem(file, row, _refusal_column(kind_, fmt_, exc), str(exc))
            try:
                for _ in stream:  # keep reading: report the bad rows further down too
                    pass
            except _Rejected:
                pass
            raise ImportRejected(_in_order(run, plan)) from exc
    finally:
        stream.close()  # stops the reader process, if any
    return ImportReport(
        files=tuple(run.files),
        customers=run.counts["customers"],
        contracts=run.counts["contracts"],
        invoices=run.counts["invoices"],
        payments=run.counts["payments"],
        applied=applied,
    )
