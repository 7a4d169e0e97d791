"""Type-checking a condition tree against the facts a subject offers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from ...errors import ExpressionError
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
    _children,
)
from ._types import Type

__all__ = ["check"]


_COMPARABLE = {Type.NUMBER, Type.STRING, Type.DATE, Type.BOOL}


def check(
    node: Node, facts: Mapping[str, Type], text: str, *, want: Type | None = Type.BOOL
) -> Type:
    """Type-check a tree against the facts a subject offers; return the tree's type.

    Unknown facts, comparing a number with text, arithmetic on text, a condition that is
    not true/false: each is an :class:`ExpressionError` at load time, not at 2 a.m.
    ``want`` is the type the tree must have (``None``: any; ``ANY_LIST``: any list).
    """
    t = _type(node, facts, text)
    if want is Type.BOOL and t is not Type.BOOL:
        raise ExpressionError(f"a condition must be true or false, this is a {t}", text, node.pos)
    lists = (Type.STRING_LIST, Type.ANY_LIST)
    if want is Type.ANY_LIST and t not in lists:
        raise ExpressionError(f"a list is needed here, this is a {t}", text, node.pos)
    if want is not None and want not in (Type.BOOL, Type.ANY_LIST) and t not in (want, Type.NULL):
        raise ExpressionError(f"a {want} is needed here, this is a {t}", text, node.pos)
    return t


def _type(node: Node, facts: Mapping[str, Type], text: str) -> Type:
    def err(msg: str, at: Node) -> ExpressionError:
        return ExpressionError(msg, text, at.pos)

    if isinstance(node, Literal):
        v = node.value
        if v is None:
            return Type.NULL
        if isinstance(v, bool):
            return Type.BOOL
        if isinstance(v, Decimal):
            return Type.NUMBER
        if isinstance(v, date):
            return Type.DATE
        return Type.STRING
    if isinstance(node, Fact):
        if node.path not in facts:
            close = sorted(f for f in facts if f.split(".")[-1] == node.path.split(".")[-1])
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise err(f"unknown fact {node.path!r}{hint}", node)
        return facts[node.path]
    if isinstance(node, BoolOp | Not):
        for child in _children(node):
            ct = _type(child, facts, text)
            if ct is not Type.BOOL:
                word = node.op if isinstance(node, BoolOp) else "not"
                raise err(f"'{word}' needs true/false on each side, got a {ct}", child)
        return Type.BOOL
    if isinstance(node, Compare):
        lt, rt = _type(node.left, facts, text), _type(node.right, facts, text)
        if Type.NULL in (lt, rt):
            if node.op not in ("==", "!="):
                raise err(f"only == and != can compare with null, not {node.op}", node)
            return Type.BOOL
        if lt not in _COMPARABLE or lt != rt:
            raise err(f"cannot compare a {lt} with a {rt}", node)
        if lt is Type.BOOL and node.op not in ("==", "!="):
            raise err(f"true/false values only compare with == and !=, not {node.op}", node)
        return Type.BOOL
    if isinstance(node, Member):
        it = _type(node.item, facts, text)
        if isinstance(node.container, ListNode):
            for el in node.container.items:
                et = _type(el, facts, text)
                if et != it and et is not Type.NULL:
                    raise err(f"a list for a {it} holds a {et}", el)
            return Type.BOOL
        ct = _type(node.container, facts, text)
        if ct is Type.STRING_LIST and it is Type.STRING:
            return Type.BOOL
        raise err(f"cannot look for a {it} in a {ct}", node)
    if isinstance(node, Arith):
        lt, rt = _type(node.left, facts, text), _type(node.right, facts, text)
        if lt is Type.NUMBER and rt is Type.NUMBER:
            return Type.NUMBER
        raise err(f"arithmetic needs numbers, got a {lt} {node.op} a {rt}", node)
    if isinstance(node, Neg):
        if _type(node.item, facts, text) is not Type.NUMBER:
            raise err("'-' needs a number", node)
        return Type.NUMBER
    if isinstance(node, Call):
        types = [_type(a, facts, text) for a in node.args]
        if node.func == "date":
            a = node.args[0] if len(node.args) == 1 else None
            if not (isinstance(a, Literal) and isinstance(a.value, str)):
                raise err('date() takes one text literal such as date("2026-01-31")', node)
            try:
                date.fromisoformat(a.value)
            except ValueError:
                raise err(f"{a.value!r} is not a date (YYYY-MM-DD)", a) from None
            return Type.DATE
        arity = {"abs": (1, 1), "min": (2, 99), "max": (2, 99)}[node.func]
        if not arity[0] <= len(types) <= arity[1]:
            raise err(f"{node.func}() takes {arity[0]}{'+' if arity[1] > 1 else ''} values", node)
        if any(t is not Type.NUMBER for t in types):
            raise err(f"{node.func}() needs numbers", node)
        return Type.NUMBER
    if isinstance(node, ListNode):
        return Type.ANY_LIST
    raise err(f"unsupported expression {type(node).__name__}", node)  # pragma: no cover
