"""Everything a report shows, as of one date: :func:`build_report` assembles a
:class:`~arflow.analytics.Report` from the figures, the views, the watch lists and the
forecast (what ``arflow report`` renders)."""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING

from ..errors import ValidationError
from ._figures import Analytics
from ._forecast import forecasts
from ._results import Aging, ContractView, Figure, Headline, Ranking, Report, Trend
from ._views import contract_view, falling_due, high_risk

if TYPE_CHECKING:
    from ..rules.loader import RulePack
    from ..store.base import Store

log = logging.getLogger("arflow.analytics")

#: The rankings a report shows: (metric, ranked by).
REPORT_RANKINGS: tuple[tuple[str, str], ...] = (
    ("overdue", "customer"),
    ("on_time_rate", "customer"),
    ("cash_collected", "salesperson"),
    ("overdue", "salesperson"),
    ("dso", "salesperson"),
    ("cash_collected", "team"),
    ("cash_collected", "product_line"),
    ("cash_collected", "region"),
)
#: The trends a report draws, month by month.
REPORT_TRENDS: tuple[str, ...] = ("dso", "collection_rate", "overdue_rate")


def build_report(
    store: Store,
    as_of: date,
    pack: RulePack | None = None,
    *,
    months: int = 12,
    weeks: int = 13,
    falling_due_days: int = 14,
    max_contracts: int = 200,
    max_watch: int | None = 500,
) -> Report:
    """The report of the book in ``store`` as of ``as_of``.

    Headline cards per currency; aging; the period figures over the 90 days to ``as_of``
    (DSO by both methods, ART, average days delinquent, CEI, overdue, collection, on-time
    and written-off rates, and the collection rate month to date); trends of DSO and the
    collection and overdue rates over the last ``months`` month ends (from the first month
    with data), with the pack's ``dso_target_days`` beside the DSO; the rankings of
    :data:`REPORT_RANKINGS`; customers by grade; the cash forecast for ``weeks`` weeks with
    its backtest; the receivables falling due in ``falling_due_days`` days and the high-risk
    ones (the first ``max_watch`` of each, ``WatchList.cut`` saying so; None: all); and the
    project-contract-receivable view of up to ``max_contracts`` contracts
    (those with the most open, then by id; ``next_action`` needs ``pack``).

    An empty book gives a report with no rows and figures that say they are undefined; a
    date before the book's first day gives empty families, never zeros."""
    if months < 1 or weeks < 1 or falling_due_days < 0 or max_contracts < 0:
        raise ValidationError(
            "build_report: months and weeks must be at least 1, falling_due_days and "
            "max_contracts at least 0"
        )
    target = None if pack is None else pack.settings.dso_target_days
    a = Analytics(store, dso_target_days=target)
    # every sum the report's figures, trends and rankings ask for is asked of the book once
    # (the headline does the same for its cards): about half of them are asked again
    a._memo = {}
    try:
        return _report(
            a, store, as_of, pack, months, weeks, falling_due_days, max_contracts, max_watch
        )
    finally:
        a._memo = None


def _report(
    a: Analytics,
    store: Store,
    as_of: date,
    pack: RulePack | None,
    months: int,
    weeks: int,
    falling_due_days: int,
    max_contracts: int,
    max_watch: int | None,
) -> Report:
    first = a.source.first_day()
    # every sum of the figures, trends and rankings below, asked of the book together
    a.prefetch(lambda: _numbers(a, as_of, first, months))
    figures, trends, rankings, headline, aging = _numbers(a, as_of, first, months)
    log.info("report as of %s built", as_of, extra={"arflow_report": as_of.isoformat()})
    return Report(
        as_of=as_of,
        headline=headline,
        aging=aging,
        figures=figures,
        trends=trends,
        rankings=rankings,
        grades=a.grades(),
        forecast=forecasts(store, as_of, weeks) if first is not None else (),
        watch=(
            falling_due(store, as_of, falling_due_days, limit=max_watch),
            high_risk(store, as_of, limit=max_watch),
        ),
        contracts=_contracts(store, as_of, pack, max_contracts),
    )


def _numbers(
    a: Analytics, as_of: date, first: date | None, months: int
) -> tuple[
    tuple[Figure, ...],
    tuple[Trend, ...],
    tuple[Ranking, ...],
    tuple[Headline, ...],
    tuple[Aging, ...],
]:
    """The report's figures, trends, rankings, headline cards and aging."""
    figures: list[Figure] = []
    figures += a.dso(as_of)
    figures += a.dso(as_of, method="countback")
    figures += a.art(as_of)
    figures += a.add(as_of)
    figures += a.cei(as_of)
    figures += a.overdue_rate(as_of)
    figures += a.collection_rate(as_of)
    figures += a.collection_rate_mtd(as_of)
    figures += a.on_time_rate(as_of)
    figures += a.written_off_ratio(as_of)
    trends: list[Trend] = []
    if first is not None and first <= as_of:
        start = max(first, _months_back(as_of, months - 1))
        for metric in REPORT_TRENDS:
            trends += a.trend(metric, start, as_of)
    rankings: list[Ranking] = []
    for metric, by in REPORT_RANKINGS:
        rankings += a.ranking(metric, by, as_of)  # one per currency
    return tuple(figures), tuple(trends), tuple(rankings), a.headline(as_of), a.aging(as_of)


def _months_back(d: date, n: int) -> date:
    """The first day of the month ``n`` months before ``d``'s."""
    y, m = divmod(d.year * 12 + d.month - 1 - n, 12)
    return date(y, m + 1, 1)


def _contracts(
    store: Store, as_of: date, pack: RulePack | None, most: int
) -> tuple[ContractView, ...]:
    if most == 0:
        return ()
    views = [
        contract_view(store, c.id, as_of, pack=pack)
        for c in store.all("contract")
        if c.signed_on <= as_of
    ]
    views.sort(key=lambda v: (-v.open.amount, v.contract_id))
    return tuple(views[:most])
