"""Locale formatting for templates: locale names, and money, dates and percentages printed
in the reader's locale through Babel (with a fast path for money)."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
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
    pass_context,
)
from jinja2.runtime import Context

from ..money import Money
from ._record import _kind

FALLBACK_LOCALE = "en"


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
