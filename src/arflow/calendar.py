"""Business days, offsets, recurrences and send windows: what arflow knows about dates.

Time is an argument here: no function reads the clock, every one is given the day or the
instant it works on, so a run can be replayed for any day and tested without freezing time.
Only python-dateutil, holidays and the standard library are used.

* :class:`BusinessCalendar`: weekends, a country's public holidays (from the ``holidays``
  package, loaded per year on first use and cached) and the company's own days off and
  adjusted working days;
* :class:`Offset`: ``due-7d``, ``issue+1m``, ``due + 3bd``: a date relative to an anchor;
* :class:`Schedule`: one offset, or ``every 7d from due+1d until due+15d``;
* :class:`SendWindow`: ``mon-fri 09:00-18:00`` in the customer's time zone.

See ``docs/calendar.md``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from dateutil.relativedelta import relativedelta  # type: ignore[import-untyped]
from dateutil.rrule import MONTHLY, rrule  # type: ignore[import-untyped]

from .errors import (
    CalendarError as CalendarError,
)
from .errors import (
    MissingAnchor as MissingAnchor,
)
from .errors import (
    OffsetError as OffsetError,
)
from .errors import (
    ParseError as ParseError,
)
from .errors import (
    ScheduleError as ScheduleError,
)
from .errors import (
    WindowError as WindowError,
)

__all__ = [
    "ANCHORS",
    "MAX_SHIFT",
    "UNITS",
    "BusinessCalendar",
    "CalendarError",
    "MissingAnchor",
    "Offset",
    "OffsetError",
    "ParseError",
    "Schedule",
    "ScheduleError",
    "SendWindow",
    "Step",
    "WindowError",
    "due_reach",
    "schedule_reach",
]

ANCHORS: tuple[str, ...] = ("due", "issue", "promise", "dispute")
"""The dates an offset can hang off: due date, issue date, promised date, dispute opened."""

UNITS: tuple[str, ...] = ("d", "bd", "w", "m")
"""Calendar days, business days, weeks, months (end-of-month clamped)."""

MAX_SHIFT: Mapping[str, int] = {"d": 36_600, "w": 5_220, "m": 1_200, "bd": 25_000}
"""The largest shift per unit, about a hundred years: an offset or a recurrence step beyond
it would leave the calendar (years 1 to 9999) from any date a book holds, so it is refused
when parsed (``due+999999d``) instead of overflowing when a run resolves it."""

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

END_OF_DAY = time.max
"""A window end of ``24:00`` is stored as ``time.max``: :class:`datetime.time` stops at 23:59."""


# -- business calendar ----------------------------------------------------------------------


_EXPECT_UNIT = "a unit d, bd, w or m"
_EXPECT_ANCHOR = "an anchor due, issue, promise or dispute"


_Slot = tuple[list[int], int, bool]
"""What the calendar keeps per date: the ordinals of its year's business days, how many of
them come before the date, and whether the date is one. Business-day arithmetic is then an
index into that list."""


@dataclass(frozen=True)
class BusinessCalendar:
    """Which days are business days: weekends, public holidays and the company's exceptions.

    Holidays for a year are fetched from the ``holidays`` package the first time a day of
    that year is asked about, and every answer is cached on the instance, because dunning
    asks about the same few hundred days millions of times. ``country=None`` means weekends
    only. For China the package also lists the adjusted working weekends (调休), which are
    used as business days; ``extra_workdays`` adds the company's own.
    """

    country: str | None = "CN"
    subdivision: str | None = None
    weekend: frozenset[int] = frozenset({5, 6})
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    name: str = ""
    _open: dict[date, bool] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _slots: dict[date, _Slot] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _years: dict[int, list[int]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _names: dict[date, str] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        weekend = frozenset(self.weekend)
        if any(not isinstance(w, int) or not 0 <= w <= 6 for w in weekend):
            raise CalendarError(f"weekend days are 0 (Monday) to 6 (Sunday), got {sorted(weekend)}")
        if len(weekend) == 7:
            raise CalendarError("a weekend of all seven days leaves no business day")
        object.__setattr__(self, "weekend", weekend)
        for attr in ("extra_holidays", "extra_workdays"):
            days = frozenset(getattr(self, attr))
            for d in days:
                if not isinstance(d, date) or isinstance(d, datetime):
                    raise CalendarError(f"{attr} holds dates, got {d!r}")
            object.__setattr__(self, attr, days)
        both = self.extra_holidays & self.extra_workdays
        if both:
            shown = ", ".join(d.isoformat() for d in sorted(both))
            raise CalendarError(f"days both in extra_holidays and extra_workdays: {shown}")
        if self.country is not None:
            country = self.country.strip().upper()
            object.__setattr__(self, "country", country)
            try:
                holidays.country_holidays(country, years=[])
            except (NotImplementedError, KeyError, AttributeError) as exc:
                raise CalendarError(
                    f"unknown country code {self.country!r}: the holidays package has no "
                    "calendar for it"
                ) from exc
            if self.subdivision is not None:
                try:
                    holidays.country_holidays(country, subdiv=self.subdivision, years=[])
                except (NotImplementedError, KeyError, AttributeError) as exc:
                    raise CalendarError(
                        f"unknown subdivision {self.subdivision!r} of country {country!r}"
                    ) from exc
        elif self.subdivision is not None:
            raise CalendarError("a subdivision needs a country")

    # -- per-year loading

    def _year(self, y: int) -> list[int]:
        """The business days of year ``y`` as sorted ordinals, computed once and kept."""
        got = self._years.get(y)
        if got is not None:
            return got
        if not date.min.year <= y <= date.max.year:
            raise OverflowError(f"year {y} is outside the calendar (1 to 9999)")
        public: dict[date, str] = {}
        workdays: set[date] = set()
        if self.country is not None:
            # Next year's table too: the working Saturday before New Year's Day belongs to it.
            for yy in (y, y + 1) if y < date.max.year else (y,):
                table: Any = holidays.country_holidays(
                    self.country, subdiv=self.subdivision, years=yy
                )
                if yy == y:
                    public.update((d, str(n)) for d, n in table.items() if d.year == y)
                workdays.update(d for d in getattr(table, "weekend_workdays", ()) if d.year == y)
        ordinals: list[int] = []
        flags: list[tuple[date, bool]] = []
        first, last = date(y, 1, 1).toordinal(), date(y, 12, 31).toordinal()
        for o in range(first, last + 1):
            d = date.fromordinal(o)
            if d in self.extra_workdays:
                ok = True
            elif d in self.extra_holidays:
                ok = False
                self._names[d] = public.get(d, self.name or "company holiday")
            elif d in public:
                ok = False
                self._names[d] = public[d]
            else:
                ok = d in workdays or d.weekday() not in self.weekend
            flags.append((d, ok))
            if ok:
                ordinals.append(o)
        before = 0
        for d, ok in flags:
            self._slots[d] = (ordinals, before, ok)
            before += ok
        self._years[y] = ordinals
        self._open.update(flags)  # last: a date in _open has its slot
        return ordinals

    @staticmethod
    def _check_date(d: date) -> None:
        if isinstance(d, datetime):
            raise CalendarError(
                f"expected a date, got the datetime {d!r}: which day an instant falls on "
                "depends on the time zone, so convert it first"
            )
        if not isinstance(d, date):
            raise CalendarError(f"expected a date, got {d!r}")

    def _slot(self, d: date) -> _Slot:
        try:
            return self._slots[d]
        except KeyError:
            self._check_date(d)
            self._year(d.year)
            return self._slots[d]

    # -- queries

    def is_business_day(self, d: date) -> bool:
        """True when ``d`` is neither a weekend day nor a holiday (adjusted workdays are)."""
        try:
            return self._open[d]
        except KeyError:
            self._check_date(d)
            self._year(d.year)
            return self._open[d]

    def holiday_name(self, d: date) -> str | None:
        """The holiday that closes ``d``, or None (weekends and workdays are not holidays).

        Company days off are named after the calendar (``name``) or "company holiday".
        """
        if self.is_business_day(d):
            return None
        return self._names.get(d)

    def next_business_day(self, d: date, include_self: bool = True) -> date:
        """``d`` if it is a business day (and ``include_self``), else the next one after it."""
        if include_self and self.is_business_day(d):
            return d
        return self.add_business_days(d, 1)

    def add_business_days(self, d: date, n: int) -> date:
        """The ``n``-th business day after ``d`` (before it when ``n`` < 0).

        ``n == 0`` returns ``d`` unchanged even on a holiday: "no shift" must not move a
        date; use :meth:`next_business_day` to roll. ``d`` itself need not be a business day:
        Saturday + 1 is Monday, Saturday - 1 is Friday.
        """
        days, i, ok = self._slot(d)
        if n == 0:
            return d
        if n > 0:
            i += ok + n - 1
            if i >= len(days):
                y = d.year
                while i >= len(days):
                    i -= len(days)
                    y += 1
                    days = self._year(y)
        else:
            i += n
            if i < 0:
                y = d.year
                while i < 0:
                    y -= 1
                    days = self._year(y)
                    i += len(days)
        return date.fromordinal(days[i])

    def business_days_between(self, a: date, b: date) -> int:
        """Business days walked from ``a`` to ``b``: counted in (a, b] when b >= a, and
        minus those in [b, a) when b < a.

        So ``business_days_between(d, add_business_days(d, n)) == n`` for every ``d`` and
        ``n``; for ``business_days_past_due`` (b after a) it is the count in (due, today].
        """
        if b < a:
            return -self._count_in(b, a, left_closed=True)
        return self._count_in(a, b, left_closed=False)

    def _count_in(self, lo: date, hi: date, *, left_closed: bool) -> int:
        """Business days in (lo, hi] (or [lo, hi) when ``left_closed``), lo <= hi."""
        lo_days, lo_before, lo_ok = self._slot(lo)
        _, hi_before, hi_ok = self._slot(hi)
        # business days up to and excluding (left_closed) or including the date, per year
        lo_rank = lo_before if left_closed else lo_before + lo_ok
        hi_rank = hi_before if left_closed else hi_before + hi_ok
        if lo.year == hi.year:
            return hi_rank - lo_rank
        total = len(lo_days) - lo_rank
        for y in range(lo.year + 1, hi.year):
            total += len(self._year(y))
        return total + hi_rank


# -- offsets --------------------------------------------------------------------------------

_WS = " \t"
_WORD = re.compile(r"[A-Za-z]+")
_DIGITS = re.compile(r"[0-9]+")


class _Cursor:
    """A position in the text being parsed; failures raise ``error`` pointing at a column."""

    def __init__(self, text: str, error: type[ParseError]) -> None:
        self.text, self.error, self.pos = text, error, 0

    def fail(self, expected: str, at: int | None = None) -> NoReturn:
        raise self.error(self.text, self.pos if at is None else at, expected)

    def skip_ws(self) -> bool:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1
        return self.pos > start

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def word(self) -> str:
        """The letters at the cursor, lower-cased (empty if none); the cursor moves past."""
        m = _WORD.match(self.text, self.pos)
        if m is None:
            return ""
        self.pos = m.end()
        return m.group().lower()

    def number(self, expected: str = "a number") -> int:
        m = _DIGITS.match(self.text, self.pos)
        if m is None:
            self.fail(expected)
        if len(m.group()) > 6:
            self.fail("a number up to 999999")
        self.pos = m.end()
        return int(m.group())

    def gap(self) -> None:
        """Whitespace between two words; at the end of the text the next word reports."""
        if not self.skip_ws() and not self.at_end():
            self.fail("a space")

    def unit(self) -> str:
        at = self.pos
        u = self.word()
        if u not in UNITS:
            self.fail(_EXPECT_UNIT, at)
        return u

    def end(self, expected: str = "the end") -> None:
        self.skip_ws()
        if not self.at_end():
            self.fail(expected)


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


# -- send windows ---------------------------------------------------------------------------

_MAX_SEARCH_DAYS = 3700
"""How far :meth:`SendWindow.next_allowed` looks (about ten years) before giving up."""

_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise CalendarError(f"unknown time zone {tz!r}") from exc


def _fmt_time(t: time) -> str:
    if t == END_OF_DAY:
        return "24:00"
    return f"{t:%H:%M}" if not (t.second or t.microsecond) else t.isoformat()


@dataclass(frozen=True)
class SendWindow:
    """When messages may go out, in the customer's local time: days of the week and hours.

    ``end`` is exclusive; ``time.max`` (written ``24:00``) means through the end of the day.
    With ``business_days_only`` the calendar passed to :meth:`next_allowed` also closes its
    holidays; a day must be in ``days`` and open in the calendar, so a China window meant to
    include adjusted working Saturdays lists ``mon-sun``.
    """

    days: frozenset[int] = frozenset(range(5))
    start: time = time(9, 0)
    end: time = time(18, 0)
    business_days_only: bool = True

    def __post_init__(self) -> None:
        days = frozenset(self.days)
        if not days or any(not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            raise CalendarError(f"window days are 0 (Monday) to 6 (Sunday), got {sorted(days)}")
        object.__setattr__(self, "days", days)
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise CalendarError("window times are local wall times, without a tzinfo")
        if self.end == time(0):
            object.__setattr__(self, "end", END_OF_DAY)
        if not self.start < self.end:
            raise CalendarError(
                f"window start {_fmt_time(self.start)} must be before its end "
                f"{_fmt_time(self.end)} (windows across midnight are not supported)"
            )

    @classmethod
    def parse(cls, text: str) -> SendWindow:
        """Read ``DAYS HH:MM-HH:MM``: ``mon-fri 09:00-18:00``, ``mon,wed,fri 08:30-12:00``,
        ``daily 00:00-24:00``; raises :class:`WindowError` saying where it broke."""
        cur = _Cursor(text, WindowError)
        cur.skip_ws()
        days = _parse_days(cur)
        if cur.at_end():
            cur.fail("a space and the hours HH:MM-HH:MM")
        if not cur.skip_ws():
            cur.fail("',', '-' or a space before the hours")
        start = _parse_time(cur, end=False)
        cur.skip_ws()
        if cur.peek() != "-":
            cur.fail("'-' between the start and end times")
        cur.pos += 1
        cur.skip_ws()
        at = cur.pos
        end = _parse_time(cur, end=True)
        if not start < end:
            cur.fail(f"an end time after {_fmt_time(start)}", at)
        cur.end()
        return cls(days, start, end)

    def __str__(self) -> str:
        if len(self.days) == 7:
            days = "daily"
        else:
            parts: list[str] = []
            for run in _runs(sorted(self.days)):
                if len(run) >= 3:
                    parts.append(f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}")
                else:
                    parts.extend(DAY_NAMES[d] for d in run)
            days = ",".join(parts)
        return f"{days} {_fmt_time(self.start)}-{_fmt_time(self.end)}"

    def _day_open(self, d: date, cal: BusinessCalendar | None) -> bool:
        if d.weekday() not in self.days:
            return False
        return not (self.business_days_only and cal is not None and not cal.is_business_day(d))

    def _allows(self, utc: datetime, zone: ZoneInfo, cal: BusinessCalendar | None) -> bool:
        """Whether the instant's wall time in ``zone`` is inside the window."""
        local = utc.astimezone(zone)
        t = local.time()
        if t < self.start or (self.end != END_OF_DAY and t >= self.end):
            return False
        return self._day_open(local.date(), cal)

    def contains(self, instant: datetime, tz: str, cal: BusinessCalendar | None = None) -> bool:
        """True when ``instant`` (aware) falls inside the window in time zone ``tz``."""
        _require_aware(instant)
        return self._allows(instant.astimezone(UTC), _zone(tz), cal)

    def next_allowed(
        self, instant: datetime, tz: str, cal: BusinessCalendar | None = None
    ) -> datetime:
        """The earliest instant >= ``instant`` inside the window in time zone ``tz``.

        ``instant`` must be aware; the answer is in its tzinfo. On a day when the clocks
        jump over the window's start (02:30 on a spring-forward night) the window opens at
        the jump; in a repeated hour the wall time decides, both times round.
        """
        _require_aware(instant)
        zone = _zone(tz)
        x = instant.astimezone(UTC)
        if self._allows(x, zone, cal):
            return instant
        day = x.astimezone(zone).date()
        best: datetime | None = None
        try:
            for i in range(_MAX_SEARCH_DAYS):
                d = day + timedelta(days=i)
                if self._day_open(d, cal):
                    for c in self._openings(d, zone):
                        if c > x and (best is None or c < best) and self._allows(c, zone, cal):
                            best = c
                if best is not None and best.astimezone(zone).date() < d:
                    break  # a later day's openings are later than this one
        except OverflowError:
            pass
        if best is None:
            raise CalendarError(
                f"no time inside {str(self)!r} in {tz} within {_MAX_SEARCH_DAYS} days of "
                f"{instant.isoformat()}"
            )
        assert instant.tzinfo is not None
        return best.astimezone(instant.tzinfo)

    def _openings(self, d: date, zone: ZoneInfo) -> list[datetime]:
        """Instants (UTC) at which the window can open on local day ``d``.

        The wall time ``start`` (both folds when it repeats) and any UTC-offset change that
        day: a spring-forward jump over ``start``, or a fall-back into the window.
        """
        out = [
            datetime.combine(d, self.start, tzinfo=zone).replace(fold=f).astimezone(UTC)
            for f in (0, 1)
        ]
        lo = datetime.combine(d, time(0), tzinfo=zone).astimezone(UTC) - timedelta(hours=3)
        hi = lo + timedelta(hours=30)
        if lo.astimezone(zone).utcoffset() != hi.astimezone(zone).utcoffset():
            out.append(_transition(lo, hi, zone))
        return out


