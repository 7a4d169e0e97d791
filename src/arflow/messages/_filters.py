"""The sandbox's filters, formatting and globals, each checked against the render's
budget before it builds anything: ``%``, ``str.format``, ``|join``, string methods,
``range``, ``lipsum`` and what ``{{ value }}`` prints."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel.dates import format_datetime
from jinja2 import (
    pass_context,
    pass_eval_context,
)
from jinja2.exceptions import (
    FilterArgumentError,
)
from jinja2.filters import make_attrgetter, sync_do_join
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedFormatter
from jinja2.utils import generate_lorem_ipsum
from markupsafe import EscapeFormatter, soft_str

from ..money import Money
from ._limits import (
    _MAX_REPEAT,
    _SIZED,
    MAX_LIPSUM_WORDS,
    MAX_RANGE,
    _chars,
    _counted,
    _digits,
    _Exceeded,
    _printable,
    _shown,
    _steps,
    _text,
    _WholeRecord,
    _width,
)
from ._locale import _date_text, _format_money, _locale_of
from ._record import _kind, _Record

# -- %-formatting and str.format ---------------------------------------------------------------------

_PRINTF = re.compile(r"%(?:\(([^)]*)\))?([-#0 +]*)(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.?)", re.S)


def _printf(fmt: str, values: Any) -> Any:
    """``fmt % values``, after refusing a whole record among the values and a width,
    precision or result past :data:`MAX_TEXT`."""
    specs = [m for m in _PRINTF.finditer(fmt) if m.group(5) != "%"]
    _steps(10 * len(specs))  # each is parsed and checked in Python
    named = isinstance(values, Mapping) and any(m.group(1) is not None for m in specs)
    args: list[Any] = [] if named else list(values) if isinstance(values, tuple) else [values]
    total, i = len(fmt), 0
    for m in specs:
        key, _flags, width, prec, conv = m.groups()
        sizes = []
        for part, what in ((width, "width"), (prec, "precision")):
            if part == "*":
                n = args[i] if i < len(args) else 0
                i += 1
            else:
                n = _digits(part) if part else 0
            sizes.append(_width(n, f"%-format {what}"))
        if named:
            value = values.get(key) if key is not None else values
        elif i < len(args):
            value, i = args[i], i + 1
        else:
            continue  # Python says: not enough arguments
        as_repr = conv in ("r", "a")
        total += max(sizes[0], _printable(value, as_repr)) + sizes[1]
    _text(total, "%-formatting")
    return fmt % values


class _Formatter(SandboxedFormatter):
    """``str.format`` in the sandbox, refusing whole records, ``!r`` of money and widths or
    results past :data:`MAX_TEXT`."""

    _total = 0

    def vformat(self, format_string: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
        self._total = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion in ("r", "a"):
            _printable(value, as_repr=True)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        _steps(1)
        size = _printable(value)
        wide = sum(_width(_digits(d), "str.format width") for d in re.findall(r"\d+", format_spec))
        self._total += max(wide, size) + wide
        _text(self._total, "str.format")
        return super().format_field(value, format_spec)


class _EscapeFormatter(_Formatter, EscapeFormatter):
    pass


# -- size checks of filters, methods and globals ------------------------------------------------


def _arg(args: Sequence[Any], kwargs: Mapping[str, Any], i: int, key: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(key, default)


def _check_filter(name: str, value: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Refuse a filter call that would build more than the limits allow, before it runs."""
    text = value if isinstance(value, str) else ""
    if name == "center":
        width = _width(_arg(args, kwargs, 0, "width", 80), "|center width")
        _text(max(len(text), width), "|center")
    elif name == "indent":
        width = _arg(args, kwargs, 0, "width", 4)
        step = len(width) if isinstance(width, str) else _width(width, "|indent width")
        _steps(text.count("\n") + 1)
        _text(len(text) + (text.count("\n") + 1) * step, "|indent")
    elif name == "wordwrap":
        width = max(1, _width(_arg(args, kwargs, 0, "width", 79), "|wordwrap width"))
        wrap = _arg(args, kwargs, 2, "wrapstring", None)
        joint = len(wrap) if isinstance(wrap, str) else 2
        lines = len(text) // width + text.count("\n") + 1
        _steps(lines + len(text.split()))
        _text(len(text) + lines * joint, "|wordwrap")
    elif name == "truncate":
        _width(_arg(args, kwargs, 0, "length", 255), "|truncate length")
        _width(_arg(args, kwargs, 3, "leeway", 0), "|truncate leeway")
    elif name == "batch":
        _chars(_width(_arg(args, kwargs, 0, "linecount", 1), "|batch size", _MAX_REPEAT))
    elif name == "slice":
        _chars(_width(_arg(args, kwargs, 0, "slices", 1), "|slice count", _MAX_REPEAT))
    elif name in ("urlize", "title"):
        _steps((10 if name == "urlize" else 2) * len(text.split()))  # word by word in Python
    elif name == "striptags":
        _striptags_cost(text)
    elif name == "replace":
        old, new = _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", "")
        count = _arg(args, kwargs, 2, "count", None)
        _text(_replaced(text or str(value), old, new, count), "|replace")
    elif name in ("items", "dictsort") and isinstance(value, _Record):
        raise _WholeRecord(f"lists every field of {_kind(value)}: print the fields you mean")
    elif name in ("xmlattr", "urlencode"):
        if isinstance(value, _Record):
            raise _WholeRecord(f"prints the whole {_kind(value)}: print one of its fields")
        for v in value.values() if isinstance(value, Mapping) else [value]:
            _printable(v)
    elif name == "tojson":
        indent = _arg(args, kwargs, 0, "indent", None)
        if isinstance(indent, str):
            indent = len(indent)
        _width(indent, "|tojson indent", 16)
        _text(_data_size(value), "|tojson")
    elif name == "pprint":
        _text(2 * _data_size(value), "|pprint")
    elif name == "string":
        _text(_printable(value), "|string")
    elif name == "sum":
        start = _arg(args, kwargs, 1, "start", 0)
        if not isinstance(start, int | float | Decimal):
            raise _Exceeded("|sum adds numbers, not lists or text (use |join)")


