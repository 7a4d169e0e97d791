"""Tokens of the condition language: numbers, strings, names, operators and keywords."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ...errors import ExpressionError

__all__ = ["KEYWORDS", "MAX_DIGITS", "MAX_NAME", "Token", "tokenize"]

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
