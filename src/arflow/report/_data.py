"""A :class:`~arflow.analytics.Report` as plain data (JSON), and the number formats the
terminal and the HTML share.

Every amount is an object ``{"amount": "1234.50", "currency": "CNY"}`` with the amount as
a string (exact, never a float); every other number (a DSO, a rate) is a string too; dates
are ISO 8601; a group is an object of dimension to value, in the order grouped; an
undefined figure has ``"value": null`` and says why in ``"undefined"``.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..analytics import Figure, Report
from ..money import Money, minor_unit

#: The version of the JSON layout; it changes only when a key changes meaning or goes away.
SCHEMA_VERSION = 1


def plain(value: Any) -> Any:
    """``value`` (a result, a Money, a Decimal, a date, a tuple of them) as JSON data."""
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            out[f.name] = group_dict(item) if f.name == "group" else plain(item)
        return out
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value


def group_dict(group: tuple[tuple[str, str | None], ...]) -> dict[str, str | None]:
    return dict(group)


def report_dict(report: Report) -> dict[str, Any]:
    """Every figure of ``report`` as JSON data, one key per family."""
    data = plain(report)
    data["grades"] = [{"grade": g, "customers": n} for g, n in report.grades]
    return {"schema": SCHEMA_VERSION, **data}


def report_json(report: Report, *, indent: int | None = 2) -> str:
    """:func:`report_dict` as JSON text (UTF-8 names kept as they are)."""
    return json.dumps(report_dict(report), ensure_ascii=False, indent=indent)


# -- formats shared by the terminal and the HTML ------------------------------------------


def fmt_money(m: Money) -> str:
    """``1,234,567.80`` (the currency is shown beside it, not in it)."""
    return f"{m.amount:,.{minor_unit(m.currency)}f}"


def fmt_number(value: Decimal | None, unit: str) -> str:
    """A figure's value as people read it: a count as it is, a ratio as a percentage with one decimal, days
    with one decimal, a turnover with two, money with two; ``-`` when undefined."""
    if value is None:
        return "-"
    if unit == "count":
        return f"{value:,}"
    if unit == "ratio":
        return f"{_round(value * 100, 1):,}%"
    if unit == "days":
        return f"{_round(value, 1):,}"
    return f"{_round(value, 2):,}"


def fmt_figure(f: Figure) -> str:
    return fmt_number(f.value, f.unit)


def _round(d: Decimal, places: int) -> Decimal:
    return d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def group_text(group: tuple[tuple[str, str | None], ...]) -> str:
    """``salesperson=li.wei;region=east``; empty for an ungrouped result."""
    return ";".join(f"{k}={'' if v is None else v}" for k, v in group)
