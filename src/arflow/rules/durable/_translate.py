"""Conditions as or-of-ands of durable tests: checked trees become formulas over operands
(:class:`_Translator`), then durable JSON (:class:`_Codes`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import methodcaller
from typing import Any, Literal, TypeAlias

from ...errors import UnsupportedForDurable
from ..expr import (
    BoolOp,
    Call,
    Compare,
    Fact,
    ListNode,
    Member,
    Node,
    Not,
    Type,
    check,
    compile_,
    facts_used,
    unparse,
)
from ..expr import Literal as Lit
from ._encode import _KIND, _Operand
from ._host import TERMS_PER_RULE

__all__ = ["Formula", "Key"]

Key: TypeAlias = tuple[str, str]  # ("f", path) | ("v", text) | ("b", text)


@dataclass(frozen=True)
class _Test:
    """One durable test, symbolic until the operands' codes are known.

    ``what``: ``cmp`` (operand vs literal), ``ref`` (operand vs operand), ``null``, ``truth``
    (a true/false operand), ``any`` (a literal in a list operand). ``pos`` False negates it
    with arflow's semantics (``not`` is true when the test is not true, null included).
    """

    what: str
    key: Key
    op: str = "=="
    value: Any = None
    other: Key | None = None
    pos: bool = True


@dataclass(frozen=True)
class _All:
    items: tuple[Formula, ...]


@dataclass(frozen=True)
class _Any:
    items: tuple[Formula, ...]


Formula: TypeAlias = bool | _Test | _All | _Any

_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEG = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_DOP = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


def _all(items: Iterable[Formula]) -> Formula:
    out: list[Formula] = []
    for i in items:
        if i is False:
            return False
        if i is not True:
            out.append(i)
    return True if not out else out[0] if len(out) == 1 else _All(tuple(out))


def _any(items: Iterable[Formula]) -> Formula:
    out: list[Formula] = []
    for i in items:
        if i is True:
            return True
        if i is not False:
            out.append(i)
    return False if not out else out[0] if len(out) == 1 else _Any(tuple(out))


def _dnf(f: Formula, rule: str) -> list[tuple[_Test, ...]]:
    """Flatten to an or of ands; durable takes each and as its own rule, without nesting."""
    if f is True:
        return [()]
    if f is False:
        return []
    if isinstance(f, _Test):
        return [(f,)]
    if isinstance(f, _Any):
        terms = [t for i in f.items for t in _dnf(i, rule)]
    else:
        terms = [()]
        for i in f.items:
            terms = [a + b for a in terms for b in _dnf(i, rule)]
            if len(terms) > TERMS_PER_RULE:
                break
    if len(terms) > TERMS_PER_RULE:
        raise UnsupportedForDurable(
            f"rule {rule!r}: its condition flattens to more than {TERMS_PER_RULE} alternatives"
        )
    return [tuple(dict.fromkeys(t)) for t in dict.fromkeys(terms)]


class _Translator:
    """Turns checked trees of one subject into formulas over operands (pass 1 of 2)."""

    def __init__(self, types: Mapping[str, Type]) -> None:
        self.types = types
        self.operands: dict[Key, _Operand] = {}

    def operand(self, node: Node) -> tuple[Literal["const"], Any] | tuple[Literal["op"], Key]:
        if not facts_used(node):
            return "const", compile_(node)({})
        if isinstance(node, Fact):
            key: Key = ("f", node.path)
            t = self.types[node.path]
            getter: Callable[[Mapping[str, Any]], Any] = methodcaller("get", node.path)
        else:
            text = unparse(node)
            t = check(node, self.types, text, want=None)
            key = ("v", text)
            getter = compile_(node)
        if key not in self.operands:
            self.operands[key] = _Operand(_KIND[t], getter)
        return "op", key

    def derived(self, node: Node, pos: bool) -> Formula:
        """A test durable cannot express natively, computed in Python as a true/false fact."""
        key: Key = ("b", unparse(node))
        if key not in self.operands:
            fn = compile_(node)
            self.operands[key] = _Operand("bool", lambda f: fn(f) is True)
        return _Test("truth", key, pos=pos)

    def formula(self, node: Node, pos: bool = True) -> Formula:
        if isinstance(node, Lit):
            return (node.value is True) == pos
        if isinstance(node, Not):
            return self.formula(node.item, not pos)
        if isinstance(node, BoolOp):
            parts = [self.formula(i, pos) for i in node.items]
            return _all(parts) if (node.op == "and") == pos else _any(parts)
        if isinstance(node, Fact):
            _, key = self.operand(node)
            return _Test("truth", key, pos=pos)
        if isinstance(node, Compare):
            return self.compare(node, pos)
        if isinstance(node, Member):
            return self.member(node, pos)
        if isinstance(node, Call) or not facts_used(node):
            return (compile_(node)({}) is True) == pos
        return self.derived(node, pos)

    def compare(self, node: Compare, pos: bool) -> Formula:
        left, right = self.operand(node.left), self.operand(node.right)
        op = node.op
        if left[0] == "const" and right[0] == "const":
            return (compile_(node)({}) is True) == pos
        if left[0] == "const":
            left, right, op = right, left, _FLIP[op]
        key = left[1]
        a = self.operands[key]
        if right[0] == "const":
            value = right[1]
            if value is None:
                if op not in ("==", "!="):
                    return not pos  # an ordering with null is false
                if a.kind == "list":
                    return self.derived(node, pos)
                return _Test("null", key, pos=(op == "==") == pos)
            if a.kind == "list":  # pragma: no cover - the checker refuses it
                return self.derived(node, pos)
            if a.kind == "rank":
                a.literals.add(value)
            return _Test("cmp", key, op, value, pos=pos)
        other = right[1]
        b = self.operands[other]
        if a.kind == b.kind and a.kind in ("date", "bool"):
            return _Test("ref", key, op, other=other, pos=pos)
        return self.derived(node, pos)

    def member(self, node: Member, pos: bool) -> Formula:
        inside = pos != node.negate  # the formula says "item is in the container"
        item = self.operand(node.item)
        if isinstance(node.container, ListNode):
            elems = [self.operand(e) for e in node.container.items]
            if item[0] == "const" or any(e[0] != "const" for e in elems):
                if item[0] == "const" and all(e[0] == "const" for e in elems):
                    return (compile_(node)({}) is True) == pos
                return self.derived(node, pos)
            key = item[1]
            a = self.operands[key]
            if a.kind == "list":
                return self.derived(node, pos)
            tests: list[Formula] = []
            for _, value in elems:
                if value is None:
                    tests.append(_Test("null", key, pos=inside))
                else:
                    if a.kind == "rank":
                        a.literals.add(value)
                    tests.append(_Test("cmp", key, "==", value, pos=inside))
            return _any(tests) if inside else _all(tests)
        container = self.operand(node.container)
        if item[0] == "const" and container[0] == "op" and isinstance(item[1], str):
            lst = self.operands[container[1]]
            if lst.kind == "list":
                lst.literals.add(item[1])
                return _Test("any", container[1], value=item[1], pos=inside)
        return self.derived(node, pos)


class _Codes:
    """Pass 2: durable property names for operands, and durable JSON for tests."""

    def __init__(self, operands: Mapping[Key, _Operand]) -> None:
        self.operands = operands
        self._names = (f"p{i}" for i in itertools.count())

    def prop(self, key: Key, side: str) -> str:
        a = self.operands[key]
        if side == "hi" and a.kind != "bool":
            if not a.hi:
                a.hi = next(self._names)
            return a.hi
        if not a.lo:
            a.lo = next(self._names)
        return a.lo

    def literal(self, key: Key, value: Any) -> int:
        return self.operands[key].code(value)

    def render(self, t: _Test) -> tuple[dict[str, Any], set[str]]:
        if t.what == "truth":
            p = self.prop(t.key, "lo")
            return ({p: 1} if t.pos else {"$neq": {p: 1}}), {p}
        if t.what == "null":
            p = self.prop(t.key, "lo")
            lo = self.operands[t.key].sentinels[0]
            return ({p: lo} if t.pos else {"$neq": {p: lo}}), {p}
        if t.what == "any":
            p = self.prop(t.key, "lo")
            code = self.literal(t.key, t.value)
            if t.pos:
                return {"$iany": {p: {"$i": code}}}, {p}
            return {"$iall": {p: {"$neq": {"$i": code}}}}, {p}
        op = t.op if t.pos else _NEG[t.op]
        if op in ("==", "!="):
            a_side = b_side = "lo"
        else:
            missing_ok = not t.pos
            a_side = "lo" if (op in ("<", "<=")) == missing_ok else "hi"
            b_side = "hi" if a_side == "lo" else "lo"
        p = self.prop(t.key, a_side)
        props = {p}
        rhs: Any
        if t.what == "ref":
            assert t.other is not None
            q = self.prop(t.other, b_side)
            props.add(q)
            rhs = {"$m": q}
        else:
            rhs = self.literal(t.key, t.value)
        return ({p: rhs} if op == "==" else {_DOP[op]: {p: rhs}}), props
