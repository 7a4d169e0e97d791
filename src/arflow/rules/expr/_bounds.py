"""Condition bounds: the values of a numeric fact under which a condition can hold.

An interval analysis over the condition tree: a comparison of a fact with a number bounds
it, ``and`` intersects, ``or`` takes the hull of the union, and anything else leaves the fact
unbounded. The result is a sound over-approximation (every value that makes the condition
true lies inside it), so an empty interval proves the condition can never hold. The engine
uses :func:`lower_bound` to find the receivables an alert or lock threshold can have just
crossed; lint uses :func:`interval` to find steps that can never fire and conditions that
contradict themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ._compile import Condition
from ._tree import BoolOp, Compare, Fact, ListNode, Literal, Member, Neg, Node

__all__ = ["UNBOUNDED", "Interval", "contradictions", "interval", "lower_bound", "numeric_facts"]

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class Interval:
    """Numbers from ``lo`` to ``hi`` (None: unbounded on that side), each end open or
    closed; empty when no number lies in it."""

    lo: Decimal | None = None
    hi: Decimal | None = None
    lo_open: bool = False
    hi_open: bool = False

    @property
    def empty(self) -> bool:
        """No number lies in it."""
        if self.lo is None or self.hi is None:
            return False
        return self.lo > self.hi or (self.lo == self.hi and (self.lo_open or self.hi_open))

    def __and__(self, other: Interval) -> Interval:
        """The intersection: the values in both."""
        lo, lo_open = self.lo, self.lo_open
        if other.lo is not None and (
            lo is None or other.lo > lo or (other.lo == lo and other.lo_open)
        ):
            lo, lo_open = other.lo, other.lo_open
        hi, hi_open = self.hi, self.hi_open
        if other.hi is not None and (
            hi is None or other.hi < hi or (other.hi == hi and other.hi_open)
        ):
            hi, hi_open = other.hi, other.hi_open
        return Interval(lo, hi, lo_open, hi_open)

    def hull(self, other: Interval) -> Interval:
        """The smallest interval holding both (an empty one adds nothing)."""
        if self.empty:
            return other
        if other.empty:
            return self
        if self.lo is None or other.lo is None:
            lo, lo_open = None, False
        elif self.lo == other.lo:
            lo, lo_open = self.lo, self.lo_open and other.lo_open
        else:
            lo, lo_open = (
                (self.lo, self.lo_open) if self.lo < other.lo else (other.lo, other.lo_open)
            )
        if self.hi is None or other.hi is None:
            hi, hi_open = None, False
        elif self.hi == other.hi:
            hi, hi_open = self.hi, self.hi_open and other.hi_open
        else:
            hi, hi_open = (
                (self.hi, self.hi_open) if self.hi > other.hi else (other.hi, other.hi_open)
            )
        return Interval(lo, hi, lo_open, hi_open)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int | Decimal) or isinstance(value, bool):
            return False
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        return not (
            self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi))
        )

    def meets_days(self, lo: int, hi: int | None) -> bool:
        """Whether a whole number from ``lo`` to ``hi`` (None: no end) lies in it."""
        days = Interval(Decimal(lo), None if hi is None else Decimal(hi))
        both = self & days
        if both.empty:
            return False
        assert both.lo is not None
        first = int(both.lo.to_integral_value(rounding="ROUND_FLOOR"))
        first = first if first in both else first + 1
        return first in both

    def describe(self, name: str) -> str:
        """The interval as a condition on ``name``: ``days_past_due >= 30``, ``0 < x <= 5``."""
        if self.empty:
            return "no value"
        if self.lo is None and self.hi is None:
            return "any value"
        lo = None if self.lo is None else format(self.lo, "f")
        hi = None if self.hi is None else format(self.hi, "f")
        if self.lo is not None and self.lo == self.hi:
            return f"{name} == {lo}"
        if self.hi is None:
            return f"{name} {'>' if self.lo_open else '>='} {lo}"
        if self.lo is None:
            return f"{name} {'<' if self.hi_open else '<='} {hi}"
        return f"{lo} {'<' if self.lo_open else '<='} {name} {'<' if self.hi_open else '<='} {hi}"


UNBOUNDED = Interval()
_EMPTY = Interval(Decimal(1), Decimal(0))


def _number(node: Node) -> Decimal | None:
    """The value of a numeric constant (``5``, ``-2.5``), or None."""
    if isinstance(node, Neg):
        inner = _number(node.item)
        return None if inner is None else -inner
    if isinstance(node, Literal) and isinstance(node.value, Decimal):
        return node.value
    return None


def _compare(op: str, value: Decimal) -> Interval:
    """The values ``x`` with ``x OP value``."""
    if op == "<":
        return Interval(hi=value, hi_open=True)
    if op == "<=":
        return Interval(hi=value)
    if op == ">":
        return Interval(lo=value, lo_open=True)
    if op == ">=":
        return Interval(lo=value)
    if op == "==":
        return Interval(value, value)
    return UNBOUNDED  # != leaves all but one value


def _is_fact(node: Node, fact: str) -> bool:
    return isinstance(node, Fact) and node.path == fact


def interval(cond: Condition | Node | None, fact: str) -> Interval:
    """The values of the numeric ``fact`` under which ``cond`` can be true (a hull: every
    such value lies inside; an empty interval means the condition never holds)."""
    if cond is None:
        return UNBOUNDED
    node = cond.tree if isinstance(cond, Condition) else cond
    return _interval(node, fact)


def _interval(node: Node, fact: str) -> Interval:
    if isinstance(node, BoolOp):
        parts = [_interval(i, fact) for i in node.items]
        if node.op == "and":
            out = UNBOUNDED
            for p in parts:
                out = out & p
            return out
        out = _EMPTY
        for p in parts:
            out = out.hull(p)
        return out
    if isinstance(node, Compare):
        if _is_fact(node.left, fact):
            value, op = _number(node.right), node.op
        elif _is_fact(node.right, fact):
            value, op = _number(node.left), _FLIP[node.op]
        else:
            return UNBOUNDED
        return UNBOUNDED if value is None else _compare(op, value)
    if (
        isinstance(node, Member)
        and not node.negate
        and _is_fact(node.item, fact)
        and isinstance(node.container, ListNode)
    ):
        values = [_number(i) for i in node.container.items]
        if any(v is None for v in values):
            return UNBOUNDED
        out = _EMPTY
        for v in values:
            assert v is not None
            out = out.hull(Interval(v, v))
        return out
    return UNBOUNDED


def numeric_facts(cond: Condition | Node) -> list[str]:
    """The facts ``cond`` compares with a number, in the order they first appear."""
    node = cond.tree if isinstance(cond, Condition) else cond
    seen: dict[str, None] = {}
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, BoolOp):
            stack.extend(reversed(n.items))
        elif isinstance(n, Compare):
            for side, other in ((n.left, n.right), (n.right, n.left)):
                if isinstance(side, Fact) and _number(other) is not None:
                    seen.setdefault(side.path)
        elif isinstance(n, Member) and isinstance(n.item, Fact):
            seen.setdefault(n.item.path)
    return list(seen)


def contradictions(cond: Condition | Node) -> list[str]:
    """The facts for which no value lets ``cond`` hold: it contradicts itself."""
    return [f for f in numeric_facts(cond) if interval(cond, f).empty]


def lower_bound(cond: Condition | None, fact: str) -> int | None:
    """N when ``cond`` is ``fact > N - 1`` or ``fact >= N``, alone or in a top-level ``and``.

    Deliberately narrower than :func:`interval` (what the engine's candidate windows were
    measured with): only ``fact > literal`` and ``fact >= literal``, the literal truncated
    to a whole number."""
    if cond is None:
        return None
    tree = cond.tree
    parts = tree.items if isinstance(tree, BoolOp) and tree.op == "and" else (tree,)
    bound: int | None = None
    for p in parts:
        if (
            isinstance(p, Compare)
            and isinstance(p.left, Fact)
            and p.left.path == fact
            and isinstance(p.right, Literal)
            and p.op in (">", ">=")
        ):
            n = int(p.right.value) + (1 if p.op == ">" else 0)
            bound = n if bound is None else max(bound, n)
    return bound
