"""The condition language: parsing, refusals with positions, types, evaluation."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arflow.rules.expr import (
    Arith,
    BoolOp,
    Compare,
    ExpressionError,
    Fact,
    ListNode,
    Literal,
    Member,
    Neg,
    Node,
    Not,
    Type,
    check,
    condition,
    parse,
    unparse,
)
from arflow.rules.facts import fact_types

FACTS = {
    "days_past_due": Type.NUMBER,
    "balance": Type.NUMBER,
    "amount": Type.NUMBER,
    "customer.grade": Type.STRING,
    "customer.exposure_ratio": Type.NUMBER,
    "tags": Type.STRING_LIST,
    "due_date": Type.DATE,
    "dunning_block": Type.BOOL,
}


def ev(text: str, **facts: Any) -> bool:
    return condition(text, FACTS)({k.replace("__", "."): v for k, v in facts.items()})


def test_the_issue_example() -> None:
    text = 'days_past_due >= 30 and balance > 1000 and customer.grade in ["C", "D"]'
    assert ev(text, days_past_due=30, balance=Decimal(1001), customer__grade="D")
    assert not ev(text, days_past_due=29, balance=Decimal(1001), customer__grade="D")
    assert not ev(text, days_past_due=30, balance=Decimal(1001), customer__grade="A")
    assert condition(text, FACTS).facts == {"days_past_due", "balance", "customer.grade"}


def test_precedence_and_parentheses() -> None:
    assert ev(
        "balance > 1 or balance < 0 and dunning_block", balance=Decimal(5), dunning_block=False
    )
    assert not ev(
        "(balance > 1 or balance < 0) and dunning_block", balance=Decimal(5), dunning_block=False
    )
    assert ev("balance - amount * 2 == -5", balance=Decimal(5), amount=Decimal(5))
    assert ev("not dunning_block and not not true", dunning_block=False)


def test_null_semantics() -> None:
    assert not ev("customer.exposure_ratio > 0.9", customer__exposure_ratio=None)
    assert not ev("customer.exposure_ratio <= 0.9")  # missing is not "small"
    assert ev("customer.grade == null")
    assert ev("customer.grade != null", customer__grade="A")
    assert not ev("balance / 0 > 1", balance=Decimal(3))  # division by zero is null


def test_membership_dates_and_functions() -> None:
    assert ev('"vip" in tags', tags=("vip", "key"))
    assert ev('"x" not in tags', tags=())
    assert not ev('"x" in tags')  # a missing list holds nothing
    assert ev('due_date < date("2026-02-01")', due_date=date(2026, 1, 31))
    assert ev(
        "max(balance, amount) == 7 and min(balance, amount) == 3 and abs(-2) == 2",
        balance=Decimal(3),
        amount=Decimal(7),
    )


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ('balance > "x"', 9, "cannot compare a number with a string"),
        ("days_past_due >= ", 18, "expected a value"),
        ("foo > 1", 1, "unknown fact 'foo'"),
        ('grade == "A"', 1, "did you mean customer.grade?"),
        ("balance = 3", 9, "compare with '=='"),
        ("balance < 1 < 2", 13, "comparisons do not chain"),
        ('"vip" in balance', 7, "cannot look for a string in a number"),
        ("balance + 1", 9, "must be true or false"),
        ("not balance", 5, "'not' needs true/false"),
        ('__import__("os")', 1, "unknown function '__import__'"),
        ("balance.__class__ > 1", 1, "unknown fact"),
        ("balance > 1 and", 16, "expected a value"),
        ("'abc", 1, "unterminated string"),
        ('due_date > date("2026-13-01")', 17, "is not a date"),
        ("balance > 1 ; drop", 13, "unexpected character ';'"),
        ("dunning_block > true", 15, "only compare with == and !="),
        ("balance > null", 9, "only == and != can compare with null"),
        ('balance in [1, "a"]', 16, "a list for a number holds a string"),
        ("min(balance) > 1", 1, "min() takes 2+ values"),
        ("", 1, "expected a condition"),
        ("(balance > 1", 13, "expected ')'"),
    ],
)
def test_refusals_say_what_and_where(text: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        condition(text, FACTS)
    assert message in str(info.value)
    assert info.value.position + 1 == column, str(info.value)


# -- round trip: any tree prints to text that parses back to the same tree ----------------


def _strip(node: Any) -> Any:
    if is_dataclass(node):
        return (
            type(node).__name__,
            *tuple(_strip(getattr(node, f.name)) for f in fields(node) if f.name != "pos"),
        )
    if isinstance(node, tuple):
        return tuple(_strip(n) for n in node)
    return node


names = st.sampled_from(["balance", "amount", "days_past_due", "customer.exposure_ratio"])
numbers = st.decimals(min_value=0, max_value=10**6, places=2).map(
    lambda d: Literal(0, d.normalize() if d == d.to_integral() else d)
)
number_exprs: st.SearchStrategy[Node] = st.recursive(
    st.one_of(names.map(lambda n: Fact(0, n)), numbers),
    lambda sub: st.one_of(
        st.builds(lambda o, a, b: Arith(0, o, a, b), st.sampled_from("+-*/"), sub, sub),
        sub.map(lambda a: Neg(0, a)),
    ),
    max_leaves=6,
)
comparisons = st.builds(
    lambda o, a, b: Compare(0, o, a, b),
    st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
    number_exprs,
    number_exprs,
) | st.builds(
    lambda g, neg: Member(
        0, Fact(0, "customer.grade"), ListNode(0, tuple(Literal(0, x) for x in g)), neg
    ),
    st.lists(st.sampled_from(["A", "B", "C", 'D"q']), max_size=3),
    st.booleans(),
)
bool_exprs: st.SearchStrategy[Node] = st.recursive(
    comparisons,
    lambda sub: st.one_of(
        st.builds(
            lambda o, xs: BoolOp(0, o, tuple(xs)),
            st.sampled_from(["and", "or"]),
            st.lists(sub, min_size=2, max_size=3),
        ),
        sub.map(lambda a: Not(0, a)),
    ),
    max_leaves=5,
)


def _flatten(node: Any) -> Any:
    """``a and (b and c)`` and ``a and b and c`` are the same condition: flatten for equality."""
    if isinstance(node, BoolOp):
        items: list[Any] = []
        for i in node.items:
            i = _flatten(i)
            items.extend(i.items if isinstance(i, BoolOp) and i.op == node.op else [i])
        return BoolOp(0, node.op, tuple(items))
    if isinstance(node, Not):
        return Not(0, _flatten(node.item))
    return node


@given(bool_exprs)
def test_unparse_round_trips(tree: Node) -> None:
    text = unparse(tree)
    assert _strip(_flatten(parse(text))) == _strip(_flatten(tree)), text
    condition(text, FACTS)  # and it type-checks


@given(
    bool_exprs,
    st.decimals(0, 10**4, places=2),
    st.decimals(0, 10**4, places=2),
    st.sampled_from(["A", "B", "C", None]),
)
def test_compiled_predicate_matches_a_reference_evaluator(
    tree: Node, balance: Decimal, amount: Decimal, grade: str | None
) -> None:
    facts = {
        "balance": balance,
        "amount": amount,
        "days_past_due": Decimal(3),
        "customer.exposure_ratio": None,
        "customer.grade": grade,
    }
    assert condition(unparse(tree), FACTS)(facts) == (_reference(tree, facts) is True)


def _reference(node: Any, f: dict[str, Any]) -> Any:
    """A deliberately naive evaluator, written separately from the compiler."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Fact):
        return f.get(node.path)
    if isinstance(node, Neg):
        v = _reference(node.item, f)
        return None if v is None else -v
    if isinstance(node, Arith):
        a, b = _reference(node.left, f), _reference(node.right, f)
        if a is None or b is None:
            return None
        if node.op == "/":
            return None if b == 0 else a / b
        return {"+": a + b, "-": a - b, "*": a * b}[node.op]
    if isinstance(node, Compare):
        a, b = _reference(node.left, f), _reference(node.right, f)
        if node.op in ("==", "!="):
            return (a == b) == (node.op == "==")
        if a is None or b is None:
            return False
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[node.op]
    if isinstance(node, Member):
        values = [i.value for i in node.container.items]  # type: ignore[attr-defined]
        return (f.get(node.item.path) in values) != node.negate  # type: ignore[attr-defined]
    if isinstance(node, Not):
        return _reference(node.item, f) is not True
    if isinstance(node, BoolOp):
        vals = [_reference(i, f) is True for i in node.items]
        return all(vals) if node.op == "and" else any(vals)
    raise TypeError(node)


