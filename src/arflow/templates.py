"""Message templates: Jinja2 in a sandbox, one file per template and locale.

A pack's ``templates/`` folder holds ``NAME.LOCALE.j2`` files (``formal_notice.zh_CN.j2``).
Each has a ``{% block body %}``, usually a ``{% block subject %}`` (a short message such as
an SMS has none) and optionally a ``{% block html %}``. Rendering gives a :class:`Rendered`
with the subject, the plain text and the HTML part.

Why it is built this way:

* Templates are written by rule authors and read customer data, so neither may reach
  Python: the environment is Jinja2's ``ImmutableSandboxedEnvironment`` (no ``_private``
  attributes, no mutating lists or dicts), pydantic objects expose their fields only, and
  data is never evaluated as a template: a customer named ``{{ 7*7 }}`` is printed as such.
* A record printed whole would put a dump (the salesperson's address, reprs) in front of a
  customer, so every route from a record to text refuses it, not only ``{{ record }}``:
  ``%``, ``|format``, ``str.format``, ``~``, ``|string``, ``|join``, ``|pprint``,
  ``|tojson``, the text filters, and listing a record's fields (``items``, ``values``).
* A template must not take the process down: one render may build strings of at most
  :data:`MAX_TEXT` characters, a message of :data:`MAX_OUTPUT`, and run :data:`MAX_STEPS`
  loop iterations, filters and calls nested :data:`MAX_DEPTH` deep. A width, count or
  repetition is checked before the string is built; a limit the source shows
  (``center(10**9)``) fails when the template is compiled, so lint finds it.
* A missing variable must be an error, not a blank in a customer's inbox: undefined names
  raise (``StrictUndefined``), and so does printing ``None``. ``arflow lint`` renders every
  template against a complete sample built by the same :func:`build_context` the real
  messages use (:func:`check`), so a typo is found before anything is sent.
* The text part is rendered without escaping (plain-text mail, SMS, tasks); the HTML part is
  rendered from a second compilation with autoescape on, so the same ``{{ customer.name }}``
  is literal in one and escaped in the other.
* Money, dates and percentages print in the reader's locale through Babel, also when a
  template just writes ``{{ invoice.balance }}``.
"""

from __future__ import annotations

import functools
import html as _html
import math
import operator
import re
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import lru_cache, update_wrapper
from pathlib import Path
from string import Formatter
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.lists import format_list
from babel.numbers import (
    format_currency,
    format_percent,
    get_currency_precision,
    parse_pattern,
)
from jinja2 import (
    FunctionLoader,
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    Undefined,
    pass_context,
    pass_eval_context,
)
from jinja2 import nodes as jinja_nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import (
    FilterArgumentError,
    SecurityError,
    TemplateAssertionError,
    TemplateNotFound,
)
from jinja2.filters import make_attrgetter, sync_do_join
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import generate_lorem_ipsum
from markupsafe import EscapeFormatter, Markup, soft_str
from pydantic import BaseModel

from .domain import (
    Contact,
    Contract,
    CreditProfile,
    Customer,
    DueRule,
    Milestone,
    Order,
    PaymentNode,
    Receivable,
)
from .errors import TemplateError as TemplateError
from .errors import TemplateLimitError as TemplateLimitError
from .money import Money

__all__ = [
    "Rendered",
    "TemplateError",
    "TemplateLimitError",
    "TemplateSet",
    "build_context",
    "check",
    "normalize_locale",
    "sample_context",
]

FALLBACK_LOCALE = "en"
_SUFFIX = ".j2"
_MAX_REPEAT = 100_000  # longest string or list a template may build with ``*``
_MAX_EXPONENT = 100
_MAX_POWER_BITS = 10_000


@dataclass(frozen=True)
class Rendered:
    """One rendered message. ``subject`` and ``html`` are None for a body-only template
    (an SMS); ``locale`` is the locale of the template file that was used."""

    subject: str | None
    text: str
    html: str | None
    locale: str


# -- locales -----------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def normalize_locale(locale: str) -> str:
    """``zh-cn`` -> ``zh_CN``, ``zh-hans-cn`` -> ``zh_Hans_CN``: contacts' locales come from
    many systems, the file names use one spelling."""
    parts = [p for p in re.split(r"[-_.@\s]+", locale.strip()) if p]
    if not parts:
        return ""
    out = [parts[0].lower()]
    for p in parts[1:]:
        if len(p) == 4 and p.isalpha():
            out.append(p.title())
        elif len(p) in (2, 3):
            out.append(p.upper())
        else:
            out.append(p)
    return "_".join(out)


def _language(locale: str) -> str:
    return locale.split("_", 1)[0]


@lru_cache(maxsize=256)
def _babel_locale(locale: str) -> Locale | None:
    try:
        return Locale.parse(locale)
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def _format_locale(requested: str, template_locale: str) -> Locale:
    """Numbers and dates follow the reader's own locale when the text is in their
    language (an ``en_GB`` reader of the ``en`` text gets British dates), else the text's
    (a French reader of the English fallback gets English numbers, not mixed ones)."""
    if _language(requested) == _language(template_locale):
        got = _babel_locale(requested)
        if got is not None:
            return got
    return _babel_locale(template_locale) or Locale.parse(FALLBACK_LOCALE)


# -- formatting: filters and what ``{{ value }}`` prints -------------------------------------------


def _locale_of(ctx: Context) -> Locale:
    value = ctx.get("locale")
    got = _babel_locale(value) if isinstance(value, str) else None
    return got or Locale.parse(FALLBACK_LOCALE)


