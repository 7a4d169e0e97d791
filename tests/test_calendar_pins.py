"""Example tests pinning calendar behaviour that the mutation run found unpinned.

Each test here kills mutants of ``arflow.calendar`` that survived ``tests/test_calendar.py``
(see docs/testing.md): whole error messages (a user reads them), boundaries of comparisons,
and the DST search of send windows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from arflow.calendar import (
    BusinessCalendar,
    CalendarError,
    Offset,
    OffsetError,
    Schedule,
    ScheduleError,
    SendWindow,
    Step,
    WindowError,
)

NOCAL = BusinessCalendar(country=None)
UTC_NOON = datetime(2026, 3, 4, 12, tzinfo=UTC)

ERRORS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "weekend of seven days",
        lambda: BusinessCalendar(country=None, weekend=frozenset(range(7))),
        CalendarError,
        "a weekend of all seven days leaves no business day",
    ),
    (
        "weekend day 7",
        lambda: BusinessCalendar(country=None, weekend=frozenset({6, 7})),
        CalendarError,
        "weekend days are 0 (Monday) to 6 (Sunday), got [6, 7]",
    ),
    (
        "extra holiday not a date",
        lambda: BusinessCalendar(country=None, extra_holidays=frozenset({"2026-01-01"})),
        CalendarError,
        "extra_holidays holds dates, got '2026-01-01'",
    ),
    (
        "extra workday a datetime",
        lambda: BusinessCalendar(country=None, extra_workdays=frozenset({datetime(2026, 1, 3, 9)})),
        CalendarError,
        "extra_workdays holds dates, got datetime.datetime(2026, 1, 3, 9, 0)",
    ),
    (
        "day both off and on",
        lambda: BusinessCalendar(
            country=None,
            extra_holidays=frozenset({date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)}),
            extra_workdays=frozenset({date(2026, 1, 6), date(2026, 1, 5)}),
        ),
        CalendarError,
        "days both in extra_holidays and extra_workdays: 2026-01-05, 2026-01-06",
    ),
    (
        "unknown country",
        lambda: BusinessCalendar(country="zz"),
        CalendarError,
        "unknown country code 'ZZ': the holidays package has no calendar for it",
    ),
    (
        "unknown subdivision",
        lambda: BusinessCalendar(country="US", subdivision="XX"),
        CalendarError,
        "unknown subdivision 'XX' of country 'US'",
    ),
    (
        "subdivision without country",
        lambda: BusinessCalendar(country=None, subdivision="CA"),
        CalendarError,
        "a subdivision needs a country",
    ),
    (
        "datetime given for a date",
        lambda: NOCAL.is_business_day(datetime(2026, 3, 4, 12)),  # type: ignore[arg-type]
        CalendarError,
        "expected a date, got the datetime datetime.datetime(2026, 3, 4, 12, 0): which day an "
        "instant falls on depends on the time zone, so convert it first",
    ),
    (
        "text given for a date",
        lambda: NOCAL.add_business_days("2026-03-04", 1),  # type: ignore[arg-type]
        CalendarError,
        "expected a date, got '2026-03-04'",
    ),
    (
        "unknown anchor",
        lambda: Offset("paid"),
        CalendarError,
        "unknown anchor 'paid' (known: due, issue, promise, dispute)",
    ),
    (
        "unknown offset unit",
        lambda: Offset("due", 1, "y"),
        CalendarError,
        "unknown unit 'y' (known: d, bd, w, m)",
    ),
    (
        "step of zero",
        lambda: Step(0, "d"),
        CalendarError,
        "a recurrence step must be at least 1, got 0",
    ),
    (
        "unknown step unit",
        lambda: Step(1, "h"),
        CalendarError,
        "unknown unit 'h' (known: d, bd, w, m)",
    ),
    (
        "until without every",
        lambda: Schedule(Offset("due"), None, Offset("due", 3)),
        CalendarError,
        "'until' needs 'every': a single offset has one occurrence",
    ),
    (
        "missing anchor",
        lambda: Offset("promise", 2, "bd").resolve({"due": date(2026, 3, 4)}, NOCAL),
        CalendarError,
        "'promise+2bd' needs the promise date, which was not given",
    ),
    (
        "offset number too long",
        lambda: Offset.parse("due+1234567d"),
        OffsetError,
        "expected a number up to 999999 at column 5 in 'due+1234567d'",
    ),
    (
        "offset without number",
        lambda: Offset.parse("due+d"),
        OffsetError,
        "expected a number at column 5 in 'due+d'",
    ),
    (
        "offset bad unit",
        lambda: Offset.parse("due+3x"),
        OffsetError,
        "expected a unit d, bd, w or m at column 6 in 'due+3x'",
    ),
    (
        "offset bad anchor",
        lambda: Offset.parse("  paid+3d"),
        OffsetError,
        "expected an anchor due, issue, promise or dispute at column 3 in '  paid+3d'",
    ),
    (
        "offset trailing text",
        lambda: Offset.parse("due+3d x"),
        OffsetError,
        "expected '+', '-' or the end at column 8 in 'due+3d x'",
    ),
    (
        "schedule bad start",
        lambda: Schedule.parse("paid"),
        ScheduleError,
        "expected 'every' or an anchor due, issue, promise or dispute at column 1 in 'paid'",
    ),
    (
        "schedule every 0",
        lambda: Schedule.parse("every 0d from due"),
        ScheduleError,
        "expected a number of at least 1 at column 7 in 'every 0d from due'",
    ),
    (
        "schedule every without number",
        lambda: Schedule.parse("every d from due"),
        ScheduleError,
        "expected a number of at least 1 at column 7 in 'every d from due'",
    ),
    (
        "schedule without from",
        lambda: Schedule.parse("every 7d since due"),
        ScheduleError,
        "expected 'from' at column 10 in 'every 7d since due'",
    ),
    (
        "schedule without a space",
        lambda: Schedule.parse("every 7dfrom due"),
        ScheduleError,
        "expected a unit d, bd, w or m at column 8 in 'every 7dfrom due'",
    ),
    (
        "schedule no gap after every",
        lambda: Schedule.parse("every,7d from due"),
        ScheduleError,
        "expected a space at column 6 in 'every,7d from due'",
    ),
    (
        "schedule bad until",
        lambda: Schedule.parse("every 7d from due till due+30d"),
        ScheduleError,
        "expected '+', '-', 'until' or the end at column 19 in 'every 7d from due till due+30d'",
    ),
    (
        "schedule trailing after until",
        lambda: Schedule.parse("every 7d from due until due+30d x"),
        ScheduleError,
        "expected '+', '-' or the end at column 33 in 'every 7d from due until due+30d x'",
    ),
    (
        "window days all seven wrong",
        lambda: SendWindow(days=frozenset({1, 7})),
        CalendarError,
        "window days are 0 (Monday) to 6 (Sunday), got [1, 7]",
    ),
    (
        "window days empty",
        lambda: SendWindow(days=frozenset()),
        CalendarError,
        "window days are 0 (Monday) to 6 (Sunday), got []",
    ),
    (
        "window days not ints",
        lambda: SendWindow(days=frozenset({"mon"})),  # type: ignore[arg-type]
        CalendarError,
        "window days are 0 (Monday) to 6 (Sunday), got ['mon']",
    ),
    (
        "window start aware",
        lambda: SendWindow(start=time(9, tzinfo=UTC)),
        CalendarError,
        "window times are local wall times, without a tzinfo",
    ),
    (
        "window end aware",
        lambda: SendWindow(end=time(18, tzinfo=UTC)),
        CalendarError,
        "window times are local wall times, without a tzinfo",
    ),
    (
        "window empty",
        lambda: SendWindow(start=time(9), end=time(9)),
        CalendarError,
        "window start 09:00 must be before its end 09:00 (windows across midnight are not "
        "supported)",
    ),
    (
        "window seconds shown",
        lambda: SendWindow(start=time(9, 0, 30), end=time(9, 0, 10)),
        CalendarError,
        "window start 09:00:30 must be before its end 09:00:10 (windows across midnight are "
        "not supported)",
    ),
    (
        "window bad first day",
        lambda: SendWindow.parse("mo-fri 09:00-18:00"),
        WindowError,
        "expected a day mon, tue, wed, thu, fri, sat, sun or 'daily' at column 1 in "
        "'mo-fri 09:00-18:00'",
    ),
    (
        "window bad later day",
        lambda: SendWindow.parse("mon,fry 09:00-18:00"),
        WindowError,
        "expected a day mon, tue, wed, thu, fri, sat or sun at column 5 in 'mon,fry 09:00-18:00'",
    ),
    (
        "window bad range end",
        lambda: SendWindow.parse("mon-fry 09:00-18:00"),
        WindowError,
        "expected a day mon, tue, wed, thu, fri, sat or sun at column 5 in 'mon-fry 09:00-18:00'",
    ),
    (
        "window without hours",
        lambda: SendWindow.parse("mon-fri"),
        WindowError,
        "expected a space and the hours HH:MM-HH:MM at column 8 in 'mon-fri'",
    ),
    (
        "window hours glued",
        lambda: SendWindow.parse("mon-fri09:00-18:00"),
        WindowError,
        "expected ',', '-' or a space before the hours at column 8 in 'mon-fri09:00-18:00'",
    ),
    (
        "window bad start time",
        lambda: SendWindow.parse("mon-fri 9am-18:00"),
        WindowError,
        "expected a start time HH:MM at column 9 in 'mon-fri 9am-18:00'",
    ),
    (
        "window bad end time",
        lambda: SendWindow.parse("mon-fri 09:00-6pm"),
        WindowError,
        "expected an end time HH:MM at column 15 in 'mon-fri 09:00-6pm'",
    ),
    (
        "window no dash",
        lambda: SendWindow.parse("mon-fri 09:00 18:00"),
        WindowError,
        "expected '-' between the start and end times at column 15 in 'mon-fri 09:00 18:00'",
    ),
    (
        "window minute 60",
        lambda: SendWindow.parse("mon-fri 09:60-18:00"),
        WindowError,
        "expected minutes 00 to 59 at column 12 in 'mon-fri 09:60-18:00'",
    ),
    (
        "window end 24:30",
        lambda: SendWindow.parse("mon-fri 09:00-24:30"),
        WindowError,
        "expected minutes 00 after hour 24 at column 18 in 'mon-fri 09:00-24:30'",
    ),
    (
        "window start hour 24",
        lambda: SendWindow.parse("mon-fri 24:00-18:00"),
        WindowError,
        "expected an hour 00 to 23 at column 9 in 'mon-fri 24:00-18:00'",
    ),
    (
        "window end hour 25",
        lambda: SendWindow.parse("mon-fri 09:00-25:00"),
        WindowError,
        "expected an hour 00 to 24 at column 15 in 'mon-fri 09:00-25:00'",
    ),
    (
        "window end before start",
        lambda: SendWindow.parse("mon-fri 18:00-09:00"),
        WindowError,
        "expected an end time after 18:00 at column 15 in 'mon-fri 18:00-09:00'",
    ),
    (
        "window trailing text",
        lambda: SendWindow.parse("mon-fri 09:00-18:00 x"),
        WindowError,
        "expected the end at column 21 in 'mon-fri 09:00-18:00 x'",
    ),
    (
        "naive instant",
        lambda: SendWindow().contains(datetime(2026, 3, 4, 12), "UTC"),
        CalendarError,
        "naive datetime 2026-03-04T12:00:00: give the instant with its time zone (a naive "
        "time means a different moment in every zone)",
    ),
    (
        "not an instant",
        lambda: SendWindow().next_allowed(date(2026, 3, 4), "UTC"),  # type: ignore[arg-type]
        CalendarError,
        "expected an aware datetime, got datetime.date(2026, 3, 4)",
    ),
    (
        "unknown zone",
        lambda: SendWindow().contains(UTC_NOON, "Mars/Olympus"),
        CalendarError,
        "unknown time zone 'Mars/Olympus'",
    ),
    (
        "no opening",
        lambda: SendWindow(days=frozenset({5})).next_allowed(
            UTC_NOON, "UTC", BusinessCalendar(country=None, weekend=frozenset({5}))
        ),
        CalendarError,
        "no time inside 'sat 09:00-18:00' in UTC within 3700 days of 2026-03-04T12:00:00+00:00",
    ),
]


@pytest.mark.parametrize(
    ("call", "kind", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_every_refusal_says_exactly_what_and_where(
    call: Callable[[], Any], kind: type[Exception], message: str
) -> None:
    with pytest.raises(kind) as info:
        call()
    assert str(info.value) == message


def test_calendar_normalises_what_it_keeps() -> None:
    cal = BusinessCalendar(country=" us ", weekend=[6, 5])  # type: ignore[arg-type]
    assert cal.country == "US"
    assert cal.weekend == frozenset({5, 6}) and isinstance(cal.weekend, frozenset)
    w = SendWindow(days=[0, 1])  # type: ignore[arg-type]
    assert w.days == frozenset({0, 1}) and isinstance(w.days, frozenset)
    assert SendWindow(start=time(0), end=time(0)).end == time.max
    # Every year's holiday table is fetched when asked: a year far from today works.
    assert BusinessCalendar(country="US").holiday_name(date(1990, 7, 4)) is not None
    assert BusinessCalendar(country="US", subdivision="CA").is_business_day(date(1990, 7, 5))


def test_text_forms() -> None:
    assert str(Offset("due", 0, "bd")) == "due"
    assert str(Offset("due", -3, "bd")) == "due-3bd"
    assert str(Offset("due", 3, "bd")) == "due+3bd"
    assert str(Schedule(Offset("issue", 1, "m"))) == "issue+1m"
    assert str(SendWindow(days=frozenset({0, 1, 2}))) == "mon-wed 09:00-18:00"
    assert str(SendWindow(days=frozenset({0, 1, 3}))) == "mon,tue,thu 09:00-18:00"
    assert str(SendWindow(days=frozenset({0, 1, 2, 3}))) == "mon-thu 09:00-18:00"
    assert str(SendWindow(start=time(9, 0, 30), end=time(17, 30))) == "mon-fri 09:00:30-17:30"
    assert str(SendWindow(start=time(9, 0, 0, 5), end=time(17))) == "mon-fri 09:00:00.000005-17:00"
    assert str(SendWindow(days=frozenset(range(7)), end=time(0))) == "daily 09:00-24:00"
    assert SendWindow.parse("mon - wed , fri 00:00-24:00") == SendWindow(
        frozenset({0, 1, 2, 4}), time(0), time.max
    )
    assert SendWindow.parse("fri-mon 09:00-18:00").days == frozenset({4, 5, 6, 0})
    assert SendWindow.parse("mon-fri 09:59-23:59").end == time(23, 59)
    assert SendWindow.parse("mon-fri 23:00-24:00").start == time(23)


def test_window_boundaries() -> None:
    w = SendWindow(days=frozenset(range(7)), start=time(9), end=time(18))
    assert w.contains(datetime(2026, 3, 4, 9, tzinfo=UTC), "UTC")
    assert not w.contains(datetime(2026, 3, 4, 18, tzinfo=UTC), "UTC")
    # The instant is read in the zone asked for, not in its own.
    assert w.contains(datetime(2026, 3, 4, 2, tzinfo=UTC), "Asia/Shanghai")
    assert not w.contains(datetime(2026, 3, 4, 12, tzinfo=UTC), "Asia/Shanghai")
    # The calendar's holidays close the window's days only when business_days_only.
    cal = BusinessCalendar(country=None, extra_holidays=frozenset({date(2026, 3, 4)}))
    assert not w.contains(UTC_NOON, "UTC", cal)
    loose = SendWindow(days=frozenset(range(7)), business_days_only=False)
    assert loose.contains(UTC_NOON, "UTC", cal)


def test_next_allowed_picks_the_first_opening_and_answers_in_the_callers_zone() -> None:
    w = SendWindow()  # mon-fri 09:00-18:00
    sh = ZoneInfo("Asia/Shanghai")
    # Wednesday 19:00 in Shanghai, given in UTC: next is Thursday 09:00 Shanghai, in UTC.
    got = w.next_allowed(datetime(2026, 3, 4, 11, tzinfo=UTC), "Asia/Shanghai")
    assert got == datetime(2026, 3, 5, 9, tzinfo=sh) and got.tzinfo is UTC
    # Already inside: the instant itself, unchanged.
    inside = datetime(2026, 3, 4, 10, tzinfo=sh)
    assert w.next_allowed(inside, "Asia/Shanghai") is inside
    # Exactly at the end: the next day's start; a holiday on it is skipped.
    cal = BusinessCalendar(country=None, extra_holidays=frozenset({date(2026, 3, 5)}))
    end = datetime(2026, 3, 4, 18, tzinfo=UTC)
    assert w.next_allowed(end, "UTC", cal) == datetime(2026, 3, 6, 9, tzinfo=UTC)
    # Late on Friday in UTC is Saturday morning in Shanghai: the search starts on the local
    # day, and the Monday opening is the answer.
    fri = datetime(2026, 3, 6, 20, tzinfo=UTC)
    assert w.next_allowed(fri, "Asia/Shanghai") == datetime(2026, 3, 9, 9, tzinfo=sh)
    # Before the opening on an open day: that day's opening.
    early = datetime(2026, 3, 4, 8, 59, 59, tzinfo=UTC)
    assert w.next_allowed(early, "UTC") == datetime(2026, 3, 4, 9, tzinfo=UTC)


def test_next_allowed_across_dst_changes() -> None:
    ny, lon = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
    # Spring forward in New York (2026-03-08 02:00 -> 03:00): a 02:30 window opens at 03:00.
    w = SendWindow(days=frozenset(range(7)), start=time(2, 30), end=time(4))
    got = w.next_allowed(datetime(2026, 3, 8, 0, tzinfo=ny), "America/New_York")
    assert got == datetime(2026, 3, 8, 3, tzinfo=ny)
    assert got.utcoffset() == timedelta(hours=-4)
    # Fall back in London (2026-10-25 02:00 BST -> 01:00 GMT): 01:30 happens twice; from
    # between the two the second one is next.
    w2 = SendWindow(days=frozenset(range(7)), start=time(1, 30), end=time(1, 45))
    between = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)  # 01:50 BST, after the first 01:30
    got2 = w2.next_allowed(between, "Europe/London")
    assert got2 == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert got2.astimezone(lon).fold == 1
    # A window that the fall-back re-enters: 01:00-01:10 is re-entered at 01:00 GMT.
    w3 = SendWindow(days=frozenset(range(7)), start=time(0, 50), end=time(1, 10))
    after_first = datetime(2026, 10, 25, 0, 10, tzinfo=UTC)  # 01:10 BST, window just closed
    assert w3.next_allowed(after_first, "Europe/London") == datetime(
        2026, 10, 25, 0, 50, tzinfo=UTC
    ) + timedelta(minutes=10)


def test_next_years_table_gives_the_working_weekend_before_new_year() -> None:
    cn = BusinessCalendar(country="CN")
    # 30 and 31 December 2006 were working weekend days (older versions of the holidays
    # package list them only in the 2007 table, hence the look at next year's).
    assert date(2006, 12, 30).weekday() == 5
    assert cn.is_business_day(date(2006, 12, 30)) and cn.is_business_day(date(2006, 12, 31))
    assert not cn.is_business_day(date(2006, 12, 23))


def test_the_first_and_last_years_of_the_calendar() -> None:
    cal = BusinessCalendar(country=None)
    assert cal.is_business_day(date(1, 1, 1))  # a Monday
    assert cal.is_business_day(date(9999, 12, 31))  # a Friday
    assert BusinessCalendar(country="CN").is_business_day(date(9999, 12, 31))
    with pytest.raises(OverflowError) as info:
        cal.add_business_days(date(9999, 12, 30), 5)
    assert str(info.value) == "year 10000 is outside the calendar (1 to 9999)"


def test_a_company_day_off_on_a_public_holiday_keeps_the_public_name() -> None:
    cn = BusinessCalendar(country="CN", extra_holidays=frozenset({date(2026, 10, 1)}))
    assert cn.holiday_name(date(2026, 10, 1)) == "National Day"
    named = BusinessCalendar(
        country=None, name="Acme", extra_holidays=frozenset({date(2026, 3, 4)})
    )
    assert named.holiday_name(date(2026, 3, 4)) == "Acme"
    plain = BusinessCalendar(country=None, extra_holidays=frozenset({date(2026, 3, 4)}))
    assert plain.holiday_name(date(2026, 3, 4)) == "company holiday"


def test_stepping_back_to_the_first_business_day_of_a_year() -> None:
    cal = BusinessCalendar(country=None)  # 2026-01-01 is a Thursday
    assert cal.add_business_days(date(2026, 1, 2), -1) == date(2026, 1, 1)
    assert cal.add_business_days(date(2026, 1, 5), -2) == date(2026, 1, 1)
    assert cal.add_business_days(date(2026, 1, 5), -3) == date(2025, 12, 31)
    assert cal.add_business_days(date(2026, 1, 1), -1) == date(2025, 12, 31)
    # Exactly a year's business days back lands on that year's first one (2025 has 261).
    assert cal.add_business_days(date(2026, 1, 1), -261) == date(2025, 1, 1)
    assert cal.add_business_days(date(2026, 1, 1), -262) == date(2024, 12, 31)


def test_a_zero_offset_is_the_bare_anchor_in_days() -> None:
    zero = Offset("due", 0, "bd")
    assert zero.unit == "d" and zero == Offset("due")
    assert Offset.parse("due+0bd") == Offset("due")


def test_until_on_the_first_occurrence_keeps_that_one() -> None:
    s = Schedule.parse("every 7d from due until due")
    due = {"due": date(2026, 3, 4)}
    assert s.occurrences(due, NOCAL, end=date(2026, 12, 31)) == [date(2026, 3, 4)]
    assert s.latest_on_or_before(due, NOCAL, date(2026, 3, 20)) == date(2026, 3, 4)


def test_monthly_recurrences_across_years_and_month_ends() -> None:
    monthly = Schedule.parse("every 1m from due")
    nov30 = {"due": date(2025, 11, 30)}
    assert monthly.latest_on_or_before(nov30, NOCAL, date(2026, 2, 15)) == date(2026, 1, 30)
    assert monthly.next_after(nov30, NOCAL, date(2026, 2, 15)) == date(2026, 2, 28)
    jan30 = {"due": date(2026, 1, 30)}
    assert monthly.occurrences(jan30, NOCAL, end=date(2026, 4, 30)) == [
        date(2026, 1, 30),
        date(2026, 2, 28),
        date(2026, 3, 30),
        date(2026, 4, 30),
    ]
    jan29 = {"due": date(2026, 1, 29)}
    assert monthly.occurrences(jan29, NOCAL, end=date(2026, 3, 31)) == [
        date(2026, 1, 29),
        date(2026, 2, 28),
        date(2026, 3, 29),
    ]
    jan31 = {"due": date(2026, 1, 31)}
    assert monthly.occurrences(jan31, NOCAL, end=date(2026, 4, 30)) == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]


def test_an_instant_whose_zone_has_no_offset_is_refused() -> None:
    class Nowhere(tzinfo):
        def utcoffset(self, dt: datetime | None) -> timedelta | None:
            return None

        def dst(self, dt: datetime | None) -> timedelta | None:
            return None

        def tzname(self, dt: datetime | None) -> str | None:
            return None

    with pytest.raises(CalendarError, match="naive datetime"):
        SendWindow().contains(datetime(2026, 3, 4, 12, tzinfo=Nowhere()), "UTC")


def test_next_allowed_opens_at_the_first_of_a_repeated_start() -> None:
    # London falls back on 2026-10-25 (01:59:59 BST -> 01:00 GMT): 01:30 happens twice.
    w = SendWindow(days=frozenset(range(7)), start=time(1, 30), end=time(1, 45))
    before = datetime(2026, 10, 24, 23, tzinfo=UTC)  # 00:00 BST
    assert w.next_allowed(before, "Europe/London") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_next_allowed_searches_from_the_local_day_of_the_instant() -> None:
    # 23:00 on Wednesday in New York is Thursday in UTC: the 23:30 opening is still today.
    ny = ZoneInfo("America/New_York")
    w = SendWindow(days=frozenset(range(7)), start=time(23, 30), end=time(0))
    got = w.next_allowed(datetime(2026, 3, 4, 23, tzinfo=ny), "America/New_York")
    assert got == datetime(2026, 3, 4, 23, 30, tzinfo=ny)


def test_next_allowed_finds_a_spring_forward_far_east_of_utc() -> None:
    # Auckland springs forward on 2026-09-27 at 02:00 NZST (14:00 UTC the day before).
    nz = ZoneInfo("Pacific/Auckland")
    w = SendWindow(days=frozenset(range(7)), start=time(2, 30), end=time(4))
    got = w.next_allowed(datetime(2026, 9, 27, 0, tzinfo=nz), "Pacific/Auckland")
    assert got == datetime(2026, 9, 27, 3, tzinfo=nz)
