"""The budgets of one render: the limits on what a template may build and do, the
per-render counters that enforce them, and what may become text at all."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import date
from decimal import Decimal
from typing import Any

from jinja2 import (
    Undefined,
    pass_context,
)
from jinja2.exceptions import (
    SecurityError,
    TemplateAssertionError,
)
from jinja2.runtime import Context

from ..money import Money
from ._record import _kind

_MAX_REPEAT = 100_000  # longest string or list a template may build with ``*``
_MAX_EXPONENT = 100
_MAX_POWER_BITS = 10_000


# -- what may become text ------------------------------------------------------------------------

_SCALARS = (str, int, float, Decimal, date, Money, Undefined)  # bool is an int, datetime a date
_SIZED = (str, bytes, list, tuple, dict)


class _WholeRecord(ValueError):
    """Printing a whole record, a list of records or an object: a dump, never a field."""


def _printable(value: Any, as_repr: bool = False, depth: int = 0) -> int:
    """About the length of ``str(value)`` (``repr`` when ``as_repr``, as inside a list), after
    refusing ``value`` unless it is text a template may print: a field (text, number, date),
    money, or a list of those. Every route to text (``{{ }}``, ``%``, ``format``, ``~``,
    ``|string``, ``|join``...) asks this, so none of them prints a whole record; a list
    costs a step an item."""
    if value is None:
        return 4
    if isinstance(value, str):
        return 4 * len(value) + 2 if as_repr else len(value)
    if isinstance(value, _SCALARS):
        if as_repr and isinstance(value, Money):
            raise _WholeRecord("prints the repr of a money value: print it with {{ }} or |money")
        if isinstance(value, int):
            return value.bit_length() // 3 + 2
        if isinstance(value, Decimal) and value.is_finite():
            exponent = value.as_tuple().exponent
            return (
                len(value.as_tuple().digits) + abs(exponent if isinstance(exponent, int) else 0) + 3
            )
        return 64
    if isinstance(value, bytes):
        return 4 * len(value) + 3
    if isinstance(value, Mapping):
        raise _WholeRecord(f"prints the whole {_kind(value)}: print one of its fields")
    if isinstance(value, list | tuple):
        _steps(len(value))
        if any(isinstance(v, Mapping) for v in value):
            raise _WholeRecord("prints a whole list of records: loop over it with {% for %}")
        if depth >= 3:
            raise _WholeRecord("prints lists nested more than 3 deep")
        total = 2
        for v in value:
            total += _printable(v, True, depth + 1) + 2  # a list prints its items' reprs
            if total > MAX_TEXT:
                raise _Exceeded(f"a list printed as text would be over {MAX_TEXT:,} characters")
        return total
    if isinstance(value, Iterator):
        raise _WholeRecord(f"prints a {type(value).__name__}: end it with |list or |join")
    raise _WholeRecord(f"prints a {type(value).__name__} object: print one of its fields")


# -- limits ----------------------------------------------------------------------------------------

MAX_TEXT = 1_000_000
"""The longest string a template may build (a width, a padding, a join...), in characters."""
MAX_OUTPUT = 1_000_000
"""The longest message a render may produce: all its blocks together, in characters."""
MAX_STEPS = 500_000
"""Steps one render may take: a loop iteration or a filter is one, a call twenty, and the
items a filter works on one by one in Python (``sort``, ``map``, ``pprint``...) a few each."""
MAX_CHARS = 10_000_000
"""Characters one render may build, copy or compare in all."""
MAX_DEPTH = 40
"""Calls (macros, blocks, recursive loops) nested in one another."""
MAX_RANGE = 100_000
"""The most numbers ``range`` gives."""
MAX_LIPSUM_WORDS = 10_000
"""The most words ``lipsum`` may write (paragraphs times the most words in one)."""
MAX_SOURCE = 1_000_000
"""The largest template file, in characters."""
_CALL_STEPS = 20  # a macro call takes as long as twenty loop iterations


class _Exceeded(SecurityError):
    """A render that went past one of the limits; the sandbox refused it."""


class _StaticLimit(TemplateAssertionError):
    """A template whose source breaks a limit before it runs (``center(1000000000)``)."""


class _Budget:
    """What one render has used so far."""

    __slots__ = ("chars", "depth", "output", "steps")

    def __init__(self) -> None:
        self.steps = self.chars = self.depth = self.output = 0


#: the budget of the render under way in this thread (None when compiling)
_BUDGET: ContextVar[_Budget | None] = ContextVar("arflow_template_budget", default=None)


def _steps(n: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.steps += n
        if budget.steps > MAX_STEPS:
            raise _Exceeded(
                f"more than {MAX_STEPS:,} loop iterations, filters and calls in one message"
            )


def _chars(n: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.chars += n
        if budget.chars > MAX_CHARS:
            raise _Exceeded(
                f"more than {MAX_CHARS:,} characters built, copied or compared in one message"
            )


def _text(n: int, what: str) -> None:
    """Refuse, before it is built, a string of ``n`` characters past :data:`MAX_TEXT`."""
    if n > MAX_TEXT:
        raise _Exceeded(f"{what} would be {n:,} characters long, over the limit of {MAX_TEXT:,}")
    _chars(n)


def _shown(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 64:
        return f"a number of {value.bit_length()} bits"
    if isinstance(value, int | float | Decimal):
        try:
            return f"{value:,}"
        except (ValueError, ArithmeticError):
            return str(value)
    return repr(value)


def _width(value: Any, what: str, limit: int = MAX_TEXT) -> int:
    """A width, length or count argument, refused past ``limit``; 0 if it is not a number
    (the call then fails on its own)."""
    if isinstance(value, int):
        if abs(value) > limit:
            raise _Exceeded(f"{what} {_shown(value)} is over the limit of {limit:,}")
        return int(value)
    if isinstance(value, float | Decimal) and not abs(float(value)) <= limit:  # NaN too
        raise _Exceeded(f"{what} {_shown(value)} is over the limit of {limit:,}")
    return 0


def _digits(text: str) -> int:
    """A width written in a format string (a hundred digits are over any limit anyway)."""
    return int(text) if len(text) <= 100 else 10**100


def _counted(iterable: Iterable[Any], cost: int = 1) -> Iterator[Any]:
    for item in iterable:
        _steps(cost)
        yield item


@pass_context
def _loop_filter(_ctx: Context, iterable: Any) -> Iterator[Any]:
    """What every ``{% for %}`` iterates: its iterable, one step an item (see ``_CodeGenerator``)."""
    return _counted(iterable)


_LOOP_FILTER = "arflow loop"  # not a name a template can write
