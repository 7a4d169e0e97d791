"""The headline figures as a table a person reads in a terminal.

Plain aligned text (no colour, no box drawing), so it reads the same in a log file. Wide
(Chinese) characters count as two columns when aligning.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from decimal import Decimal

from ..analytics import Figure, Report
from ._data import fmt_figure, fmt_money, group_text
from ._labels import Labels

_ONE_PLACE = Decimal("0.1")


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, cols: int, right: bool) -> str:
    fill = " " * max(cols - width(text), 0)
    return fill + text if right else text + fill


def table(rows: Sequence[Sequence[str]], *, indent: str = "  ") -> list[str]:
    """Rows aligned in columns: the first left, the others right (numbers)."""
    if not rows:
        return []
    cols = max(len(r) for r in rows)
    widths = [max(width(r[i]) if i < len(r) else 0 for r in rows) for i in range(cols)]
    out = []
    for r in rows:
        cells = [_pad(c, widths[i], right=i > 0) for i, c in enumerate(r)]
        out.append((indent + "  ".join(cells)).rstrip())
    return out


def _clean(text: str) -> str:
    """A name from the book with its control characters (escape sequences, newlines) made
    visible, so a hostile name cannot move the cursor or forge a line."""
    return "".join(c if unicodedata.category(c)[0] != "C" else "?" for c in text)


def _figure(f: Figure, t: Labels) -> str:
    text = fmt_figure(f)
    if f.value is None and f.undefined:
        text = f"- ({_clean(f.undefined)})"
    if f.target is not None:
        text += f" ({t('target')} {f.target})"
    return text


def render_text(report: Report, locale: str = "en") -> str:
    """The headline figures per currency, the aging of each currency and the size of the
    watch lists, as aligned text; ``--json`` and ``--csv`` give every figure."""
    t = Labels(locale)
    lines = [f"{t('title')} · {t('as_of')} {report.as_of.isoformat()}", ""]
    heads = sorted(report.headline, key=lambda h: h.currency)
    if heads:
        rows: list[list[str]] = [[t("headline"), *(h.currency for h in heads)]]
        rows.append([t("total"), *(fmt_money(h.total) for h in heads)])
        rows.append([t("overdue"), *(fmt_money(h.overdue) for h in heads)])
        for key in ("dso", "collection_rate_mtd", "cei", "overdue_rate"):
            rows.append([t(key), *(_figure(getattr(h, key), t) for h in heads)])
        lines += table(rows)
    else:
        lines.append(f"  {t('headline')}: {t('no_data')}")
    for aging in sorted(report.aging, key=lambda a: (a.currency, group_text(a.group))):
        if aging.group:
            continue  # grouped agings are in --json and --csv
        lines += ["", f"{t('aging')} ({aging.currency})"]
        rows = [[t("bucket"), t("amount"), t("count"), t("share")]]
        for b in aging.buckets:
            share = "-" if b.share is None else f"{(b.share * 100).quantize(_ONE_PLACE)}%"
            rows.append([_clean(t(b.label)), fmt_money(b.amount), str(b.count), share])
        rows.append([t("total"), fmt_money(aging.total), "", ""])
        rows.append([t("overdue"), fmt_money(aging.overdue), "", ""])
        lines += table(rows)
    if report.watch:
        lines.append("")
        lines += table([[t(w.name), str(len(w.items))] for w in report.watch], indent="")
    if report.grades:
        grades = " · ".join(f"{_clean(g or t('no_grade'))} {n}" for g, n in report.grades)
        lines += ["", f"{t('grades')}: {grades}"]
    lines += ["", f"({t('json_hint')})"]
    return "\n".join(lines) + "\n"
