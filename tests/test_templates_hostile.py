"""Hostile templates: every route that would turn a whole record into text, and every way to
make a render build gigabytes or run for minutes, fails fast with a clear error; the shipped
templates render exactly as before."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arflow.domain import Contact, Customer, Receivable
from arflow.errors import ArflowError
from arflow.messages import (
    MAX_OUTPUT,
    MAX_SOURCE,
    TemplateError,
    TemplateLimitError,
    TemplateSet,
    build_context,
    check,
    sample_context,
)
from arflow.money import Money

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
#: CPU seconds: a guard against templates that blow up (each case takes well under one), not
#: a speed figure; CPU time, so a loaded machine does not fail a sound case.
BOUND = 20.0


def one(tmp_path: Path, source: str) -> TemplateSet:
    (tmp_path / "x.en.j2").write_text(
        "{% block subject %}S{% endblock %}{% block body %}" + source + "{% endblock %}",
        encoding="utf-8",
    )
    return TemplateSet.load(tmp_path)


def render_error(tmp_path: Path, source: str) -> TemplateError:
    """The error rendering ``source`` gives, within ``BOUND`` seconds."""
    ts = one(tmp_path, source)
    started = time.process_time()
    with pytest.raises(TemplateError) as info:
        ts.render("x", "en", sample_context())
    assert time.process_time() - started < BOUND
    return info.value


# -- a whole record never becomes text -------------------------------------------------------------

CUSTOMER = r"prints the whole 'customer': print one of its fields"
CONTACT = r"prints the whole 'contact': print one of its fields"
INVOICE = r"prints the whole 'invoice': print one of its fields"
RECORDS = r"prints a whole list of records: loop over it with \{% for %\}"
LISTS = r"lists every field of 'customer': print the fields you mean"
MONEY_REPR = r"prints the repr of a money value"

WHOLE_RECORDS = [
    ("{{ '%s' % customer }}", CUSTOMER),
    ("{{ '%s'|format(customer) }}", CUSTOMER),
    ("{{ '%(c)s'|format(c=customer) }}", CUSTOMER),
    ("{{ '%r' % (invoices,) }}", RECORDS),
    ("{{ '%s %s' % (customer.name, contact) }}", CONTACT),
    ("{{ '%(x)s' % {'x': customer} }}", CUSTOMER),
    ("{{ '{}'.format(customer) }}", CUSTOMER),
    ("{{ '{c}'.format(c=contact) }}", CONTACT),
    ("{{ '{x}'.format_map({'x': contact}) }}", CONTACT),
    ("{{ '{0.values}'.format(customer) }}", LISTS),
    ("{{ '{0[items]}'.format(customer) }}", LISTS),
    ("{{ '{0!r}'.format(invoices) }}", RECORDS),
    ("{{ customer ~ '' }}", CUSTOMER),
    ("{{ 'Dear ' ~ contact ~ ',' }}", CONTACT),
    ("{{ customer|string }}", CUSTOMER),
    ("{{ invoices|join(', ') }}", INVOICE),
    ("{{ [customer]|join }}", CUSTOMER),
    ("{{ invoices|map('string')|join }}", INVOICE),
    ("{{ invoices|pprint }}", RECORDS),
    ("{{ customer|tojson }}", CUSTOMER),
    ("{{ customer|upper }}", CUSTOMER),
    ("{{ customer|replace('a', 'b') }}", CUSTOMER),
    ("{{ customer|safe }}", CUSTOMER),
    ("{{ customer|e }}", CUSTOMER),
    ("{{ invoices[0]|center(80) }}", INVOICE),
    ("{{ customer|truncate(500) }}", CUSTOMER),
    ("{{ customer|xmlattr }}", CUSTOMER),
    ("{{ customer|urlencode }}", CUSTOMER),
    ("{% filter upper %}{{ contact }}{% endfilter %}", CONTACT),
    ("{% set x %}{{ contact }}{% endset %}{{ x }}", CONTACT),
    ("{{ invoices|groupby('currency') }}", RECORDS),
    ("{{ invoices|batch(1)|list }}", RECORDS),
    ("{{ customer.items()|list }}", LISTS),
    ("{{ customer.values()|join(', ') }}", LISTS),
    ("{{ customer['values']()|join(', ') }}", LISTS),
    ("{{ customer|items|list }}", LISTS),
    ("{{ customer|dictsort }}", LISTS),
    ("{{ customer|attr('items') }}", LISTS),
    ("{{ customer.copy() }}", LISTS),
    ("{{ dict(customer)|items|list }}", r"lists every field of 'dict'"),
    ("{{ dict(**customer).values()|list }}", r"lists every field of 'dict'"),
    ("{{ namespace(**customer) }}", r"prints a Namespace object"),
    ("{{ invoices|map(attribute='number') }}", r"prints a generator: end it with \|list"),
    ("{{ '%r' % (total,) }}", MONEY_REPR),
    ("{{ '{!r}'.format(total) }}", MONEY_REPR),
    ("{{ total|pprint }}", MONEY_REPR),
    ("{{ '%s' % (totals,) }}", MONEY_REPR),
    ("{{ {'a': customer}|tojson }}", CUSTOMER),
]


@pytest.mark.parametrize(("source", "message"), WHOLE_RECORDS)
def test_no_route_prints_a_whole_record(tmp_path: Path, source: str, message: str) -> None:
    error = render_error(tmp_path, source)
    assert type(error) is TemplateError
    assert error.line == 1
    assert str(error).startswith("template x (en) line 1: ")
    assert re.search(message, str(error)), str(error)
    assert "li.na@example.com" not in str(error)  # the salesperson's address is not shown


FIELDS = [
    ("{{ '%(name)s' % customer }}", "Acme Trading (Shanghai) Co., Ltd."),
    ("{{ '{0[id]}/{0[grade]}'.format(customer) }}", "C-1001/B"),
    ("{{ '%s-%05.1f' % (customer.id, 3.14159) }}", "C-1001-003.1"),
    ("|{{ '{:>8}|'.format(customer.id) }}", "|  C-1001|"),
    ("{{ customer.id ~ ':' ~ invoices|length }}", "C-1001:2"),
    ("{{ invoices|map(attribute='number')|join(', ') }}", "INV-2024-0107, INV-2024-0131"),
    ("{{ '%s' % total }}", "17,500.00 CNY"),
    ("{{ total }}", "CN¥17,500.00"),
    ("{{ customer.name|upper|truncate(9, True, '') }}", "ACME TRAD"),
    ("|{{ 'ab'|center(6) }}|{{ 'x'.rjust(3, '.') }}", "|  ab  |..x"),
    (
        "{% for k in customer|sort %}{% if loop.first %}{{ k }}{% endif %}{% endfor %}",
        "credit_limit",
    ),
    ("{{ customer.get('region') or '-' }} {{ customer.keys()|list|length }}", "East 9"),
    ("{{ dict(a='b')['a'] }} {{ customer.name[:4] }} {{ 'c' in customer.name }}", "b Acme True"),
    ("{{ range(3)|join(',') }} {{ [1, 2] + [3] }} {{ 'a' + 'b' }}", "0,1,2 [1, 2, 3] ab"),
    (
        "{{ {'a': 1, 'b': [1, 'x']}|tojson }} {{ {'a': 1}|pprint }}",
        '{"a": 1, "b": [1, "x"]} {\'a\': 1}',
    ),
    # loops, comparisons and slices go through the limits' hooks and behave as before
    (
        "{% for x in [] %}x{% else %}none{% endfor %}|{% for i in invoices %}{{ loop.index }}/"
        "{{ loop.length }}{{ '!' if loop.last }}{{ loop.revindex }} {% endfor %}",
        "none|1/22 2/2!1",
    ),
    (
        "{% for i in invoices if i.balance.amount > 6000 %}{{ i.number }}{% endfor %}|"
        "{% for x in [[1, [2]]] recursive %}{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}"
        "{% endif %}{% endfor %}",
        "INV-2024-0107|12",
    ),
    (
        "{% macro row(i) %}{{ i.number }}={{ caller() }}{% endmacro %}{% for i in invoices %}"
        "{% call row(i) %}{{ i.balance }}{% endcall %};{% endfor %}",
        "INV-2024-0107=CN¥12,500.00;INV-2024-0131=CN¥5,000.00;",
    ),
    (
        "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' not in 'bcd' }} {{ invoices|length == 2 }}",
        "True False True True",
    ),
    (
        "{% set ns = namespace(t=0) %}{% for i in invoices %}{% set ns.t = ns.t + i.days_past_due %}"
        "{% endfor %}{{ ns.t }} {{ customer.name[::-1][:4] }} {{ lipsum(1, false, 3, 4)|length > 0 }}",
        "23 .dtL True",
    ),
    (
        "{{ invoices|selectattr('days_past_due', 'gt', 10)|map(attribute='number')|join }} "
        "{{ invoices|sum(attribute='days_past_due') }} {{ invoices|groupby('currency')|length }} "
        "{{ invoices|map(attribute='days_past_due')|max }}",
        "INV-2024-0107 23 1 16",
    ),
]


@pytest.mark.parametrize(("source", "expected"), FIELDS)
def test_fields_still_print(tmp_path: Path, source: str, expected: str) -> None:
    assert one(tmp_path, source).render("x", "en", sample_context()).text == expected


def test_the_html_part_refuses_a_whole_record_too(tmp_path: Path) -> None:
    (tmp_path / "h.en.j2").write_text(
        "{% block subject %}S{% endblock %}{% block body %}{{ customer.name }}{% endblock %}"
        "{% block html %}<p>{{ '%s' % customer }}</p>{% endblock %}",
        encoding="utf-8",
    )
    with pytest.raises(TemplateError, match=CUSTOMER):
        TemplateSet.load(tmp_path).render("h", "en", sample_context())


# -- limits ---------------------------------------------------------------------------------------

WIDTH = r"width 1,000,000,000 is over the limit of 1,000,000"
STEPS = r"more than 500,000 loop iterations, filters and calls in one message"
CHARS = r"more than 10,000,000 characters built, copied or compared in one message"
DEEP = r"calls nested more than 40 deep \(a macro or loop calling itself\?\)"
LONG = r"characters long, over the limit of 1,000,000"

#: (source, message, seen in the source: refused when compiled, before anything runs)
BOMBS = [
    ("{{ customer.name|center(1000000000) }}", r"\|center " + WIDTH, True),
    ("{{ customer.name|center(10**9) }}", r"\|center " + WIDTH, True),
    ("{{ customer.name|center(1e9) }}", r"\|center width 1,000,000,000.0 is over", True),
    ("{% set w = 10**9 %}{{ customer.name|center(w) }}", r"\|center " + WIDTH, False),
    ("{{ customer.name.center(10**9) }}", r"\.center\(\) " + WIDTH, True),
    ("{{ customer.name.ljust(10**9, '-') }}", r"\.ljust\(\) " + WIDTH, True),
    ("{{ customer.name.zfill(10**9) }}", r"\.zfill\(\) " + WIDTH, True),
    ("{{ '{:>1000000000}'.format(customer.name) }}", r"str\.format " + WIDTH, True),
    ("{{ '{:>{}}'.format(customer.name, 10**9) }}", r"str\.format " + WIDTH, False),
    (
        "{{ '{:,>999999}{:,>999999}'.format(1, 2) }}",
        r"str\.format would be 2,000,020 " + LONG,
        False,
    ),
    ("{{ '%1000000000d' % 1 }}", r"%-format " + WIDTH, True),
    ("{{ '%1000000000d'|format(1) }}", r"%-format " + WIDTH, True),
    ("{{ '%*d' % (10**9, 1) }}", r"%-format " + WIDTH, False),
    ("{{ '%.1000000000f' % 1.5 }}", r"%-format precision 1,000,000,000 is over", True),
    (
        "{{ ('%s' * 1000) % (('x' * 100000,) * 1000) }}",
        r"%-formatting would be 100,002,000 " + LONG,
        False,
    ),
    ("{{ 'x' * 10**9 }}", r"repetition of 1,000,000,000 items, over the limit of 100,000", True),
    ("{% set n = 10**9 %}{{ 'x' * n }}", r"repetition of 1,000,000,000 items", False),
    ("{{ 2 ** 100000 }}", r"power too large \(exponents up to 100\)", True),
    (
        "{% set ns = namespace(n=9**99) %}{% for i in range(30) %}{% set ns.n = ns.n * ns.n %}"
        "{% endfor %}",
        r"product too large \(over 10,000 bits\)",
        False,
    ),
    (
        "{{ range(10**9)|list|length }}",
        r"range too big: 1,000,000,000 numbers, over the limit of 100,000",
        True,
    ),
    ("{% set n = 10**9 %}{{ range(n)|length }}", r"range too big", False),
    (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        STEPS,
        False,
    ),
    (
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
        STEPS,
        False,
    ),
    (
        "{% for i in 'x' * 100000 %}{% for j in 'y' * 100000 %}{% endfor %}{% endfor %}",
        STEPS,
        False,
    ),
    (
        "{% macro m() %}{% endmacro %}{% for i in range(100000) %}{{ m() }}{% endfor %}",
        STEPS,
        False,
    ),
    (
        "{% set l = ('x' * 1000)|list %}{% for i in range(100000) %}{{ l|sort|length }}{% endfor %}",
        STEPS,
        False,
    ),
    ("{{ lipsum(1000000) }}", r"lipsum of up to 100,000,000 words, over the limit of 10,000", True),
    ("{{ lipsum(1e6) }}", r"lipsum of up to 100,000,000.0 words", True),
    ("{% set n = 10**6 %}{{ lipsum(n) }}", r"lipsum of up to 100,000,000 words", False),
    ("{{ customer.name|wordwrap(10**9) }}", r"\|wordwrap " + WIDTH, True),
    ("{{ customer.name|indent(10**9) }}", r"\|indent " + WIDTH, True),
    ("{{ customer.name|truncate(10**9) }}", r"\|truncate length 1,000,000,000 is over", True),
    (
        "{{ [1]|batch(10**9, 'x')|list }}",
        r"\|batch size 1,000,000,000 is over the limit of 100,000",
        True,
    ),
    ("{{ [1]|slice(10**9, 'x')|list }}", r"\|slice count 1,000,000,000 is over", True),
    (
        "{{ customer.tags|tojson(10**9) }}",
        r"\|tojson indent 1,000,000,000 is over the limit of 16",
        True,
    ),
    (
        "{{ ('x' * 100000)|replace('x', 'x' * 100000) }}",
        r"\|replace would be 10,000,000,000 " + LONG,
        False,
    ),
    (
        "{{ ('x' * 100000).replace('x', 'x' * 100000) }}",
        r"\.replace\(\) would be 10,000,000,000",
        False,
    ),
    (
        "{{ ('\t' * 100000).expandtabs(100000) }}",
        r"\.expandtabs\(\) would be 10,000,100,000",
        False,
    ),
    ("{{ ('x' * 100000).translate({120: 'y' * 100000}) }}", r"\.translate\(\) would be", False),
    ("{{ ','.join(['x' * 100000] * 100000) }}", r"\.join\(\) would be 10,000,099,999", False),
    ("{{ (['x' * 100000] * 100000)|join }}", r"\|join would be 10,000,000,000 " + LONG, False),
    ("{{ ['x' * 100000] * 100000 }}", r"a list printed as text would be over 1,000,000", False),
    (
        "{% set ns = namespace(s='x' * 1000) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}",
        r"~ concatenation would be 1,024,000 " + LONG,
        False,
    ),
    (
        "{% set ns = namespace(s='x' * 1000) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}",
        r"\+ would be 1,024,000 " + LONG,
        False,
    ),
    (
        "{% set ns = namespace(l=['x'] * 1000) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}"
        "{% endfor %}",
        r"list of 128,000 items, over the limit of 100,000",
        False,
    ),
    (
        "{{ (['a'] * 100000)|batch(1)|sum(start=[]) }}",
        r"\|sum adds numbers, not lists or text",
        False,
    ),
    (
        "{% for i in range(2000) %}{{ 'x' * 1000 }}{% endfor %}",
        r"the message is longer than 1,000,000 characters",
        False,
    ),
    (
        "{% set s = 'x' * 100000 %}{% for i in range(100000) %}{% if 'y' in s %}{% endif %}{% endfor %}",
        CHARS,
        False,
    ),
    (
        "{% set s = 'x'.center(999999) %}{% for i in range(100000) %}{% if s == s ~ '' %}{% endif %}"
        "{% endfor %}",
        CHARS,
        False,
    ),
    (
        "{% set s = 'x'.center(999999) %}{% for i in range(100000) %}{{ s[1:] and '' }}{% endfor %}",
        CHARS,
        False,
    ),
    (
        "{% set s = 'x'.center(999999) %}{% for i in range(100000) %}{{ s.count('y') and '' }}"
        "{% endfor %}",
        CHARS,
        False,
    ),
    # work that is fast per item, made slow by repeating it
    (
        "{% for i in range(100000) %}{{ range(100000)|select('odd')|list|length }}{% endfor %}",
        STEPS,
        False,
    ),
    (
        "{% for i in range(100000) %}{{ range(100000)|map('string')|list|length }}{% endfor %}",
        STEPS,
        False,
    ),
    (
        "{% for i in range(100000) %}{{ range(10)|batch(99999, 0)|list|length }}{% endfor %}",
        CHARS,
        False,
    ),
    (
        "{% for i in range(100000) %}{{ range(100000)|batch(1)|list|length }}{% endfor %}",
        STEPS,
        False,
    ),
    ("{% for i in range(100000) %}{{ range(100000)|list|length }}{% endfor %}", CHARS, False),
    ("{% for i in range(100000) %}{{ cycler(*range(100000)).current }}{% endfor %}", STEPS, False),
    (
        "{% set f = '%s' * 50000 %}{% set a = (1,) * 50000 %}{% for i in range(100000) %}"
        "{{ (f % a)|length }}{% endfor %}",
        STEPS,
        False,
    ),
    (
        "{% for i in range(100000) %}{{ ('a ' * 50000)|wordwrap(1)|length }}{% endfor %}",
        STEPS,
        False,
    ),
    ("{% for i in range(100000) %}{{ ('a ' * 50000)|urlize|length }}{% endfor %}", STEPS, False),
    ("{% for i in range(100000) %}{{ ('a ' * 50000)|title|length }}{% endfor %}", STEPS, False),
    (
        "{% for i in range(100000) %}{{ (range(100000)|list)|pprint|length }}{% endfor %}",
        STEPS,
        False,
    ),
    (
        "{% for i in range(100000) %}{{ (range(100000)|list)|tojson(2)|length }}{% endfor %}",
        STEPS,
        False,
    ),
    (
        "{% set s = '<a>' * 33333 %}{{ (s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s)|striptags|length }}",
        CHARS,
        False,
    ),
    (
        "{% set e = (total.amount * 10**100) ** 50 %}{% for i in range(100000) %}"
        "{{ '{:f}'.format(e)|length }}{% endfor %}",
        CHARS,
        False,
    ),
    ("{{ [[1] * 100000] * 100000 }}", r"a list printed as text would be over 1,000,000", False),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", DEEP, False),
    (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}",
        STEPS,
        False,
    ),
    ("{% for x in [[1]] recursive %}{{ loop([x]) }}{% endfor %}", DEEP, False),
    (
        "{% macro f() %}{{ caller() }}{% endmacro %}{% macro g() %}{% call f() %}{{ g() }}{% endcall %}"
        "{% endmacro %}{{ g() }}",
        DEEP,
        False,
    ),
    (
        "{% include 'x.en.j2' %}",
        r"calls or includes nested too deeply \(a template including itself\?\)",
        False,
    ),
    ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", r"nested too deeply to compile", True),
]


@pytest.mark.parametrize(("source", "message", "static"), BOMBS, ids=[b[0][:60] for b in BOMBS])
def test_bombs_fail_fast_with_the_limit_they_exceed(
    tmp_path: Path, source: str, message: str, static: bool
) -> None:
    error = render_error(tmp_path, source)
    assert isinstance(error, TemplateLimitError), str(error)
    assert isinstance(error, ArflowError)
    assert re.search(message, str(error)), str(error)
    assert str(error).startswith("template x (en)")


@pytest.mark.parametrize(
    ("source", "message"), [(s, m) for s, m, static in BOMBS if static], ids=lambda v: str(v)[:50]
)
def test_a_limit_seen_in_the_source_fails_lint_even_where_it_never_runs(
    tmp_path: Path, source: str, message: str
) -> None:
    # inside {% if false %}: nothing runs, so only compiling can find it
    started = time.process_time()
    problems = check(
        one(tmp_path, "{% if false %}" + source + "{% endif %}ok"), ["x"], locales=("en",)
    )
    assert time.process_time() - started < BOUND
    assert len(problems) == 1
    assert re.search(message, problems[0]), problems[0]


def test_a_template_file_past_the_size_limit_is_refused(tmp_path: Path) -> None:
    ts = one(tmp_path, "x" * MAX_SOURCE)
    with pytest.raises(TemplateLimitError, match=r"x\.en\.j2 is 1,000,0\d\d characters long"):
        ts.render("x", "en", sample_context())


def test_an_included_file_past_a_limit_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "part.en.j2").write_text("ok\n{{ 'x'|center(10**9) }}", encoding="utf-8")
    ts = one(tmp_path, "{% include 'part.en.j2' %}")
    with pytest.raises(TemplateLimitError) as info:
        ts.render("x", "en", sample_context())
    assert str(info.value).startswith("template x (en), part.en.j2 line 2: |center width")


def test_each_render_has_its_own_budget(tmp_path: Path) -> None:
    """Limits are per message: a template using most of a budget renders again and again,
    and a refused render leaves nothing behind for the next."""
    loop = "{% for i in range(100000) %}{% endfor %}"
    ts = one(tmp_path, loop * 4 + "done")  # 400,000 steps of 500,000
    for _ in range(3):
        assert ts.render("x", "en", sample_context()).text == "done"
    (tmp_path / "b").mkdir()
    bomb = one(tmp_path / "b", loop * 6)
    with pytest.raises(TemplateLimitError):
        bomb.render("x", "en", sample_context())
    assert ts.render("x", "en", sample_context()).text == "done"


def test_a_long_real_notice_is_within_the_limits() -> None:
    """The limits are far above what a real message needs: a notice listing 5,000 invoices
    (about 220,000 characters) renders."""
    cust = Customer(id="C-1", name="Big", contacts=(Contact(name="A", email="a@b.example"),))
    zero = Money.zero("CNY")
    receivables = [
        Receivable(
            id=f"INV-{i:05d}",
            customer_id="C-1",
            issue_date=date(2024, 1, 1),
            due_date=date(2024, 1, 1) + timedelta(days=i % 90),
            amount=Money.of("1234.56", "CNY"),
            paid=zero,
            credited=zero,
            written_off=zero,
            disputed_amount=zero,
            open_balance=Money.of("1234.56", "CNY"),
        )
        for i in range(5000)
    ]
    ctx = build_context(cust, receivables, as_of=date(2024, 6, 17), company_name="X")
    got = TemplateSet.load(RULES / "templates").render("formal_notice", "en", ctx)
    assert got.text.count("\n- INV-") == 5000
    assert got.html is not None and len(got.text) < MAX_OUTPUT


# -- the shipped templates render exactly as before ------------------------------------------------

#: sha256 (first 16 hex digits) of [subject, text, html, locale] of each shipped template and
#: locale, with the one-currency sample and the mixed one, as rendered before the limits
#: existed (commit fcd9985)
SHIPPED_DIGESTS = {
    "approval_request.en": "c03c04f578fb9bdf",
    "approval_request.en+mixed": "c03c04f578fb9bdf",
    "approval_request.zh_CN": "74be5bf2f0a58e4e",
    "approval_request.zh_CN+mixed": "74be5bf2f0a58e4e",
    "call_and_record.en": "a373c4c559962534",
    "call_and_record.en+mixed": "63d407e9c2f44805",
    "call_and_record.zh_CN": "f18608594efc24f9",
    "call_and_record.zh_CN+mixed": "a8aba09519da111a",
    "call_on_due_day.en": "970d46cc200f367d",
    "call_on_due_day.en+mixed": "d89532cbc9abc1c5",
    "call_on_due_day.zh_CN": "a49ae319939c751c",
    "call_on_due_day.zh_CN+mixed": "54eaba382a28dc35",
    "credit_limit_warning.en": "3abdda409dd28113",
    "credit_limit_warning.en+mixed": "3abdda409dd28113",
    "credit_limit_warning.zh_CN": "2a6cf49db99fa2eb",
    "credit_limit_warning.zh_CN+mixed": "2a6cf49db99fa2eb",
    "escalation.en": "30a266913a9dc4ac",
    "escalation.en+mixed": "9e04521e775f0132",
    "escalation.zh_CN": "1260bbdbd61675cf",
    "escalation.zh_CN+mixed": "2539eb17a0486b46",
    "formal_notice.en": "b19795bc6eeddc86",
    "formal_notice.en+mixed": "37cfef2eb50f23c2",
    "formal_notice.zh_CN": "1fc549424267d4e7",
    "formal_notice.zh_CN+mixed": "4f5baa1ce1bfbfdb",
    "invoice_request.en": "6c5aba8f56b4c97c",
    "invoice_request.en+mixed": "6c5aba8f56b4c97c",
    "invoice_request.zh_CN": "24e1e57c14db5780",
    "invoice_request.zh_CN+mixed": "24e1e57c14db5780",
    "late_payer.en": "6b74fb442185bd70",
    "late_payer.en+mixed": "5fba3b4465415252",
    "late_payer.zh_CN": "6aa06f0f627ad67b",
    "late_payer.zh_CN+mixed": "610855ac892e566f",
    "legal_handover.en": "e4a55f41aed18f5d",
    "legal_handover.en+mixed": "5281ceae7a89c7a8",
    "legal_handover.zh_CN": "6a7a27d09c66f629",
    "legal_handover.zh_CN+mixed": "92f20b9e62925f20",
    "order_lock_notice.en": "652f398c5b4f6265",
    "order_lock_notice.en+mixed": "7c8e34823f6a66e7",
    "order_lock_notice.zh_CN": "e81f4608ef03763c",
    "order_lock_notice.zh_CN+mixed": "5557405fb37004b3",
    "overdue_sms.en": "d08695a622a3c55f",
    "overdue_sms.en+mixed": "fd3d5ad0935e6004",
    "overdue_sms.zh_CN": "27aecda9e80c4b00",
    "overdue_sms.zh_CN+mixed": "9a301ae7fd8c7b26",
    "promise_broken.en": "3fcbd8c9111db4e7",
    "promise_broken.en+mixed": "86c193fd4e292b48",
    "promise_broken.zh_CN": "b2cfe0f60ad44aed",
    "promise_broken.zh_CN+mixed": "7977465c33dccd26",
    "reminder_before_due.en": "7d401a4ccf316015",
    "reminder_before_due.en+mixed": "0312b6b8c4afe4df",
    "reminder_before_due.zh_CN": "964b7f0b4540d65f",
    "reminder_before_due.zh_CN+mixed": "b5b0e520f4276b29",
    "reminder_due.en": "c92cdbced1ca8adc",
    "reminder_due.en+mixed": "aebce39ad1d7e07c",
    "reminder_due.zh_CN": "bc98c7db5e681540",
    "reminder_due.zh_CN+mixed": "274bc8446815dcce",
    "risk_alert.en": "084ecf00a3f2b832",
    "risk_alert.en+mixed": "084ecf00a3f2b832",
    "risk_alert.zh_CN": "8202af2ef6e514d6",
    "risk_alert.zh_CN+mixed": "8202af2ef6e514d6",
    "order_confirm.en": "1aadb7c24378e837",
    "order_confirm.en+mixed": "1aadb7c24378e837",
    "order_confirm.zh_CN": "073cd2b187cc9201",
    "order_confirm.zh_CN+mixed": "073cd2b187cc9201",
    "order_lock_lifted.en": "10747ed80bd7a68d",
    "order_lock_lifted.en+mixed": "10747ed80bd7a68d",
    "order_lock_lifted.zh_CN": "96819f49b7ae3505",
    "order_lock_lifted.zh_CN+mixed": "96819f49b7ae3505",
    "order_ship.en": "3a088a175fe1e924",
    "order_ship.en+mixed": "3a088a175fe1e924",
    "order_ship.zh_CN": "7f239fdcab6de3ca",
    "order_ship.zh_CN+mixed": "7f239fdcab6de3ca",
    "limit_raise_request.en": "672fa7d8a8c73b71",
    "limit_raise_request.en+mixed": "672fa7d8a8c73b71",
    "limit_raise_request.zh_CN": "86bea197a51985cc",
    "limit_raise_request.zh_CN+mixed": "86bea197a51985cc",
    "terms_approval_request.en": "0a241850abb58cde",
    "terms_approval_request.en+mixed": "0a241850abb58cde",
    "terms_approval_request.zh_CN": "205520e9fa892263",
    "terms_approval_request.zh_CN+mixed": "205520e9fa892263",
}


def shipped_digests() -> dict[str, str]:
    ts = TemplateSet.load(RULES / "templates")
    out = {}
    for name in sorted(ts.names):
        for loc in ts.locales(name):
            for mixed in (False, True):
                r = ts.render(name, loc, sample_context(mixed_currencies=mixed))
                blob = json.dumps([r.subject, r.text, r.html, r.locale], ensure_ascii=False)
                key = f"{name}.{loc}{'+mixed' if mixed else ''}"
                out[key] = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return out


def test_every_shipped_template_renders_as_before() -> None:
    assert shipped_digests() == SHIPPED_DIGESTS


# -- random templates: an error or a message, never a traceback or a hang ---------------------------

LEAVES = [
    "customer",
    "customer.name",
    "contact",
    "invoices",
    "invoices[0]",
    "total",
    "totals",
    "customer.tags",
    "as_of",
    "'x'",
    "'%s'",
    "'{}'",
    "1",
    "99999",
    "10**6",
    "range(3)",
    "range(99999)",
    "[1, 'a']",
    "{'a': 1}",
    "none",
]
FILTERS = [
    "upper",
    "center(99999)",
    "join",
    "join(', ')",
    "string",
    "format(1)",
    "list",
    "length",
    "replace('x', 'xxxxxxxxxx')",
    "batch(3, 0)",
    "pprint",
    "tojson",
    "truncate(9)",
    "wordwrap(3)",
    "indent(8)",
    "first",
    "sort",
    "unique",
    "map('string')",
    "items",
    "sum",
    "title",
    "striptags",
]
expressions = st.recursive(
    st.sampled_from(LEAVES),
    lambda inner: st.one_of(
        st.builds(
            lambda a, op, b: f"({a} {op} {b})",
            inner,
            st.sampled_from(["~", "+", "*", "%", "==", "in"]),
            inner,
        ),
        st.builds(lambda a, f: f"({a}|{f})", inner, st.sampled_from(FILTERS)),
        st.builds(
            lambda a, m: f"{a}.{m}",
            inner,
            st.sampled_from(["center(99999)", "join(['a', 'b'])", "items()", "values()"]),
        ),
    ),
    max_leaves=6,
)
statements = st.one_of(
    st.builds(lambda e: "{{ " + e + " }}", expressions),
    st.builds(
        lambda e: "{% for x in " + e + " %}{% for y in " + e + " %}{{ x }}{% endfor %}{% endfor %}",
        expressions,
    ),
    st.builds(lambda e: "{% if " + e + " %}y{% endif %}", expressions),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(statements, min_size=1, max_size=4))
def test_random_templates_give_a_message_or_a_template_error(parts: list[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        ts = one(Path(folder), "".join(parts))
        started = time.process_time()
        try:
            ts.render("x", "en", sample_context())
        except TemplateError as exc:
            assert str(exc).startswith("template x (en)")
            assert "li.na@example.com" not in str(exc)
        assert time.process_time() - started < BOUND
