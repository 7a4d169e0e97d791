"""Encoding the values a condition compares as integers durable compares exactly."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, TypeAlias

from ..expr import Type

__all__ = ["Kind"]

Kind: TypeAlias = Literal["rank", "date", "bool", "list"]
_KIND: dict[Type, Kind] = {
    Type.NUMBER: "rank",
    Type.STRING: "rank",
    Type.DATE: "date",
    Type.BOOL: "bool",
    Type.STRING_LIST: "list",
}
_DATE_LO, _DATE_HI = 0, date.max.toordinal() + 1
_LIST_END = -1  # ends every asserted list: durable's $iall is false on an empty list


@dataclass
class _Operand:
    """A value a condition compares: a fact, or a subexpression computed in Python.

    durable compares integers exactly but strings in an order Python does not share (``"a"``
    sorts after ``"a b"``) and numbers as C doubles, so every value is asserted as an integer:

    * numbers and strings (``rank``): the distinct literals this operand is compared with,
      sorted, give literal *i* the code ``2i + 2``; any other value gets the odd code between
      its neighbours. Comparing codes gives exactly what comparing the values gives, for any
      Decimal, with no scale or range limit;
    * dates: their ordinal, so two date facts compare with each other too;
    * true/false: 1/0.

    A missing value (``None``) is a sentinel below every code in the ``lo`` property and above
    every code in the ``hi`` property, so each arflow test is one durable test: ``x > 5`` reads
    ``lo`` (missing is never greater), ``not x > 5`` reads ``hi`` (missing satisfies it),
    ``x != 5`` and ``x == null`` read ``lo``.
    """

    kind: Kind
    get: Callable[[Mapping[str, Any]], Any]
    literals: set[Any] = field(default_factory=set)
    lo: str = ""
    hi: str = ""
    table: list[Any] = field(default_factory=list)

    def freeze(self) -> None:
        self.table = sorted(self.literals)

    def code(self, v: Any) -> int:
        if self.kind == "date":
            if not isinstance(v, date):
                raise TypeError(f"expected a date, got {v!r}")
            return v.toordinal()
        if self.kind == "bool":
            if v is True:
                return 1
            if v is False:
                return 0
            raise TypeError(f"expected true or false, got {v!r}")
        if isinstance(v, bool) or (
            self.table and isinstance(v, str) != isinstance(self.table[0], str)
        ):
            raise TypeError(f"{v!r} has not the type of the literals it is compared with")
        i = bisect_left(self.table, v)
        return 2 * i + 2 if i < len(self.table) and self.table[i] == v else 2 * i + 1

    @property
    def sentinels(self) -> tuple[int, int]:
        if self.kind == "date":
            return _DATE_LO, _DATE_HI
        if self.kind == "bool":
            return -1, -1
        return -1, 2 * len(self.table) + 2

    def encode(self, facts: Mapping[str, Any], out: dict[str, Any]) -> None:
        v = self.get(facts)
        if self.kind == "list":
            codes = [] if v is None else [self.code(x) for x in v]
            codes.append(_LIST_END)
            out[self.lo] = codes
            return
        if v is None:
            lo, hi = self.sentinels
        else:
            lo = hi = self.code(v)
        if self.lo:
            out[self.lo] = lo
        if self.hi:
            out[self.hi] = hi
