"""The grammar's words and the cursor that reads them: anchors, units, limits, and a position
in the text being parsed whose failures point at a column."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NoReturn

from ..errors import ParseError

__all__ = ["ANCHORS", "MAX_SHIFT", "UNITS"]

ANCHORS: tuple[str, ...] = ("due", "issue", "promise", "dispute")
"""The dates an offset can hang off: due date, issue date, promised date, dispute opened."""

UNITS: tuple[str, ...] = ("d", "bd", "w", "m")
"""Calendar days, business days, weeks, months (end-of-month clamped)."""

MAX_SHIFT: Mapping[str, int] = {"d": 36_600, "w": 5_220, "m": 1_200, "bd": 25_000}
"""The largest shift per unit, about a hundred years: an offset or a recurrence step beyond
it would leave the calendar (years 1 to 9999) from any date a book holds, so it is refused
when parsed (``due+999999d``) instead of overflowing when a run resolves it."""

_EXPECT_UNIT = "a unit d, bd, w or m"
_EXPECT_ANCHOR = "an anchor due, issue, promise or dispute"

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
