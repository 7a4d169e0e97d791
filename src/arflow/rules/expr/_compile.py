"""Compiling a checked condition tree into nested Python closures, and :class:`Condition`:
parsed, checked and compiled together."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from ._check import check
from ._parser import parse
from ._tree import (
    Arith,
    BoolOp,
    Call,
    Compare,
    Fact,
    ListNode,
    Literal,
    Member,
    Neg,
    Node,
    Not,
    facts_used,
)
from ._types import Type

__all__ = ["Condition", "Facts", "Fn", "compile_", "condition"]

Facts = Mapping[str, Any]
Fn = Callable[[Facts], Any]

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


_FUNCS: dict[str, Callable[..., Any]] = {
    "min": lambda *v: min(v),
    "max": lambda *v: max(v),
    "abs": lambda v: abs(v),
}


def _fold_and(parts: list[Fn]) -> Fn:
    # Closures for short chains (about twice as fast per call as a loop); a loop for long
    # ones, so that a chain of hundreds of terms neither builds nor runs a deep recursion.
    if len(parts) == 1:
        only = parts[0]
        return lambda f: only(f) is True
    if len(parts) == 2:
        a, b = parts
        return lambda f: a(f) is True and b(f) is True
    if len(parts) == 3:
        a, b, c = parts
        return lambda f: a(f) is True and b(f) is True and c(f) is True
    chain = tuple(parts)

    def all_true(f: Facts) -> bool:
        return all(p(f) is True for p in chain)

    return all_true


def _fold_or(parts: list[Fn]) -> Fn:
    if len(parts) == 1:
        only = parts[0]
        return lambda f: only(f) is True
    if len(parts) == 2:
        a, b = parts
        return lambda f: a(f) is True or b(f) is True
    if len(parts) == 3:
        a, b, c = parts
        return lambda f: a(f) is True or b(f) is True or c(f) is True
    chain = tuple(parts)

    def any_true(f: Facts) -> bool:
        return any(p(f) is True for p in chain)

    return any_true


def compile_(node: Node) -> Fn:
    """Turn a checked tree into a function of a facts mapping.

    Missing values are ``None``: an ordering comparison with ``None`` is false (as in SQL),
    ``== null`` / ``!= null`` test for it, and arithmetic with ``None`` gives ``None``.
    """
    if isinstance(node, Literal):
        v = node.value
        return lambda _f: v
    if isinstance(node, Fact):
        path = node.path
        return lambda f: f.get(path)
    if isinstance(node, BoolOp):
        parts = [compile_(i) for i in node.items]
        return _fold_and(parts) if node.op == "and" else _fold_or(parts)
    if isinstance(node, Not):
        inner = compile_(node.item)
        return lambda f: inner(f) is not True
    if isinstance(node, Compare):
        left, right = compile_(node.left), compile_(node.right)
        if node.op == "==":
            return lambda f: bool(left(f) == right(f))
        if node.op == "!=":
            return lambda f: bool(left(f) != right(f))
        cmp = _CMP[node.op]

        def ordered(f: Facts) -> bool:
            a, b = left(f), right(f)
            return a is not None and b is not None and cmp(a, b)

        return ordered
    if isinstance(node, Member):
        item = compile_(node.item)
        negate = node.negate
        if isinstance(node.container, ListNode) and all(
            isinstance(i, Literal) for i in node.container.items
        ):
            values = frozenset(i.value for i in node.container.items)  # type: ignore[attr-defined]
            return lambda f: (item(f) in values) != negate
        container = compile_(node.container)

        def member(f: Facts) -> bool:
            c = container(f)
            return (c is not None and item(f) in c) != negate

        return member
    if isinstance(node, ListNode):
        items = [compile_(i) for i in node.items]
        return lambda f: [i(f) for i in items]
    if isinstance(node, Arith):
        left, right = compile_(node.left), compile_(node.right)
        op = node.op

        def arith(f: Facts) -> Any:
            a, b = left(f), right(f)
            if a is None or b is None:
                return None
            # division by zero, and a result beyond what Decimal holds, give null (unknown)
            try:
                if op == "+":
                    return a + b
                if op == "-":
                    return a - b
                if op == "*":
                    return a * b
                return a / b
            except ArithmeticError:  # decimal's DivisionByZero, Overflow, InvalidOperation
                return None

        return arith
    if isinstance(node, Neg):
        inner = compile_(node.item)
        return lambda f: None if (v := inner(f)) is None else -v
    if isinstance(node, Call):
        if node.func == "date":
            d = date.fromisoformat(node.args[0].value)  # type: ignore[attr-defined]
            return lambda _f: d
        args = [compile_(a) for a in node.args]
        fn = _FUNCS[node.func]

        def call(f: Facts) -> Any:
            vals = [a(f) for a in args]
            return None if any(v is None for v in vals) else fn(*vals)

        return call
    raise TypeError(f"cannot compile {type(node).__name__}")  # pragma: no cover


@dataclass(frozen=True)
class Condition:
    """A parsed, checked and compiled condition, with the text it came from."""

    text: str
    tree: Node
    facts: frozenset[str]
    predicate: Fn

    def __call__(self, facts: Facts) -> bool:
        return self.predicate(facts) is True


def condition(text: str, facts: Mapping[str, Type]) -> Condition:
    """Parse, check and compile ``text`` against the facts a subject offers."""
    tree = parse(text)
    check(tree, facts, text)
    return Condition(text, tree, frozenset(facts_used(tree)), compile_(tree))