def _transition(lo: datetime, hi: datetime, zone: ZoneInfo) -> datetime:
    """The first second in (lo, hi] with ``hi``'s UTC offset (one change in between)."""
    target = hi.astimezone(zone).utcoffset()
    a, b = 0, int((hi - lo).total_seconds())
    while b - a > 1:
        mid = (a + b) // 2
        if (lo + timedelta(seconds=mid)).astimezone(zone).utcoffset() == target:
            b = mid
        else:
            a = mid
    return lo + timedelta(seconds=b)


def _require_aware(instant: datetime) -> None:
    if not isinstance(instant, datetime):
        raise CalendarError(f"expected an aware datetime, got {instant!r}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError(
            f"naive datetime {instant.isoformat()}: give the instant with its time zone "
            "(a naive time means a different moment in every zone)"
        )


def _runs(days: Iterable[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for d in days:
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return runs


def _parse_day(cur: _Cursor, expected: str = "a day mon, tue, wed, thu, fri, sat or sun") -> int:
    at = cur.pos
    name = cur.word()
    if name not in DAY_NAMES:
        cur.fail(expected, at)
    return DAY_NAMES.index(name)


def _parse_days(cur: _Cursor) -> frozenset[int]:
    """``daily`` or a comma list of days and ranges (``fri-mon`` wraps over the weekend)."""
    at = cur.pos
    if cur.word() == "daily":
        return frozenset(range(7))
    cur.pos = at
    days: set[int] = set()
    while True:
        first = _parse_day(
            cur,
            "a day mon, tue, wed, thu, fri, sat, sun or 'daily'"
            if not days and cur.pos == at
            else "a day mon, tue, wed, thu, fri, sat or sun",
        )
        save = cur.pos
        cur.skip_ws()
        if cur.peek() == "-":
            cur.pos += 1
            cur.skip_ws()
            last = _parse_day(cur)
            i = first
            days.add(i)
            while i != last:
                i = (i + 1) % 7
                days.add(i)
            save = cur.pos
            cur.skip_ws()
        else:
            days.add(first)
        if cur.peek() == ",":
            cur.pos += 1
            cur.skip_ws()
            continue
        cur.pos = save
        return frozenset(days)


def _parse_time(cur: _Cursor, *, end: bool) -> time:
    at = cur.pos
    m = _TIME.match(cur.text, cur.pos)
    if m is None:
        cur.fail("an end time HH:MM" if end else "a start time HH:MM")
    hour, minute = int(m.group(1)), int(m.group(2))
    if minute > 59:
        cur.fail("minutes 00 to 59", m.start(2))
    if end and hour == 24:
        if minute:
            cur.fail("minutes 00 after hour 24", m.start(2))
        cur.pos = m.end()
        return END_OF_DAY
    if hour > 23:
        cur.fail("an hour 00 to 24" if end else "an hour 00 to 23", at)
    cur.pos = m.end()
    return time(hour, minute)