def test_long_chains_compile_and_run_without_deep_recursion() -> None:
    T = fact_types("receivable")
    conj = condition(" and ".join(f"balance > {i}" for i in range(3000)), T)
    assert conj({"balance": Decimal(5000)}) and not conj({"balance": Decimal(10)})
    disj = condition(" or ".join(f"balance == {i}" for i in range(3000)), T)
    assert disj({"balance": Decimal(2999)}) and not disj({"balance": Decimal(-1)})
    assert not disj({"balance": None})


@pytest.mark.parametrize(
    "text",
    [
        "(" * 2000 + "balance > 1" + ")" * 2000,
        "balance > " + "+".join(["1"] * 500),
        "not " * 100 + "balance > 1",
        "balance > " + "-" * 300 + "1",
    ],
)
def test_conditions_nested_too_deep_are_refused_with_a_position(text: str) -> None:
    with pytest.raises(ExpressionError, match="nested more than 64 levels"):
        condition(text, fact_types("receivable"))


def test_check_enforces_the_wanted_type() -> None:
    T = fact_types("receivable")
    assert check(parse("balance + 1"), T, "balance + 1", want=Type.NUMBER) is Type.NUMBER
    with pytest.raises(ExpressionError, match="a string is needed here, this is a number"):
        check(parse("balance + 1"), T, "balance + 1", want=Type.STRING)
    with pytest.raises(ExpressionError, match="a list is needed"):
        check(parse("balance"), T, "balance", want=Type.ANY_LIST)
    assert check(parse("balance"), T, "balance", want=None) is Type.NUMBER


