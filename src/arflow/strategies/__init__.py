"""Hypothesis strategies for testing rules, and code built on arflow, against random books.

A rule author pins a policy with a few hand-written scenarios (:mod:`arflow.testing`);
these strategies add the scenarios nobody thought of: customers with and without limits,
grades, contacts and company profiles; invoices of every size and payment term; and whole
histories of invoices, payments, disputes, promises, credit notes and write-offs that the
ledger accepts, in the order they happened::

    from hypothesis import given
    from arflow import Ledger
    from arflow.strategies import event_sequences

    @given(event_sequences(start=date(2026, 1, 1), end=date(2026, 3, 31)))
    def test_my_policy(events):
        ledger = Ledger()
        for e in events:
            ledger.apply(e)
        ...

Everything is exact: amounts are ``Money`` with a ``Decimal`` rounded to the currency's
minor unit (never a float), and every id (events, customers, invoices, payments...) is
derived from the draw, so a failing example shrinks and replays to the same book.

Hypothesis is an optional dependency (``pip install arflow[test]``): import this module
from tests only.
"""

from __future__ import annotations

from ._parties import customers
from ._receivables import receivables_for
from ._sequences import EVENT_KINDS, event_sequences
from ._values import amounts, dates

__all__ = [
    "EVENT_KINDS",
    "amounts",
    "customers",
    "dates",
    "event_sequences",
    "receivables_for",
]
