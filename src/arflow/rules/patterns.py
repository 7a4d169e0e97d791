"""Patterns over one customer's history (a promise with no payment by its date plus grace,
repeated late payments), and the two matchers that find them.

:class:`BuiltinPatternMatcher` is plain Python and always available.
:class:`arflow.rules.durable.PatternMatcher` joins the same facts in durable-rules, installed
with the ``arflow[durable]`` extra (Python < 3.13). Both take the same patterns and histories
and return the same matches, each hanging on the same promise or payment; the differential
test in ``tests/test_rules_durable.py`` holds them to it. A pack chooses with
``settings.matcher`` (``auto``, ``builtin`` or ``durable``; see ``docs/matchers.md``), and
the engine builds the one chosen. Nothing here imports durable-rules unless a
pack asks for it or ``auto`` finds it installed.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, Protocol, TypeAlias

from ..errors import UnsupportedForDurable

__all__ = [
    "MAX_LATE_COUNT",
    "BuiltinPatternMatcher",
    "LatePayments",
    "MatcherChoice",
    "PatternMatching",
    "Payment",
    "Promise",
    "UnpaidPromise",
    "durable_available",
]

MAX_LATE_COUNT = 12  # durable joins at most 16 facts per rule; the built-in matcher keeps it
MatcherChoice: TypeAlias = Literal["auto", "builtin", "durable"]
DURABLE_MISSING = (
    "needs durable-rules, which cannot be imported here: install the extra with "
    "pip install 'arflow[durable]' (Python 3.11 or 3.12), or set settings.matcher to "
    "builtin or auto (same decisions, no native code)"
)


@dataclass(frozen=True)
class Promise:
    """A promise to pay ``receivable_id`` by ``promised_date``, made on ``made_on``."""

    receivable_id: str
    made_on: date
    promised_date: date


@dataclass(frozen=True)
class Payment:
    """Money received on ``paid_on`` for ``receivable_id``, which was due on ``due_date``."""

    receivable_id: str
    paid_on: date
    due_date: date


@dataclass(frozen=True)
class UnpaidPromise:
    """Holds when a promise's date plus ``grace_days`` is before ``as_of`` and no payment for
    its receivable arrived between the day it was made and that deadline."""

    name: str = "unpaid_promise"
    grace_days: int = 0


@dataclass(frozen=True)
class LatePayments:
    """Holds when at least ``count`` payments made after their due date fall in the
    ``window_days`` days up to ``as_of`` (both ends included)."""

    name: str = "late_payments"
    count: int = 3
    window_days: int = 180


Pattern: TypeAlias = UnpaidPromise | LatePayments
Histories: TypeAlias = Mapping[str, tuple[Sequence[Promise], Sequence[Payment]]]
Details: TypeAlias = dict[str, list[tuple[str, Promise | Payment]]]


class PatternMatching(Protocol):
    """What the engine asks of a pattern matcher (both matchers have it)."""

    patterns: list[Pattern]

    def match(self, histories: Histories, as_of: date) -> dict[str, set[str]]: ...

    def match_details(self, histories: Histories, as_of: date) -> Details: ...

    def close(self) -> None: ...


def check_patterns(patterns: Sequence[Pattern]) -> None:
    """The limits both matchers share: 1..16 patterns, counts 1..12, no negative days."""
    if not patterns:
        raise ValueError("at least one pattern is needed")
    if len(patterns) > 16:
        raise UnsupportedForDurable("at most 16 patterns per matcher")
    for p in patterns:
        if isinstance(p, LatePayments):
            if not 1 <= p.count <= MAX_LATE_COUNT:
                raise UnsupportedForDurable(
                    f"pattern {p.name!r}: count must be 1..{MAX_LATE_COUNT}, not {p.count}"
                )
            if p.window_days < 0:
                raise ValueError(f"pattern {p.name!r}: window_days must not be negative")
        elif isinstance(p, UnpaidPromise):
            if p.grace_days < 0:
                raise ValueError(f"pattern {p.name!r}: grace_days must not be negative")
        else:
            raise TypeError(f"not a pattern: {p!r}")


def detail_order(item: tuple[str, Promise | Payment]) -> tuple[str, date, str]:
    """How both matchers sort a customer's matches: pattern name, then date, then receivable."""
    name, obj = item
    day = obj.promised_date if isinstance(obj, Promise) else obj.paid_on
    return name, day, obj.receivable_id