# -- pins: behaviour a flipped comparison or a dropped condition in expr.py would change ----------


def test_division_by_zero_is_null_so_a_ratio_below_a_threshold_does_not_fire() -> None:
    """The docs' promise (rules.md, "Missing values"): ``paid / amount < 0.5`` must not fire
    on a zero amount, as it would if x / 0 gave 0 or raised."""
    ratio = "balance / amount < 0.5"
    assert not ev(ratio, balance=Decimal(0), amount=Decimal(0))  # 0 / 0
    assert not ev(ratio, balance=Decimal(3), amount=Decimal(0))  # 3 / 0
    assert not ev("balance / amount >= 0.5", balance=Decimal(3), amount=Decimal(0))
    assert ev("balance / amount == null", balance=Decimal(3), amount=Decimal(0))
    assert ev(ratio, balance=Decimal(1), amount=Decimal(4))  # and it fires on a real ratio
    assert not ev(ratio, balance=Decimal(2), amount=Decimal(4))


def test_arithmetic_beyond_what_a_decimal_holds_is_null_not_an_exception() -> None:
    huge = Decimal("9e999999")  # a fact near Decimal's limit: the product overflows
    assert not ev("balance * 10 > 1", balance=huge)
    assert ev("balance * 10 == null", balance=huge)
    assert not ev("balance + balance > 1", balance=huge)
    assert not ev("balance - amount < 1", balance=-huge, amount=huge)