class _MoneyLayout:
    """Babel's ``format_currency`` for one currency and locale, at a fraction of its cost
    (it takes about 40 us an amount, and a day's notices print tens of thousands).

    What Babel puts around the number (symbol, spacing, sign, bidi marks) is read off
    Babel's own output for probe amounts; the number itself is grouped here with the
    locale's symbols and the pattern's grouping. The layout is used only if it gives,
    for every probe, exactly what Babel gives; otherwise (an unusual pattern, minimum
    grouping digits...) every amount goes to Babel. ``tests/test_templates.py`` compares
    the two on generated amounts."""

    _PROBES = ("0", "1", "12", "123", "1234", "12345", "123456", "1234567", "1234567890")

    def __init__(self, currency: str, loc: Locale) -> None:
        self.currency, self.loc = currency, loc
        pattern = parse_pattern(loc.currency_formats["standard"])
        symbols = loc.number_symbols.get("latn", {})
        self.group: str = symbols.get("group", ",")
        self.decimal: str = symbols.get("decimal", ".")
        self.primary, self.secondary = pattern.grouping
        self.digits = get_currency_precision(currency)
        self.quantum = Decimal(1).scaleb(-self.digits)
        self.ok = True
        self.around: dict[bool, tuple[str, str]] = {}
        try:
            number = self._number(Decimal("1234567.9"))
            for negative in (False, True):
                probe = self._babel(Decimal("-1234567.9" if negative else "1234567.9"))
                head, found, tail = probe.partition(number)
                if not found or number in tail:
                    raise ValueError(probe)
                self.around[negative] = (head, tail)
            for text in self._PROBES:
                for sign in ("", "-"):
                    for frac in ("", ".5", ".25", ".125"):
                        value = Decimal(sign + text + frac)
                        if self.format(value) != self._babel(value):
                            raise ValueError(text)
        except (ValueError, KeyError, TypeError):
            self.ok = False

    def _babel(self, value: Decimal) -> str:
        return str(format_currency(value, self.currency, locale=self.loc))

    def _number(self, value: Decimal) -> str:
        """|value| at the currency's precision, grouped, with the locale's symbols."""
        q = abs(value).quantize(self.quantum, rounding=ROUND_HALF_EVEN)
        whole, _, frac = f"{q:f}".partition(".")
        if len(whole) > self.primary:
            head, groups = whole[: -self.primary], [whole[-self.primary :]]
            while len(head) > self.secondary:
                groups.insert(0, head[-self.secondary :])
                head = head[: -self.secondary]
            whole = self.group.join([head, *groups])
        return f"{whole}{self.decimal}{frac}" if frac else whole

    def format(self, value: Decimal) -> str:
        if not self.ok or not value.is_finite():
            return self._babel(value)
        head, tail = self.around[value.is_signed()]  # as Babel: -0 prints a minus
        try:
            number = self._number(value)
        except ArithmeticError:  # past the decimal context's precision: Babel decides
            return self._babel(value)
        return f"{head}{number}{tail}"


@lru_cache(maxsize=1024)
def _money_layout(currency: str, loc: Locale) -> _MoneyLayout:
    return _MoneyLayout(currency, loc)


def _currency_text(amount: Decimal, currency: str, loc: Locale) -> str:
    """``format_currency(amount, currency, locale=loc)``, quickly (see ``_MoneyLayout``)."""
    return _money_layout(currency, loc).format(amount)


@lru_cache(maxsize=65_536)
def _date_text(d: date, format: str, loc: Locale) -> str:
    return str(format_date(d, format, locale=loc))


def _format_money(value: Any, loc: Locale, currency: str | None = None) -> str:
    if isinstance(value, Money):
        return _currency_text(value.amount, value.currency, loc)
    if isinstance(value, list | tuple) and value and all(isinstance(v, Money) for v in value):
        return format_list([_format_money(v, loc) for v in value], locale=loc)
    if currency is not None and isinstance(value, int | Decimal | float | str):
        return _currency_text(Decimal(str(value)), currency, loc)
    raise TypeError(f"money needs a Money (or a number and a currency), not {_kind(value)}")


@pass_context
def _money_filter(ctx: Context, value: Any, currency: str | None = None) -> str:
    """``{{ x|money }}``; ``{{ 12.5|money('USD') }}`` for a bare number."""
    return _format_money(value, _locale_of(ctx), currency)


@pass_context
def _date_filter(ctx: Context, value: Any, format: str = "medium") -> str:
    """``{{ d|date }}``, ``{{ d|date('long') }}`` or a Babel pattern."""
    if isinstance(value, datetime):
        return format_datetime(value, format, locale=_locale_of(ctx))
    if isinstance(value, date):
        return _date_text(value, format, _locale_of(ctx))
    raise TypeError(f"date needs a date, not {_kind(value)}")


