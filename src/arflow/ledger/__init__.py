"""The ledger: applying business events to the book, and reading balances back.

:class:`Ledger` (in ``_core``) applies each event in one transaction through its handler,
one module per event family: ``_parties`` (customers, contacts, contracts, milestones),
``_invoices`` (invoices, credit notes, write-offs), ``_payments`` (payments and their
reversal), ``_disputes`` (disputes and promises to pay), ``_orders`` (orders, approvals,
order locks) and ``_dunning`` (what the engine records). ``_allocation`` decides where cash
goes, as pure functions; ``_context`` holds what every handler works with.
"""

from __future__ import annotations

# The underscored names are what tests/test_rows.py compares the plain-invoice rows with.
from ._allocation import allocate_explicit, allocate_oldest_first
from ._checks import LIVE_STATES, UNINVOICED_ORDER_STATES
from ._context import InvoiceRequest
from ._context import audit as _audit  # noqa: F401
from ._core import Applied, Batch, Ledger, OrderPolicy
from ._invoices import invoice_summary as _issued_summary  # noqa: F401
from ._invoices import issued as _issued  # noqa: F401
from ._requests import request_id
from ._where import CHAIN, Where, where

__all__ = [
    "CHAIN",
    "LIVE_STATES",
    "UNINVOICED_ORDER_STATES",
    "Applied",
    "Batch",
    "InvoiceRequest",
    "Ledger",
    "OrderPolicy",
    "Where",
    "allocate_explicit",
    "allocate_oldest_first",
    "request_id",
    "where",
]
