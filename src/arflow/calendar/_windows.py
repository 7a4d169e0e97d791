"""Send windows: ``mon-fri 09:00-18:00`` in the customer's time zone, and the next instant
a message may go out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import CalendarError, WindowError
from ._business import BusinessCalendar
from ._parsing import _Cursor

__all__ = ["DAY_NAMES", "END_OF_DAY", "SendWindow"]

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

END_OF_DAY = time.max
"""A window end of ``24:00`` is stored as ``time.max``: :class:`datetime.time` stops at 23:59."""

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
