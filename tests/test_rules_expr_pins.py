"""Example tests pinning condition-language behaviour the mutation run found unpinned.

Each test kills mutants of ``arflow.rules.expr`` that survived ``tests/test_rules_expr.py``
(see docs/testing.md): the whole text of every refusal and its column, evaluation with
missing values, division by zero, and the canonical text of a tree.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from arflow.rules.expr import (
    ExpressionError,
    Type,
    check,
    condition,
    parse,
    tokenize,
    unparse,
)

FACTS = {
    "n": Type.NUMBER,
    "m": Type.NUMBER,
    "s": Type.STRING,
    "b": Type.BOOL,
    "d": Type.DATE,
    "tags": Type.STRING_LIST,
    "customer.grade": Type.STRING,
    "invoice.grade": Type.STRING,
}

REFUSALS = [
    ("", "expected a condition, found the end at column 1 in ''"),
    (
        "n > 1 )",
        "expected 'and', 'or' or the end of the condition, found ')' at column 7 in 'n > 1 )'",
    ),
    ("n = 1", "'=' is not an operator; compare with '==' at column 3 in 'n = 1'"),
    ('s == "abc', "unterminated string at column 6 in 's == \"abc'"),
    ("s == 'abc", 'unterminated string at column 6 in "s == \'abc"'),
    ("n > 1 ; n", "unexpected character ';' at column 7 in 'n > 1 ; n'"),
    ("n not 1", "expected 'in' after 'not', found '1' at column 7 in 'n not 1'"),
    (
        "1 < n < 3",
        "comparisons do not chain; join them with 'and', found '<' at column 7 in '1 < n < 3'",
    ),
    ("s in [1 2]", "expected ',' or ']', found '2' at column 9 in 's in [1 2]'"),
    ("max(n m) > 1", "expected ',' or ')', found 'm' at column 7 in 'max(n m) > 1'"),
    ("(n > 1", "expected ')', found the end at column 7 in '(n > 1'"),
    ("n > ", "expected a value, a fact name or '(', found the end at column 5 in 'n > '"),
    ("n > and", "expected a value, a fact name or '(', found 'and' at column 5 in 'n > and'"),
    (
        "upper(s) == 'A'",
        "unknown function 'upper' (known: abs, date, max, min) at column 1 in \"upper(s) == 'A'\"",
    ),
    ("x > 1", "unknown fact 'x' at column 1 in 'x > 1'"),
    (
        "grade == 'A'",
        "unknown fact 'grade'; did you mean customer.grade or invoice.grade? at column 1 in "
        "\"grade == 'A'\"",
    ),
    ("n and b", "'and' needs true/false on each side, got a number at column 1 in 'n and b'"),
    ("b or s", "'or' needs true/false on each side, got a string at column 6 in 'b or s'"),
    ("not n", "'not' needs true/false on each side, got a number at column 5 in 'not n'"),
    ("n < null", "only == and != can compare with null, not < at column 3 in 'n < null'"),
    ("n == s", "cannot compare a number with a string at column 3 in 'n == s'"),
    (
        "tags == tags",
        "cannot compare a list of strings with a list of strings at column 6 in 'tags == tags'",
    ),
    ("b < true", "true/false values only compare with == and !=, not < at column 3 in 'b < true'"),
    ("s in ['a', 1]", "a list for a string holds a number at column 12 in \"s in ['a', 1]\""),
    ("n in tags", "cannot look for a number in a list of strings at column 3 in 'n in tags'"),
    ("s in s", "cannot look for a string in a string at column 3 in 's in s'"),
    ("s + 1 > 1", "arithmetic needs numbers, got a string + a number at column 3 in 's + 1 > 1'"),
    ("-s == 'a'", "'-' needs a number at column 1 in \"-s == 'a'\""),
    (
        "date(s) > d",
        "date() takes one text literal such as date(\"2026-01-31\") at column 1 in 'date(s) > d'",
    ),
    (
        "date('2026-02-30') > d",
        "'2026-02-30' is not a date (YYYY-MM-DD) at column 6 in \"date('2026-02-30') > d\"",
    ),
    ("abs(n, m) > 1", "abs() takes 1 values at column 1 in 'abs(n, m) > 1'"),
    ("min(n) > 1", "min() takes 2+ values at column 1 in 'min(n) > 1'"),
    ("max(n, s) > 1", "max() needs numbers at column 1 in 'max(n, s) > 1'"),
    ("n + 1", "a condition must be true or false, this is a number at column 3 in 'n + 1'"),
    ("s + 1 == n", "arithmetic needs numbers, got a string + a number at column 3 in 's + 1 == n'"),
    ("n == s + 1", "arithmetic needs numbers, got a string + a number at column 8 in 'n == s + 1'"),
    (
        "(s + 1) * n > 1",
        "arithmetic needs numbers, got a string + a number at column 4 in '(s + 1) * n > 1'",
    ),
    (
        "n * (s + 1) > 1",
        "arithmetic needs numbers, got a string + a number at column 8 in 'n * (s + 1) > 1'",
    ),
    (
        "x.grade == 'A'",
        "unknown fact 'x.grade'; did you mean customer.grade or invoice.grade? at column 1 in "
        "\"x.grade == 'A'\"",
    ),
    ("max(n ] m) > 1", "expected ',' or ')', found ']' at column 7 in 'max(n ] m) > 1'"),
    ("n > )", "expected a value, a fact name or '(', found ')' at column 5 in 'n > )'"),
    ("[1]", "a condition must be true or false, this is a list at column 1 in '[1]'"),
    ("not null", "'not' needs true/false on each side, got a null at column 5 in 'not null'"),
    ("max() > 1", "max() takes 2+ values at column 1 in 'max() > 1'"),
    (
        "1 < n > 3",
        "comparisons do not chain; join them with 'and', found '>' at column 7 in '1 < n > 3'",
    ),
]


@pytest.mark.parametrize(("text", "message"), REFUSALS, ids=[r[0] or "empty" for r in REFUSALS])
def test_every_refusal_says_exactly_what_and_where(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        condition(text, FACTS)
    assert str(info.value) == message
    assert info.value.text == text


def test_a_condition_must_be_text() -> None:
    with pytest.raises(ExpressionError) as info:
        parse(3)  # type: ignore[arg-type]
    assert str(info.value) == "a condition must be text, not int at column 1 in ''"


def test_the_depth_limit_is_64_levels_exactly() -> None:
    ok = "(" * 63 + "n > 1" + ")" * 63
    condition(ok, FACTS)
    with pytest.raises(ExpressionError, match="nested more than 64 levels deep, found"):
        condition("(" * 64 + "n > 1" + ")" * 64, FACTS)
    condition("not " * 63 + "b", FACTS)
    with pytest.raises(ExpressionError, match="nested more than 64 levels deep"):
        condition("not " * 65 + "b", FACTS)
    condition("-" * 62 + "n > 1", FACTS)
    with pytest.raises(ExpressionError, match="nested more than 64 levels deep"):
        condition("-" * 64 + "n > 1", FACTS)


def test_siblings_do_not_add_up_to_the_depth_limit() -> None:
    condition(" and ".join(["not b"] * 70), FACTS)
    condition(" and ".join(["(b)"] * 70), FACTS)
    condition("s in [" + ", ".join(["'a'"] * 70) + "]", FACTS)


def test_a_long_flat_sum_is_refused_for_its_height_at_its_root() -> None:
    text = "n" + " + n" * 70 + " > 1"
    with pytest.raises(ExpressionError) as info:
        condition(text, FACTS)
    assert info.value.reason == "the condition is nested more than 64 levels deep; split it"
    assert info.value.position == text.index(">")
    condition("n" + " + n" * 60 + " > 1", FACTS)


def test_check_wants() -> None:
    t = parse("n + 1")
    with pytest.raises(ExpressionError) as info:
        check(t, FACTS, "n + 1", want=Type.ANY_LIST)
    assert str(info.value) == "a list is needed here, this is a number at column 3 in 'n + 1'"
    with pytest.raises(ExpressionError) as info:
        check(t, FACTS, "n + 1", want=Type.DATE)
    assert str(info.value) == "a date is needed here, this is a number at column 3 in 'n + 1'"
    assert check(parse("null"), FACTS, "null", want=Type.DATE) is Type.NULL
    assert check(parse("tags"), FACTS, "tags", want=Type.ANY_LIST) is Type.STRING_LIST
    assert check(parse("['a']"), FACTS, "['a']", want=Type.ANY_LIST) is Type.ANY_LIST
    assert check(parse("d"), FACTS, "d", want=Type.DATE) is Type.DATE
    assert check(parse("true"), FACTS, "true") is Type.BOOL
    with pytest.raises(ExpressionError) as info:
        check(parse("b and not b"), FACTS, "b and not b", want=Type.NUMBER)
    assert info.value.position == 0
    with pytest.raises(ExpressionError) as info:
        check(parse(" not b"), FACTS, " not b", want=Type.NUMBER)
    assert str(info.value) == "a number is needed here, this is a bool at column 2 in ' not b'"


def ev(text: str, **facts: Any) -> bool:
    return condition(text, FACTS)(facts)


def test_division_by_zero_gives_null_so_a_comparison_is_false() -> None:
    assert ev("n / m < 0.5", n=Decimal(1), m=Decimal(0)) is False
    assert ev("n / m == null", n=Decimal(1), m=Decimal(0)) is True
    assert ev("n / m == null", n=Decimal(0), m=Decimal(0)) is True  # InvalidOperation
    assert ev("n / m < 0.5", n=Decimal(1), m=Decimal(4)) is True


def test_arithmetic_with_null_is_null_and_each_operator_is_itself() -> None:
    two, three = Decimal(2), Decimal(3)
    assert ev("n + m == 5", n=two, m=three)
    assert ev("n - m == -1", n=two, m=three)
    assert ev("n * m == 6", n=two, m=three)
    assert ev("m / n == 1.5", n=two, m=three)
    for op in "+-*/":
        assert ev(f"n {op} m == null", n=two)
        assert ev(f"n {op} m == null", m=two)
    assert ev("-n == null")
    assert ev("-n == -2", n=two)
    assert ev("abs(n) == 2", n=-two)
    assert ev("min(n, m) == 2 and max(n, m) == 3", n=two, m=three)
    assert ev("max(n, m) == null", n=two)


def test_comparisons_with_missing_values_are_false_and_each_is_itself() -> None:
    one, two = Decimal(1), Decimal(2)
    for op in ("<", "<=", ">", ">="):
        assert ev(f"n {op} m") is False
        assert ev(f"n {op} m", n=one) is False
        assert ev(f"n {op} m", m=one) is False
    assert ev("n < m", n=one, m=two) and not ev("n < m", n=two, m=two)
    assert ev("n <= m", n=two, m=two) and not ev("n <= m", n=two, m=one)
    assert ev("n > m", n=two, m=one) and not ev("n > m", n=two, m=two)
    assert ev("n >= m", n=two, m=two) and not ev("n >= m", n=one, m=two)
    assert ev("n == null") and not ev("n != null")
    assert ev("n != m", n=one, m=two) and not ev("n == m", n=one, m=two)
    assert ev("b != true", b=False) and not ev("b != true", b=True)
    assert ev("d < date('2026-01-31')", d=date(2026, 1, 30))


def test_boolean_chains_of_every_length() -> None:
    t, f = True, False
    assert ev("b", b=t) and not ev("b") and not ev("b", b=f)
    assert ev("not b") and ev("not b", b=f) and not ev("not b", b=t)
    for k in range(1, 6):
        conj = " and ".join(["b"] * k)
        disj = " or ".join(["b"] * k)
        assert ev(conj, b=t) and not ev(conj, b=f) and not ev(conj)
        assert ev(disj, b=t) and not ev(disj, b=f) and not ev(disj)
    # one false or missing term decides, whatever its place
    for k in range(2, 6):
        for i in range(k):
            terms = ["b"] * k
            terms[i] = "n > 1"
            assert not ev(" and ".join(terms), b=t, n=Decimal(0))
            assert not ev(" and ".join(terms), b=t)
            assert ev(" or ".join(terms), b=f, n=Decimal(2))
            assert not ev(" or ".join(terms), b=f)


def test_membership() -> None:
    assert ev("s in ['a', 'b']", s="a") and not ev("s in ['a', 'b']", s="c")
    assert ev("s not in ['a', 'b']", s="c") and not ev("s not in ['a', 'b']", s="a")
    assert ev("s in ['a', null]") and not ev("s not in ['a', null]")
    assert ev("'x' in tags", tags=["x"]) and not ev("'x' in tags", tags=["y"])
    assert not ev("'x' in tags") and ev("'x' not in tags")
    assert ev("'x' not in tags", tags=["y"]) and not ev("'x' not in tags", tags=["x"])
    # a list holding facts is evaluated, not frozen
    assert ev("s in [s, 'b']", s="q") and not ev("s not in [s, 'b']", s="q")
    assert ev("n in [m, 2]", n=Decimal(5), m=Decimal(5))


def test_literals() -> None:
    assert ev("s == 'it\\'s'", s="it's")
    assert ev('s == "say \\"hi\\""', s='say "hi"')
    assert ev("n == 1.50", n=Decimal("1.5"))
    assert ev("b == true", b=True) and ev("b == false", b=False) and ev("b == null")
    assert ev("d == date('2026-01-31')", d=date(2026, 1, 31))


def test_tokens() -> None:
    toks = tokenize("n>=1.5 and s")
    assert [(t.kind, t.value, t.pos) for t in toks] == [
        ("name", "n", 0),
        ("op", ">=", 1),
        ("number", "1.5", 3),
        ("keyword", "and", 7),
        ("name", "s", 11),
        ("end", "", 12),
    ]
    assert [t.kind for t in tokenize("a ?")] == ["name", "error"]


def test_facts_used_and_the_condition_record() -> None:
    c = condition("n > 1 and s in ['a'] and max(m, 2) > 1 and 'x' in tags", FACTS)
    assert c.facts == frozenset({"n", "s", "m", "tags"})
    assert c.text == "n > 1 and s in ['a'] and max(m, 2) > 1 and 'x' in tags"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("n>1", "n > 1"),
        ("(n + m) * 2 > 1", "(n + m) * 2 > 1"),
        ("n - (m - 1) > 1", "n - (m - 1) > 1"),
        ("n / (m * 2) > 1", "n / (m * 2) > 1"),
        ("n * m / 2 > 1", "n * m / 2 > 1"),
        ("-(n + 1) > 1", "-(n + 1) > 1"),
        ("- n > 1", "-n > 1"),
        ("not (b or b)", "not (b or b)"),
        ("(b and b) or b", "b and b or b"),
        ("b and (b or b)", "b and (b or b)"),
        ("not b and b", "not b and b"),
        ("(not b) == true", "(not b) == true"),
        ('s not in [\'a\', "b\\"c"]', 's not in ["a", "b\\"c"]'),
        ("s in ['a\\\\b']", 's in ["a\\\\b"]'),
        ("b == null", "b == null"),
        ("b == false or b == true", "b == false or b == true"),
        ("n == 1.50", "n == 1.50"),
        ("n == 1e0 or true", None),
        ("d > date('2026-01-31')", 'd > date("2026-01-31")'),
        ("min(n, m) >= abs(n)", "min(n, m) >= abs(n)"),
        ("'x' in tags", '"x" in tags'),
        ("n in []", "n in []"),
        ("n + 1 in [2]", "n + 1 in [2]"),
        ("(not b) in [true]", "(not b) in [true]"),
        ("-n in [m]", "-n in [m]"),
    ],
)
def test_canonical_text(text: str, canonical: str | None) -> None:
    if canonical is None:
        with pytest.raises(ExpressionError):
            parse(text)
        return
    tree = parse(text)
    assert unparse(tree) == canonical
    assert unparse(parse(canonical)) == canonical