class BuiltinPatternMatcher:
    """The patterns in plain Python: the same answers as durable-rules' joins, no native code.

    * unpaid promise: every promise whose date plus ``grace_days`` is before ``as_of`` and
      for whose receivable no payment was made from the day it was made to that deadline;
    * late payments: the late payments (paid after their due date) ranked by payment date
      (ties in the order given); the first ranked one on or after ``as_of - window_days``
      starts the run, which matches when ``count`` consecutive ranks from it are paid on or
      before ``as_of``. The match hangs on that first late payment.

    Like the durable matcher it is driven from one thread, one call at a time (a concurrent
    or re-entrant call raises :class:`RuntimeError`), and refuses to run once closed.
    """

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        check_patterns(patterns)
        self.patterns = list(patterns)
        self._busy = threading.Lock()
        self._closed = False

    @contextmanager
    def _turn(self) -> Iterator[None]:
        if self._closed:
            raise RuntimeError("this matcher is closed")
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("a pattern matcher is driven from one thread, one call at a time")
        try:
            yield
        finally:
            self._busy.release()

    def match(self, histories: Histories, as_of: date) -> dict[str, set[str]]:
        """For each customer id, the names of the patterns that hold on ``as_of``.

        ``histories`` maps a customer id to ``(promises, payments)``.
        """
        return {
            c: {name for name, _ in found}
            for c, found in self.match_details(histories, as_of).items()
        }

    def match_details(self, histories: Histories, as_of: date) -> Details:
        """Like :meth:`match`, with what each match hangs on: for an unpaid-promise pattern
        every promise that went unpaid; for a late-payments pattern the first late payment of
        the run that fills the window. Sorted by pattern name, then date."""
        out: Details = {}
        with self._turn():
            for customer, (promises, payments) in histories.items():
                found: set[tuple[str, Promise | Payment]] = set()
                for p in self.patterns:
                    if isinstance(p, UnpaidPromise):
                        found.update((p.name, pr) for pr in _unpaid(p, promises, payments, as_of))
                    else:
                        first = _late_run(p, payments, as_of)
                        if first is not None:
                            found.add((p.name, first))
                out[customer] = sorted(found, key=detail_order)
        return out

    def close(self) -> None:
        """The matcher cannot be used afterwards (it holds nothing to free)."""
        with self._turn():
            self._closed = True

    def __enter__(self) -> BuiltinPatternMatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unpaid(
    p: UnpaidPromise, promises: Sequence[Promise], payments: Sequence[Payment], as_of: date
) -> Iterator[Promise]:
    grace = timedelta(days=p.grace_days)
    for pr in promises:
        deadline = pr.promised_date + grace
        if as_of > deadline and not any(
            py.receivable_id == pr.receivable_id and pr.made_on <= py.paid_on <= deadline
            for py in payments
        ):
            yield pr


def _late_run(p: LatePayments, payments: Sequence[Payment], as_of: date) -> Payment | None:
    late = sorted(
        (j for j, py in enumerate(payments) if py.paid_on > py.due_date),
        key=lambda j: (payments[j].paid_on, j),
    )
    start = as_of - timedelta(days=p.window_days)
    for rank, j in enumerate(late):
        if payments[j].paid_on >= start:
            end = rank + p.count - 1
            if end < len(late) and payments[late[end]].paid_on <= as_of:
                return payments[j]
            return None
    return None


@functools.cache
def durable_available() -> bool:
    """Whether durable-rules imports here (installed, and built for this Python)."""
    try:
        importlib.import_module("durable.engine")
    except (ImportError, OSError):
        return False
    return True
