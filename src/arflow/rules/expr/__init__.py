"""The rule condition language: a small, safe expression grammar.

A condition such as ``days_past_due >= 30 and balance > 1000 and customer.grade in ["C",
"D"]`` is tokenised and parsed into a tree of :class:`Node` objects by a whitelist grammar.
Nothing in a rule file is ever ``eval``-ed: the tree is type-checked against the facts a
subject offers (:func:`check`) and compiled into nested Python closures (:func:`compile_`).
The same tree is what the durable-rules matcher is built from, so both matchers read one
language, and what condition bounds are read from (:func:`interval`, :func:`lower_bound`):
the values of a numeric fact under which a condition can hold.

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

from ...errors import ExpressionError
from ._bounds import UNBOUNDED, Interval, contradictions, interval, lower_bound, numeric_facts
from ._check import check
from ._compile import Condition, Facts, Fn, compile_, condition
from ._parser import parse
from ._tokens import KEYWORDS, MAX_DIGITS, MAX_NAME, Token, tokenize
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
    facts_used,
)
from ._types import Type
from ._unparse import unparse

__all__ = [
    "FUNCTIONS",
    "KEYWORDS",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_NAME",
    "UNBOUNDED",
    "Arith",
    "BoolOp",
    "Call",
    "Compare",
    "Condition",
    "ExpressionError",
    "Fact",
    "Facts",
    "Fn",
    "Interval",
    "ListNode",
    "Literal",
    "Member",
    "Neg",
    "Node",
    "Not",
    "Token",
    "Type",
    "check",
    "compile_",
    "condition",
    "contradictions",
    "facts_used",
    "interval",
    "lower_bound",
    "numeric_facts",
    "parse",
    "tokenize",
    "unparse",
]
