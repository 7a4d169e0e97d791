"""The condition tree: the nodes a parsed condition is made of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "Arith",
    "BoolOp",
    "Call",
    "Compare",
    "Fact",
    "ListNode",
    "Literal",
    "Member",
    "Neg",
    "Node",
    "Not",
    "facts_used",
]


@dataclass(frozen=True)
class Node:
    pos: int


@dataclass(frozen=True)
class Literal(Node):
    value: Any  # Decimal, str, bool, date or None


@dataclass(frozen=True)
class Fact(Node):
    path: str


@dataclass(frozen=True)
class ListNode(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Compare(Node):
    op: str  # == != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True)
class Member(Node):
    item: Node
    container: Node
    negate: bool


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # and, or
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    item: Node


@dataclass(frozen=True)
class Arith(Node):
    op: str  # + - * /
    left: Node
    right: Node


@dataclass(frozen=True)
class Neg(Node):
    item: Node


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]


FUNCTIONS = frozenset({"min", "max", "abs", "date"})


MAX_DEPTH = 64  # deeper trees are refused: checking and compiling them recurse


def _depth(root: Node) -> int:
    """The height of a tree, without recursion (a long ``a + b + ...`` is left-deep)."""
    best = 0
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        stack.extend((child, d + 1) for child in _children(node))
    return best


def facts_used(node: Node) -> set[str]:
    """Every fact path a tree reads (for lint, and to compute only the facts needed)."""
    if isinstance(node, Fact):
        return {node.path}
    out: set[str] = set()
    for child in _children(node):
        out |= facts_used(child)
    return out


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, ListNode | BoolOp):
        return node.items
    if isinstance(node, Compare | Arith):
        return (node.left, node.right)
    if isinstance(node, Member):
        return (node.item, node.container)
    if isinstance(node, Not | Neg):
        return (node.item,)
    if isinstance(node, Call):
        return node.args
    return ()
