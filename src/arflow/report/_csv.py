"""Every figure of a report as CSV files, one per family, for a BI tool.

Each file has a fixed header (:data:`HEADERS`, in this order, whatever the report holds; a
family with nothing in it is a file with the header alone). Amounts are plain decimals
with a separate currency column, dates ISO 8601, an undefined value an empty cell with the
reason beside it, a group ``dimension=value;dimension=value``. Text from the book (names,
titles, history) that a spreadsheet would run as a formula (starting ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) is written with a leading ``'``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

from ..analytics import Report
from ..errors import ValidationError
from ..money import Money
from ._data import group_text

HEADERS: dict[str, tuple[str, ...]] = {
    "headline": (
        "as_of", "currency", "total", "overdue", "dso", "dso_target",
        "collection_rate_mtd", "cei", "overdue_rate",
    ),
    "aging": (
        "as_of", "currency", "group", "bucket", "low", "high", "amount", "count", "share",
    ),
    "figures": (
        "name", "value", "unit", "currency", "period_start", "period_end", "group",
        "undefined", "target",
    ),
    "trends": ("metric", "currency", "group", "month_end", "value", "undefined", "target"),
    "rankings": (
        "metric", "by", "as_of", "period_start", "period_end", "currency", "rank", "key",
        "label", "value",
    ),
    "grades": ("grade", "customers"),
    "forecast": (
        "as_of", "currency", "kind", "week_start", "expected", "from_due", "from_promises",
        "actual",
    ),
    "watch": (
        "list", "as_of", "receivable_id", "customer_id", "customer_name", "due_date",
        "open_balance", "currency", "days", "risk_level", "dunning_level", "last_contact",
        "history",
    ),
    "contracts": (
        "as_of", "contract_id", "customer_id", "customer_name", "project_id", "title",
        "currency", "amount", "invoiced", "collected", "open", "overdue", "unbilled",
        "disputes", "promises", "next_action",
    ),
    "contract_nodes": (
        "contract_id", "node_id", "label", "currency", "planned", "invoiced", "collected",
        "overdue", "due_date", "milestones", "receivable_ids",
    ),
}  # fmt: skip

Cell = str | int | None


def _v(value: object) -> str:
    """A cell: empty for None, a Money's amount, anything else as text (dates ISO)."""
    if value is None:
        return ""
    if isinstance(value, Money):
        return str(value.amount)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _text(value: str | None) -> str:
    """Text from the book, made safe for a spreadsheet (no formula runs when opened)."""
    if not value:
        return ""
    return "'" + value if value[0] in "=+-@\t\r" else value


def _rows(report: Report) -> Iterator[tuple[str, list[str]]]:
    for h in report.headline:
        yield "headline", [
            _v(h.as_of), h.currency, _v(h.total), _v(h.overdue), _v(h.dso.value),
            _v(h.dso.target), _v(h.collection_rate_mtd.value), _v(h.cei.value),
            _v(h.overdue_rate.value),
        ]  # fmt: skip
    for a in report.aging:
        for b in a.buckets:
            yield "aging", [
                _v(a.as_of), a.currency, _text(group_text(a.group)), _text(b.label),
                _v(b.low), _v(b.high), _v(b.amount), _v(b.count), _v(b.share),
            ]  # fmt: skip
    for f in report.figures:
        yield "figures", [
            f.name, _v(f.value), f.unit, _v(f.currency), _v(f.period_start),
            _v(f.period_end), _text(group_text(f.group)), _text(f.undefined), _v(f.target),
        ]  # fmt: skip
    for t in report.trends:
        for p in t.points:
            yield "trends", [
                t.metric, _v(t.currency), _text(group_text(t.group)), _v(p.month_end),
                _v(p.value), _text(p.undefined), _v(t.target),
            ]  # fmt: skip
    for r in report.rankings:
        for e in r.entries:
            yield "rankings", [
                r.metric, r.by, _v(r.as_of), _v(r.period_start), _v(r.period_end),
                _v(r.currency), _v(e.rank), _text(e.key), _text(e.label), _v(e.value),
            ]  # fmt: skip
    for grade, count in report.grades:
        yield "grades", [_text(grade), _v(count)]
    for fc in report.forecast:
        for kind, weeks in (("forecast", fc.weeks), ("backtest", fc.backtest)):
            for w in weeks:
                yield "forecast", [
                    _v(fc.as_of), fc.currency, kind, _v(w.week_start), _v(w.expected),
                    _v(w.from_due), _v(w.from_promises), _v(w.actual),
                ]  # fmt: skip
    for wl in report.watch:
        for i in wl.items:
            yield "watch", [
                wl.name, _v(wl.as_of), _text(i.receivable_id), _text(i.customer_id),
                _text(i.customer_name), _v(i.due_date), _v(i.open_balance),
                i.open_balance.currency, _v(i.days), _text(i.risk_level), _v(i.dunning_level),
                _text(i.last_contact), _text(" | ".join(i.history)),
            ]  # fmt: skip
    for c in report.contracts:
        yield "contracts", [
            _v(c.as_of), _text(c.contract_id), _text(c.customer_id), _text(c.customer_name),
            _text(c.project_id), _text(c.title), c.amount.currency, _v(c.amount),
            _v(c.invoiced), _v(c.collected), _v(c.open), _v(c.overdue), _v(c.unbilled),
            _text(";".join(c.disputes)), _text(";".join(c.promises)), _text(c.next_action),
        ]  # fmt: skip
        for n in c.nodes:
            yield "contract_nodes", [
                _text(c.contract_id), _text(n.node_id), _text(n.label), n.planned.currency,
                _v(n.planned), _v(n.invoiced), _v(n.collected), _v(n.overdue),
                _v(n.due_date), _text(";".join(f"{m.name}:{m.status}" for m in n.milestones)),
                _text(";".join(n.receivable_ids)),
            ]  # fmt: skip


def report_csv(report: Report) -> dict[str, str]:
    """Each family's CSV text (header first), keyed by family name."""
    buffers = {name: io.StringIO() for name in HEADERS}
    writers = {name: csv.writer(buf, lineterminator="\n") for name, buf in buffers.items()}
    for name, header in HEADERS.items():
        writers[name].writerow(header)
    for name, row in _rows(report):
        writers[name].writerow(row)
    return {name: buf.getvalue() for name, buf in buffers.items()}


def write_csv(report: Report, folder: str | os.PathLike[str]) -> list[Path]:
    """Write ``<family>.csv`` for every family into ``folder`` (made if missing; files of
    the same names are replaced); returns the paths written. A ``folder`` that is a file
    is refused with :class:`~arflow.errors.ValidationError` before anything is written."""
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise ValidationError(f"--csv {str(target)!r} is a file, not a folder")
    texts = report_csv(report)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in texts.items():
        path = target / f"{name}.csv"
        tmp = target / f".{name}.csv.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        paths.append(path)
    return paths