@pytest.mark.parametrize(
    ("op", "below", "equal", "above"),
    [
        ("<", True, False, False),
        ("<=", True, True, False),
        (">", False, False, True),
        (">=", False, True, True),
        ("==", False, True, False),
        ("!=", True, False, True),
    ],
)
def test_each_comparison_at_its_boundary(op: str, below: bool, equal: bool, above: bool) -> None:
    for balance, want in ((Decimal("4.99"), below), (Decimal(5), equal), (Decimal("5.01"), above)):
        assert ev(f"balance {op} 5", balance=balance) is want, (op, balance)
        # and with the fact on the right: the operands are not swapped
        assert ev(f"5 {op} balance", balance=10 - balance) is want, (op, balance)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_an_ordering_with_null_on_either_side_is_false(op: str) -> None:
    assert not ev(f"customer.exposure_ratio {op} 1")
    assert not ev(f"1 {op} customer.exposure_ratio")
    assert not ev(f"balance {op} amount", balance=Decimal(1))
    assert not ev(f"balance {op} amount", amount=Decimal(1))
    assert ev(f"not (1 {op} customer.exposure_ratio)")  # false, so its negation holds


def test_null_flows_through_arithmetic_negation_and_functions() -> None:
    assert ev("balance + amount == null", balance=Decimal(1))
    assert ev("balance + amount == null", amount=Decimal(1))
    assert not ev("balance * amount > -1", amount=Decimal(1))
    assert ev("-customer.exposure_ratio == null")
    assert not ev("-customer.exposure_ratio < 1")
    assert ev("-balance == -3", balance=Decimal(3))
    assert ev("max(balance, amount) == null", balance=Decimal(1))
    assert ev("min(balance, amount) == null", amount=Decimal(1))
    assert ev("abs(customer.exposure_ratio) == null")
    assert ev("abs(balance) == 3", balance=Decimal(-3))


def test_membership_in_a_missing_list_and_negated_membership() -> None:
    assert not ev('"vip" in tags')
    assert ev('"vip" not in tags')  # a missing list holds nothing, so "not in" holds
    assert not ev('"vip" not in tags', tags=("vip",))
    assert ev('customer.grade in ["A", null]')  # null listed: a missing grade is in
    assert not ev('customer.grade not in ["A", null]')
    assert ev('customer.grade not in ["A", "B"]', customer__grade="C")
    assert not ev('customer.grade not in ["A", "B"]', customer__grade="B")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_and_or_chains_of_every_length_need_every_term(n: int) -> None:
    """Chains of 1 to 3 terms compile to closures, longer ones to a loop: each term counts."""
    conj = " and ".join(f"balance > {i}" for i in range(n))
    assert ev(conj, balance=Decimal(n))
    assert not ev(conj, balance=Decimal(n - 1))  # only the last term fails
    assert not ev(conj)  # every term null
    disj = " or ".join(f"balance == {i}" for i in range(n))
    assert ev(disj, balance=Decimal(n - 1))  # only the last term holds
    assert ev(disj, balance=Decimal(0))  # only the first
    assert not ev(disj, balance=Decimal(n))
    assert not ev(disj)


