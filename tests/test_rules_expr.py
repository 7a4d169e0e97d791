"""The condition language: parsing, refusals with positions, types, evaluation."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
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
