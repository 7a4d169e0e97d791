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

import operator
import types
from collections.abc import Callable
from decimal import Decimal
from functools import update_wrapper
from typing import Any

from jinja2 import (
    BaseLoader,
    StrictUndefined,
    Undefined,
)
from jinja2.exceptions import (
    SecurityError,
)
from jinja2.runtime import Context, LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup
from pydantic import BaseModel

from ._compile import _CodeGenerator
from ._filters import (
    _dict,
    _EscapeFormatter,
    _finalize,
    _format_filter,
    _Formatter,
    _guarded,
    _join_filter,
    _lipsum,
    _printf,
    _range,
    _string_method,
)
from ._limits import (
    _BUDGET,
    _CALL_STEPS,
    _LOOP_FILTER,
    _MAX_EXPONENT,
    _MAX_POWER_BITS,
    _MAX_REPEAT,
    _SIZED,
    MAX_DEPTH,
    _chars,
    _counted,
    _Exceeded,
    _loop_filter,
    _printable,
    _shown,
    _steps,
    _text,
    _WholeRecord,
)
from ._locale import _date_filter, _money_filter, _percent_filter
from ._record import _Record

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


def sandbox(loader: BaseLoader, *, autoescape: bool) -> _Sandbox:
    """The environment templates render in: the sandbox, strict about undefined names, with
    every built-in filter guarded and arflow's own filters and globals."""
    env = _Sandbox(
        loader=loader,
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
