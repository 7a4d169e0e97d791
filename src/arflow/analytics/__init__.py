"""The numbers people steer by: aging, DSO, rates, rankings, trends, the contract view,
watch lists and a cash forecast, each as of a date (``docs/analytics.md``)."""

from __future__ import annotations

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
]
