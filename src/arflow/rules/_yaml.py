"""Rule files as YAML with lines and limits: what every value says and where it was written.

YAML is read with the safe loader (no tags that build Python objects) and composed into
nodes first, so every key and value keeps the line it was written on. Limits come first
(:data:`MAX_FILE_BYTES`, :data:`MAX_DEPTH`, :data:`MAX_ALIASES`, :data:`MAX_VALUES`,
:data:`MAX_TEXT`, :data:`MAX_DIGITS`): a hostile file is refused within a fraction of a
second instead of hanging or exhausting the stack.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from ..errors import Problem

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_FILE_BYTES",
    "MAX_TEXT",
    "MAX_VALUES",
    "Path_",
]

Path_ = tuple[str | int, ...]
"""Where a value sits in a file's data: section, index, field..."""

# -- YAML with lines ------------------------------------------------------------------------------


class _Lines:
    """Where each key and value of a YAML document was written (1-based lines)."""

    def __init__(self, source: str) -> None:
        self.source = source.splitlines()
        self.value: dict[Path_, yaml.Node] = {}
        self.key: dict[Path_, int] = {}
        self.refused: set[Path_] = set()  # values refused while reading: already reported

    def was_refused(self, path: Path_) -> bool:
        """True when ``path`` is, or is inside, a value refused while reading."""
        return any(path[:n] in self.refused for n in range(len(path) + 1))

    def line(self, path: Path_) -> int:
        """The line of the key naming ``path`` (or of its value), else of its nearest parent."""
        for n in range(len(path), -1, -1):
            p = path[:n]
            if p in self.key:
                return self.key[p]
            if p in self.value:
                return self.value[p].start_mark.line + 1
        return 1

    def text_line(self, path: Path_, column: int) -> int:
        """The line of character ``column`` of the scalar at ``path``, which may span lines
        (``when: >-`` blocks, long plain scalars): lines are joined by one character."""
        node = self.value.get(path)
        if not isinstance(node, yaml.ScalarNode):
            return self.line(path)
        first, last = node.start_mark.line, node.end_mark.line
        if node.style in ("|", ">"):
            parts = [ln.strip() for ln in self.source[first + 1 : last + 1]]
            base = first + 1
        else:
            parts = [self.source[first][node.start_mark.column :].strip(" \"'")]
            parts += [ln.strip() for ln in self.source[first + 1 : last + 1]]
            base = first
        parts = [p for p in parts if p] or [""]
        at = 0
        for i, part in enumerate(parts):
            if column < at + len(part) + 1:
                return base + i + 1
            at += len(part) + 1
        return base + len(parts)


_T = "tag:yaml.org,2002:"
#: The only tags a rule file may carry: plain data. ``!!binary``, ``!!set``, ``!!omap``,
#: ``!!pairs`` and every ``!!python/...`` tag are refused with their line.
_SAFE_TAGS = frozenset(
    _T + t for t in ("null", "bool", "int", "float", "str", "seq", "map", "timestamp")
)

MAX_FILE_BYTES = 128 * 1024
"""A rule file larger than this is refused unread (the default pack's largest is 3 KB)."""
MAX_DEPTH = 32
"""Collections nested deeper than this are refused (a rule needs about eight levels)."""
MAX_ALIASES = 64
"""Aliases (``*name``) one file may use."""
MAX_VALUES = 20_000
"""Values one file may hold once its aliases are expanded (a YAML "billion laughs")."""
MAX_TEXT = 10_000
"""Characters in one value (a condition, a description...)."""
MAX_DIGITS = 28
"""Significant digits of a number, and the largest power of ten it may reach."""