@pass_context
def _percent_filter(ctx: Context, value: Any) -> str:
    """``{{ 92.5|percent }}`` is ``92.5%``: the value is in percent, like the book's
    percentages (prepayment, payment nodes) and ``exposure_percent``."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise TypeError(f"percent needs a number, not {_kind(value)}")
    number = Decimal(str(value)) / 100
    return format_percent(number, locale=_locale_of(ctx), decimal_quantization=False)


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


def _kind(value: Any) -> str:
    if isinstance(value, _Record):
        return repr(value._kind)
    return type(value).__name__


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


# -- checks of the source, made when a template is compiled -----------------------------------------

_UNKNOWN: Any = object()
_STATIC_WIDTHS = {
    "center": [(0, "width", "|center width", MAX_TEXT)],
    "indent": [(0, "width", "|indent width", MAX_TEXT)],
    "wordwrap": [(0, "width", "|wordwrap width", MAX_TEXT)],
    "truncate": [
        (0, "length", "|truncate length", MAX_TEXT),
        (3, "leeway", "|truncate leeway", MAX_TEXT),
    ],
    "batch": [(0, "linecount", "|batch size", _MAX_REPEAT)],
    "slice": [(0, "slices", "|slice count", _MAX_REPEAT)],
    "tojson": [(0, "indent", "|tojson indent", 16)],
}


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "**": operator.pow,
}


def _const(node: jinja_nodes.Node) -> Any:
    """The value of a constant number or text in the source (``10**9``), or ``_UNKNOWN``;
    a number too large to work out is ``inf``."""
    if isinstance(node, jinja_nodes.Const):
        return node.value
    if isinstance(node, jinja_nodes.Neg | jinja_nodes.Pos):
        v = _const(node.node)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return -v if isinstance(node, jinja_nodes.Neg) else v
        return _UNKNOWN
    if isinstance(node, jinja_nodes.BinExpr) and node.operator in ("+", "-", "*", "**"):
        a, b = _const(node.left), _const(node.right)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)):
            return _UNKNOWN
        if node.operator == "**":
            if abs(b) > _MAX_EXPONENT or (
                isinstance(a, int) and isinstance(b, int) and a.bit_length() * b > _MAX_POWER_BITS
            ):
                return math.inf
        elif node.operator == "*" and not (abs(a) < 1e300 and abs(b) < 1e300):
            return math.inf
        try:
            value = _ARITHMETIC[node.operator](a, b)
        except (ArithmeticError, ValueError):  # 1e300 ** 2, 0 ** -1
            return _UNKNOWN
        return value if isinstance(value, int | float) else _UNKNOWN
    return _UNKNOWN


def _static_limits(node: jinja_nodes.Node) -> None:
    """Raise ``_Exceeded`` for a limit the node breaks whatever the data."""
    if isinstance(node, jinja_nodes.Filter):
        for i, key, what, limit in _STATIC_WIDTHS.get(node.name, []):
            arg: jinja_nodes.Node | None = node.args[i] if len(node.args) > i else None
            for kw in node.kwargs:
                if kw.key == key:
                    arg = kw.value
            if arg is not None and (v := _const(arg)) is not _UNKNOWN:
                _width(v, what, limit)
        if node.name == "format" and node.node and isinstance(fmt := _const(node.node), str):
            _static_printf(fmt)
    elif isinstance(node, jinja_nodes.Call):
        args = [_const(a) for a in node.args]
        known = all(a is not _UNKNOWN for a in args) and not node.kwargs
        target = node.node
        if isinstance(target, jinja_nodes.Name) and known:
            try:
                if target.name == "range":
                    _range(*args)
                elif target.name == "lipsum":
                    _lipsum(*args)
            except (TypeError, ValueError):
                pass
        elif isinstance(target, jinja_nodes.Getattr):
            if target.attr in ("center", "ljust", "rjust", "zfill", "expandtabs") and args:
                if args[0] is not _UNKNOWN:
                    _width(args[0], f".{target.attr}() width")
            elif target.attr in ("format", "format_map"):
                fmt = _const(target.node)
                if isinstance(fmt, str):
                    for d in re.findall(
                        r"\d+", "".join(s or "" for _, _, s, _ in _parse_format(fmt))
                    ):
                        _width(_digits(d), "str.format width")
    elif isinstance(node, jinja_nodes.Mod):
        fmt = _const(node.left)
        if isinstance(fmt, str):
            _static_printf(fmt)
    elif isinstance(node, jinja_nodes.Mul):
        for seq, n in ((node.left, node.right), (node.right, node.left)):
            count = _const(n)
            items = seq.items if isinstance(seq, jinja_nodes.List | jinja_nodes.Tuple) else None
            text = _const(seq)
            length = (
                len(items) if items is not None else len(text) if isinstance(text, str) else None
            )
            if length and isinstance(count, int | float) and length * count > _MAX_REPEAT:
                raise _Exceeded(
                    f"repetition of {_shown(length * count)} items, over the limit of {_MAX_REPEAT:,}"
                )
    elif isinstance(node, jinja_nodes.Pow) and _const(node) is math.inf:
        raise _Exceeded(f"power too large (exponents up to {_MAX_EXPONENT})")


def _parse_format(fmt: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(Formatter().parse(fmt))
    except ValueError:
        return []


def _static_printf(fmt: str) -> None:
    for m in _PRINTF.finditer(fmt):
        for part, what in ((m.group(3), "width"), (m.group(4), "precision")):
            if part and part != "*":
                _width(_digits(part), f"%-format {what}")


class _CodeGenerator(CodeGenerator):
    """Jinja's compiler, with three changes: a source breaking a limit fails when it is
    compiled; every ``{% for %}`` counts its iterations; ``~`` and comparisons go through
    the environment, which checks what they build and charges what they read."""

    def visit_Template(self, node: jinja_nodes.Template, frame: Frame | None = None) -> None:
        for found in node.find_all(
            (
                jinja_nodes.Filter,
                jinja_nodes.Call,
                jinja_nodes.Mod,
                jinja_nodes.Mul,
                jinja_nodes.Pow,
            )
        ):
            try:
                _static_limits(found)
            except _Exceeded as exc:
                raise _StaticLimit(str(exc), found.lineno, self.name, self.filename) from None
        for loop in node.find_all(jinja_nodes.For):
            loop.iter = jinja_nodes.Filter(
                loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.iter.lineno
            )
        super().visit_Template(node, frame)

    def visit_Concat(self, node: jinja_nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            escape = "context.eval_ctx.autoescape"
        else:
            escape = repr(bool(frame.eval_ctx.autoescape))
        self.write(f"environment.concat_checked({escape}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_Getitem(self, node: jinja_nodes.Getitem, frame: Frame) -> None:
        if not isinstance(node.arg, jinja_nodes.Slice):
            super().visit_Getitem(node, frame)
            return
        self.write("environment.slice_checked(")
        self.visit(node.node, frame)
        for part in (node.arg.start, node.arg.stop, node.arg.step):
            self.write(", ")
            if part is None:
                self.write("None")
            else:
                self.visit(part, frame)
        self.write(")")

    def visit_Compare(self, node: jinja_nodes.Compare, frame: Frame) -> None:
        self.write("environment.compare_checked(")
        self.visit(node.expr, frame)
        for op in node.ops:
            self.write(f", {op.op!r}, ")
            self.visit(op.expr, frame)
        self.write(")")


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}


# -- the sandbox ---------------------------------------------------------------------------------


class _Record(dict[str, Any]):
    """A context record (customer, contact, invoice...) that knows what it describes, so a
    typo reads "'contact' has no attribute 'nmae'", not "'dict object' has ...".

    A dict subclass, so the immutable sandbox refuses ``update``/``pop`` on it."""

    __slots__ = ("_kind",)

    def __init__(self, kind: str, fields: Mapping[str, Any]) -> None:
        super().__init__(fields)
        self._kind = kind  # private: a template cannot read it


#: a record's methods that list all its fields: a template prints the fields it names
_LISTING = frozenset({"items", "values", "copy"})


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, narrowed further for arflow's data, with limits on what a
    render may build and do (see the ``MAX_*`` constants)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _CodeGenerator

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # A pydantic model also has model_copy, model_rebuild, model_validate...: a template
        # may read its fields and nothing else.
        if isinstance(obj, BaseModel):
            return attr in type(obj).model_fields and super().is_safe_attribute(obj, attr, value)
        if isinstance(obj, _Record) and attr in _LISTING:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse ``'x' * 10**9``, ``10 ** 1000000``, a whole record in ``'%s' % customer``
        and a string or list past the limits built by ``+``."""
        if operator == "**" and isinstance(right, int | Decimal):
            big = abs(Decimal(right)) > _MAX_EXPONENT
            if isinstance(left, int) and isinstance(right, int):
                big = big or abs(left).bit_length() * abs(right) > _MAX_POWER_BITS
            if big:
                raise _Exceeded(f"power too large (exponents up to {_MAX_EXPONENT})")
        elif operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(n, int):
                    if len(seq) * n > _MAX_REPEAT:
                        raise _Exceeded(
                            f"repetition of {_shown(len(seq) * n)} items,"
                            f" over the limit of {_MAX_REPEAT:,}"
                        )
                    _chars(len(seq) * max(0, n))
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > _MAX_POWER_BITS
            ):
                raise _Exceeded(f"product too large (over {_MAX_POWER_BITS:,} bits)")
        elif operator == "%" and isinstance(left, str):
            return _printf(left, right)
        elif operator == "+":
            if isinstance(left, str | bytes) and isinstance(right, str | bytes):
                _text(len(left) + len(right), "+")
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                n = len(left) + len(right)
                if n > _MAX_REPEAT:
                    raise _Exceeded(f"list of {n:,} items, over the limit of {_MAX_REPEAT:,}")
                _chars(n)
        return super().call_binop(context, operator, left, right)

    def concat_checked(self, autoescape: bool, parts: tuple[Any, ...]) -> str:
        """``a ~ b``: each part a field, the result within :data:`MAX_TEXT`."""
        total = 0
        for part in parts:
            total += _printable(part)
        _text(total, "~ concatenation")
        return markup_join(parts) if autoescape else str_join(parts)

    def slice_checked(self, obj: Any, start: Any, stop: Any, step: Any) -> Any:
        """``s[a:b]`` (Jinja slices without ``getitem``), charged what it copies."""
        where = slice(start, stop, step)
        if isinstance(obj, _SIZED):
            _chars(len(range(*where.indices(len(obj)))))
        return obj[where]

    def compare_checked(self, left: Any, *rest: Any) -> bool:
        """A comparison (``==``, ``in``...), charged what it reads."""
        for k in range(0, len(rest), 2):
            op, right = rest[k], rest[k + 1]
            if op in ("in", "notin"):
                if isinstance(right, _SIZED):
                    _chars(len(right))
            elif isinstance(left, _SIZED) and isinstance(right, _SIZED):
                _chars(min(len(left), len(right)))
            if not _COMPARE[op](left, right):
                return False
            left = right
        return True

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Every call is twenty steps and one level deeper; a string method is checked for
        what it would build, a recursive loop's items are counted."""
        _steps(_CALL_STEPS + len(args) + len(kwargs))  # f(*range(100000)) copies them
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes) and isinstance(
            __obj, types.MethodType | types.BuiltinMethodType
        ):
            args = _string_method(owner, __obj.__name__, args)
        elif isinstance(__obj, LoopContext) and args:
            args = (_counted(args[0]), *args[1:])
        budget = _BUDGET.get()
        if budget is not None:
            if budget.depth >= MAX_DEPTH:
                raise _Exceeded(
                    f"calls nested more than {MAX_DEPTH} deep (a macro or loop calling itself?)"
                )
            budget.depth += 1
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            if budget is not None:
                budget.depth -= 1
        if isinstance(result, str | bytes):
            _text(len(result), f"{getattr(__obj, '__name__', 'a call')}()")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``format_map`` through :class:`_Formatter`."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        f_self = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type = type(f_self)
        is_map = value.__name__ == "format_map"
        formatter = (
            _EscapeFormatter(self, escape=f_self.escape)
            if isinstance(f_self, Markup)
            else _Formatter(self)
        )

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs, args = args[0], ()
            return str_type(formatter.vformat(f_self, args, kwargs))

        return update_wrapper(wrapper, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _refuse_listing(obj, attribute)
        value = super().getattr(obj, attribute)
        if (
            isinstance(value, Undefined)
            and isinstance(obj, _Record)
            and _missing(value)
            and not hasattr(obj, attribute)
        ):
            return self.undefined(
                hint=f"{obj._kind!r} has no attribute {attribute!r}", obj=obj, name=attribute
            )
        return value

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str):
            _refuse_listing(obj, argument)
        value = super().getitem(obj, argument)
        if isinstance(argument, slice) and isinstance(value, _SIZED):
            _chars(len(value))
        if (
            isinstance(value, Undefined)
            and isinstance(obj, _Record)
            and _missing(value)
            and isinstance(argument, str)
            and not hasattr(obj, argument)
        ):
            return self.undefined(
                hint=f"{obj._kind!r} has no attribute {argument!r}", obj=obj, name=argument
            )
        return value


