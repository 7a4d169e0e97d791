"""Which days are business days: weekends, a country's public holidays and the company's
own days off and adjusted working days."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import holidays

from ..errors import CalendarError

__all__ = ["BusinessCalendar"]

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
                    self.country, subdiv=self.subdivision, years=yy, language=_english(self.country)
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


@functools.cache
def _english(country: str) -> str | None:
    """The language of holiday names: English where the holidays package has it, else the
    country's default one. Left unset, the package follows the process locale, and Python 3.13 no
    longer reads ``LANG=C.UTF-8`` as English: China's names came out in Chinese there."""
    table = holidays.country_holidays(country, years=[])
    languages = getattr(table, "supported_languages", ())
    english = (lang for lang in ("en_US", "en_GB", "en") if lang in languages)
    return next(english, getattr(table, "default_language", None))
