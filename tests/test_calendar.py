"""Tests of arflow.calendar: business days, offsets, schedules and send windows.

Chinese holiday dates are those the installed ``holidays`` package gives for 2026 (checked
against it, not assumed): Spring Festival off Mon 16 to Fri 20 and Mon 23 February, with
Saturdays 14 and 28 February worked; National Day off 1 to 7 October, with Sunday 20
September and Saturday 10 October worked; Mid-Autumn Festival on Friday 25 September.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta  # type: ignore[import-untyped]
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from arflow.calendar import (
    ANCHORS,
    MAX_SHIFT,
    UNITS,
    BusinessCalendar,
    CalendarError,
    MissingAnchor,
    Offset,
    OffsetError,
    Schedule,
    ScheduleError,
    SendWindow,
    Step,
    WindowError,
    due_reach,
)
from arflow.errors import ValidationError

CN = BusinessCalendar()
WEEKENDS = BusinessCalendar(country=None)
SH = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
NY = ZoneInfo("America/New_York")

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def d(text: str) -> date:
    return date.fromisoformat(text)


# -- business calendar ----------------------------------------------------------------------


def test_spring_festival_2026() -> None:
    closed = ["2026-02-15", "2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19"]
    closed += ["2026-02-20", "2026-02-21", "2026-02-22", "2026-02-23"]
    assert [CN.is_business_day(d(x)) for x in closed] == [False] * len(closed)
    # the adjusted working Saturdays come from the holidays package
    assert CN.is_business_day(d("2026-02-14"))
    assert CN.is_business_day(d("2026-02-28"))
    assert CN.is_business_day(d("2026-02-13"))
    assert CN.is_business_day(d("2026-02-24"))
    name = CN.holiday_name(d("2026-02-17"))
    assert name is not None and "Spring Festival" in name
    assert CN.holiday_name(d("2026-02-15")) is None  # a Sunday, not a holiday
    assert CN.holiday_name(d("2026-02-14")) is None  # worked
    assert CN.holiday_name(d("2026-02-24")) is None


def test_national_day_2026() -> None:
    for day in range(1, 8):
        assert not CN.is_business_day(date(2026, 10, day)), day
    assert CN.holiday_name(d("2026-10-01")) == "National Day"
    assert CN.holiday_name(d("2026-10-03")) == "National Day"  # a Saturday holiday
    assert CN.is_business_day(d("2026-09-20"))  # Sunday, worked
    assert CN.is_business_day(d("2026-10-10"))  # Saturday, worked
    assert not CN.is_business_day(d("2026-09-25"))  # Mid-Autumn Festival
    assert CN.add_business_days(d("2026-09-30"), 1) == d("2026-10-08")
    assert CN.add_business_days(d("2026-10-08"), -1) == d("2026-09-30")
    assert CN.business_days_between(d("2026-09-30"), d("2026-10-08")) == 1
    assert CN.next_business_day(d("2026-10-01")) == d("2026-10-08")


def test_business_day_arithmetic_across_the_spring_festival_week() -> None:
    assert CN.add_business_days(d("2026-02-13"), 1) == d("2026-02-14")
    assert CN.add_business_days(d("2026-02-13"), 2) == d("2026-02-24")
    assert CN.add_business_days(d("2026-02-24"), -2) == d("2026-02-13")
    assert CN.add_business_days(d("2026-02-17"), 1) == d("2026-02-24")  # from a holiday
    assert CN.add_business_days(d("2026-02-17"), -1) == d("2026-02-14")
    assert CN.add_business_days(d("2026-02-17"), 0) == d("2026-02-17")  # 0: unchanged
    assert CN.add_business_days(d("2026-02-01"), 20) == d("2026-03-05")
    assert CN.business_days_between(d("2026-02-13"), d("2026-02-24")) == 2
    assert CN.business_days_between(d("2026-02-24"), d("2026-02-13")) == -2
    assert CN.business_days_between(d("2026-02-16"), d("2026-02-23")) == 0
    assert CN.business_days_between(d("2026-02-20"), d("2026-02-20")) == 0


def test_year_boundary_new_year_2026() -> None:
    # 1 Jan holiday, 2 Jan day off, 3 Jan Saturday, 4 Jan a Sunday that is worked
    assert CN.add_business_days(d("2025-12-31"), 1) == d("2026-01-04")
    assert CN.add_business_days(d("2026-01-04"), -1) == d("2025-12-31")
    assert CN.business_days_between(d("2025-12-30"), d("2026-01-05")) == 3
    assert CN.add_business_days(d("2026-01-01"), 250) == d("2027-01-05")
    assert CN.business_days_between(d("2026-01-01"), d("2027-01-05")) == 250


def test_business_days_between_counts_the_half_open_interval() -> None:
    # (a, b] forwards: past due from Friday 6 March to Monday 9 March is one business day
    assert WEEKENDS.business_days_between(d("2026-03-06"), d("2026-03-09")) == 1
    assert WEEKENDS.business_days_between(d("2026-03-06"), d("2026-03-07")) == 0
    assert WEEKENDS.business_days_between(d("2026-03-02"), d("2026-03-31")) == 21
    # backwards, the days walked over: [b, a)
    assert WEEKENDS.business_days_between(d("2026-03-07"), d("2026-03-06")) == -1
    assert WEEKENDS.add_business_days(d("2026-03-07"), -1) == d("2026-03-06")
    assert WEEKENDS.add_business_days(d("2026-03-07"), 1) == d("2026-03-09")


def test_next_business_day() -> None:
    assert CN.next_business_day(d("2026-02-13")) == d("2026-02-13")
    assert CN.next_business_day(d("2026-02-13"), include_self=False) == d("2026-02-14")
    assert CN.next_business_day(d("2026-02-15")) == d("2026-02-24")


def test_company_workdays_and_holidays() -> None:
    saturday, monday = d("2026-03-07"), d("2026-03-09")
    cal = BusinessCalendar(
        country=None, extra_workdays=frozenset({saturday}), extra_holidays=frozenset({monday})
    )
    assert cal.is_business_day(saturday)
    assert not cal.is_business_day(monday)
    assert cal.add_business_days(d("2026-03-06"), 1) == saturday
    assert cal.add_business_days(saturday, 1) == d("2026-03-10")
    assert cal.holiday_name(monday) == "company holiday"
    acme = BusinessCalendar(country=None, extra_holidays=frozenset({monday}), name="Acme")
    assert acme.holiday_name(monday) == "Acme"


def test_company_calendar_on_top_of_china() -> None:
    # a Sunday the company works, and a bridge day it closes
    cal = BusinessCalendar(
        extra_workdays=frozenset({d("2026-03-08")}),
        extra_holidays=frozenset({d("2026-10-09")}),
        name="Acme Shanghai",
    )
    assert cal.is_business_day(d("2026-03-08"))
    assert not CN.is_business_day(d("2026-03-08"))
    assert cal.add_business_days(d("2026-09-30"), 1) == d("2026-10-08")
    assert cal.add_business_days(d("2026-10-08"), 1) == d("2026-10-10")
    assert cal.holiday_name(d("2026-10-09")) == "Acme Shanghai"
    assert cal.holiday_name(d("2026-10-01")) == "National Day"
    # a company workday overrides a public holiday
    open_on_holiday = BusinessCalendar(extra_workdays=frozenset({d("2026-10-08"), d("2026-10-02")}))
    assert open_on_holiday.is_business_day(d("2026-10-02"))
    assert open_on_holiday.holiday_name(d("2026-10-02")) is None


def test_other_countries_weekends_and_subdivisions() -> None:
    assert WEEKENDS.is_business_day(d("2026-10-01"))
    assert WEEKENDS.holiday_name(d("2026-10-01")) is None
    gulf = BusinessCalendar(country=None, weekend=frozenset({4, 5}))
    assert gulf.add_business_days(d("2026-03-05"), 1) == d("2026-03-08")  # Thu -> Sun
    england = BusinessCalendar(country="GB", subdivision="ENG")
    scotland = BusinessCalendar(country="GB", subdivision="SCT")
    assert not england.is_business_day(d("2026-04-06"))  # Easter Monday
    assert scotland.is_business_day(d("2026-04-06"))
    assert not scotland.is_business_day(d("2026-11-30"))  # Saint Andrew's Day
    assert england.is_business_day(d("2026-11-30"))
    assert BusinessCalendar(country="cn").country == "CN"


def test_calendar_refusals() -> None:
    with pytest.raises(CalendarError, match="'XX'") as exc:
        BusinessCalendar(country="XX")
    assert isinstance(exc.value, ValidationError) and isinstance(exc.value, ValueError)
    with pytest.raises(CalendarError, match="'ZZ'"):
        BusinessCalendar(country="CN", subdivision="ZZ")
    with pytest.raises(CalendarError, match="2026-03-09"):
        same = frozenset({d("2026-03-09")})
        BusinessCalendar(extra_holidays=same, extra_workdays=same)
    with pytest.raises(CalendarError, match="seven"):
        BusinessCalendar(weekend=frozenset(range(7)))
    with pytest.raises(CalendarError, match="weekend"):
        BusinessCalendar(weekend=frozenset({7}))
    with pytest.raises(CalendarError, match="datetime"):
        CN.is_business_day(datetime(2026, 3, 2, 12, tzinfo=UTC))
    with pytest.raises(CalendarError, match="datetime"):
        CN.add_business_days(datetime(2026, 3, 2, 12, tzinfo=UTC), 1)


def test_calendars_compare_by_value_and_hash() -> None:
    a, b = BusinessCalendar(), BusinessCalendar()
    a.is_business_day(d("2026-01-01"))
    assert a == b and hash(a) == hash(b)
    assert a != WEEKENDS


def test_replace_starts_a_fresh_cache() -> None:
    a = BusinessCalendar()
    assert a.is_business_day(d("2026-03-09"))
    b = dataclasses.replace(a, extra_holidays=frozenset({d("2026-03-09")}))
    assert not b.is_business_day(d("2026-03-09"))
    assert a.is_business_day(d("2026-03-09"))


# -- offsets --------------------------------------------------------------------------------

ANCH = {"due": d("2026-02-12"), "issue": d("2026-01-31"), "promise": d("2026-03-16")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("due", "2026-02-12"),
        ("due-7d", "2026-02-05"),
        ("due+7d", "2026-02-19"),
        ("due+3bd", "2026-02-24"),  # 13, 14 (worked Saturday), then 24 after the festival
        ("due + 3bd", "2026-02-24"),
        ("due+1w", "2026-02-19"),
        ("due-2w", "2026-01-29"),
        ("issue+1m", "2026-02-28"),  # Jan 31 + 1 month: clamped to the end of February
        ("issue+3m", "2026-04-30"),
        ("issue-2m", "2025-11-30"),
        ("promise+1bd", "2026-03-17"),
        ("promise-3bd", "2026-03-11"),
        ("due+0bd", "2026-02-12"),
    ],
)
def test_offset_resolve(text: str, expected: str) -> None:
    assert Offset.parse(text).resolve(ANCH, CN) == d(expected)


def test_negative_business_days_across_the_festival() -> None:
    anchors = {"due": d("2026-02-24")}
    assert Offset.parse("due-3bd").resolve(anchors, CN) == d("2026-02-12")
    assert Offset.parse("due-1bd").resolve({"due": d("2026-02-17")}, CN) == d("2026-02-14")


def test_offset_zero_on_a_holiday_stays_put_and_leap_years_clamp() -> None:
    holiday = {"due": d("2026-10-01"), "issue": d("2028-01-31")}
    assert Offset.parse("due").resolve(holiday, CN) == d("2026-10-01")
    assert Offset.parse("due+0bd").resolve(holiday, CN) == d("2026-10-01")
    assert Offset.parse("issue+1m").resolve(holiday, CN) == d("2028-02-29")


def test_offset_missing_anchor() -> None:
    with pytest.raises(MissingAnchor, match="dispute") as exc:
        Offset.parse("dispute+5bd").resolve(ANCH, CN)
    assert exc.value.anchor == "dispute"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("due", "due"),
        (" due ", "due"),
        ("due + 3bd", "due+3bd"),
        ("DUE-7D", "due-7d"),
        ("issue+1m", "issue+1m"),
        ("due+0bd", "due"),
        ("due-0w", "due"),
        ("dispute\t-\t2w", "dispute-2w"),
    ],
)
def test_offset_canonical_text(text: str, canonical: str) -> None:
    off = Offset.parse(text)
    assert str(off) == canonical
    assert Offset.parse(canonical) == off


def test_offset_fields() -> None:
    assert Offset.parse("due-3bd") == Offset("due", -3, "bd")
    assert Offset.parse("due") == Offset("due", 0, "d")
    with pytest.raises(CalendarError):
        Offset("payday", 1, "d")
    with pytest.raises(CalendarError):
        Offset("due", 1, "y")


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("due+3x", 5, "a unit d, bd, w or m"),
        ("", 0, "an anchor due, issue, promise or dispute"),
        ("dew+3d", 0, "an anchor due, issue, promise or dispute"),
        ("due+", 4, "a number"),
        ("due+bd", 4, "a number"),
        ("due 3d", 4, "'+', '-' or the end"),
        ("due+3d junk", 7, "'+', '-' or the end"),
        ("due + 3 bd", 7, "a unit d, bd, w or m"),
        ("due+3days", 5, "a unit d, bd, w or m"),
        ("due+1234567d", 4, "a number up to 999999"),
        ("due*2", 3, "'+', '-' or the end"),
    ],
)
def test_offset_errors(text: str, position: int, expected: str) -> None:
    with pytest.raises(OffsetError) as exc:
        Offset.parse(text)
    e = exc.value
    assert (e.text, e.position, e.expected) == (text, position, expected)
    assert str(e) == f"expected {expected} at column {position + 1} in {text!r}"
    assert isinstance(e, CalendarError)


@pytest.mark.parametrize(
    ("text", "position", "limit"),
    [
        ("due+999999d", 4, "36600d"),
        ("due+36601d", 4, "36600d"),
        ("due-36601d", 4, "36600d"),
        ("issue+5221w", 6, "5220w"),
        ("promise+1201m", 8, "1200m"),
        ("dispute-25001bd", 8, "25000bd"),
    ],
)
def test_offsets_beyond_the_calendars_reach_are_refused(
    text: str, position: int, limit: str
) -> None:
    with pytest.raises(OffsetError) as exc:
        Offset.parse(text)
    assert exc.value.position == position
    assert exc.value.expected == f"at most {limit} (about 100 years)"
    with pytest.raises(ScheduleError, match="about 100 years"):
        Schedule.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "every 36601d from due",
        "every 1201m from due",
        "every 7d from due until due+999999d",
        "every 7d from due-999999d",
    ],
)
def test_recurrences_beyond_the_calendars_reach_are_refused(text: str) -> None:
    with pytest.raises(ScheduleError, match=r"at most \d+(d|m) \(about 100 years\)"):
        Schedule.parse(text)


def test_the_limits_themselves_parse_and_resolve_within_the_calendar() -> None:
    cal = BusinessCalendar(country=None)
    for unit, most in MAX_SHIFT.items():
        for sign in (1, -1):
            off = Offset.parse(f"due{'+' if sign > 0 else '-'}{most}{unit}")
            assert off.n == sign * most
            off.resolve({"due": date(2026, 1, 1)}, cal)  # no OverflowError
        assert str(Step(most, unit)) == f"{most}{unit}"
        with pytest.raises(CalendarError, match="too far"):
            Step(most + 1, unit)
        with pytest.raises(CalendarError, match="too far"):
            Offset("due", -most - 1, unit)


def test_offset_error_message_example() -> None:
    with pytest.raises(
        OffsetError, match=r"^expected a unit d, bd, w or m at column 6 in 'due\+3x'$"
    ):
        Offset.parse("due+3x")


offset_texts = st.sampled_from(UNITS).flatmap(
    lambda u: st.builds(
        lambda a, sign, n: a if n == 0 else f"{a}{sign}{n}{u}",
        st.sampled_from(ANCHORS),
        st.sampled_from("+-"),
        st.integers(0, MAX_SHIFT[u]),
    )
)


@given(offset_texts, st.sampled_from(["", " ", "  ", "\t"]))
def test_offset_round_trip(text: str, pad: str) -> None:
    off = Offset.parse(text)
    assert str(off) == text
    assert Offset.parse(str(off)) == off
    spaced = pad + text.replace("+", f"{pad}+{pad}").replace("-", f"{pad}-{pad}") + pad
    assert Offset.parse(spaced) == off


# -- business-day properties ----------------------------------------------------------------

dates = st.dates(date(2024, 1, 1), date(2028, 12, 31))
calendars = st.sampled_from([CN, WEEKENDS, BusinessCalendar(country="GB", subdivision="ENG")])


def walk(cal: BusinessCalendar, day: date, n: int) -> date:
    """Reference: step one day at a time."""
    step = 1 if n > 0 else -1
    left = abs(n)
    while left:
        day += timedelta(days=step)
        left -= cal.is_business_day(day)
    return day


@PROPS
@given(calendars, dates, st.integers(-400, 400))
def test_add_business_days_properties(cal: BusinessCalendar, day: date, n: int) -> None:
    got = cal.add_business_days(day, n)
    if n != 0:
        assert cal.is_business_day(got)
    else:
        assert got == day
    assert cal.business_days_between(day, got) == n
    assert got == walk(cal, day, n)


@PROPS
@given(calendars, dates, dates)
def test_business_days_between_counts(cal: BusinessCalendar, a: date, b: date) -> None:
    lo, hi = min(a, b), max(a, b)
    days = [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]
    forward = sum(cal.is_business_day(x) for x in days[1:])  # (lo, hi]
    backward = sum(cal.is_business_day(x) for x in days[:-1])  # [lo, hi)
    assert cal.business_days_between(lo, hi) == forward
    assert cal.business_days_between(hi, lo) == -backward


# -- schedules ------------------------------------------------------------------------------


def test_recurrence_with_until() -> None:
    s = Schedule.parse("every 7d from due+1d until due+15d")
    anchors = {"due": d("2026-03-02")}
    assert s.occurrences(anchors, CN, end=d("2026-12-31")) == [
        d("2026-03-03"),
        d("2026-03-10"),
        d("2026-03-17"),
    ]
    assert s.occurrences(anchors, CN, start=d("2026-03-04"), end=d("2026-03-17")) == [
        d("2026-03-10"),
        d("2026-03-17"),
    ]
    assert s.occurrences(anchors, CN, end=d("2026-03-02")) == []
    assert s.latest_on_or_before(anchors, CN, d("2026-03-16")) == d("2026-03-10")
    assert s.latest_on_or_before(anchors, CN, d("2026-06-01")) == d("2026-03-17")
    assert s.latest_on_or_before(anchors, CN, d("2026-03-02")) is None
    assert s.next_after(anchors, CN, d("2026-03-02")) == d("2026-03-03")
    assert s.next_after(anchors, CN, d("2026-03-10")) == d("2026-03-17")
    assert s.next_after(anchors, CN, d("2026-03-17")) is None


def test_open_ended_business_day_recurrence() -> None:
    s = Schedule.parse("every 2bd from due+1bd")
    anchors = {"due": d("2026-02-12")}
    assert s.occurrences(anchors, CN, end=d("2026-02-27")) == [
        d("2026-02-13"),
        d("2026-02-24"),  # 14 (worked Saturday) and 24
        d("2026-02-26"),
    ]
    assert s.occurrences(anchors, CN, start=d("2026-02-14"), end=d("2026-02-26")) == [
        d("2026-02-24"),
        d("2026-02-26"),
    ]
    assert s.latest_on_or_before(anchors, CN, d("2026-02-23")) == d("2026-02-13")
    assert s.next_after(anchors, CN, d("2026-02-13")) == d("2026-02-24")
    assert s.next_after(anchors, CN, d("2030-01-01")) is not None


def test_weekly_and_monthly_recurrences() -> None:
    weekly = Schedule.parse("every 2w from due")
    anchors = {"due": d("2026-03-02"), "issue": d("2026-01-31")}
    assert weekly.occurrences(anchors, CN, end=d("2026-04-13")) == [
        d("2026-03-02"),
        d("2026-03-16"),
        d("2026-03-30"),
        d("2026-04-13"),
    ]
    monthly = Schedule.parse("every 1m from issue until issue+4m")
    # clamped from the first date, not from the previous one: no drift to the 28th
    assert monthly.occurrences(anchors, CN, end=d("2026-12-31")) == [
        d("2026-01-31"),
        d("2026-02-28"),
        d("2026-03-31"),
        d("2026-04-30"),
        d("2026-05-31"),
    ]
    assert monthly.latest_on_or_before(anchors, CN, d("2026-04-29")) == d("2026-03-31")
    assert monthly.next_after(anchors, CN, d("2026-02-28")) == d("2026-03-31")
    assert monthly.next_after(anchors, CN, d("2026-05-31")) is None


def test_single_offset_schedule() -> None:
    s = Schedule.parse("due-7d")
    anchors = {"due": d("2026-03-10")}
    assert s.occurrences(anchors, CN, end=d("2026-03-03")) == [d("2026-03-03")]
    assert s.occurrences(anchors, CN, end=d("2026-03-02")) == []
    assert s.occurrences(anchors, CN, start=d("2026-03-04"), end=d("2026-12-31")) == []
    assert s.latest_on_or_before(anchors, CN, d("2026-03-05")) == d("2026-03-03")
    assert s.next_after(anchors, CN, d("2026-03-02")) == d("2026-03-03")
    assert s.next_after(anchors, CN, d("2026-03-03")) is None
    assert (s.every, s.until, s.start) == (None, None, Offset("due", -7, "d"))


def test_schedule_without_its_anchor_never_fires() -> None:
    s = Schedule.parse("every 3d from promise+1d")
    anchors = {"due": d("2026-03-10")}
    assert s.occurrences(anchors, CN, end=d("2026-12-31")) == []
    assert s.latest_on_or_before(anchors, CN, d("2026-12-31")) is None
    assert s.next_after(anchors, CN, d("2026-01-01")) is None


def test_schedule_from_the_beginning_of_time_is_fast() -> None:
    # the engine asks with start=date.min + 1 day; this must not walk from year 1
    s = Schedule.parse("every 1d from due+1d")
    got = s.occurrences(
        {"due": d("2026-03-10")}, CN, start=date.min + timedelta(1), end=d("2026-03-13")
    )
    assert got == [d("2026-03-11"), d("2026-03-12"), d("2026-03-13")]
    bd = Schedule.parse("every 1bd from due+1bd")
    got = bd.occurrences(
        {"due": d("2026-03-10")}, CN, start=date.min + timedelta(1), end=d("2026-03-13")
    )
    assert got == [d("2026-03-11"), d("2026-03-12"), d("2026-03-13")]
    far = s.occurrences({"due": d("2026-03-10")}, CN, start=d("2126-03-10"), end=d("2126-03-11"))
    assert far == [d("2126-03-10"), d("2126-03-11")]


def test_schedule_fields_and_text() -> None:
    s = Schedule.parse("  every 7d  from due + 1d   until due+15d ")
    assert s == Schedule(Offset("due", 1, "d"), Step(7, "d"), Offset("due", 15, "d"))
    assert str(s) == "every 7d from due+1d until due+15d"
    assert str(Schedule.parse("every 2bd from due+1bd")) == "every 2bd from due+1bd"
    assert Schedule.parse(str(s)) == s
    with pytest.raises(CalendarError):
        Schedule(Offset("due"), None, Offset("due", 3))


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("every 0d from due", 6, "a number of at least 1"),
        ("every 7d form due", 9, "'from'"),
        ("every 7d from due until", 23, "an anchor due, issue, promise or dispute"),
        ("every 7d from due+1x", 19, "a unit d, bd, w or m"),
        ("every 7 from due", 7, "a unit d, bd, w or m"),
        ("every7d from due", 5, "a space"),
        ("evry 7d from due", 0, "'every' or an anchor due, issue, promise or dispute"),
        ("every 7d from due+1d untl due+15d", 21, "'+', '-', 'until' or the end"),
        ("every 7d from due until due+15d x", 32, "'+', '-' or the end"),
        ("due-7d until due", 7, "'+', '-' or the end"),
        ("every", 5, "a number of at least 1"),
        ("every 1w from", 13, "an anchor due, issue, promise or dispute"),
    ],
)
def test_schedule_errors(text: str, position: int, expected: str) -> None:
    with pytest.raises(ScheduleError) as exc:
        Schedule.parse(text)
    e = exc.value
    assert (e.text, e.position, e.expected) == (text, position, expected)
    assert str(e) == f"expected {expected} at column {position + 1} in {text!r}"


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    def offset() -> Offset:
        return Offset(
            draw(st.sampled_from(["due", "issue"])),
            draw(st.integers(-40, 40)),
            draw(st.sampled_from(UNITS)),
        )

    start = offset()
    if draw(st.booleans()):
        return Schedule(start)
    every = Step(draw(st.integers(1, 10)), draw(st.sampled_from(UNITS)))
    return Schedule(start, every, offset() if draw(st.booleans()) else None)


def reference(
    s: Schedule, anchors: dict[str, date], cal: BusinessCalendar, end: date
) -> list[date]:
    """Occurrences by the definition, one at a time, with no arithmetic shortcut."""
    first = s.start.resolve(anchors, cal)
    if s.every is None:
        return [first] if first <= end else []
    until = end if s.until is None else min(end, s.until.resolve(anchors, cal))
    n, unit = s.every.n, s.every.unit
    out: list[date] = []
    k = 0
    while True:
        if unit == "d":
            occ = first + timedelta(days=k * n)
        elif unit == "w":
            occ = first + timedelta(days=7 * k * n)
        elif unit == "m":
            occ = first + relativedelta(months=k * n)
        else:
            occ = walk(cal, first, k * n)
        if occ > until:
            return out
        out.append(occ)
        k += 1


@PROPS
@given(schedules(), dates, dates, dates, calendars)
def test_schedule_properties(
    s: Schedule, due: date, issue: date, day: date, cal: BusinessCalendar
) -> None:
    anchors = {"due": due, "issue": issue}
    upto = s.occurrences(anchors, cal, end=day)
    assert upto == reference(s, anchors, cal, day)
    assert s.latest_on_or_before(anchors, cal, day) == (upto[-1] if upto else None)
    horizon = max(due, issue, day) + timedelta(days=1500)  # past the first and one step
    later = [x for x in s.occurrences(anchors, cal, end=horizon) if x > day]
    assert s.next_after(anchors, cal, day) == (later[0] if later else None)
    # a window [start, end] is the matching slice of the whole list
    start = day - timedelta(days=45)
    assert s.occurrences(anchors, cal, start=start, end=day) == [x for x in upto if x >= start]


@PROPS
@given(schedules(), dates, st.integers(0, 120), dates, calendars)
def test_a_step_fires_only_within_its_reach_of_the_due_date(
    s: Schedule, due: date, before: int, day: date, cal: BusinessCalendar
) -> None:
    """The daily run looks only at steps whose reach from the due date (``due_reach``,
    by arithmetic) meets the days it plans: every occurrence must lie inside it."""
    reach = due_reach(s)
    assume(reach is not None)
    assert reach is not None
    lo, hi = reach
    anchors = {"due": due, "issue": due - timedelta(days=before)}  # never due before issue
    for occ in s.occurrences(anchors, cal, end=day + timedelta(days=400)):
        assert lo <= (occ - due).days and (hi is None or (occ - due).days <= hi), (occ, reach)


# -- send windows ---------------------------------------------------------------------------


def test_send_window_parse_and_text() -> None:
    w = SendWindow.parse("mon-fri 09:00-18:00")
    assert w == SendWindow()
    assert str(w) == "mon-fri 09:00-18:00"
    w = SendWindow.parse("mon,wed,fri 08:30-12:00")
    assert (w.days, w.start, w.end) == (frozenset({0, 2, 4}), time(8, 30), time(12))
    assert str(w) == "mon,wed,fri 08:30-12:00"
    w = SendWindow.parse("daily 00:00-24:00")
    assert (w.days, w.start, w.end) == (frozenset(range(7)), time(0), time.max)
    assert str(w) == "daily 00:00-24:00"
    w = SendWindow.parse("Fri-Mon 9:00 - 17:00")
    assert w.days == frozenset({4, 5, 6, 0})
    assert SendWindow.parse(str(w)) == w
    assert SendWindow(end=time(0)).end == time.max  # 00:00 as an end is 24:00


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("mon-fry 09:00-18:00", 4, "a day mon, tue, wed, thu, fri, sat or sun"),
        ("weekdays 09:00-18:00", 0, "a day mon, tue, wed, thu, fri, sat, sun or 'daily'"),
        ("mon-fri 09:00-25:00", 14, "an hour 00 to 24"),
        ("mon-fri 24:00-24:00", 8, "an hour 00 to 23"),
        ("mon-fri 18:00-09:00", 14, "an end time after 18:00"),
        ("mon-fri 09:00-09:00", 14, "an end time after 09:00"),
        ("mon-fri 09:60-18:00", 11, "minutes 00 to 59"),
        ("mon-fri 09:00-24:30", 17, "minutes 00 after hour 24"),
        ("mon-fri", 7, "a space and the hours HH:MM-HH:MM"),
        ("mon-fri09:00-18:00", 7, "',', '-' or a space before the hours"),
        ("mon-fri 9am-6pm", 8, "a start time HH:MM"),
        ("mon-fri 09:00", 13, "'-' between the start and end times"),
        ("mon-fri 09:00-", 14, "an end time HH:MM"),
        ("mon-fri 09:00-18:00 utc", 20, "the end"),
    ],
)
def test_send_window_errors(text: str, position: int, expected: str) -> None:
    with pytest.raises(WindowError) as exc:
        SendWindow.parse(text)
    e = exc.value
    assert (e.text, e.position, e.expected) == (text, position, expected)
    assert str(e) == f"expected {expected} at column {position + 1} in {text!r}"


def test_send_window_refusals() -> None:
    with pytest.raises(CalendarError, match="naive"):
        SendWindow().next_allowed(datetime(2026, 3, 2, 10), "Asia/Shanghai")
    with pytest.raises(CalendarError, match="Mars/Olympus"):
        SendWindow().next_allowed(datetime(2026, 3, 2, 10, tzinfo=UTC), "Mars/Olympus")
    with pytest.raises(CalendarError):
        SendWindow(days=frozenset())
    with pytest.raises(CalendarError, match="midnight"):
        SendWindow(start=time(22), end=time(6))


def test_send_window_across_a_weekend() -> None:
    w = SendWindow()
    friday_evening = datetime(2026, 3, 6, 19, 0, tzinfo=SH)
    assert w.next_allowed(friday_evening, "Asia/Shanghai") == datetime(2026, 3, 9, 9, tzinfo=SH)
    inside = datetime(2026, 3, 6, 17, 59, tzinfo=SH)
    assert w.next_allowed(inside, "Asia/Shanghai") is inside
    at_end = datetime(2026, 3, 6, 18, 0, tzinfo=SH)  # the end is exclusive
    assert w.next_allowed(at_end, "Asia/Shanghai") == datetime(2026, 3, 9, 9, tzinfo=SH)
    early = datetime(2026, 3, 9, 7, 15, tzinfo=SH)
    assert w.next_allowed(early, "Asia/Shanghai") == datetime(2026, 3, 9, 9, tzinfo=SH)


def test_send_window_across_a_holiday() -> None:
    w = SendWindow()
    before = datetime(2026, 9, 30, 18, 30, tzinfo=SH)
    assert w.next_allowed(before, "Asia/Shanghai", CN) == datetime(2026, 10, 8, 9, tzinfo=SH)
    # without a calendar only the days of the week count
    assert w.next_allowed(before, "Asia/Shanghai") == datetime(2026, 10, 1, 9, tzinfo=SH)
    lenient = SendWindow(business_days_only=False)
    assert lenient.next_allowed(before, "Asia/Shanghai", CN) == datetime(2026, 10, 1, 9, tzinfo=SH)
    # Friday 9 October evening: a mon-fri window waits for Monday, a mon-sun window on a
    # business-day calendar takes the worked Saturday
    fri = datetime(2026, 10, 9, 19, tzinfo=SH)
    assert w.next_allowed(fri, "Asia/Shanghai", CN) == datetime(2026, 10, 12, 9, tzinfo=SH)
    every_business_day = SendWindow.parse("mon-sun 09:00-18:00")
    assert every_business_day.next_allowed(fri, "Asia/Shanghai", CN) == datetime(
        2026, 10, 10, 9, tzinfo=SH
    )


def test_send_window_across_time_zones() -> None:
    w = SendWindow()
    x = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday: 10:00 in Shanghai, 02:00 in London
    assert w.next_allowed(x, "Asia/Shanghai") == x
    got = w.next_allowed(x, "Europe/London")
    assert got == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert got.tzinfo is UTC  # the caller's tzinfo comes back
    y = datetime(2026, 3, 2, 17, 30, tzinfo=SH)  # 09:30 in London: inside there
    assert w.next_allowed(y, "Europe/London") == y
    z = datetime(2026, 3, 2, 19, 0, tzinfo=SH)  # closed in Shanghai, 11:00 in London
    assert w.next_allowed(z, "Asia/Shanghai") == datetime(2026, 3, 3, 9, tzinfo=SH)
    assert w.next_allowed(z, "Europe/London") == z
    # London in summer time (BST, UTC+1): 09:00 local is 08:00 UTC, 16:00 in Shanghai
    summer = datetime(2026, 7, 6, 0, 0, tzinfo=UTC)
    got = w.next_allowed(summer.astimezone(SH), "Europe/London")
    assert got == datetime(2026, 7, 6, 16, 0, tzinfo=SH) and got.tzinfo is SH


def test_send_window_dst_gap_new_york() -> None:
    # 8 March 2026: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that night
    w = SendWindow.parse("daily 02:30-04:00")
    got = w.next_allowed(datetime(2026, 3, 8, 0, 0, tzinfo=NY), "America/New_York")
    assert got == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # the jump: 03:00 EDT
    local = got.astimezone(NY)
    assert (local.hour, local.minute, local.utcoffset()) == (3, 0, timedelta(hours=-4))
    # a 09:00 window that day is plain 09:00 EDT
    nine = SendWindow.parse("daily 09:00-18:00")
    got = nine.next_allowed(datetime(2026, 3, 8, 0, 0, tzinfo=NY), "America/New_York")
    assert got == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    # the next day the window opens at 02:30 EDT again
    got = w.next_allowed(datetime(2026, 3, 8, 12, 0, tzinfo=UTC), "America/New_York")
    assert got == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)


def test_send_window_dst_gap_london() -> None:
    # 29 March 2026: 01:00 GMT jumps to 02:00 BST
    w = SendWindow.parse("daily 01:30-03:00")
    got = w.next_allowed(datetime(2026, 3, 29, 0, 0, tzinfo=UTC), "Europe/London")
    assert got == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert got.astimezone(LONDON).hour == 2


def test_send_window_repeated_hour_new_york() -> None:
    # 1 November 2026: 02:00 EDT falls back to 01:00 EST; 01:00-01:59 happens twice
    w = SendWindow.parse("daily 01:00-01:30")
    x = datetime(2026, 11, 1, 5, 45, tzinfo=UTC)  # 01:45 EDT, past the first pass
    got = w.next_allowed(x, "America/New_York")
    assert got == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # 01:00 EST, second pass
    early = SendWindow.parse("daily 00:30-01:30")
    assert early.next_allowed(x, "America/New_York") == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    assert early.contains(datetime(2026, 11, 1, 6, 10, tzinfo=UTC), "America/New_York")


ZONES = [
    "Asia/Shanghai",
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",  # half-hour DST
    "Asia/Kathmandu",  # +05:45
    "America/Sao_Paulo",
    "UTC",
]
quarter = st.integers(0, 95).map(lambda q: time(q // 4, q % 4 * 15))


@st.composite
def windows(draw: st.DrawFn) -> SendWindow:
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    a = draw(st.integers(0, 95))
    b = draw(st.integers(a + 1, 96))
    end = time.max if b == 96 else time(b // 4, b % 4 * 15)
    return SendWindow(days, time(a // 4, a % 4 * 15), end, draw(st.booleans()))


def inside(w: SendWindow, t: datetime, tz: str, cal: BusinessCalendar | None) -> bool:
    """Reference: the wall time in ``tz`` is on an open day and between start and end."""
    local = t.astimezone(ZoneInfo(tz))
    if local.weekday() not in w.days:
        return False
    if w.business_days_only and cal is not None and not cal.is_business_day(local.date()):
        return False
    return w.start <= local.time() and (w.end == time.max or local.time() < w.end)


@PROPS
@given(
    windows(),
    st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31)),
    st.sampled_from(ZONES),
    st.sampled_from(ZONES),
    st.sampled_from([None, CN]),
)
def test_next_allowed_properties(
    w: SendWindow, naive: datetime, tz: str, given_tz: str, cal: BusinessCalendar | None
) -> None:
    x = naive.replace(tzinfo=UTC).astimezone(ZoneInfo(given_tz))
    try:
        got = w.next_allowed(x, tz, cal)
    except CalendarError:
        # weekend-only business days: the worked weekends the holidays package knows end
        # with the last year China has announced
        assert cal is not None and w.business_days_only and w.days <= {5, 6}
        return
    assert got.tzinfo is x.tzinfo
    got_utc, x_utc = got.astimezone(UTC), x.astimezone(UTC)
    assert got_utc >= x_utc
    assert inside(w, got, tz, cal)
    assert w.contains(got, tz, cal)
    if got_utc > x_utc:
        # the window opens exactly then: a moment earlier is outside
        assert not inside(w, got_utc - timedelta(microseconds=1), tz, cal)
        # and nothing between: windows open on quarter hours (in UTC too for these zones)
        t = x_utc.replace(minute=x_utc.minute - x_utc.minute % 15, second=0, microsecond=0)
        for _ in range(40 * 96):
            t += timedelta(minutes=15)
            if t >= got_utc:
                break
            assert not inside(w, t, tz, cal), t