class _TooMuch(Exception):
    """A file over one of the loader's limits: reading it stops at ``line``."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


class _LimitedLoader(yaml.SafeLoader):
    """The safe loader that stops composing at :data:`MAX_DEPTH` and :data:`MAX_ALIASES`.

    PyYAML composes recursively, so a deep document would otherwise end in a
    ``RecursionError``; limits are checked as each node is started."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _TooMuch(line, f"more than {MAX_ALIASES} aliases (*name) in one file")
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _TooMuch(line, f"nested more than {MAX_DEPTH} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_events(text: str) -> None:
    """Depth and aliases checked on libyaml's event stream, before libyaml composes the
    document (its composer recurses in C: a deep document must not reach it)."""
    parser = yaml.CSafeLoader(text)
    depth = aliases = 0
    try:
        while (event := parser.get_event()) is not None:
            line = event.start_mark.line + 1 if event.start_mark is not None else 1
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _TooMuch(line, f"more than {MAX_ALIASES} aliases (*name) in one file")
            elif isinstance(event, yaml.CollectionStartEvent | yaml.ScalarEvent):
                if depth + 1 > MAX_DEPTH:
                    raise _TooMuch(line, f"nested more than {MAX_DEPTH} levels deep")
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        parser.dispose()


def _compose(text: str) -> yaml.Node | None:
    """The document's node tree within :data:`MAX_DEPTH` and :data:`MAX_ALIASES`.

    With libyaml (PyYAML's usual wheels) a file is checked and composed in C, ten times
    faster than in Python; without it, :class:`_LimitedLoader` checks as it composes."""
    if getattr(yaml, "__with_libyaml__", False):
        _check_events(text)
        loader: Any = yaml.CSafeLoader(text)
    else:  # libyaml ships with PyYAML's wheels; a source build may lack it
        loader = _LimitedLoader(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
    finally:
        loader.dispose()
    return node


def _short(text: str, limit: int = 60) -> str:
    """``text`` as a message quotes it: cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} chars)"


def _number_problem(text: str, value: Decimal) -> str | None:
    """Why a number literal is too large for a rule file, or None when it fits."""
    if value.is_finite() and (
        len(value.as_tuple().digits) > MAX_DIGITS or abs(value.adjusted()) > MAX_DIGITS
    ):
        return (
            f"the number {_short(text, 40)} is too large: at most {MAX_DIGITS} "
            f"significant digits, and below 1e{MAX_DIGITS}"
        )
    return None


def _scalar(node: yaml.ScalarNode) -> tuple[Any, str | None]:
    """The value of a plain scalar, or the reason it cannot be one."""
    tag, text = node.tag, str(node.value)
    if len(text) > MAX_TEXT:
        return None, f"a value of {len(text)} characters; at most {MAX_TEXT}"
    if tag == _T + "float":
        # exact decimals from the text as written: 0.95 must not become 0.9499999...
        try:
            d = Decimal(text.replace("_", ""))
        except InvalidOperation:
            pass  # .inf / .nan / 1:30.5: the schema refuses what the constructor gives
        else:
            return d, _number_problem(text, d)
    if tag == _T + "int":
        digits = text.lstrip("+-").replace("_", "")
        if len(digits) > MAX_DIGITS + 2:  # room for a 0x / 0b prefix
            return None, f"the number {_short(text, 40)} is too large: at most {MAX_DIGITS} digits"
    try:
        value = yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        return None, f"not allowed in a rule file: {exc.problem}"
    except Exception as exc:
        # PyYAML's constructors on hostile text raise ValueError (2026-02-30), KeyError
        # (!!bool maybe), AttributeError (!!timestamp foo), IndexError (!!int ""): whichever
        # it is, the value cannot be read; only a ValueError's words help the author
        why = f": {exc}" if type(exc) is ValueError else ""
        kind = "date" if tag == _T + "timestamp" else tag.removeprefix(_T)
        return None, f"{_short(text)} is not a valid {kind}{why}"
    if tag == _T + "timestamp":
        return text, None  # a valid date stays text: fields take dates as YYYY-MM-DD
    if isinstance(value, int) and not isinstance(value, bool):
        return value, _number_problem(text, Decimal(value))
    return value, None


def _measure(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it past :data:`MAX_VALUES` values or
    :data:`MAX_DEPTH` levels, before any of it is expanded.

    Sizes and heights are counted once per node (an alias shares its anchor's node), so
    a "billion laughs" is measured in a few hundred steps. The first node found too large
    is the innermost one: the line whose aliases multiply the document."""
    known: dict[int, tuple[int, int]] = {}
    open_: set[int] = set()

    def too_deep(node: yaml.Node) -> _TooMuch:
        return _TooMuch(
            node.start_mark.line + 1, f"nested more than {MAX_DEPTH} levels deep (through aliases)"
        )

    def visit(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        got = known.get(key)
        if got is not None:
            if depth + got[1] - 1 > MAX_DEPTH:
                raise too_deep(node)
            return got
        if depth > MAX_DEPTH:
            raise too_deep(node)
        if key in open_ or not isinstance(node.value, list):
            return 1, 1  # a scalar, or a cycle (the reader reports it at its line)
        open_.add(key)
        size, height = 1, 1
        items: list[yaml.Node] = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [n for pair in node.value for n in pair]
        )
        for child in items:
            s, h = visit(child, depth + 1)
            size, height = size + s, max(height, h + 1)
            if size > MAX_VALUES:
                raise _TooMuch(
                    node.start_mark.line + 1,
                    f"more than {MAX_VALUES} values in one file "
                    "(an alias counts as every value it repeats)",
                )
        open_.discard(key)
        known[key] = (size, height)
        return size, height

    visit(root, 1)


_KIND = {yaml.ScalarNode: "scalar", yaml.SequenceNode: _T + "seq", yaml.MappingNode: _T + "map"}


class _Reader:
    """Turns composed nodes into plain data, recording each value's line, within limits."""

    def __init__(self, lines: _Lines, found: list[tuple[Path_, int, str]]) -> None:
        self.lines, self.found = lines, found
        self.open: set[int] = set()  # ids of the collections being read (a cycle's guard)

    def data(self, node: yaml.Node, path: Path_) -> Any:
        line = node.start_mark.line + 1
        self.lines.value[path] = node
        tag = node.tag
        kind = _KIND[type(node)]
        if tag not in _SAFE_TAGS or (tag != kind if kind != "scalar" else tag in _KIND.values()):
            self.found.append((path, line, f"not allowed in a rule file: tag {tag}"))
            return None
        if isinstance(node, yaml.ScalarNode):
            value, why = _scalar(node)
            if why is not None:
                self.found.append((path, line, why))
                return None
            return value
        if id(node) in self.open:
            self.found.append((path, line, "an alias refers to a value that contains it"))
            return None
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            return [self.data(v, (*path, i)) for i, v in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _T + "merge":
                self.found.append(
                    (path, line, "merge keys (<<) are not allowed in a rule file: write the fields")
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.found.append((path, line, "a key must be plain text"))
                continue
            key = str(key_node.value)
            if len(key) > 100:
                self.found.append((path, line, f"a key of {len(key)} characters: {_short(key)}"))
                continue
            if key in out:
                self.found.append(((*path, key), line, f"key {key!r} appears twice"))
            self.lines.key[(*path, key)] = line
            out[key] = self.data(value_node, (*path, key))
        return out


#: Characters refused anywhere in a rule file, written as themselves (escapes such as
#: ``"\L"`` are the schema's business): line breaks to YAML that editors do not show as
#: such, which would shift every line number after them, and the bidirectional controls
#: of "Trojan Source" attacks, which make a rule read differently than it runs.
_ODD_CHARACTER = re.compile("[\x85\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _yaml_problem(file: str, exc: yaml.YAMLError, text: str) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        # a character YAML refuses (NUL, other control characters): the reader stops at
        # its first one (libyaml's position counts bytes, so find the character instead)
        index = text.find(chr(exc.character)) if isinstance(exc.character, int) else -1
        line = text.count("\n", 0, index) + 1 if index >= 0 else 1
        return Problem(
            file, line, None, f"not valid YAML: unacceptable character #x{exc.character:04x}"
        )
    if not isinstance(exc, yaml.MarkedYAMLError):
        return Problem(file, 1, None, f"not valid YAML: {exc}")
    mark = exc.problem_mark or exc.context_mark
    # YAML breaks lines at \n, \r\n and a lone \r; a mark at the end of a file without a
    # final line break may be one past its last line
    last = text.count("\n") + text.count("\r") - text.count("\r\n") + 1
    line = min(mark.line + 1, last) if mark is not None else 1
    problem = exc.problem or ""
    source = text.splitlines()
    at = ""
    if exc.problem_mark is not None and exc.problem_mark.line < len(source):
        row = source[exc.problem_mark.line]
        at = row[exc.problem_mark.column : exc.problem_mark.column + 1]
    if "cannot start any token" in problem and at:
        problem = f"found character {at!r} that cannot start any token"  # libyaml omits it
    if "maximum nesting depth" in problem:  # PyYAML 6.0.4's scanner stops deep nesting
        start = exc.context_mark if exc.context_mark is not None else mark
        where = line if start is None else min(start.line + 1, last)
        return Problem(file, where, None, f"nested more than {MAX_DEPTH} levels deep")
    msg = f"not valid YAML: {problem}"
    if exc.context and "flow" in exc.context and exc.context_mark is not None:
        opened = min(exc.context_mark.line + 1, last)
        msg += f" ({exc.context} opened on line {opened} and not closed)"
        line = opened
    if at == "\t":
        msg += " (a tab: YAML indents with spaces only)"
    return Problem(file, line, None, msg)


def _read(path: Path, problems: list[Problem]) -> tuple[Any, _Lines] | None:
    """A file's data and lines, or None (with its problems) when it cannot be read.

    Limits come first (:data:`MAX_FILE_BYTES`, :data:`MAX_DEPTH`, :data:`MAX_ALIASES`,
    :data:`MAX_VALUES`, :data:`MAX_TEXT`, :data:`MAX_DIGITS`): a hostile file is refused
    within a fraction of a second instead of hanging or exhausting the stack."""
    file = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        problems.append(Problem(file, 1, None, f"cannot read: {exc.strerror or exc}"))
        return None
    if len(raw) > MAX_FILE_BYTES:
        problems.append(
            Problem(
                file,
                1,
                None,
                f"the file is larger than {MAX_FILE_BYTES // 1024} KiB, the most a rule "
                "file may hold: split it",
            )
        )
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        problems.append(Problem(file, line, None, f"cannot read: not UTF-8 text ({exc.reason})"))
        return None
    odd = _ODD_CHARACTER.search(text)
    if odd is not None:
        ch = odd.group()
        name = f"U+{ord(ch):04X} {unicodedata.name(ch, '')}".rstrip()
        problems.append(
            Problem(
                file,
                text.count("\n", 0, odd.start()) + 1,
                None,
                f"the character {name} is not allowed in a rule file: "
                + (
                    "YAML reads it as a line break where editors do not"
                    if ch in "\x85\u2028\u2029"
                    else "it makes text display in another order than it is read"
                ),
            )
        )
        return None
    lines = _Lines(text)
    try:
        node = _compose(text)
    except _TooMuch as exc:
        problems.append(Problem(file, exc.line, None, exc.message))
        return None
    except yaml.YAMLError as exc:
        problems.append(_yaml_problem(file, exc, text))
        return None
    if node is None:
        return {}, lines
    found: list[tuple[Path_, int, str]] = []
    try:
        _measure(node)
        data = _Reader(lines, found).data(node, ())
    except _TooMuch as exc:
        problems.append(Problem(file, exc.line, None, exc.message))
        return None
    for p, line, msg in found:
        lines.refused.add(p)
        problems.append(Problem(file, line, _rule_id(data, p), msg))
    if not isinstance(data, dict):
        line = node.start_mark.line + 1
        problems.append(Problem(file, line, None, "a rule file must be a mapping of sections"))
        return None
    return data, lines


def _rule_id(data: Any, loc: Sequence[str | int]) -> str | None:
    """The id of the innermost rule (ladder, step, lock...) that ``loc`` points into."""
    found: str | None = None
    cur = data
    for part in loc:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(cur, dict) and isinstance(cur.get("id"), str):
            found = cur["id"] if found is None else f"{found}/{cur['id']}"
    return found
