"""The state of one import: the problems found so far, the keys already claimed, the rows
of the events last handed to the ledger, and the cache of dates read.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime

from ..domain import FIRST_DATE, LAST_DATE
from ._schema import KINDS

_DATE = re.compile(r"([0-9]{4})([-/])([0-9]{2})\2([0-9]{2})")

_HORIZON = f"{FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}"

Problem = tuple[str, int, str, str]
Where = tuple[str, int, str, str]  # file, row, kind, format
#: How many recent events' rows are kept, for a ledger that reads ahead of the one it
#: refuses and names it (``exc.event_id``).
_RECENT = 4096


class _Rejected(Exception):
    """Raised inside the event stream so that the ledger's transaction rolls back."""


class _Run:
    """State shared by the event stream and :func:`import_files`: problems so far, the
    keys already seen, and where the event being applied came from."""

    def __init__(self, files: int, actor: str, now: datetime) -> None:
        self.problems: list[Problem] = []
        #: names this import in log records (``extra={"arflow_import": ...}``)
        self.id = f"import/{uuid.uuid4().hex[:12]}"
        self.actor = actor
        self.now = now
        self.files: list[str] = []
        self._nfiles = max(files, 1)
        self._seen: dict[str, int] = {}
        self.counts = dict.fromkeys(KINDS, 0)
        self.where: Where | None = None  # of the event handed to the ledger last
        self.recent: dict[str, Where] = {}  # of the last events handed over, by event id
        self._ring: list[str | None] = [None] * _RECENT  # their ids, oldest one next
        self._ring_at = 0
        self.dates: dict[str, date] = {}
        self._midnights: dict[date, datetime] = {}

    def handed_over(self, event_id: str, where: Where) -> None:
        """Remember where the event handed to the ledger came from (the last ``_RECENT``)."""
        self.where = where
        ring, at = self._ring, self._ring_at
        oldest = ring[at]
        if oldest is not None:
            self.recent.pop(oldest, None)
        ring[at] = event_id
        self._ring_at = (at + 1) % _RECENT
        self.recent[event_id] = where

    def problem(self, file: str, row: int, column: str, reason: str) -> None:
        self.problems.append((file, row, column, reason))

    def claim(self, key: str, file_no: int, row: int) -> tuple[str, int] | None:
        """Record ``key`` as taken at (file, row); if it was taken before, say where."""
        packed = row * self._nfiles + file_no
        first = self._seen.setdefault(key, packed)
        if first == packed:
            return None
        first_row, first_file = divmod(first, self._nfiles)
        return self.files[first_file], first_row

    def parse_date(self, text: str) -> date:
        """``YYYY-MM-DD`` (or ``YYYY/MM/DD``) to a date; raises ``ValueError`` with why."""
        found = self.dates.get(text)
        if found is not None:
            return found
        m = _DATE.fullmatch(text)
        if m is None:
            raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
        try:
            d = date(int(m[1]), int(m[3]), int(m[4]))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a date: {exc}") from None
        if not FIRST_DATE <= d <= LAST_DATE:
            raise ValueError(f"{text!r} is outside the dates arflow accepts ({_HORIZON})")
        if len(self.dates) < 100_000:
            self.dates[text] = d
        return d

    def midnight(self, d: date) -> datetime:
        """00:00 UTC of ``d``: the moment an imported row happened unless it says otherwise."""
        at = self._midnights.get(d)
        if at is None:
            at = self._midnights[d] = datetime(d.year, d.month, d.day, tzinfo=UTC)
        return at
