"""Checks made when a template is compiled: a limit the source itself breaks
(``center(10**9)``) fails then, so lint finds it; and the code generator that routes
loops, ``~``, slices and comparisons through the sandbox's checks."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from string import Formatter
from typing import Any

from jinja2 import nodes as jinja_nodes
from jinja2.compiler import CodeGenerator, Frame

from ._filters import _PRINTF, _lipsum, _range
from ._limits import (
    _LOOP_FILTER,
    _MAX_EXPONENT,
    _MAX_POWER_BITS,
    _MAX_REPEAT,
    MAX_TEXT,
    _digits,
    _Exceeded,
    _shown,
    _StaticLimit,
    _width,
)

# -- checks of the source, made when a template is compiled -----------------------------------------

_UNKNOWN: Any = object()
_STATIC_WIDTHS = {
    "center": [(0, "width", "|center width", MAX_TEXT)],
    "indent": [(0, "width", "|indent width", MAX_TEXT)],
    "wordwrap": [(0, "width", "|wordwrap width", MAX_TEXT)],
    "truncate": [
        (0, "length", "|truncate length", MAX_TEXT),
        (3, "leeway", "|truncate leeway", MAX_TEXT),
    ],
    "batch": [(0, "linecount", "|batch size", _MAX_REPEAT)],
    "slice": [(0, "slices", "|slice count", _MAX_REPEAT)],
    "tojson": [(0, "indent", "|tojson indent", 16)],
}


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "**": operator.pow,
}


def _const(node: jinja_nodes.Node) -> Any:
    """The value of a constant number or text in the source (``10**9``), or ``_UNKNOWN``;
    a number too large to work out is ``inf``."""
    if isinstance(node, jinja_nodes.Const):
        return node.value
    if isinstance(node, jinja_nodes.Neg | jinja_nodes.Pos):
        v = _const(node.node)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return -v if isinstance(node, jinja_nodes.Neg) else v
        return _UNKNOWN
    if isinstance(node, jinja_nodes.BinExpr) and node.operator in ("+", "-", "*", "**"):
        a, b = _const(node.left), _const(node.right)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)):
            return _UNKNOWN
        if node.operator == "**":
            if abs(b) > _MAX_EXPONENT or (
                isinstance(a, int) and isinstance(b, int) and a.bit_length() * b > _MAX_POWER_BITS
            ):
                return math.inf
        elif node.operator == "*" and not (abs(a) < 1e300 and abs(b) < 1e300):
            return math.inf
        try:
            value = _ARITHMETIC[node.operator](a, b)
        except (ArithmeticError, ValueError):  # 1e300 ** 2, 0 ** -1
            return _UNKNOWN
        return value if isinstance(value, int | float) else _UNKNOWN
    return _UNKNOWN


def _static_limits(node: jinja_nodes.Node) -> None:
    """Raise ``_Exceeded`` for a limit the node breaks whatever the data."""
    if isinstance(node, jinja_nodes.Filter):
        for i, key, what, limit in _STATIC_WIDTHS.get(node.name, []):
            arg: jinja_nodes.Node | None = node.args[i] if len(node.args) > i else None
            for kw in node.kwargs:
                if kw.key == key:
                    arg = kw.value
            if arg is not None and (v := _const(arg)) is not _UNKNOWN:
                _width(v, what, limit)
        if node.name == "format" and node.node and isinstance(fmt := _const(node.node), str):
            _static_printf(fmt)
    elif isinstance(node, jinja_nodes.Call):
        args = [_const(a) for a in node.args]
        known = all(a is not _UNKNOWN for a in args) and not node.kwargs
        target = node.node
        if isinstance(target, jinja_nodes.Name) and known:
            try:
                if target.name == "range":
                    _range(*args)
                elif target.name == "lipsum":
                    _lipsum(*args)
            except (TypeError, ValueError):
                pass
        elif isinstance(target, jinja_nodes.Getattr):
            if target.attr in ("center", "ljust", "rjust", "zfill", "expandtabs") and args:
                if args[0] is not _UNKNOWN:
                    _width(args[0], f".{target.attr}() width")
            elif target.attr in ("format", "format_map"):
                fmt = _const(target.node)
                if isinstance(fmt, str):
                    for d in re.findall(
                        r"\d+", "".join(s or "" for _, _, s, _ in _parse_format(fmt))
                    ):
                        _width(_digits(d), "str.format width")
    elif isinstance(node, jinja_nodes.Mod):
        fmt = _const(node.left)
        if isinstance(fmt, str):
            _static_printf(fmt)
    elif isinstance(node, jinja_nodes.Mul):
        for seq, n in ((node.left, node.right), (node.right, node.left)):
            count = _const(n)
            items = seq.items if isinstance(seq, jinja_nodes.List | jinja_nodes.Tuple) else None
            text = _const(seq)
            length = (
                len(items) if items is not None else len(text) if isinstance(text, str) else None
            )
            if length and isinstance(count, int | float) and length * count > _MAX_REPEAT:
                raise _Exceeded(
                    f"repetition of {_shown(length * count)} items, over the limit of {_MAX_REPEAT:,}"
                )
    elif isinstance(node, jinja_nodes.Pow) and _const(node) is math.inf:
        raise _Exceeded(f"power too large (exponents up to {_MAX_EXPONENT})")


def _parse_format(fmt: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(Formatter().parse(fmt))
    except ValueError:
        return []


def _static_printf(fmt: str) -> None:
    for m in _PRINTF.finditer(fmt):
        for part, what in ((m.group(3), "width"), (m.group(4), "precision")):
            if part and part != "*":
                _width(_digits(part), f"%-format {what}")


class _CodeGenerator(CodeGenerator):
    """Jinja's compiler, with three changes: a source breaking a limit fails when it is
    compiled; every ``{% for %}`` counts its iterations; ``~`` and comparisons go through
    the environment, which checks what they build and charges what they read."""

    def visit_Template(self, node: jinja_nodes.Template, frame: Frame | None = None) -> None:
        for found in node.find_all(
            (
                jinja_nodes.Filter,
                jinja_nodes.Call,
                jinja_nodes.Mod,
                jinja_nodes.Mul,
                jinja_nodes.Pow,
            )
        ):
            try:
                _static_limits(found)
            except _Exceeded as exc:
                raise _StaticLimit(str(exc), found.lineno, self.name, self.filename) from None
        for loop in node.find_all(jinja_nodes.For):
            loop.iter = jinja_nodes.Filter(
                loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.iter.lineno
            )
        super().visit_Template(node, frame)

    def visit_Concat(self, node: jinja_nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            escape = "context.eval_ctx.autoescape"
        else:
            escape = repr(bool(frame.eval_ctx.autoescape))
        self.write(f"environment.concat_checked({escape}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_Getitem(self, node: jinja_nodes.Getitem, frame: Frame) -> None:
        if not isinstance(node.arg, jinja_nodes.Slice):
            super().visit_Getitem(node, frame)
            return
        self.write("environment.slice_checked(")
        self.visit(node.node, frame)
        for part in (node.arg.start, node.arg.stop, node.arg.step):
            self.write(", ")
            if part is None:
                self.write("None")
            else:
                self.visit(part, frame)
        self.write(")")

    def visit_Compare(self, node: jinja_nodes.Compare, frame: Frame) -> None:
        self.write("environment.compare_checked(")
        self.visit(node.expr, frame)
        for op in node.ops:
            self.write(f", {op.op!r}, ")
            self.visit(op.expr, frame)
        self.write(")")
