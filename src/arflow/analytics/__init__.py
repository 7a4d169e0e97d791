"""The numbers people steer by: aging, DSO, rates, rankings, trends, the contract view,
watch lists and a cash forecast, each as of a date (``docs/analytics.md``)."""

from __future__ import annotations

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
    "DIMENSIONS",
    "Aging",
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
    "Report",
    "Trend",
    "TrendPoint",
    "WatchItem",
    "WatchList",
    "contract_view",
    "falling_due",
    "forecast",
    "forecasts",
    "high_risk",
    "lateness_days",
    "next_action",
    "project_view",
]
