"""Offsets (``due-7d``), recurrence steps and schedules (``every 7d from due+1d until
due+15d``): when a rule fires, resolved against a receivable's dates and a business calendar,
and how far from its anchor it can fire (its reach), by arithmetic."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta  # type: ignore[import-untyped]
from dateutil.rrule import MONTHLY, rrule  # type: ignore[import-untyped]

from ..errors import CalendarError, MissingAnchor, OffsetError, ScheduleError
from ._business import BusinessCalendar
from ._parsing import _EXPECT_ANCHOR, ANCHORS, MAX_SHIFT, UNITS, _Cursor

__all__ = ["Offset", "Schedule", "Step", "due_reach", "schedule_reach"]


@dataclass(frozen=True)
class Offset:
    """A date relative to an anchor: ``due-7d``, ``issue+1m``, ``due+3bd``, ``promise``.

    ``n`` is signed; an offset of zero is stored as ``n=0, unit="d"`` (written as the bare
    anchor), since every unit resolves a zero shift to the anchor itself.
    """

    anchor: str
    n: int = 0
    unit: str = "d"

    def __post_init__(self) -> None:
        if self.anchor not in ANCHORS:
            raise CalendarError(f"unknown anchor {self.anchor!r} (known: {', '.join(ANCHORS)})")
        if self.unit not in UNITS:
            raise CalendarError(f"unknown unit {self.unit!r} (known: {', '.join(UNITS)})")
        _check_shift(self.n, self.unit)
        if self.n == 0:
            object.__setattr__(self, "unit", "d")

    @classmethod
    def parse(cls, text: str) -> Offset:
        """Read ``ANCHOR [(+|-) N UNIT]``; raises :class:`OffsetError` saying where it broke."""
        cur = _Cursor(text, OffsetError)
        offset = _parse_offset(cur)
        cur.end("'+', '-' or the end")
        return offset

    def resolve(self, anchors: Mapping[str, date], cal: BusinessCalendar) -> date:
        """The date this offset names, given the anchor dates; business days use ``cal``.

        Raises :class:`MissingAnchor` when the anchor is not in ``anchors``.
        """
        base = anchors.get(self.anchor)
        if base is None:
            raise MissingAnchor(self.anchor, str(self))
        return _shift(base, self.n, self.unit, cal)

    def __str__(self) -> str:
        if self.n == 0:
            return self.anchor
        return f"{self.anchor}{'+' if self.n > 0 else '-'}{abs(self.n)}{self.unit}"

    def reach(self) -> tuple[int, int]:
        """(earliest, latest) calendar days from the anchor at which this offset can land,
        whatever the calendar: months and business days are widened to their extremes."""
        return _reach_days(self.n, self.unit)


def _reach_days(n: int, unit: str) -> tuple[int, int]:
    """Calendar-day bounds of a shift of ``n`` units (business days and months widened)."""
    if unit == "d":
        return n, n
    if unit == "w":
        return 7 * n, 7 * n
    if unit == "m":
        return (28 * n, 31 * n) if n >= 0 else (31 * n, 28 * n)
    # business days: at least n calendar days, at most about 7/5 n plus a long holiday
    wide = (n * 7) // 5 + 15 if n >= 0 else (n * 7) // 5 - 15
    return (n, wide) if n >= 0 else (wide, n)


def _check_shift(n: int, unit: str) -> None:
    if abs(n) > MAX_SHIFT[unit]:
        raise CalendarError(
            f"a shift of {n}{unit} is too far: at most {MAX_SHIFT[unit]}{unit} (about 100 years)"
        )


def _shift(base: date, n: int, unit: str, cal: BusinessCalendar) -> date:
    """``base`` moved by ``n`` units; months clamp to the month's end (Jan 31 + 1m: Feb 28)."""
    if n == 0:
        return base
    if unit == "d":
        return base + timedelta(days=n)
    if unit == "w":
        return base + timedelta(weeks=n)
    if unit == "m":
        moved: date = base + relativedelta(months=n)
        return moved
    return cal.add_business_days(base, n)


