"""The report as one self-contained HTML file: it opens offline, from a file or an email.

Everything is inline: the style, the charts (SVG drawn by :mod:`._svg`) and a short
script of arflow's own (``report.js``: sortable and filterable tables). Nothing is fetched:
a Content-Security-Policy in the page allows only that style and that script (by hash), so
even text that escaped escaping could not run. Every text from the book is escaped.

Numbers carry what a test or a scraper needs: ``data-value`` (the exact number of the
report, a Decimal as text), ``data-currency``, and ids (``headline-CNY-total``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from html import escape
from importlib import resources

from ..analytics import (
    Aging,
    ContractView,
    Figure,
    Forecast,
    Headline,
    Ranking,
    Report,
    Trend,
    WatchList,
)
from ..money import Money
from . import _svg
from ._data import fmt_money, fmt_number, group_text
from ._labels import Labels

#: The unit of each metric a trend or a ranking names (a figure carries its own).
METRIC_UNITS: dict[str, str] = {
    "dso": "days",
    "dso_countback": "days",
    "add": "days",
    "art": "times",
    "cei": "ratio",
    "collection_rate": "ratio",
    "collection_rate_mtd": "ratio",
    "overdue_rate": "ratio",
    "written_off_ratio": "ratio",
    "on_time_rate": "ratio",
    "cash_collected": "money",
    "overdue": "money",
}


def _e(text: object) -> str:
    return escape("" if text is None else str(text), quote=True)


def anchor(kind: str, key: str) -> str:
    """An id made of ``kind`` and any text: letters, digits and ``-`` kept, every other
    character (``_`` too) written as ``_hex_``, so two keys never share an id."""
    safe = re.sub(r"[^A-Za-z0-9-]", lambda m: f"_{ord(m.group()):x}_", key)
    return f"{kind}-{safe}"


@cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


# -- cells and tables -----------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    text: str  # shown (escaped when written)
    value: str | None = None  # the exact number: data-value and data-sort
    css: str = ""
    href: str | None = None
    html: str | None = None  # already-escaped markup (lists), used instead of text
    attrs: dict[str, str] = field(default_factory=dict)


def num(value: Decimal | None, unit: str, currency: str | None = None) -> Cell:
    if value is None:
        return Cell("-", None, "num undefined")
    shown = (
        fmt_money(Money(amount=value, currency=currency))
        if currency and unit == "money"
        else fmt_number(value, unit)
    )
    attrs = {"data-currency": currency} if currency else {}
    return Cell(shown, str(value), "num", attrs=attrs)


def day(d: date | None) -> Cell:
    """A date cell: ISO, sorted as text (which sorts ISO dates), never wrapped."""
    if d is None:
        return Cell("-", None, "date")
    return Cell(d.isoformat(), d.isoformat(), "date")


def money(m: Money) -> Cell:
    return Cell(fmt_money(m), str(m.amount), "num", attrs={"data-currency": m.currency})


def _cell(c: Cell | str) -> str:
    if isinstance(c, str):
        return f"<td>{_e(c)}</td>"
    attrs = "".join(f' {k}="{_e(v)}"' for k, v in c.attrs.items())
    if c.value is not None:
        attrs += f' data-value="{_e(c.value)}" data-sort="{_e(c.value)}"'
    if c.css:
        attrs += f' class="{_e(c.css)}"'
    body = c.html if c.html is not None else _e(c.text)
    if c.href:
        body = f'<a href="{_e(c.href)}">{body}</a>'
    return f"<td{attrs}>{body}</td>"


class Page:
    """What one render collects: the labels and the tables made so far (ids unique)."""

    def __init__(self, t: Labels) -> None:
        self.t = t
        self.tables = 0
        self.charts = 0

    def table(
        self,
        caption: str,
        headers: Sequence[str],
        rows: Sequence[Sequence[Cell | str]],
        *,
        name: str,
    ) -> str:
        self.tables += 1
        tid = f"table-{name}-{self.tables}"
        t = self.t
        head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
        body = "\n".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in rows)
        return (
            f'<div class="table-box">\n<div class="filter-row"><label>{_e(t("filter"))} '
            f'<input class="filter" type="search" data-table="{tid}" data-count="{tid}-count" '
            f'placeholder="{_e(t("filter_hint"))}" aria-label="{_e(t("filter"))}: {_e(caption)}">'
            f'</label> <span id="{tid}-count">{len(rows)}</span> / {len(rows)} '
            f"{_e(t('rows_shown'))}</div>\n"
            f'<table id="{tid}" class="sortable" data-table="{_e(name)}">'
            f"<caption>{_e(caption)}</caption>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n{body}\n</tbody></table>\n</div>"
        )

    def chart_id(self, kind: str) -> str:
        self.charts += 1
        return f"chart-{kind}-{self.charts}"


def _figure_card(cid: str, key: str, label: str, f: Figure, t: Labels, currency: str) -> str:
    unit = {"days": t("unit_days"), "ratio": "", "times": t("unit_times")}.get(f.unit, "")
    shown_unit = "" if f.value is None else unit
    value = "" if f.value is None else str(f.value)
    sub = ""
    if f.value is None:
        sub = f'<div class="sub undefined">{_e(t("undefined"))}: {_e(f.undefined or "")}</div>'
    elif f.target is not None:
        sub = (
            f'<div class="sub" data-target="{_e(f.target)}">{_e(t("target"))} '
            f"{_e(fmt_number(f.target, f.unit))} {_e(unit)}</div>"
        )
    return (
        f'<div class="card {key}" id="{cid}" data-figure="{key}" data-currency="{_e(currency)}" '
        f'data-value="{_e(value)}"><div class="label">{_e(label)}</div>'
        f'<div class="value"><span class="num">{_e(fmt_number(f.value, f.unit))}</span> '
        f'<span class="unit">{_e(shown_unit)}</span></div>{sub}</div>'
    )


def _money_card(cid: str, key: str, label: str, m: Money) -> str:
    return (
        f'<div class="card {key}" id="{cid}" data-figure="{key}" data-currency="{_e(m.currency)}" '
        f'data-value="{_e(m.amount)}"><div class="label">{_e(label)}</div>'
        f'<div class="value"><span class="num">{_e(fmt_money(m))}</span> '
        f'<span class="unit">{_e(m.currency)}</span></div></div>'
    )


def _headline(heads: Sequence[Headline], t: Labels) -> str:
    out = []
    for h in sorted(heads, key=lambda h: h.currency):
        cur = h.currency
        cards = [
            _money_card(anchor("headline", f"{cur}-total"), "total", t("total"), h.total),
            _money_card(anchor("headline", f"{cur}-overdue"), "overdue", t("overdue"), h.overdue),
        ]
        for key in ("dso", "collection_rate_mtd", "cei", "overdue_rate"):
            cards.append(
                _figure_card(
                    anchor("headline", f"{cur}-{key}"), key, t(key), getattr(h, key), t, cur
                )
            )
        out.append(
            f'<div class="cards" data-currency="{_e(cur)}"><div class="currency">{_e(cur)}</div>'
            + "".join(cards)
            + "</div>"
        )
    return "\n".join(out) or f'<p class="muted">{_e(t("no_data"))}</p>'


def _aging(page: Page, agings: Sequence[Aging], t: Labels) -> str:
    charts = []
    rows: list[list[Cell | str]] = []
    for a in sorted(agings, key=lambda a: (a.currency, group_text(a.group))):
        labels = [t(b.label) for b in a.buckets]
        if not a.group:
            title = f"{t('aging')} · {a.currency}"
            svg = _svg.bar_chart(
                page.chart_id("aging"),
                "aging",
                title,
                labels,
                [
                    _svg.Series(
                        a.currency,
                        tuple(b.amount.amount for b in a.buckets),
                        tuple(fmt_money(b.amount) for b in a.buckets),
                    )
                ],
                empty_text=t("no_data"),
            )
            charts.append(
                f"<figure>{svg}<figcaption>{_e(t('total'))} {_e(fmt_money(a.total))} "
                f"{_e(a.currency)} · {_e(t('overdue'))} {_e(fmt_money(a.overdue))} "
                f"{_e(a.currency)}</figcaption></figure>"
            )
        for b, label in zip(a.buckets, labels, strict=True):
            rows.append([
                a.currency, group_text(a.group) or t("all"), label, money(b.amount),
                num(Decimal(b.count), "count"), num(b.share, "ratio"),
            ])  # fmt: skip
    table = page.table(
        t("aging"),
        [t("currency"), t("group"), t("bucket"), t("amount"), t("count"), t("share")],
        rows,
        name="aging",
    )
    return f'<div class="charts">{"".join(charts)}</div>\n{table}'


def _tick(unit: str) -> Callable[[float], str]:
    if unit == "ratio":
        return lambda v: f"{v:.0f}%"
    return lambda v: f"{v:,.0f}"


def _trends(page: Page, trends: Sequence[Trend], t: Labels) -> str:
    charts = []
    rows: list[list[Cell | str]] = []
    for tr in trends:
        unit = METRIC_UNITS.get(tr.metric, "times")
        months = [p.month_end.isoformat()[:7] for p in tr.points]
        title = " · ".join(
            x for x in (t(tr.metric), tr.currency or "", group_text(tr.group)) if x
        ) + (f" ({t('trend_vs_target')})" if tr.target is not None else "")
        target_text = t("target")
        if tr.target is not None:
            target_text += f" {fmt_number(tr.target, unit)}"
        svg = _svg.line_chart(
            page.chart_id("trend"),
            f"trend-{tr.metric}",
            title,
            months,
            [p.value for p in tr.points],
            [fmt_number(p.value, unit) for p in tr.points],
            target=tr.target,
            target_text=target_text,
            scale=100.0 if unit == "ratio" else 1.0,
            tick=_tick(unit),
            empty_text=t("no_data"),
        )
        charts.append(f"<figure>{svg}<figcaption>{_e(title)}</figcaption></figure>")
        for p in tr.points:
            value = num(p.value, unit, tr.currency)
            if p.value is None and p.undefined:
                value = Cell(f"- ({p.undefined})", None, "undefined")
            rows.append([
                t(tr.metric), tr.currency or "", group_text(tr.group) or t("all"),
                day(p.month_end), value,
                num(tr.target, unit),
            ])  # fmt: skip
    table = page.table(
        t("trends"),
        [t("figure"), t("currency"), t("group"), t("month_end"), t("value"), t("target_header")],
        rows,
        name="trends",
    )
    return f'<div class="charts">{"".join(charts)}</div>\n{table}'


def _grades(page: Page, grades: Sequence[tuple[str | None, int]], t: Labels) -> str:
    slices = [(g if g is not None else t("no_grade"), n) for g, n in grades]
    svg = _svg.donut(
        page.chart_id("grades"), "grades", t("grades"), slices, empty_text=t("no_data")
    )
    rows: list[list[Cell | str]] = [[g, num(Decimal(n), "count")] for g, n in slices]
    table = page.table(t("grades"), [t("grade"), t("customers")], rows, name="grades")
    return f'<div class="charts"><figure>{svg}</figure></div>\n{table}'


def _rankings(page: Page, rankings: Sequence[Ranking], t: Labels) -> str:
    out = []
    for r in rankings:
        unit = METRIC_UNITS.get(r.metric, "times")
        caption = (
            f"{t(r.metric)} · {t('by')} {t(r.by)}"
            + (f" · {r.currency}" if r.currency else "")
            + f" · {r.period_start.isoformat()} – {r.period_end.isoformat()}"
        )
        rows: list[list[Cell | str]] = [
            [
                num(Decimal(e.rank), "count"),
                e.label,
                e.key or "",
                num(e.value, unit, e.currency or r.currency),
            ]
            for e in r.entries
        ]
        out.append(
            page.table(
                caption,
                [t("rank"), t("name"), t(r.by), t(r.metric)],
                rows,
                name=f"ranking-{r.metric}-{r.by}",
            )
        )
    return "\n".join(out) or f'<p class="muted">{_e(t("no_data"))}</p>'


def _forecast(page: Page, forecasts: Sequence[Forecast], t: Labels) -> str:
    charts = []
    rows: list[list[Cell | str]] = []
    for fc in forecasts:
        weeks = [w.week_start.isoformat()[5:] for w in fc.weeks]
        charts.append(
            "<figure>"
            + _svg.bar_chart(
                page.chart_id("forecast"),
                "forecast",
                f"{t('forecast')} · {fc.currency}",
                weeks,
                [
                    _svg.Series(
                        t("expected"),
                        tuple(w.expected.amount for w in fc.weeks),
                        tuple(fmt_money(w.expected) for w in fc.weeks),
                    )
                ],
                empty_text=t("no_data"),
            )
            + f"<figcaption>{_e(t('forecast'))} · {_e(fc.currency)}</figcaption></figure>"
        )
        if fc.backtest:
            charts.append(
                "<figure>"
                + _svg.bar_chart(
                    page.chart_id("backtest"),
                    "backtest",
                    f"{t('backtest')} · {fc.currency}",
                    [w.week_start.isoformat()[5:] for w in fc.backtest],
                    [
                        _svg.Series(
                            t("expected"),
                            tuple(w.expected.amount for w in fc.backtest),
                            tuple(fmt_money(w.expected) for w in fc.backtest),
                        ),
                        _svg.Series(
                            t("actual"),
                            tuple(
                                None if w.actual is None else w.actual.amount for w in fc.backtest
                            ),
                            tuple(
                                "-" if w.actual is None else fmt_money(w.actual)
                                for w in fc.backtest
                            ),
                        ),
                    ],
                    empty_text=t("no_data"),
                )
                + f"<figcaption>{_e(t('backtest'))} · {_e(fc.currency)}</figcaption></figure>"
            )
        for kind, weeks_ in (("forecast", fc.weeks), ("backtest", fc.backtest)):
            for w in weeks_:
                rows.append([
                    t(f"kind_{kind}"), fc.currency, day(w.week_start),
                    money(w.expected), money(w.from_due), money(w.from_promises),
                    money(w.actual) if w.actual is not None else Cell("-", None, "num undefined"),
                ])  # fmt: skip
    table = page.table(
        t("forecast"),
        [t("forecast"), t("currency"), t("week_start"), t("expected"), t("from_due"),
         t("from_promises"), t("actual")],
        rows,
        name="forecast",
    )  # fmt: skip
    return f'<div class="charts">{"".join(charts)}</div>\n{table}'


def _history(items: Sequence[str]) -> str:
    return '<ul class="history">' + "".join(f"<li>{_e(h)}</li>" for h in items) + "</ul>"


def _watch(page: Page, lists: Sequence[WatchList], t: Labels) -> str:
    out = []
    for wl in lists:
        rows: list[list[Cell | str]] = [
            [
                Cell(i.receivable_id, attrs={"data-receivable": i.receivable_id}),
                i.customer_name,
                day(i.due_date),
                money(i.open_balance),
                i.open_balance.currency,
                num(Decimal(i.days), "count"),
                i.risk_level or "",
                num(Decimal(i.dunning_level), "count"),
                i.last_contact or "",
                Cell("", html=_history(i.history)),
            ]
            for i in wl.items
        ]
        out.append(
            page.table(
                f"{t(wl.name)} ({wl.as_of.isoformat()})"
                + (f", {t('first_shown').format(n=len(wl.items))}" if wl.cut else ""),
                [
                    t("receivable"),
                    t("customer"),
                    t("due_date"),
                    t("open_balance"),
                    t("currency"),
                    t("days"),
                    t("risk_level"),
                    t("dunning_level"),
                    t("last_contact"),
                    t("history"),
                ],
                rows,
                name=f"watch-{wl.name}",
            )
        )
    return "\n".join(out) or f'<p class="muted">{_e(t("no_data"))}</p>'


def _figures(page: Page, figures: Sequence[Figure], t: Labels) -> str:
    rows: list[list[Cell | str]] = []
    for f in figures:
        value = num(f.value, f.unit, f.currency)
        if f.value is None:
            value = Cell(f"- ({f.undefined or t('undefined')})", None, "undefined")
        rows.append([
            t(f.name), f.currency or "", group_text(f.group) or t("all"),
            f"{f.period_start.isoformat()} – {f.period_end.isoformat()}", value,
            num(f.target, f.unit),
        ])  # fmt: skip
    return page.table(
        t("figures"),
        [t("figure"), t("currency"), t("group"), t("period"), t("value"), t("target_header")],
        rows,
        name="figures",
    )


def _contracts(page: Page, contracts: Sequence[ContractView], t: Labels) -> str:
    index: list[list[Cell | str]] = []
    pages = []
    for c in contracts:
        aid = anchor("contract", c.contract_id)
        index.append([
            Cell(c.contract_id, href=f"#{aid}"), c.customer_name, c.project_id or "", c.title,
            c.amount.currency, money(c.amount), money(c.invoiced), money(c.collected),
            money(c.open), money(c.overdue), money(c.unbilled),
        ])  # fmt: skip
        summary = "".join(
            f'<dt>{_e(t(key))}</dt><dd id="{aid}-{key}" data-value="{_e(m.amount)}" '
            f'data-currency="{_e(m.currency)}">{_e(fmt_money(m))} {_e(m.currency)}</dd>'
            for key, m in (
                ("contract_amount", c.amount),
                ("invoiced", c.invoiced),
                ("collected", c.collected),
                ("open", c.open),
                ("overdue", c.overdue),
                ("unbilled", c.unbilled),
            )
        )
        nodes: list[list[Cell | str]] = [
            [
                n.node_id,
                n.label,
                day(n.due_date),
                money(n.planned), money(n.invoiced), money(n.collected), money(n.overdue),
                Cell("", html=_history([
                    f"{m.name} · {m.status} · {m.planned_date or '-'} / {m.actual_date or '-'}"
                    for m in n.milestones
                ])),
                ", ".join(n.receivable_ids),
            ]
            for n in c.nodes
        ]  # fmt: skip
        nodes_table = page.table(
            f"{t('nodes')} · {c.contract_id}",
            [t("node"), t("name"), t("due_date"), t("planned"), t("invoiced"),
             t("collected"), t("overdue"), t("milestones"), t("receivable")],
            nodes,
            name="contract-nodes",
        )  # fmt: skip
        pages.append(
            f'<article class="contract" id="{aid}" data-contract="{_e(c.contract_id)}">'
            f"<h3>{_e(t('contract'))} {_e(c.contract_id)} · {_e(c.title)}</h3>"
            f'<p>{_e(t("customer"))}: {_e(c.customer_name)} <span class="muted">'
            f"({_e(c.customer_id)})</span>"
            + (f" · {_e(t('project'))}: {_e(c.project_id)}" if c.project_id else "")
            + f" · {_e(t('as_of'))} {_e(c.as_of.isoformat())}</p>"
            f'<dl class="summary">{summary}</dl>{nodes_table}'
            f"<p>{_e(t('disputes'))}: {_e(', '.join(c.disputes) or t('none'))} · "
            f"{_e(t('promises'))}: {_e(', '.join(c.promises) or t('none'))}</p>"
            f'<p class="next-action">{_e(t("next_action"))}: {_e(c.next_action or t("none"))}</p>'
            f'<p><a href="#contracts">{_e(t("back"))}</a></p></article>'
        )
    table = page.table(
        t("contracts"),
        [t("contract"), t("customer"), t("project"), t("contract_title"), t("currency"),
         t("contract_amount"), t("invoiced"), t("collected"), t("open"), t("overdue"),
         t("unbilled")],
        index,
        name="contracts",
    )  # fmt: skip
    return table + "\n" + "\n".join(pages)


def render_html(report: Report, locale: str = "en") -> str:
    """``report`` as one HTML page that needs nothing else: headline cards per currency,
    the aging chart, the trends against their targets, the grade distribution, the
    rankings, the forecast, the watch lists, every figure, and a section per contract (its
    id is :func:`anchor` of ``"contract"`` and the contract's id). Labels in ``locale``
    (``en`` or ``zh_CN``; another is a :class:`~arflow.errors.ValidationError`)."""
    t = Labels(locale)
    page = Page(t)
    css, js = _asset("report.css"), _asset("report.js")
    sections = [
        ("headline", t("headline"), _headline(report.headline, t)),
        ("aging", t("aging"), _aging(page, report.aging, t)),
        ("trends", t("trends"), _trends(page, report.trends, t)),
        ("grades", t("grades"), _grades(page, report.grades, t)),
        ("rankings", t("rankings"), _rankings(page, report.rankings, t)),
        ("forecast", t("forecast"), _forecast(page, report.forecast, t)),
        ("watch", t("watch"), _watch(page, report.watch, t)),
        ("figures", t("figures"), _figures(page, report.figures, t)),
        ("contracts", t("contracts"), _contracts(page, report.contracts, t)),
    ]
    csp = (
        f"default-src 'none'; style-src '{_sha256(css)}'; script-src '{_sha256(js)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title, _ in sections)
    body = "\n".join(
        f'<section id="{key}"><h2>{_e(title)}</h2>\n{html}\n</section>'
        for key, title, html in sections
    )
    lang = locale.replace("_", "-")
    title = f"{t('title')} · {t('as_of')} {report.as_of.isoformat()}"
    return (
        f'<!DOCTYPE html>\n<html lang="{_e(lang)}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="arflow">\n<title>{_e(title)}</title>\n'
        f"<style>{css}</style>\n</head>\n<body>\n"
        f'<header><h1>{_e(t("title"))}</h1><span class="as-of" id="as-of" '
        f'data-value="{report.as_of.isoformat()}">{_e(t("as_of"))} '
        f"{report.as_of.isoformat()}</span></header>\n"
        f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n<script>{js}</script>\n</body>\n</html>\n"
    )