def test_and_or_not_treat_null_as_not_true() -> None:
    assert not ev("customer.exposure_ratio > 1 and true")
    assert ev("customer.exposure_ratio > 1 or true")
    assert ev("not customer.exposure_ratio > 1")
    assert not ev("not true")
    assert ev("dunning_block == null")
    assert not ev("dunning_block")  # a missing flag is not true
    assert ev("not dunning_block")


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("tags == tags", 6, "cannot compare a list of strings with a list of strings"),
        ("1 in tags", 3, "cannot look for a number in a list of strings"),
        ('balance + "a" > 1', 9, "arithmetic needs numbers, got a number + a string"),
        ('-"a" == 1', 1, "'-' needs a number"),
        ("abs(1, 2) > 0", 1, "abs() takes 1 values"),
        ('max(balance, "a") > 0', 1, "max() needs numbers"),
        ('due_date > date("2026-01-01", "x")', 12, "date() takes one text literal"),
        ("due_date > 5", 10, "cannot compare a date with a number"),
        ("balance > 1 balance", 13, "expected 'and', 'or' or the end of the condition"),
        ("balance not 1", 13, "expected 'in' after 'not'"),
        ("balance in [1 2]", 15, "expected ',' or ']'"),
        ("max(1 2) > 0", 7, "expected ',' or ')'"),
        ("dunning_block and balance", 19, "'and' needs true/false on each side, got a number"),
        ("balance or dunning_block", 1, "'or' needs true/false on each side, got a number"),
        ("balance > １００", 11, "U+FF11 FULLWIDTH DIGIT ONE"),
        ("balance\u3000> 1", 8, "U+3000 IDEOGRAPHIC SPACE"),
        ("balance > ٣", 11, "write digits as 0-9"),
        ("customer.gradе == 'A'", 14, "CYRILLIC SMALL LETTER IE"),
        ("customer.оverdue > 1", 10, "CYRILLIC SMALL LETTER O"),
        ("balance > 1" + "0" * 28, 11, "at most 28 significant digits"),
        ("balance > 0." + "0" * 28 + "1", 11, "at most 28 significant digits"),
        ("x" * 81 + " > 1", 1, "a name of at most 80 characters is needed, this has 81"),
    ],
)
def test_more_refusals_say_what_and_where(text: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        condition(text, FACTS)
    assert message in str(info.value)
    assert info.value.position + 1 == column, str(info.value)


def test_the_largest_literals_and_names_allowed_parse() -> None:
    assert ev("balance < " + "9" * 28, balance=Decimal(1))
    assert ev("balance > 0." + "0" * 27 + "1", balance=Decimal(1))
    assert parse("x" * 80 + " > 1") is not None  # a name of 80 characters is read


def test_nesting_up_to_the_limit_parses_and_one_more_is_refused() -> None:
    assert ev("(" * 63 + "balance > 1" + ")" * 63, balance=Decimal(2))
    with pytest.raises(ExpressionError, match="nested more than 64 levels"):
        parse("(" * 64 + "balance > 1" + ")" * 64)
    assert ev("not " * 63 + "true") is False  # 63 nots: an odd count
    with pytest.raises(ExpressionError, match="nested more than 64 levels"):
        parse("not " * 64 + "true")


CONDITION_TOKENS = [
    *FACTS,
    "and",
    "or",
    "not",
    "in",
    "true",
    "false",
    "null",
    "(",
    ")",
    "[",
    "]",
    ",",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "0",
    "1",
    "0.5",
    "9" * 28,
    "9" * 29,
    '"A"',
    "'vip'",
    '"',
    "min",
    "max",
    "abs",
    "date",
    '"2026-02-30"',
    '"2026-01-31"',
    "１",
    "\u3000",
    "=",
    ";",
    "__import__",
]
fact_values = st.fixed_dictionaries(
    {
        "days_past_due": st.none() | st.decimals(-(10**6), 10**6, places=0),
        "balance": st.none() | st.decimals(-(10**9), 10**9, places=2),
        "amount": st.none() | st.sampled_from([Decimal(0), Decimal("0.00"), Decimal(-1)]),
        "customer.grade": st.none() | st.sampled_from(["A", "D"]),
        "customer.exposure_ratio": st.none() | st.just(Decimal("9e999999")),
        "tags": st.none() | st.just(("vip",)),
        "due_date": st.none() | st.just(date(2026, 1, 31)),
        "dunning_block": st.none() | st.booleans(),
    }
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(CONDITION_TOKENS), max_size=14), fact_values)
def test_any_token_soup_is_refused_with_a_position_or_evaluates_to_true_or_false(
    tokens: list[str], facts: dict[str, Any]
) -> None:
    """Whatever the text: an ExpressionError inside it, or a predicate that answers
    True/False on any facts (nulls, zeros and huge values included), never an exception."""
    text = " ".join(tokens)
    try:
        cond = condition(text, FACTS)
    except ExpressionError as exc:
        assert 0 <= exc.position <= len(text), exc
        return
    assert cond(facts) in (True, False)