def _parse_offset(cur: _Cursor, anchor_expected: str = _EXPECT_ANCHOR) -> Offset:
    """An offset at the cursor; stops before anything that is not its sign."""
    cur.skip_ws()
    at = cur.pos
    anchor = cur.word()
    if anchor not in ANCHORS:
        cur.fail(anchor_expected, at)
    after_anchor = cur.pos
    cur.skip_ws()
    sign = cur.peek()
    if sign not in ("+", "-"):
        cur.pos = after_anchor
        return Offset(anchor)
    cur.pos += 1
    cur.skip_ws()
    at = cur.pos
    n = cur.number()
    unit = cur.unit()
    if n > MAX_SHIFT[unit]:
        cur.fail(f"at most {MAX_SHIFT[unit]}{unit} (about 100 years)", at)
    return Offset(anchor, n if sign == "+" else -n, unit)


# -- schedules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """The interval of a recurrence: ``7d``, ``2bd``, ``1w``, ``1m`` (n >= 1)."""

    n: int
    unit: str

    def __post_init__(self) -> None:
        if self.n < 1:
            raise CalendarError(f"a recurrence step must be at least 1, got {self.n}")
        if self.unit not in UNITS:
            raise CalendarError(f"unknown unit {self.unit!r} (known: {', '.join(UNITS)})")
        _check_shift(self.n, self.unit)

    def __str__(self) -> str:
        return f"{self.n}{self.unit}"


