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

import html as _html
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
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
)
from jinja2 import nodes as jinja_nodes
from jinja2.exceptions import SecurityError, TemplateNotFound
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
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
from .errors import ArflowError
from .money import Money

__all__ = [
    "Rendered",
    "TemplateError",
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


class TemplateError(ArflowError):
    """A template that cannot be found, parsed or rendered.

    The message names the template, its locale, file and line, and carries Jinja's message,
    which names variables and attributes, not their values: it is meant to be logged."""

    def __init__(
        self,
        name: str,
        locale: str | None,
        message: str,
        line: int | None = None,
        file: str | None = None,
    ) -> None:
        self.name, self.locale, self.line, self.file = name, locale, line, file
        where = f"template {name}" + (f" ({locale})" if locale else "")
        if file is not None:
            where += f", {file}"
        if line is not None:
            where += f" line {line}"
        super().__init__(f"{where}: {message}")


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
    if isinstance(value, Mapping):
        raise ValueError(f"prints the whole {_kind(value)}: print one of its fields")
    if isinstance(value, list | tuple) and any(isinstance(v, Mapping) for v in value):
        raise ValueError("prints a whole list of records: loop over it with {% for %}")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, _Record):
        return repr(value._kind)
    return type(value).__name__


# -- the sandbox ---------------------------------------------------------------------------------


class _Record(dict[str, Any]):
    """A context record (customer, contact, invoice...) that knows what it describes, so a
    typo reads "'contact' has no attribute 'nmae'", not "'dict object' has ...".

    A dict subclass, so the immutable sandbox refuses ``update``/``pop`` on it."""

    __slots__ = ("_kind",)

    def __init__(self, kind: str, fields: Mapping[str, Any]) -> None:
        super().__init__(fields)
        self._kind = kind  # private: a template cannot read it


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, narrowed further for arflow's data."""

    intercepted_binops = frozenset({"*", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # A pydantic model also has model_copy, model_rebuild, model_validate...: a template
        # may read its fields and nothing else.
        if isinstance(obj, BaseModel):
            return attr in type(obj).model_fields and super().is_safe_attribute(obj, attr, value)
        return bool(super().is_safe_attribute(obj, attr, value))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse ``'x' * 10**9`` and ``10 ** 1000000``: a template must not exhaust memory."""
        if operator == "**" and isinstance(right, int | Decimal):
            big = abs(Decimal(right)) > _MAX_EXPONENT
            if isinstance(left, int) and isinstance(right, int):
                big = big or abs(left).bit_length() * abs(right) > _MAX_POWER_BITS
            if big:
                raise SecurityError("power too large")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(n, int)
                    and len(seq) * n > _MAX_REPEAT
                ):
                    raise SecurityError(f"repetition longer than {_MAX_REPEAT}")
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
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
        value = super().getitem(obj, argument)
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
        env.filters["money"] = _money_filter
        env.filters["date"] = _date_filter
        env.filters["percent"] = _percent_filter
        return env

    def _source(self, jinja_name: str) -> tuple[str, str, Callable[[], bool]] | None:
        """Only the folder's own templates: ``{% include '/etc/passwd' %}`` finds nothing."""
        path = self._by_jinja_name.get(jinja_name)
        if path is None:
            return None
        return path.read_text(encoding="utf-8-sig"), str(path), lambda: True

    def _template(self, env: _Sandbox, name: str, locale: str) -> Template:
        key = (env.autoescape is True, name, locale)
        found = self._compiled.get(key)
        if found is not None:
            return found
        try:
            found = self._compiled[key] = env.get_template(_jinja_name(name, locale))
            return found
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

        def capture(block: str, render: Callable[[Context], Iterator[str]]) -> Any:
            def wrapper(c: Context) -> Iterator[str]:
                out = "".join(render(c))
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
        if isinstance(exc, TemplateSyntaxError):
            filename, line = exc.filename, exc.lineno
            message = f"syntax error: {exc.message}"
        else:
            message = str(exc)
            if not isinstance(exc, ValueError) and type(exc).__module__ == "builtins":
                message = f"{type(exc).__name__}: {message}"
        if len(message) > 300:
            message = message[:297] + "..."
        return TemplateError(name, locale, message, line, self._other(filename, name, locale))

    def _render(self, name: str, locale: str, fmt: Locale, context: Mapping[str, Any]) -> Rendered:
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
