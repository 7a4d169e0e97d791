"""Condition bounds: the interval of a numeric fact under which a condition can hold."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arflow.rules.expr import (
    UNBOUNDED,
    Interval,
    Type,
    condition,
    contradictions,
    interval,
    lower_bound,
)

FACTS = {"days_past_due": Type.NUMBER, "balance": Type.NUMBER, "customer.grade": Type.STRING}
PROPS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
D = Decimal


def iv(text: str, fact: str = "days_past_due") -> Interval:
    return interval(condition(text, FACTS), fact)


@pytest.mark.parametrize(
    ("text", "described"),
    [
        ("days_past_due > 30", "days_past_due > 30"),
        ("days_past_due >= 30 and balance > 0", "days_past_due >= 30"),
        ("30 < days_past_due", "days_past_due > 30"),
        ("days_past_due < 0", "days_past_due < 0"),
        ("days_past_due > -5", "days_past_due > -5"),
        ("days_past_due > 3 and days_past_due <= 10", "3 < days_past_due <= 10"),
        ("days_past_due == 7", "days_past_due == 7"),
        ("days_past_due != 7", "any value"),
        ("days_past_due in [3, 1, 9]", "1 <= days_past_due <= 9"),
        ("days_past_due not in [3, 1, 9]", "any value"),
        ("days_past_due < 5 or days_past_due > 50", "any value"),
        (
            "days_past_due > 5 and days_past_due < 9 or days_past_due == 20",
            "5 < days_past_due <= 20",
        ),
        ("days_past_due > 10 and days_past_due < 5", "no value"),
        ("not (days_past_due > 10)", "any value"),
        ("days_past_due + 1 > 10", "any value"),
        ("days_past_due > balance", "any value"),
        ("balance > 10", "any value"),
        ('customer.grade == "A"', "any value"),
    ],
)
def test_intervals(text: str, described: str) -> None:
    assert iv(text).describe("days_past_due") == described


def test_contradictions() -> None:
    c = condition("balance > 10 and balance < 5", FACTS)
    assert contradictions(c) == ["balance"]
    assert contradictions(condition("balance > 10 and balance <= 10", FACTS)) == ["balance"]
    assert contradictions(condition("balance >= 10 and balance <= 10", FACTS)) == []
    assert contradictions(
        condition("days_past_due > 1 and balance == 3 and balance == 4", FACTS)
    ) == ["balance"]
    # a dead branch of an 'or' leaves the whole condition possible
    assert (
        contradictions(condition("balance > 10 and balance < 5 or days_past_due > 3", FACTS)) == []
    )
    assert contradictions(condition("balance > 10 or balance < 5", FACTS)) == []


def test_meets_days() -> None:
    assert not iv("days_past_due < 0").meets_days(100, 100)
    assert iv("days_past_due < 0").meets_days(-7, -7)
    assert not iv("days_past_due > 3 and days_past_due < 4").meets_days(-1000, None)
    assert iv("days_past_due > 3.5 and days_past_due < 4.5").meets_days(0, None)
    assert not iv("days_past_due > 30").meets_days(1, 30)
    assert iv("days_past_due >= 30").meets_days(1, 30)
    assert iv("days_past_due > 30").meets_days(1, None)
    assert UNBOUNDED.meets_days(5, 5)


# -- properties ---------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(-20, 20).map(str),
    st.decimals(-20, 20, places=1, allow_nan=False, allow_infinity=False).map(lambda d: f"{d:f}"),
)
names = st.sampled_from(["days_past_due", "balance"])
ops = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])


@st.composite
def atoms(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 5))
    name, op, n = draw(names), draw(ops), draw(numbers)
    if kind == 0:
        return f"{n} {op} {name}"
    if kind == 1:
        items = draw(st.lists(numbers, min_size=1, max_size=3))
        return f"{name} {draw(st.sampled_from(['in', 'not in']))} [{', '.join(items)}]"
    if kind == 2:
        return f"{name} + 1 {op} {n}"
    if kind == 3:
        return f"days_past_due {op} balance"
    return f"{name} {op} {n}"


def conditions() -> st.SearchStrategy[str]:
    return st.recursive(
        atoms(),
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(" + " and ".join(xs) + ")"),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(" + " or ".join(xs) + ")"),
            inner.map(lambda x: f"not {x}"),
        ),
        max_leaves=8,
    )


values = st.one_of(st.none(), st.integers(-25, 25).map(D), numbers.map(D))


@PROPS
@given(conditions(), names)
def test_lower_bound_is_the_intervals_whole_lower_end(text: str, fact: str) -> None:
    """What the engine's candidate windows read: no condition, no bound."""
    c = condition(text, FACTS)
    low = lower_bound(c, fact)
    assert low is None or isinstance(low, int)
    assert lower_bound(None, fact) is None


@PROPS
@given(conditions(), values, values)
def test_every_value_that_makes_a_condition_true_is_in_its_interval(
    text: str, due: Decimal | None, balance: Decimal | None
) -> None:
    c = condition(text, FACTS)
    facts = {"days_past_due": due, "balance": balance}
    if c(facts):
        for fact in ("days_past_due", "balance"):
            found = interval(c, fact)
            assert found == UNBOUNDED or facts[fact] in found, (fact, found)
        assert contradictions(c) == []


@PROPS
@given(conditions(), st.integers(-25, 25), st.one_of(st.none(), st.integers(0, 30)))
def test_meets_days_is_whole_numbers_in_both(text: str, lo: int, width: int | None) -> None:
    found = interval(condition(text, FACTS), "days_past_due")
    hi = None if width is None else lo + width
    upto = (hi if hi is not None else lo + 60) + 1
    assert found.meets_days(lo, hi) == any(D(x) in found for x in range(lo, upto))
