"""A :class:`~arflow.analytics.Report` rendered for people and for tools: a table for the
terminal, JSON, CSV files (one per family), and one self-contained HTML dashboard with
charts drawn as SVG (``docs/report.md``). It renders; it computes no figure."""

from __future__ import annotations

from ._csv import HEADERS as CSV_HEADERS
from ._csv import report_csv, write_csv
from ._data import SCHEMA_VERSION, report_dict, report_json
from ._html import anchor, render_html
from ._labels import LABELS, LOCALES
from ._text import render_text

__all__ = [
    "CSV_HEADERS",
    "LABELS",
    "LOCALES",
    "SCHEMA_VERSION",
    "anchor",
    "render_html",
    "render_text",
    "report_csv",
    "report_dict",
    "report_json",
    "write_csv",
]
