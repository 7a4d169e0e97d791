"""Reading one cell of a record: amounts, dates, instants, currencies, identifiers, numbers,
flags and tags, each refusal reported as a problem at its file:row:column.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ..domain import FIRST_DATE, LAST_DATE, check_identifier
from ..money import AMOUNT_LIMIT, MAX_INTEGER_DIGITS, check_currency, minor_unit
from ._run import _DATE, _HORIZON, _Run

_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_GROUPED_NUMBER = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")

_INTEGER = re.compile(r"[0-9]{1,9}")
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_QUANTA = {n: Decimal(1).scaleb(-n) for n in range(5)}


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
