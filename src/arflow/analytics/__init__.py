"""The numbers people steer by: aging, DSO, rates, rankings, trends, the contract view,
watch lists and a cash forecast, each as of a date (``docs/analytics.md``)."""

from __future__ import annotations

from ._build import REPORT_RANKINGS, REPORT_TRENDS, build_report
from ._figures import DEFAULT_BUCKETS, RANK_METRICS, TREND_METRICS, Analytics, Rates
from ._forecast import forecast, forecasts, lateness_days
from ._results import (
    DIMENSIONS,
    Aging,
    Bucket,
    ContractView,
    Figure,
    Forecast,
    ForecastWeek,
    Headline,
    MilestoneView,
    NodeView,
    RankEntry,
    Ranking,
    Report,
    Trend,
    TrendPoint,
    WatchItem,
    WatchList,
)
from ._views import contract_view, falling_due, high_risk, next_action, project_view

__all__ = [
    "DEFAULT_BUCKETS",
    "DIMENSIONS",
    "RANK_METRICS",
    "REPORT_RANKINGS",
    "REPORT_TRENDS",
    "TREND_METRICS",
    "Aging",
    "Analytics",
    "Bucket",
    "ContractView",
    "Figure",
    "Forecast",
    "ForecastWeek",
    "Headline",
    "MilestoneView",
    "NodeView",
    "RankEntry",
    "Ranking",
    "Rates",
    "Report",
    "Trend",
    "TrendPoint",
    "WatchItem",
    "WatchList",
    "build_report",
    "contract_view",
    "falling_due",
    "forecast",
    "forecasts",
    "high_risk",
    "lateness_days",
    "next_action",
    "project_view",
]