@dataclass(frozen=True)
class Schedule:
    """When a dunning step fires: once (``due-7d``) or ``every N UNIT from X [until Y]``.

    Occurrences are ``start``, then ``start`` moved by ``k * every`` (k = 1, 2...) up to
    and including ``until``. A schedule whose anchors are not all given (no promise yet)
    has no occurrences: the event it hangs off has not happened.
    """

    start: Offset
    every: Step | None = None
    until: Offset | None = None

    def __post_init__(self) -> None:
        if self.until is not None and self.every is None:
            raise CalendarError("'until' needs 'every': a single offset has one occurrence")

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Read an offset or ``every N UNIT from OFFSET [until OFFSET]``."""
        cur = _Cursor(text, ScheduleError)
        cur.skip_ws()
        at = cur.pos
        if cur.word() != "every":
            cur.pos = at
            start = _parse_offset(cur, f"'every' or {_EXPECT_ANCHOR}")
            cur.end("'+', '-' or the end")
            return cls(start)
        cur.gap()
        at = cur.pos
        n = cur.number("a number of at least 1")
        if n < 1:
            cur.fail("a number of at least 1", at)
        unit = cur.unit()
        if n > MAX_SHIFT[unit]:
            cur.fail(f"at most {MAX_SHIFT[unit]}{unit} (about 100 years)", at)
        cur.gap()
        at = cur.pos
        if cur.word() != "from":
            cur.fail("'from'", at)
        cur.gap()
        start = _parse_offset(cur)
        cur.skip_ws()
        until: Offset | None = None
        if not cur.at_end():
            at = cur.pos
            if cur.word() != "until":
                cur.fail("'+', '-', 'until' or the end", at)
            cur.gap()
            until = _parse_offset(cur)
            cur.end("'+', '-' or the end")
        return cls(start, Step(n, unit), until)

    def __str__(self) -> str:
        if self.every is None:
            return str(self.start)
        text = f"every {self.every} from {self.start}"
        return text if self.until is None else f"{text} until {self.until}"

    # -- reach: how far from the anchor it can fire, by arithmetic

    def reach(self) -> tuple[int, int | None]:
        """(earliest, latest) calendar days after the start's anchor at which this schedule
        can fire; latest is None for a recurrence without ``until``."""
        return schedule_reach(self)

    def due_reach(self) -> tuple[int, int | None] | None:
        """:meth:`reach` as calendar days after the *due date*, or None when the schedule
        starts from another anchor (see :func:`due_reach`)."""
        return due_reach(self)

    # -- evaluation

    def _bounds(
        self, anchors: Mapping[str, date], cal: BusinessCalendar
    ) -> tuple[date, date | None] | None:
        """(first occurrence, until) or None when an anchor is missing or until < first."""
        try:
            first = self.start.resolve(anchors, cal)
            until = None if self.until is None else self.until.resolve(anchors, cal)
        except MissingAnchor:
            return None
        if until is not None and until < first:
            return None
        return first, until

    def _nth(self, first: date, k: int, cal: BusinessCalendar) -> date:
        """Occurrence ``k`` (0 is ``first``), computed from ``first`` so months do not drift."""
        assert self.every is not None
        return _shift(first, k * self.every.n, self.every.unit, cal)

    def _index_on_or_before(self, first: date, day: date, cal: BusinessCalendar) -> int:
        """The largest k with occurrence k <= ``day`` (``day`` >= ``first``), by arithmetic."""
        assert self.every is not None
        n, unit = self.every.n, self.every.unit
        if unit == "d":
            return (day - first).days // n
        if unit == "w":
            return (day - first).days // (7 * n)
        if unit == "bd":
            # occurrence k >= 1 is the (k*n)-th business day after first
            return cal.business_days_between(first, day) // n
        months = (day.year - first.year) * 12 + day.month - first.month
        k = months // n
        return k - 1 if self._nth(first, k, cal) > day else k

    def occurrences(
        self,
        anchors: Mapping[str, date],
        cal: BusinessCalendar,
        *,
        start: date | None = None,
        end: date,
    ) -> list[date]:
        """Every occurrence in [start, end], in order (from the first when ``start`` is None).

        ``end`` is required so an open-ended recurrence stays finite.
        """
        bounds = self._bounds(anchors, cal)
        if bounds is None:
            return []
        first, until = bounds
        lo = first if start is None else max(start, first)
        hi = end if until is None else min(end, until)
        if lo > hi:
            return []
        if self.every is None:
            return [first] if lo == first else []
        unit, n = self.every.unit, self.every.n
        k = 0 if lo == first else self._index_on_or_before(first, lo - timedelta(days=1), cal) + 1
        if unit == "bd":
            out: list[date] = []
            try:
                occ = self._nth(first, k, cal)
                while occ <= hi:
                    out.append(occ)
                    occ = cal.add_business_days(occ, n)
            except OverflowError:
                pass
            return out
        try:
            begin = self._nth(first, k, cal)
        except OverflowError:
            return []
        if begin > hi:
            return []
        if unit != "m":
            # Plain arithmetic: the same dates as rrule(DAILY/WEEKLY), ten times faster.
            step = n if unit == "d" else 7 * n
            o, last = begin.toordinal(), hi.toordinal()
            return [date.fromordinal(x) for x in range(o, last + 1, step)]
        # Months by rrule, clamped like relativedelta: the last of the days 28..first.day
        # that the month has (Jan 31, Feb 28, Mar 31...).
        day = first.day
        by: dict[str, Any] = (
            {"bymonthday": tuple(range(28, day + 1)), "bysetpos": -1}
            if day > 28
            else {"bymonthday": day}
        )
        rule = rrule(MONTHLY, interval=n, dtstart=_midnight(begin), until=_midnight(hi), **by)
        return [dt.date() for dt in rule]

    def latest_on_or_before(
        self, anchors: Mapping[str, date], cal: BusinessCalendar, day: date
    ) -> date | None:
        """The most recent occurrence <= ``day``: what a catch-up after downtime sends."""
        bounds = self._bounds(anchors, cal)
        if bounds is None:
            return None
        first, until = bounds
        hi = day if until is None else min(day, until)
        if hi < first:
            return None
        if self.every is None:
            return first
        return self._nth(first, self._index_on_or_before(first, hi, cal), cal)

    def next_after(
        self, anchors: Mapping[str, date], cal: BusinessCalendar, day: date
    ) -> date | None:
        """The first occurrence > ``day``, or None: what a "next trigger" index stores."""
        bounds = self._bounds(anchors, cal)
        if bounds is None:
            return None
        first, until = bounds
        if first > day:
            return first
        if self.every is None:
            return None
        try:
            nxt = self._nth(first, self._index_on_or_before(first, day, cal) + 1, cal)
        except OverflowError:
            return None
        return None if until is not None and nxt > until else nxt


def schedule_reach(schedule: Schedule) -> tuple[int, int | None]:
    """(earliest, latest) calendar days after the anchor at which ``schedule`` can fire;
    latest is None for a recurrence without ``until``."""
    lo, hi = schedule.start.reach()
    if schedule.every is None:
        return lo, hi
    if schedule.until is None:
        return lo, None
    return lo, schedule.until.reach()[1]


@functools.cache
def due_reach(schedule: Schedule) -> tuple[int, int | None] | None:
    """:func:`schedule_reach` as calendar days after the *due date*, or None when the
    schedule starts from another anchor. An ``until`` on the issue date is bounded as if on
    the due date (a receivable is never due before it is issued); one on another anchor
    leaves the reach open. Cached: a daily run asks it for every step and receivable."""
    if schedule.start.anchor != "due":
        return None
    lo, hi = schedule_reach(schedule)
    if schedule.until is not None and schedule.until.anchor not in ("due", "issue"):
        hi = None
    return lo, hi


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)
