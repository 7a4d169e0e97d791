"""Parsing a condition into a tree by a whitelist grammar (see :mod:`arflow.rules.expr`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from ...errors import ExpressionError
from ._tokens import MAX_DIGITS, MAX_NAME, Token, _token_error, tokenize
from ._tree import (
    FUNCTIONS,
    MAX_DEPTH,
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
    _depth,
)

__all__ = ["parse"]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, tok: Token | None = None) -> ExpressionError:
        t = tok or self.tok
        if t.kind == "error":
            return _token_error(self.text, t)
        found = "the end" if t.kind == "end" else repr(t.value)
        return ExpressionError(f"{message}, found {found}", self.text, t.pos)

    def take(self, kind: str, value: str | None = None) -> Token | None:
        t = self.tok
        if t.kind == kind and (value is None or t.value == value):
            self.i += 1
            return t
        return None

    def expect(self, kind: str, value: str, what: str) -> Token:
        t = self.take(kind, value)
        if t is None:
            raise self.error(f"expected {what}")
        return t

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.error("expected a condition")
        node = self.or_()
        if self.tok.kind != "end":
            raise self.error("expected 'and', 'or' or the end of the condition")
        if _depth(node) > MAX_DEPTH:
            raise ExpressionError(
                f"the condition is nested more than {MAX_DEPTH} levels deep; split it",
                self.text,
                node.pos,
            )
        return node

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the condition is nested more than {MAX_DEPTH} levels deep")

    def _chain(self, op: str, sub: Callable[[], Node]) -> Node:
        first = self.tok
        items = [sub()]
        while self.take("keyword", op):
            items.append(sub())
        return items[0] if len(items) == 1 else BoolOp(first.pos, op, tuple(items))

    def or_(self) -> Node:
        self._deeper()
        node = self._chain("or", self.and_)
        self.depth -= 1
        return node

    def and_(self) -> Node:
        return self._chain("and", self.not_)

    def not_(self) -> Node:
        t = self.take("keyword", "not")
        if t is not None:
            self._deeper()
            node = Not(t.pos, self.not_())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        left = self.sum_()
        t = self.tok
        if t.kind == "op" and t.value in ("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            right = self.sum_()
            node: Node = Compare(t.pos, t.value, left, right)
        elif t.kind == "keyword" and t.value in ("in", "not"):
            negate = False
            if t.value == "not":
                self.i += 1
                negate = True
                self.expect("keyword", "in", "'in' after 'not'")
            else:
                self.i += 1
            container = self.list_() if self.tok.value == "[" else self.sum_()
            node = Member(t.pos, left, container, negate)
        else:
            return left
        nxt = self.tok
        if nxt.kind == "op" and nxt.value in ("==", "!=", "<", "<=", ">", ">="):
            raise self.error("comparisons do not chain; join them with 'and'")
        return node

    def sum_(self) -> Node:
        node = self.product()
        while self.tok.kind == "op" and self.tok.value in ("+", "-"):
            t = self.tok
            self.i += 1
            node = Arith(t.pos, t.value, node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.value in ("*", "/"):
            t = self.tok
            self.i += 1
            node = Arith(t.pos, t.value, node, self.unary())
        return node

    def unary(self) -> Node:
        t = self.take("op", "-")
        if t is not None:
            self._deeper()
            node = Neg(t.pos, self.unary())
            self.depth -= 1
            return node
        return self.atom()

    def list_(self) -> ListNode:
        start = self.expect("op", "[", "'['")
        items: list[Node] = []
        if not self.take("op", "]"):
            while True:
                items.append(self.or_())
                if self.take("op", "]"):
                    break
                self.expect("op", ",", "',' or ']'")
        return ListNode(start.pos, tuple(items))

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "number":
            value = Decimal(t.value)
            digits = len(value.as_tuple().digits)
            if digits > MAX_DIGITS or abs(value.adjusted()) > MAX_DIGITS:
                raise ExpressionError(
                    f"a number of at most {MAX_DIGITS} significant digits, between "
                    f"1e-{MAX_DIGITS} and 1e{MAX_DIGITS}, is needed; this has {digits}",
                    self.text,
                    t.pos,
                )
            self.i += 1
            return Literal(t.pos, value)
        if t.kind == "string":
            self.i += 1
            body = t.value[1:-1]
            return Literal(t.pos, re.sub(r"\\(.)", r"\1", body))
        if t.kind == "keyword" and t.value in ("true", "false", "null"):
            self.i += 1
            return Literal(t.pos, {"true": True, "false": False, "null": None}[t.value])
        if t.kind == "name":
            if len(t.value) > MAX_NAME:
                raise ExpressionError(
                    f"a name of at most {MAX_NAME} characters is needed, this has {len(t.value)}",
                    self.text,
                    t.pos,
                )
            self.i += 1
            if self.tok.kind == "op" and self.tok.value == "(":
                if t.value not in FUNCTIONS:
                    raise ExpressionError(
                        f"unknown function {t.value!r} (known: {', '.join(sorted(FUNCTIONS))})",
                        self.text,
                        t.pos,
                    )
                self.i += 1
                args: list[Node] = []
                if not self.take("op", ")"):
                    while True:
                        args.append(self.or_())
                        if self.take("op", ")"):
                            break
                        self.expect("op", ",", "',' or ')'")
                return Call(t.pos, t.value, tuple(args))
            return Fact(t.pos, t.value)
        if t.kind == "op" and t.value == "(":
            self.i += 1
            node = self.or_()
            self.expect("op", ")", "')'")
            return node
        if t.kind == "op" and t.value == "[":
            return self.list_()
        raise self.error("expected a value, a fact name or '('")


def parse(text: str) -> Node:
    """Parse a condition into a tree, or raise :class:`ExpressionError`."""
    if not isinstance(text, str):
        raise ExpressionError(f"a condition must be text, not {type(text).__name__}", "", 0)
    return _Parser(text).parse()
