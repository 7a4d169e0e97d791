"""A receivable as the daily run's customer facts read it, without the model."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from .domain import CLOSED_RECEIVABLE_STATES, Receivable


class ReceivableSummary(NamedTuple):
    """What a customer's facts need of one of its receivables. A day's run reads these for
    every receivable of the customers it looks at (closed ones included, for the payment
    behaviour facts) from a short text SQL stores keep beside the JSON (``summary_text``),
    without building the model."""

    id: str
    state: str
    currency: str
    issue_date: date
    due_date: date
    open_amount: Decimal
    disputed: bool
    closed_on: date | None


CLOSED_STATES = frozenset(str(s) for s in CLOSED_RECEIVABLE_STATES)


def summary_of(r: Receivable | ReceivableSummary) -> ReceivableSummary:
    if isinstance(r, ReceivableSummary):
        return r
    return ReceivableSummary(
        r.id,
        str(r.state),
        r.currency,
        r.issue_date,
        r.due_date,
        r.open_balance.amount,
        bool(r.disputed_amount),
        r.closed_on,
    )


def summary_text(r: Receivable) -> str:
    """The summary's fields that are not columns of their own, as SQL stores keep them
    beside the JSON (``currency|issue date|open amount|disputed 0/1|closed on``), so that
    reading summaries does not parse JSON."""
    return _text(
        r.currency, r.issue_date, r.open_balance.amount, bool(r.disputed_amount), r.closed_on
    )


def plain_summary_text(currency: str, issue_date: date, amount: Decimal) -> str:
    """``summary_text`` of a new receivable: open for its whole amount, nothing disputed."""
    return _text(currency, issue_date, amount, False, None)


def _text(currency: str, issued: date, amount: Decimal, disputed: bool, closed: date | None) -> str:
    closed_text = "" if closed is None else closed.isoformat()
    return f"{currency}|{issued.isoformat()}|{amount}|{'1' if disputed else '0'}|{closed_text}"


def summary_from_text(oid: str, state: str, due_date: date | str, text: str) -> ReceivableSummary:
    """The summary from the id, state and due date columns and ``summary_text``."""
    currency, issued, amount, disputed, closed = text.split("|")
    return ReceivableSummary(
        oid,
        state,
        currency,
        _day(issued),
        _day(due_date) if isinstance(due_date, str) else due_date,
        Decimal(amount),
        disputed == "1",
        _day(closed) if closed else None,
    )


#: Dates by their text: a book's due and issue dates repeat (a few thousand days in all).
_DAYS: dict[str, date] = {}


def _day(text: str) -> date:
    found = _DAYS.get(text)
    if found is None:
        found = date.fromisoformat(text)
        if len(_DAYS) >= 100_000:
            _DAYS.clear()
        _DAYS[text] = found
    return found


def summary_from_json(data: str) -> ReceivableSummary:
    """The summary of a receivable from its stored JSON (``json_of(receivable)``, which
    leaves out fields that are None): for rows stored without a summary text."""
    d = json.loads(data)
    balance = d["open_balance"]
    disputed = d["disputed_amount"]["amount"]
    closed = d.get("closed_on")
    return ReceivableSummary(
        d["id"],
        d["state"],
        balance["currency"],
        _day(d["issue_date"]),
        _day(d["due_date"]),
        Decimal(balance["amount"]),
        Decimal(disputed) != 0,
        None if closed is None else _day(closed),
    )
