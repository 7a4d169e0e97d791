"""The rule condition language: a small, safe expression grammar.

A condition such as ``days_past_due >= 30 and balance > 1000 and customer.grade in ["C",
"D"]`` is tokenised and parsed into a tree of :class:`Node` objects by a whitelist grammar.
Nothing in a rule file is ever ``eval``-ed: the tree is type-checked against the facts a
subject offers (:func:`check`) and compiled into nested Python closures (:func:`compile_`).
The same tree is what the durable-rules matcher is built from, so both matchers read one
language.

Grammar (lowest precedence first)::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum [("==" | "!=" | "<" | "<=" | ">" | ">=") sum
                       | ["not"] "in" (list | sum)]
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | atom
    atom       := NUMBER | STRING | "true" | "false" | "null" | NAME ("." NAME)*
                | FUNC "(" [expr ("," expr)*] ")" | "(" expr ")" | list
    list       := "[" [expr ("," expr)*] "]"
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from ..errors import ExpressionError as ExpressionError


class Type(StrEnum):
    NUMBER = "number"
    STRING = "string"
    BOOL = "bool"
    DATE = "date"
    STRING_LIST = "list of strings"
    NULL = "null"
    ANY_LIST = "list"


# -- tokens -----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<number>[0-9]+(?:\.[0-9]+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})

MAX_DIGITS = 28
"""Significant digits of a number literal, and the power of ten it may reach: within them
the arithmetic of a condition cannot overflow (a chain of arithmetic is at most
:data:`MAX_DEPTH` deep)."""
MAX_NAME = 80
"""Characters in a fact name."""


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, name, op, keyword, end
    value: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """Tokens up to the first character that cannot start one, which becomes an ``error``
    token: the parser reports it only if it gets that far, so ``__import__('os').x`` is
    refused for its unknown function, the first thing wrong with it."""
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos] == "." and not text[pos + 1 : pos + 2].isascii():
                pos += 1  # customer.оverdue (a Cyrillic o): the letter is the news
            out.append(Token("error", text[pos], pos))
            return out
        kind = m.lastgroup or ""
        if kind != "ws":
            value = m.group()
            if kind == "name" and value in KEYWORDS:
                kind = "keyword"
            out.append(Token(kind, value, pos))
        pos = m.end()
    out.append(Token("end", "", len(text)))
    return out


def _token_error(text: str, tok: Token) -> ExpressionError:
    ch = tok.value
    if ch in "\"'":
        return ExpressionError("unterminated string", text, tok.pos)
    if ch == "=":
        return ExpressionError("'=' is not an operator; compare with '=='", text, tok.pos)
    if not ch.isascii():
        # full-width digits, non-breaking spaces, look-alike letters: say which it is
        name = unicodedata.name(ch, "")
        what = f"U+{ord(ch):04X} {name}".rstrip()
        hint = "; write digits as 0-9" if ch.isdigit() or ch.isnumeric() else ""
        return ExpressionError(
            f"unexpected character {ch!r} ({what}): conditions are written in ASCII "
            f"outside quotes{hint}",
            text,
            tok.pos,
        )
    return ExpressionError(f"unexpected character {ch!r}", text, tok.pos)


# -- tree -------------------------------------------------------------------------------------


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


# -- type checking ------------------------------------------------------------------------------


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


# -- compiling to a predicate ---------------------------------------------------------------------

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