def _refuse_listing(obj: Any, name: str) -> None:
    if isinstance(obj, _Record) and name in _LISTING and name not in obj:
        raise _WholeRecord(f"lists every field of {obj._kind!r}: print the fields you mean")


def _missing(value: Any) -> bool:
    # An unsafe attribute is also Undefined (raising SecurityError): keep that one as is.
    unsafe = getattr(value, "_undefined_exception", None) is SecurityError
    return isinstance(value, Undefined) and not unsafe


# -- the template set ------------------------------------------------------------------------------


class TemplateSet:
    """The templates of one folder, compiled on first use and cached."""

    def __init__(self, folder: Path, files: Mapping[tuple[str, str], Path]) -> None:
        self.folder = folder
        self._files = dict(files)
        # Jinja names: the canonical NAME.LOCALE.j2 and the file's own name (for includes).
        self._by_jinja_name: dict[str, Path] = {}
        for (name, locale), path in sorted(self._files.items()):
            self._by_jinja_name.setdefault(_jinja_name(name, locale), path)
            self._by_jinja_name.setdefault(path.name, path)
        self._text_env = self._environment(autoescape=False)
        self._html_env = self._environment(autoescape=True)
        #: ``pick`` by (name, locale) and compiled templates by (autoescape, name, locale):
        #: a run renders thousands of messages from a handful of templates
        self._picked: dict[tuple[str, str], str] = {}
        self._compiled: dict[tuple[bool, str, str], Template] = {}
        #: the globals of each compiled template as one dict (they are a chain of maps)
        self._globals: dict[Template, dict[str, Any]] = {}

    @classmethod
    def load(cls, folder: str | Path) -> TemplateSet:
        """Every ``NAME.LOCALE.j2`` in ``folder`` (a pack's ``templates/``); sources are
        read when first rendered. Files without a locale in their name are not templates."""
        root = Path(folder)
        files: dict[tuple[str, str], Path] = {}
        if root.is_dir():
            for p in sorted(root.iterdir()):
                if not p.is_file() or not p.name.endswith(_SUFFIX):
                    continue
                name, sep, locale = p.name[: -len(_SUFFIX)].partition(".")
                if not name or not sep or not locale:
                    continue
                files.setdefault((name, normalize_locale(locale)), p)
        return cls(root, files)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _locale in self._files)

    def locales(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(loc for n, loc in self._files if n == name))

    def pick(self, name: str, locale: str) -> str:
        """The template locale used for a reader of ``locale``: the exact one, else the
        language (``zh``), else another locale of that language (``zh_CN`` for ``zh_TW``),
        else ``en`` (or another English), else the first available."""
        have = self.locales(name)
        if not have:
            raise TemplateError(name, None, f"not found in {self.folder}")
        wanted = normalize_locale(locale) or FALLBACK_LOCALE
        if wanted in have:
            return wanted
        for lang in (_language(wanted), FALLBACK_LOCALE):
            if lang in have:
                return lang
            same = [loc for loc in have if _language(loc) == lang]
            if same:
                return same[0]
        return have[0]

    def render(self, name: str, locale: str | None, context: Mapping[str, Any]) -> Rendered:
        """Render ``name`` for a reader of ``locale`` (None: the context's contact's
        locale, else ``en``). Raises :class:`TemplateError` on any problem."""
        if locale is None:
            contact = context.get("contact")
            got = contact.get("locale") if isinstance(contact, Mapping) else None
            locale = got if isinstance(got, str) and got else FALLBACK_LOCALE
        wanted = normalize_locale(locale) or FALLBACK_LOCALE
        chosen = self._picked.get((name, wanted))
        if chosen is None:
            chosen = self._picked[(name, wanted)] = self.pick(name, wanted)
        return self._render(name, chosen, _format_locale(wanted, chosen), context)

    # -- internals ---------------------------------------------------------------------------------
    def _environment(self, *, autoescape: bool) -> _Sandbox:
        env = _Sandbox(
            loader=FunctionLoader(self._source),
            undefined=StrictUndefined,
            autoescape=autoescape,
            finalize=_finalize,
            auto_reload=False,
        )
        for name, func in list(env.filters.items()):
            env.filters[name] = _guarded(name, func)
        env.filters["format"] = _format_filter
        env.filters["join"] = _join_filter
        env.filters["money"] = _money_filter
        env.filters["date"] = _date_filter
        env.filters["percent"] = _percent_filter
        env.filters[_LOOP_FILTER] = _loop_filter
        env.globals.update(range=_range, lipsum=_lipsum, dict=_dict)
        return env

    def _source(self, jinja_name: str) -> tuple[str, str, Callable[[], bool]] | None:
        """Only the folder's own templates: ``{% include '/etc/passwd' %}`` finds nothing."""
        path = self._by_jinja_name.get(jinja_name)
        if path is None:
            return None
        text = path.read_text(encoding="utf-8-sig")
        if len(text) > MAX_SOURCE:
            raise _Exceeded(
                f"{path.name} is {len(text):,} characters long, over the limit of {MAX_SOURCE:,}"
            )
        return text, str(path), lambda: True

    def _template(self, env: _Sandbox, name: str, locale: str) -> Template:
        key = (env.autoescape is True, name, locale)
        found = self._compiled.get(key)
        if found is not None:
            return found
        try:
            found = self._compiled[key] = env.get_template(_jinja_name(name, locale))
            return found
        except _StaticLimit as exc:
            raise TemplateLimitError(
                name, locale, exc.message or "", exc.lineno, self._other(exc.filename, name, locale)
            ) from exc
        except _Exceeded as exc:
            raise TemplateLimitError(name, locale, str(exc)) from exc
        except RecursionError as exc:
            raise TemplateLimitError(name, locale, "nested too deeply to compile") from exc
        except TemplateSyntaxError as exc:
            raise TemplateError(
                name,
                locale,
                f"syntax error: {exc.message}",
                exc.lineno,
                self._other(exc.filename, name, locale),
            ) from exc
        except TemplateNotFound as exc:
            raise TemplateError(name, locale, f"not found: {exc.name}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(name, locale, f"cannot read: {type(exc).__name__}") from exc

    def _other(self, filename: str | None, name: str, locale: str) -> str | None:
        """The file's name when a problem is in an included file, else None."""
        own = self._files.get((name, locale))
        if filename is None or own is None or filename == str(own):
            return None
        return Path(filename).name

    def _blocks(
        self,
        env: _Sandbox,
        tmpl: Template,
        wanted: Sequence[str],
        variables: dict[str, Any],
        name: str,
        locale: str,
    ) -> dict[str, str]:
        """The output of the ``wanted`` blocks. The whole template runs once, so top-level
        ``{% import %}`` and ``{% set %}`` work; what it prints outside blocks is dropped."""
        # Template.new_context, without building a dict of the template's globals (a chain
        # of the environment's and the template's) twice per message
        flat = self._globals.get(tmpl)
        if flat is None:
            flat = self._globals[tmpl] = dict(tmpl.globals)
        ctx = env.context_class(env, {**flat, **variables}, tmpl.name, tmpl.blocks, flat)
        got: dict[str, str] = {}

        budget = _BUDGET.get()

        def capture(block: str, render: Callable[[Context], Iterator[str]]) -> Any:
            def wrapper(c: Context) -> Iterator[str]:
                parts = []
                for part in render(c):  # stopped as soon as the message is too long
                    if budget is not None:
                        budget.output += len(part)
                        if budget.output > MAX_OUTPUT:
                            raise _Exceeded(f"the message is longer than {MAX_OUTPUT:,} characters")
                    parts.append(part)
                out = "".join(parts)
                got.setdefault(block, out)
                yield out

            return wrapper

        for block in wanted:
            ctx.blocks[block][0] = capture(block, ctx.blocks[block][0])
        try:
            for _ in tmpl.root_render_func(ctx):
                pass
        except Exception:
            try:
                env.handle_exception()  # re-raises with template file names and lines
            except Exception as exc:
                raise self._error(exc, name, locale) from exc
        return got

    def _error(self, exc: BaseException, name: str, locale: str) -> TemplateError:
        """The template line from the (rewritten) traceback and Jinja's message: a message
        naming a variable, never the values in the context."""
        files = {str(p) for p in self._files.values()}
        line: int | None = None
        filename: str | None = None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename in files:
                filename, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
            tb = tb.tb_next
        limit = isinstance(exc, _Exceeded | _StaticLimit | RecursionError)
        if isinstance(exc, _StaticLimit):
            filename, line = exc.filename, exc.lineno
            message = exc.message or ""
        elif isinstance(exc, RecursionError):
            message = "calls or includes nested too deeply (a template including itself?)"
        elif isinstance(exc, TemplateSyntaxError):
            filename, line = exc.filename, exc.lineno
            message = f"syntax error: {exc.message}"
        else:
            message = str(exc)
            if not isinstance(exc, ValueError) and type(exc).__module__ == "builtins":
                message = f"{type(exc).__name__}: {message}"
        if len(message) > 300:
            message = message[:297] + "..."
        kind = TemplateLimitError if limit else TemplateError
        return kind(name, locale, message, line, self._other(filename, name, locale))

    def _render(self, name: str, locale: str, fmt: Locale, context: Mapping[str, Any]) -> Rendered:
        token = _BUDGET.set(_Budget())
        try:
            return self._render_within(name, locale, fmt, context)
        finally:
            _BUDGET.reset(token)

    def _render_within(
        self, name: str, locale: str, fmt: Locale, context: Mapping[str, Any]
    ) -> Rendered:
        variables = dict(context)
        variables["locale"] = str(fmt)
        text_t = self._template(self._text_env, name, locale)
        if "body" not in text_t.blocks:
            raise TemplateError(name, locale, "has no {% block body %}")
        wanted = [b for b in ("subject", "body") if b in text_t.blocks]
        parts = self._blocks(self._text_env, text_t, wanted, variables, name, locale)
        subject = None
        if "subject" in parts:
            subject = " ".join(parts["subject"].split())  # one line: no header injection
        text = parts["body"].strip()
        html = None
        if "html" in text_t.blocks:
            html_t = self._template(self._html_env, name, locale)
            inner = self._blocks(self._html_env, html_t, ["html"], variables, name, locale)
            html = _document(inner["html"].strip(), subject, locale)
        elif subject is not None:
            html = _document(_paragraphs(text), subject, locale)
        return Rendered(subject=subject, text=text, html=html, locale=locale)


def _jinja_name(name: str, locale: str) -> str:
    return f"{name}.{locale}{_SUFFIX}"


def _paragraphs(text: str) -> str:
    """Plain text as HTML: blank lines make paragraphs, line breaks ``<br>``, all escaped."""
    paras = [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    return "\n".join(
        "<p>" + "<br>\n".join(_html.escape(ln) for ln in p.split("\n")) + "</p>" for p in paras
    )


def _document(body: str, subject: str | None, locale: str) -> str:
    title = f"<title>{_html.escape(subject)}</title>" if subject else ""
    lang = _html.escape(locale.replace("_", "-"))
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head><meta charset="utf-8">{title}</head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )


# -- the context ---------------------------------------------------------------------------------------


def build_context(
    customer: Customer,
    receivables: Iterable[Receivable] = (),
    *,
    as_of: date,
    company_name: str,
    contact: Contact | None = None,
    contract: Contract | None = None,
    node: PaymentNode | None = None,
    milestone: Milestone | None = None,
    amount: Money | None = None,
    order: Order | None = None,
    exposure_ratio: Decimal | None = None,
) -> dict[str, Any]:
    """The variables a template sees, as plain records (never the domain objects, whose
    methods a template has no business calling).

    ``customer``, ``invoices``, ``total``, ``totals``, ``company`` and ``as_of`` are always
    there; ``contact`` when the customer has one (or one is given); ``contract``, ``node``,
    ``milestone``, ``amount``, ``order`` and ``exposure_percent`` only when given, so a
    template that uses one where it does not belong fails instead of printing a blank.
    """
    invoices = [
        _Record(
            "invoice",
            {
                "number": r.id,
                "issue_date": r.issue_date,
                "due_date": r.due_date,
                "amount": r.amount,
                "balance": r.open_balance,
                "disputed": r.disputed_amount,
                "currency": r.currency,
                "days_past_due": (as_of - r.due_date).days,
            },
        )
        for r in sorted(receivables, key=lambda r: (r.due_date, r.id))
    ]
    sums: dict[str, Money] = {}
    for inv in invoices:
        bal: Money = inv["balance"]
        sums[bal.currency] = sums[bal.currency] + bal if bal.currency in sums else bal
    totals = [sums[c] for c in sorted(sums)]
    credit: CreditProfile = customer.credit
    ctx: dict[str, Any] = {
        "customer": _Record(
            "customer",
            {
                "id": customer.id,
                "name": customer.name,
                "region": customer.region,
                "salesperson": customer.salesperson,
                "sales_manager": customer.sales_manager,
                "grade": credit.grade,
                "credit_limit": credit.credit_limit,
                "payment_terms_days": credit.payment_terms_days,
                "tags": tuple(customer.tags),
            },
        ),
        "invoices": invoices,
        "total": None if not totals else totals[0] if len(totals) == 1 else totals,
        "totals": totals,
        "company": _Record("company", {"name": company_name}),
        "as_of": as_of,
    }
    person = contact or (customer.contacts[0] if customer.contacts else None)
    if person is not None:
        ctx["contact"] = _Record(
            "contact",
            {
                "name": person.name,
                "email": person.email,
                "phone": person.phone,
                "locale": person.locale,
                "timezone": person.timezone,
                "role": person.role,
            },
        )
    if contract is not None:
        ctx["contract"] = _Record(
            "contract",
            {
                "id": contract.id,
                "title": contract.title,
                "signed_on": contract.signed_on,
                "amount": contract.amount,
                "project_id": contract.project_id,
                "salesperson": contract.salesperson,
            },
        )
    if node is not None:
        node_amount = contract.node_amount(node) if contract is not None else node.amount
        ctx["node"] = _Record(
            "node",
            {"id": node.id, "label": node.label, "amount": node_amount, "percent": node.percent},
        )
        if amount is None:
            amount = node_amount
    if milestone is not None:
        ctx["milestone"] = _Record(
            "milestone",
            {
                "id": milestone.id,
                "name": milestone.name,
                "planned_date": milestone.planned_date,
                "actual_date": milestone.actual_date,
                "status": milestone.status,
            },
        )
    if amount is not None:
        ctx["amount"] = amount
    if order is not None:
        ctx["order"] = _Record(
            "order",
            {
                "id": order.id,
                "amount": order.amount,
                "submitted_on": order.submitted_on,
                "order_type": order.order_type,
                "contract_id": order.contract_id,
                "state": order.state.value,
            },
        )
    if exposure_ratio is not None:
        ctx["exposure_percent"] = (Decimal(exposure_ratio) * 100).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP
        )
    return ctx


