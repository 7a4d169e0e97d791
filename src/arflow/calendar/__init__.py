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

from ..errors import (
    CalendarError,
    MissingAnchor,
    OffsetError,
    ParseError,
    ScheduleError,
    WindowError,
)
from ._business import BusinessCalendar
from ._offsets import Offset, Schedule, Step, due_reach, schedule_reach
from ._parsing import ANCHORS, MAX_SHIFT, UNITS
from ._windows import DAY_NAMES, END_OF_DAY, SendWindow

__all__ = [
    "ANCHORS",
    "DAY_NAMES",
    "END_OF_DAY",
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