def _data_size(value: Any) -> int:
    """``_printable(value, as_repr=True)``, also for a mapping the template wrote itself
    (``{'a': 1}|tojson``); a record still may not be printed whole."""
    if isinstance(value, Mapping) and not isinstance(value, _Record):
        _steps(len(value))
        return 2 + sum(_printable(k, True) + _printable(v, True) + 4 for k, v in value.items())
    return _printable(value, as_repr=True)


def _striptags_cost(text: str) -> None:
    """``striptags`` copies the rest of the text for each tag it removes (MarkupSafe 3):
    charged a character for each thousand it copies."""
    _chars(text.count("<") * len(text) // 2000)


def _replaced(text: str, old: Any, new: Any, count: Any) -> int:
    """The length of ``text.replace(old, new, count)``, worked out without building it."""
    if not isinstance(old, str) or not isinstance(new, str):
        return len(text)
    n = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    return len(text) + n * max(0, len(new) - len(old))


#: filters that take a string (or print their value): a whole record may not be one
_TEXT_FILTERS = frozenset(
    {
        "capitalize",
        "center",
        "e",
        "escape",
        "forceescape",
        "format",
        "indent",
        "lower",
        "replace",
        "safe",
        "string",
        "striptags",
        "title",
        "trim",
        "truncate",
        "upper",
        "urlize",
        "wordcount",
        "wordwrap",
    }
)
#: filters that work in Python on each item of their value: steps an item
_ITEM_STEPS = {
    "sort": 3,
    "unique": 3,
    "groupby": 3,
    "dictsort": 3,
    "min": 3,
    "max": 3,
    "batch": 4,
    "slice": 4,
    "tojson": 2,
    "pprint": 10,
}
#: filters that give a generator working in Python on each item it yields: a step an item
_LAZY_FILTERS = frozenset({"map", "select", "reject", "selectattr", "rejectattr"})
#: filters that take the same time however long their value is
_CHEAP_FILTERS = frozenset(
    {"length", "count", "first", "last", "default", "d", "attr", "random", "abs", "round"}
)


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter that counts as a step, charges what it reads and builds, and is
    refused before it runs when it would print a record or build past the limits."""
    lead = 0 if getattr(func, "jinja_pass_arg", None) is None else 1  # pass_context & co

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _steps(1)
        value = args[lead] if len(args) > lead else None
        if name not in _CHEAP_FILTERS and isinstance(value, (*_SIZED, range)):
            _chars(len(value))
            _steps(_ITEM_STEPS.get(name, 0) * len(value))
        if name in _TEXT_FILTERS:
            _printable(value)
        _check_filter(name, value, args[lead + 1 :], kwargs)
        result = func(*args, **kwargs)
        if isinstance(result, str):
            _text(len(result), f"|{name}")
        elif name in _LAZY_FILTERS:
            return _counted(result, 5)
        return result

    return guarded


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> Any:
    """``{{ "%s, %s"|format(a, b) }}``: ``%`` with the same checks as the operator."""
    if args and kwargs:
        raise FilterArgumentError("can't handle positional and keyword arguments at the same time")
    _steps(1)
    _printable(value)
    return _printf(soft_str(value), kwargs or args)


@pass_eval_context
def _join_filter(eval_ctx: EvalContext, value: Any, d: str = "", attribute: Any = None) -> Any:
    """``|join`` of fields: an item that is a record (or a list of them) is refused, and so
    is a result past :data:`MAX_TEXT`."""
    _steps(1)
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    items = list(value)
    _chars(len(items))
    total = sum(_printable(item) for item in items)
    _text(total + _printable(d) * max(0, len(items) - 1), "|join")
    return sync_do_join(eval_ctx, items, d)


def _string_method(s: str | bytes, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Refuse a call of a string's method that would build past :data:`MAX_TEXT`; ``join``
    gets its items as a list (they are counted)."""
    _chars(len(s))
    try:
        if name in ("center", "ljust", "rjust", "zfill"):
            _text(max(len(s), _width(args[0] if args else 0, f".{name}() width")), f".{name}()")
        elif name == "expandtabs":
            size = _width(args[0] if args else 8, ".expandtabs() size")
            tabs = s.count("\t") if isinstance(s, str) else s.count(b"\t")
            _text(len(s) + tabs * size, ".expandtabs()")
        elif name == "replace" and isinstance(s, str) and len(args) >= 2:
            _text(_replaced(s, args[0], args[1], args[2] if len(args) > 2 else -1), ".replace()")
        elif name == "join" and args:
            items = list(args[0])
            _chars(len(items))
            total = sum(len(x) for x in items if isinstance(x, str | bytes))
            _text(total + len(s) * max(0, len(items) - 1), ".join()")
            return (items, *args[1:])
        elif name == "striptags" and isinstance(s, str):
            _striptags_cost(s)
        elif name == "translate" and args and isinstance(args[0], Mapping):
            grow = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
            _text(len(s) * max(1, grow), ".translate()")
    except (TypeError, ValueError, IndexError):
        pass  # malformed arguments: the call itself says so
    return args


def _range(*args: Any) -> range:
    """``range``, at most :data:`MAX_RANGE` numbers."""
    rng = range(*args)
    try:
        n = len(rng)
    except OverflowError:
        n = MAX_RANGE + 1
    if n > MAX_RANGE:
        raise _Exceeded(f"range too big: {_shown(n)} numbers, over the limit of {MAX_RANGE:,}")
    return rng


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """``lipsum``, at most :data:`MAX_LIPSUM_WORDS` words."""
    if all(isinstance(x, int | float) for x in (n, min, max)):
        words = n * (min if min > max else max)
        if words > MAX_LIPSUM_WORDS:
            raise _Exceeded(
                f"lipsum of up to {_shown(words)} words, over the limit of {MAX_LIPSUM_WORDS:,}"
            )
    return str(generate_lorem_ipsum(n, html, min, max))


def _dict(*args: Any, **kwargs: Any) -> _Record:
    """``dict(...)`` makes a record like the context's: ``dict(customer)`` cannot list them."""
    return _Record("dict", dict(*args, **kwargs))


@pass_context
def _finalize(ctx: Context, value: Any) -> Any:
    """What ``{{ value }}`` prints: money and dates in the locale; ``None`` or a whole
    record is refused, because either would put a blank or a dump in front of a customer."""
    if isinstance(value, str):
        return value
    if value is None:
        raise ValueError("prints None (a value that is not set): guard it with {% if %}")
    if isinstance(value, Money) or (
        isinstance(value, list | tuple) and value and all(isinstance(v, Money) for v in value)
    ):
        return _format_money(value, _locale_of(ctx))
    if isinstance(value, datetime):
        return format_datetime(value, "medium", locale=_locale_of(ctx))
    if isinstance(value, date):
        return _date_text(value, "medium", _locale_of(ctx))
    size = _printable(value)
    if isinstance(value, list | tuple):
        _text(size, "printing a list")
    return value
