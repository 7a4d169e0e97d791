"""Loading a rule pack: YAML files checked by the schema, with file:line for every error.

YAML is read with the safe loader (no tags that build Python objects) and composed into
nodes first, so every key and value keeps the line it was written on. Then:

1. the schema (:mod:`arflow.rules.schema`) checks shape and types, one section and one rule
   at a time, so a mistake in one rule does not hide the problems of the others;
2. every condition is parsed and type-checked against the facts of its subject;
3. every offset or recurrence is parsed; every role and template is looked up;
4. ids must be unique, levels must not go down, grades must be listed from the top.

All problems of all files are collected, in file and line order, and raised together as
:class:`RuleLoadError`, so a rule author fixes a pack in one pass. Nothing in a rule file
is executed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pydantic
import yaml

from ..errors import ExpressionError, ValidationError
from ..errors import Problem as Problem
from ..errors import RuleLoadError as RuleLoadError
from .expr import Condition, Type, condition
from .facts import fact_types
from .schema import BUILTIN_ROLES, Action, RuleFile, Settings

Path_ = tuple[str | int, ...]
_LIST_SECTIONS = ("ladders", "locks", "alerts", "milestones", "approvals", "patterns")


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


def _message(err: Any) -> tuple[Path_, str]:
    """Where a pydantic error points and what to tell a rule author."""
    loc = tuple(
        p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal")))
    )
    msg: str = err["msg"].removeprefix("Value error, ")
    kind = err["type"]
    if kind == "extra_forbidden" and loc:
        return loc, f"unknown field {loc[-1]!r}"
    if kind == "missing" and loc:
        return loc[:-1], f"missing field {loc[-1]!r}"
    if kind in ("tuple_type", "list_type"):
        msg = "should be a list"
    given = err.get("input")
    if kind == "int_type" and isinstance(given, bool):
        msg = f"should be a whole number, not {str(given).lower()} (true/false)"
    elif kind in ("int_type", "int_parsing") and isinstance(given, Decimal):
        msg = f"should be a whole number, not {given}"
    elif kind == "bool_type":
        msg = f"should be true or false, not {str(given)[:40]!r}"
    return loc, msg


def _without_unknown_fields(
    key: str, index: int | None, part: Any, exc: pydantic.ValidationError
) -> Any | None:
    """``part`` without the unknown fields that made it invalid, if that is all that was
    wrong with it (a typo such as ``min_amount`` must not hide the rest of the rule)."""
    import copy

    if any(e["type"] != "extra_forbidden" for e in exc.errors()):
        return None
    fixed = copy.deepcopy(part)
    for e in exc.errors():
        loc = list(e["loc"][1:] if index is None else e["loc"][2:])
        if not loc:
            return None  # the section itself is unknown: nothing to keep
        node: Any = fixed
        for p in loc[:-1]:
            node = node[p]
        if isinstance(node, dict):
            node.pop(loc[-1], None)
    try:
        RuleFile.model_validate({key: [fixed] if index is not None else fixed})
    except pydantic.ValidationError:
        return None
    return fixed


def _validate(
    file: str, data: dict[str, Any], lines: _Lines, problems: list[Problem]
) -> tuple[RuleFile, dict[str, list[int]]]:
    """The file's valid parts as a RuleFile; every invalid section or rule is a problem.

    Validating rule by rule (not the file as a whole) keeps one mistake from hiding the
    rest: the other rules are still checked for conditions, roles and templates."""
    everything = {
        k: list(range(len(v)))
        for k, v in data.items()
        if k in _LIST_SECTIONS and isinstance(v, list)
    }
    try:
        return RuleFile.model_validate(data), everything
    except pydantic.ValidationError:
        pass
    good: dict[str, Any] = {}
    positions: dict[str, list[int]] = {}
    for key, value in data.items():
        items = (
            list(enumerate(value)) if key in _LIST_SECTIONS and isinstance(value, list) else None
        )
        for index, part in items if items is not None else [(None, value)]:
            try:
                RuleFile.model_validate({key: [part] if index is not None else part})
            except pydantic.ValidationError as exc:
                pruned = _without_unknown_fields(key, index, part, exc)
                seen: set[tuple[Path_, str]] = set()
                errs = exc.errors()
                for err in errs:
                    loc, msg = _message(err)
                    if index is not None and len(loc) > 1 and loc[1] == 0:
                        loc = (loc[0], index, *loc[2:])
                    if lines.was_refused(loc):
                        continue  # its value was refused, and said so, while reading
                    deeper = any(
                        len(e["loc"]) > len(err["loc"])
                        and tuple(e["loc"][: len(err["loc"])]) == tuple(err["loc"])
                        for e in errs
                    )
                    if deeper and "at least 1 item" in msg:
                        continue  # a list emptied by its own bad items: noise
                    if (loc, msg) in seen:
                        continue
                    seen.add((loc, msg))
                    problems.append(Problem(file, lines.line(loc), _rule_id(data, loc), msg))
                if pruned is None:
                    continue
                part = pruned  # reported above; the rest of the rule is still checked
            if index is None:
                good[key] = part
            else:
                good.setdefault(key, []).append(part)
                positions.setdefault(key, []).append(index)
    return RuleFile.model_validate(good), positions


@dataclass(frozen=True)
class Source:
    """Where a compiled rule was written, for messages about it (lint): its file, the line
    of the rule, and the lines of its ``when`` and ``at`` (the rule's line when absent)."""

    file: str
    line: int
    when: int
    at: int

    @classmethod
    def of(cls, file: str, lines: _Lines, path: Path_) -> Source:
        """The source of the rule at ``path`` of ``file``."""
        line = lines.line(path)
        when = lines.key.get((*path, "when"), line)
        return cls(file, line, when, lines.key.get((*path, "at"), line))


@dataclass(frozen=True)
class CompiledStep:
    ladder: str
    id: str
    level: int
    at: str
    schedule: Any  # arflow.calendar.Schedule
    when: Condition | None
    min_balance: Any
    group: bool
    actions: tuple[Action, ...]
    source: Source | None = field(default=None, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class CompiledLadder:
    id: str
    when: Condition | None
    min_balance: Any
    exempt_grades: tuple[str, ...]
    steps: tuple[CompiledStep, ...]
    source: Source | None = field(default=None, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class CompiledRule:
    """A lock, alert, milestone rule or approval tier with its compiled condition."""

    kind: str
    id: str
    subject: str
    when: Condition | None
    spec: Any
    source: Source | None = field(default=None, compare=False, hash=False, repr=False)


@dataclass
class RulePack:
    """Everything a pack says, checked and compiled, ready for the engine."""

    name: str
    files: list[str]
    roles: dict[str, str] = field(default_factory=dict)
    calendar: Any = None  # arflow.calendar.BusinessCalendar
    settings: Settings = field(default_factory=Settings)
    ladders: list[CompiledLadder] = field(default_factory=list)
    locks: list[CompiledRule] = field(default_factory=list)
    alerts: list[CompiledRule] = field(default_factory=list)
    milestones: list[CompiledRule] = field(default_factory=list)
    approvals: list[CompiledRule] = field(default_factory=list)
    patterns: list[CompiledRule] = field(default_factory=list)
    scoring: Any = None  # arflow.rules.schema.Scoring
    templates: frozenset[str] = frozenset()
    template_dirs: tuple[Path, ...] = ()

    def all_roles(self) -> frozenset[str]:
        return BUILTIN_ROLES | frozenset(self.roles)


def _files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        else:
            out.append(p)
    return out


def _templates(dirs: Iterable[Path]) -> frozenset[str]:
    """Template names found in ``templates/`` folders: ``NAME.LOCALE.EXT`` gives NAME."""
    names: set[str] = set()
    for d in dirs:
        if d.is_dir():
            names.update(p.name.split(".", 1)[0] for p in d.iterdir() if p.is_file())
    return frozenset(names)


def load_pack(
    paths: str | Path | Iterable[str | Path],
    *,
    templates: Iterable[str] | None = None,
) -> RulePack:
    """Load, check and compile the rule files at ``paths`` (files or folders) as one pack.

    Templates are looked up in a ``templates/`` folder beside the files, or in the names
    given. Raises :class:`RuleLoadError` listing every problem found.
    """
    from .. import calendar as cal

    path_list = [paths] if isinstance(paths, str | Path) else list(paths)
    files = _files(path_list)
    problems: list[Problem] = []
    if not files:
        raise RuleLoadError(
            [
                Problem(
                    str(path_list[0]) if path_list else "?", 1, None, "no rule files (*.yaml) found"
                )
            ]
        )
    template_names = (
        frozenset(templates)
        if templates is not None
        else _templates({f.parent / "templates" for f in files})
    )
    parsed: list[tuple[str, RuleFile, _Lines, dict[str, list[int]]]] = []
    for f in files:
        got = _read(f, problems)
        if got is None:
            continue
        data, lines = got
        spec, positions = _validate(str(f), data, lines, problems)
        parsed.append((str(f), spec, lines, positions))

    pack = RulePack(
        name="",
        files=[str(f) for f in files],
        templates=template_names,
        template_dirs=tuple(
            sorted({f.parent / "templates" for f in files if (f.parent / "templates").is_dir()})
        ),
    )
    seen_ids: dict[tuple[str, str], str] = {}
    for file, spec, lines, _pos in parsed:
        if spec.pack and not pack.name:
            pack.name = spec.pack
        pack.roles.update(spec.roles)
        if spec.settings is not None:
            pack.settings = spec.settings
        if spec.calendar is not None:
            c = spec.calendar
            days: dict[str, frozenset[Any]] = {}
            for name in ("extra_holidays", "extra_workdays"):
                ok = []
                for i, text in enumerate(getattr(c, name)):
                    try:
                        ok.append(_iso(text))
                    except ValueError as exc:
                        problems.append(
                            Problem(
                                file,
                                lines.line(("calendar", name, i)),
                                None,
                                f"{text!r} is not a date (YYYY-MM-DD): {exc}",
                            )
                        )
                days[name] = frozenset(ok)
            try:
                pack.calendar = cal.BusinessCalendar(
                    country=c.country,
                    subdivision=c.subdivision,
                    extra_holidays=days["extra_holidays"],
                    extra_workdays=days["extra_workdays"],
                )
            except (ValueError, ValidationError) as exc:
                problems.append(Problem(file, lines.line(("calendar", "country")), None, str(exc)))
        if spec.settings is not None and spec.settings.send_window:
            try:
                cal.SendWindow.parse(spec.settings.send_window)
            except ValueError as exc:
                problems.append(
                    Problem(
                        file,
                        lines.line(("settings", "send_window")),
                        None,
                        f"bad send_window {spec.settings.send_window!r}: {exc}",
                    )
                )
        if spec.scoring is not None:
            pack.scoring = spec.scoring
    if pack.calendar is None:
        pack.calendar = cal.BusinessCalendar()
    roles = pack.all_roles()

    for file, spec, lines, pos in parsed:

        def problem(
            path: Path_, message: str, rule: str | None, *, _f: str = file, _l: _Lines = lines
        ) -> None:
            problems.append(Problem(_f, _l.line(path), rule, message))

        def cond(
            text: str | None,
            subject: str,
            path: Path_,
            rule: str,
            *,
            _l: _Lines = lines,
            _f: str = file,
        ) -> Condition | None:
            if text is None:
                return None
            try:
                return condition(text, fact_types(subject))
            except ExpressionError as exc:
                line = _l.text_line(path, exc.position)
                msg = f"{exc.reason} at column {exc.position + 1} of {_short(text, 200)}"
                problems.append(Problem(_f, line, rule, msg))
                return None

        def unique(kind: str, rid: str, path: Path_, *, _f: str = file) -> None:
            if (kind, rid) in seen_ids:
                problem(path, f"{kind} id {rid!r} is also defined in {seen_ids[(kind, rid)]}", rid)
            seen_ids[(kind, rid)] = _f

        def actions(acts: Sequence[Action], path: Path_, rule: str) -> None:
            for i, a in enumerate(acts):
                for where in ("to", "cc"):
                    for j, who in enumerate(getattr(a, where)):
                        if who not in roles:
                            problem(
                                (*path, i, where, j),
                                f"unknown role {who!r} (known: {', '.join(sorted(roles))})",
                                rule,
                            )
                if a.template is not None and a.template not in pack.templates:
                    problem((*path, i, "template"), f"unknown template {a.template!r}", rule)
                if a.due_in is not None:
                    try:
                        cal.Offset.parse("due+" + a.due_in)
                    except ValueError as exc:
                        problem((*path, i, "due_in"), f"bad due_in {a.due_in!r}: {exc}", rule)

        for li, ladder in enumerate(spec.ladders):
            lp: Path_ = ("ladders", pos["ladders"][li])
            unique("ladder", ladder.id, lp)
            steps: list[CompiledStep] = []
            step_ids: set[str] = set()
            top_level = -1
            for si, st in enumerate(ladder.steps):
                sp: Path_ = (*lp, "steps", si)
                rid = f"{ladder.id}/{st.id}"
                if st.id in step_ids:
                    problem(
                        (*sp, "id"), f"step id {st.id!r} appears twice in ladder {ladder.id!r}", rid
                    )
                step_ids.add(st.id)
                if st.level < top_level:
                    problem(
                        (*sp, "level"),
                        f"level {st.level} is below the level {top_level} "
                        "of an earlier step: levels must not go down along the ladder",
                        rid,
                    )
                top_level = max(top_level, st.level)
                try:
                    schedule = cal.Schedule.parse(st.at)
                except ValueError as exc:
                    problem((*sp, "at"), f"bad 'at' {st.at!r}: {exc}", rid)
                    schedule = None
                when = cond(st.when, "receivable", (*sp, "when"), rid)
                actions(st.actions, (*sp, "actions"), rid)
                for ai, a in enumerate(st.actions):
                    if a.type in ("block_orders", "unblock_orders"):
                        problem(
                            (*sp, "actions", ai),
                            f"{a.type} belongs in a lock rule, which "
                            "lifts itself when its cause is gone; a ladder step cannot",
                            rid,
                        )
                steps.append(
                    CompiledStep(
                        ladder.id,
                        st.id,
                        st.level,
                        st.at,
                        schedule,
                        when,
                        st.min_balance,
                        st.group,
                        tuple(st.actions),
                        Source.of(file, lines, sp),
                    )
                )
            pack.ladders.append(
                CompiledLadder(
                    ladder.id,
                    cond(ladder.when, "receivable", (*lp, "when"), ladder.id),
                    ladder.min_balance,
                    tuple(ladder.exempt_grades),
                    tuple(steps),
                    Source.of(file, lines, lp),
                )
            )
        for i, lock in enumerate(spec.locks):
            p: Path_ = ("locks", pos["locks"][i])
            unique("lock", lock.id, p)
            for j, who in enumerate(lock.notify):
                if who not in roles:
                    problem((*p, "notify", j), f"unknown role {who!r}", lock.id)
            if lock.template is not None and lock.template not in pack.templates:
                problem((*p, "template"), f"unknown template {lock.template!r}", lock.id)
            pack.locks.append(
                CompiledRule(
                    "lock",
                    lock.id,
                    "customer",
                    cond(lock.when, "customer", (*p, "when"), lock.id),
                    lock,
                    Source.of(file, lines, p),
                )
            )
        for i, alert in enumerate(spec.alerts):
            p = ("alerts", pos["alerts"][i])
            unique("alert", alert.id, p)
            actions(alert.actions, (*p, "actions"), alert.id)
            pack.alerts.append(
                CompiledRule(
                    "alert",
                    alert.id,
                    alert.subject,
                    cond(alert.when, alert.subject, (*p, "when"), alert.id),
                    alert,
                    Source.of(file, lines, p),
                )
            )
        for i, ms in enumerate(spec.milestones):
            p = ("milestones", pos["milestones"][i])
            unique("milestone rule", ms.id, p)
            actions(ms.actions, (*p, "actions"), ms.id)
            pack.milestones.append(
                CompiledRule(
                    "milestone",
                    ms.id,
                    "customer",
                    cond(ms.when, "customer", (*p, "when"), ms.id),
                    ms,
                    Source.of(file, lines, p),
                )
            )
        for i, tier in enumerate(spec.approvals):
            p = ("approvals", pos["approvals"][i])
            unique("approval tier", tier.id, p)
            for j, who in enumerate(tier.approvers):
                if who not in roles:
                    problem((*p, "approvers", j), f"unknown role {who!r}", tier.id)
            if tier.template not in pack.templates:
                problem((*p, "template"), f"unknown template {tier.template!r}", tier.id)
            pack.approvals.append(
                CompiledRule(
                    "approval",
                    tier.id,
                    "order",
                    cond(tier.when, "order", (*p, "when"), tier.id),
                    tier,
                    Source.of(file, lines, p),
                )
            )
        for i, pat in enumerate(spec.patterns):
            p = ("patterns", pos["patterns"][i])
            unique("pattern", pat.id, p)
            actions(pat.actions, (*p, "actions"), pat.id)
            pack.patterns.append(
                CompiledRule(
                    "pattern",
                    pat.id,
                    "customer",
                    cond(pat.when, "customer", (*p, "when"), pat.id),
                    pat,
                    Source.of(file, lines, p),
                )
            )
        if len(pack.patterns) > 16:
            problem(("patterns",), "at most 16 patterns per pack", None)
        if spec.scoring is not None:
            known = fact_types("customer")
            for i, factor in enumerate(spec.scoring.factors):
                fp: Path_ = ("scoring", "factors", i)
                t = known.get(factor.fact)
                if t is None:
                    problem((*fp, "fact"), f"unknown fact {factor.fact!r}", None)
                elif factor.bands is not None and t is not Type.NUMBER:
                    problem(
                        (*fp, "bands"),
                        f"bands need a number, and {factor.fact} is a {t}: "
                        "give 'points' by value instead",
                        None,
                    )
                elif factor.points is not None and t not in (Type.STRING, Type.BOOL):
                    problem(
                        (*fp, "points"),
                        f"points by value need text, and {factor.fact} is "
                        f"a {t}: give 'bands' instead",
                        None,
                    )
            grades = spec.scoring.grades
            for gi in range(1, len(grades)):
                if grades[gi].min_score > grades[gi - 1].min_score:
                    problem(
                        ("scoring", "grades", gi, "min_score"),
                        "grades must be listed from the highest min_score down: grade "
                        f"{grades[gi].grade} needs {grades[gi].min_score}, more than grade "
                        f"{grades[gi - 1].grade} above it ({grades[gi - 1].min_score})",
                        None,
                    )
                    break
    if problems:
        raise RuleLoadError(problems)
    pack.name = pack.name or Path(files[0]).parent.name
    return pack


def _iso(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)
