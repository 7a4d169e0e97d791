"""Canonical text of a condition tree."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from ._tree import Arith, BoolOp, Call, Compare, Fact, ListNode, Literal, Member, Neg, Node, Not

__all__ = ["unparse"]

_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7}


def unparse(node: Node) -> str:
    """Canonical text of a tree; ``parse(unparse(t))`` gives ``t`` back (positions aside)."""
    return _unparse(node, 0)


def _lit(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, date):
        return f'date("{v.isoformat()}")'
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unparse(node: Node, outer: int) -> str:
    if isinstance(node, Literal):
        return _lit(node.value)
    if isinstance(node, Fact):
        return node.path
    if isinstance(node, ListNode):
        return "[" + ", ".join(_unparse(i, 0) for i in node.items) + "]"
    if isinstance(node, Call):
        return f"{node.func}(" + ", ".join(_unparse(a, 0) for a in node.args) + ")"
    if isinstance(node, BoolOp):
        p = _PRECEDENCE[node.op]
        text = f" {node.op} ".join(_unparse(i, p + 1) for i in node.items)
    elif isinstance(node, Not):
        p = _PRECEDENCE["not"]
        text = "not " + _unparse(node.item, p)
    elif isinstance(node, Compare):
        p = _PRECEDENCE["cmp"]
        text = f"{_unparse(node.left, p + 1)} {node.op} {_unparse(node.right, p + 1)}"
    elif isinstance(node, Member):
        p = _PRECEDENCE["cmp"]
        word = "not in" if node.negate else "in"
        text = f"{_unparse(node.item, p + 1)} {word} {_unparse(node.container, p + 1)}"
    elif isinstance(node, Arith):
        p = _PRECEDENCE[node.op]
        text = f"{_unparse(node.left, p)} {node.op} {_unparse(node.right, p + 1)}"
    elif isinstance(node, Neg):
        p = _PRECEDENCE["neg"]
        text = "-" + _unparse(node.item, p)
    else:  # pragma: no cover
        raise TypeError(type(node).__name__)
    return f"({text})" if p < outer else text