def sample_context(*, mixed_currencies: bool = False) -> dict[str, Any]:
    """A complete, realistic context for lint and previews, built by :func:`build_context`
    from real domain objects so that lint and sending cannot disagree on the variables."""
    as_of = date(2024, 6, 17)
    cny = "CNY"

    def receivable(number: str, due: date, amount: str, paid: str, cur: str = cny) -> Receivable:
        total, got = Money.of(amount, cur), Money.of(paid, cur)
        zero = Money.zero(cur)
        return Receivable(
            id=number,
            customer_id="C-1001",
            contract_id="CT-2024-007",
            issue_date=due - timedelta(30),
            due_date=due,
            amount=total,
            paid=got,
            credited=zero,
            written_off=zero,
            disputed_amount=zero,
            open_balance=total - got,
            salesperson="li.na@example.com",
        )

    customer = Customer(
        id="C-1001",
        name="Acme Trading (Shanghai) Co., Ltd.",
        region="East",
        salesperson="li.na@example.com",
        sales_manager="zhao.lei@example.com",
        contacts=(
            Contact(
                name="Wang Fang",
                email="wang.fang@acme.example.com",
                phone="+86 138 0000 0000",
                locale="zh_CN",
                timezone="Asia/Shanghai",
                role="accounts payable",
            ),
        ),
        credit=CreditProfile(grade="B", credit_limit=Money.of("200000", cny)),
    )
    receivables = [
        receivable("INV-2024-0107", date(2024, 6, 1), "12500.00", "0"),
        receivable("INV-2024-0131", date(2024, 6, 10), "8000.00", "3000.00"),
    ]
    if mixed_currencies:
        receivables.append(receivable("INV-2024-0140", date(2024, 6, 12), "1800.00", "0", "USD"))
    contract = Contract(
        id="CT-2024-007",
        customer_id="C-1001",
        title="Warehouse automation, phase 1",
        signed_on=date(2024, 1, 15),
        amount=Money.of("480000", cny),
        salesperson="li.na@example.com",
        payment_nodes=(
            PaymentNode(
                id="acceptance",
                label="Site acceptance",
                percent=Decimal(30),
                due=DueRule(days=30),
            ),
        ),
    )
    return build_context(
        customer,
        receivables,
        as_of=as_of,
        company_name="Example Industrial Co., Ltd.",
        contract=contract,
        node=contract.payment_nodes[0],
        milestone=Milestone(
            id="acceptance",
            contract_id="CT-2024-007",
            name="Site acceptance",
            planned_date=date(2024, 6, 10),
            actual_date=date(2024, 6, 14),
            status="done",
        ),
        order=Order(
            id="SO-2024-0310",
            customer_id="C-1001",
            amount=Money.of("65000", cny),
            submitted_on=as_of,
            order_type="standard",
            contract_id="CT-2024-007",
        ),
        exposure_ratio=Decimal("0.925"),
    )


