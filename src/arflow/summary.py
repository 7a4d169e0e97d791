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
    behaviour facts), straight from the stored JSON: four times cheaper than the model."""

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
    closed = "" if r.closed_on is None else r.closed_on.isoformat()
    disputed = "1" if r.disputed_amount else "0"
    return f"{r.currency}|{r.issue_date.isoformat()}|{r.open_balance.amount}|{disputed}|{closed}"


def plain_summary_text(currency: str, issue_date: date, amount: Decimal) -> str:
    """``summary_text`` of a new receivable: open for its whole amount, nothing disputed."""
    return f"{currency}|{issue_date.isoformat()}|{amount}|0|"


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


def summary_from_fields(
    oid: str,
    state: str,
    currency: str,
    issue_date: str,
    due_date: str,
    open_amount: str,
    disputed_amount: str,
    closed_on: str | None,
) -> ReceivableSummary:
    """The summary from the stored JSON's values, as text (a database's JSON functions
    picked them out: ``open_balance.currency``, ``open_balance.amount``...)."""
    return ReceivableSummary(
        oid,
        state,
        currency,
        _day(issue_date),
        _day(due_date),
        Decimal(open_amount),
        disputed_amount not in _ZEROS and Decimal(disputed_amount) != 0,
        None if closed_on is None else _day(closed_on),
    )


_ZEROS = frozenset({"0", "0.0", "0.00", "0.000", "0.0000"})
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
    leaves out fields that are None)."""
    d = json.loads(data)
    balance = d["open_balance"]
    return summary_from_fields(
        d["id"],
        d["state"],
        balance["currency"],
        d["issue_date"],
        d["due_date"],
        balance["amount"],
        d["disputed_amount"]["amount"],
        d.get("closed_on"),
    )
