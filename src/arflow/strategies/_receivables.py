"""Invoices on a book: ``InvoiceIssued`` events for customers already registered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from ..events import InvoiceIssued
from ..money import Money
from ._values import _COMMON_TERMS, _at, _day, amounts, dates

_TERMS = st.sampled_from(_COMMON_TERMS) | st.integers(0, 120)


@st.composite
def _invoice(
    draw: DrawFn,
    customer_ids: Sequence[str],
    start: date,
    end: date,
    money: SearchStrategy[Money],
    terms: SearchStrategy[int],
) -> InvoiceIssued:
    issued = draw(dates(start, end))
    number = f"INV-{issued:%Y%m}-{draw(st.integers(1, 99_999)):05d}"
    return InvoiceIssued(
        event_id=f"invoice:{number}",
        occurred_at=_at(issued),
        actor="billing",
        number=number,
        customer_id=draw(st.sampled_from(tuple(customer_ids))),
        issue_date=issued,
        due_date=issued + timedelta(days=draw(terms)),
        amount=draw(money),
    )


def receivables_for(
    customer_ids: Sequence[str],
    *,
    start: date | str,
    end: date | str,
    currency: str = "CNY",
    amount: SearchStrategy[Money] | None = None,
    terms: SearchStrategy[int] | None = None,
) -> SearchStrategy[InvoiceIssued]:
    """``InvoiceIssued`` events for customers already registered, to put receivables on a
    book: issued on a day in [``start``, ``end``], due after common payment terms (net 0
    to net 120 days, mostly 30 or 60), for a realistic amount (:func:`amounts`, in
    ``currency``).

    The event id is ``invoice:<number>`` and the number ``INV-<yyyymm>-<nnnnn>``; draw a
    batch with unique numbers with
    ``st.lists(receivables_for(ids, ...), unique_by=lambda e: e.number)`` and apply it in
    issue order.
    """
    if not customer_ids:
        raise ValueError("receivables_for: no customer ids")
    lo, hi = _day(start), _day(end)
    if hi < lo:
        raise ValueError(f"receivables_for: end {hi} is before start {lo}")
    return _invoice(
        list(customer_ids),
        lo,
        hi,
        amount if amount is not None else amounts(currency=currency),
        terms if terms is not None else _TERMS,
    )