# -- lint -------------------------------------------------------------------------------------------


def check(
    template_set: TemplateSet,
    required_names: Iterable[str],
    *,
    locales: Sequence[str] = ("en", "zh_CN"),
) -> list[str]:
    """Problems with the templates a pack names: each must exist in every one of
    ``locales`` (exactly, not by fallback), parse, and render against the sample context,
    with one currency and with several, in every locale it exists in."""
    out: list[str] = []
    samples = [
        (sample_context(), ""),
        (sample_context(mixed_currencies=True), " (with invoices in several currencies)"),
    ]
    for name in sorted(set(required_names)):
        have = template_set.locales(name)
        if not have:
            out.append(f"template {name}: not found in {template_set.folder}")
            continue
        for loc in locales:
            wanted = normalize_locale(loc)
            if wanted not in have:
                out.append(f"template {name} ({wanted}): missing ({_jinja_name(name, wanted)})")
        for loc in have:
            for ctx, note in samples:
                try:
                    if _extends(template_set, name, loc):
                        raise TemplateError(name, loc, "{% extends %} is not supported")
                    got = template_set._render(name, loc, _format_locale(loc, loc), ctx)
                    if not got.text:
                        raise TemplateError(name, loc, "renders an empty body")
                except TemplateError as exc:
                    out.append(f"{exc}{note}")
                    break  # report the one-currency problem first: it is the one to fix
    return out


def _extends(template_set: TemplateSet, name: str, locale: str) -> bool:
    """Blocks are rendered one by one, so a parent template's blocks would be lost."""
    tmpl = template_set._template(template_set._text_env, name, locale)
    path = template_set._files[(name, locale)]
    tree = template_set._text_env.parse(path.read_text(encoding="utf-8-sig"), tmpl.name)
    return tree.find(jinja_nodes.Extends) is not None
