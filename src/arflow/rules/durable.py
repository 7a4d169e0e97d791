"""The durable-rules matcher: the same condition trees, matched by a Rete.

Single-subject conditions are normally compiled to Python predicates (:func:`expr.compile_`).
:class:`DurableMatcher` translates the same trees to durable-rules' JSON rule form so that a
differential test can hold the two matchers to identical decisions, and :class:`PatternMatcher`
uses durable-rules where a Rete earns its place: patterns that join several facts of one
customer over time (a promise with no payment by its date, repeated late payments).

durable-rules 2.0.28 is unmaintained and has sharp edges; this wrapper is the only place that
touches it and guards against each one (``docs/matchers.md`` has the list and the evidence):

* one :class:`engine.Host` per matcher, with its timer threads switched off: no rule or fact is
  shared with another matcher, nothing runs in the background, time is a fact (``as_of``);
* every fact gets an id from the wrapper's own counter, never derived from a user id; durable
  keys facts by a 32-bit FNV-1a hash of the id, so the counter skips any number whose hash
  collides with a fact that is still asserted;
* facts are asserted (never posted, so every matching rule fires) and gone after each
  evaluation, in sessions from a fixed pool: at most ``max_sessions`` per ruleset ever exist.
  Single-subject facts are retracted; a pattern session, whose joined facts durable cannot
  retract safely, is deleted whole, and only after it has run an action (deleting a session
  that never has crashes the process);
* join tests end with one that always holds: durable reads past the end of a join test
  sequence whose last test is false, and crashes sooner or later;
* rules are split into shards small enough for durable's per-fact limits (65 matching rules
  raise, 512 sibling tests hang), conditions are flattened to conjunctions (durable refuses
  nested ``$or``/``$and`` past a small depth);
* values are encoded as integers durable compares exactly (see :class:`_Operand`);
* durable is never asked to deduplicate: every evaluation starts from an empty session.

Neither matcher is thread-safe: drive each one from one thread (a concurrent or re-entrant call
raises :class:`RuntimeError`).
"""

from __future__ import annotations

import itertools
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from operator import methodcaller
from typing import Any, Literal, NoReturn, TypeAlias

from durable import engine  # type: ignore[import-untyped]

from ..errors import DurableError as DurableError
from ..errors import UnsupportedForDurable as UnsupportedForDurable
from .expr import (
    BoolOp,
    Call,
    Compare,
    Condition,
    Fact,
    ListNode,
    Member,
    Node,
    Not,
    Type,
    check,
    compile_,
    facts_used,
    unparse,
)
from .expr import Literal as Lit
from .facts import SUBJECTS, fact_types

__all__ = [
    "DurableError",
    "DurableMatcher",
    "LatePayments",
    "PatternMatcher",
    "Payment",
    "Promise",
    "UnpaidPromise",
    "UnsupportedForDurable",
    "fnv1a32",
]

MAX_SESSIONS = 512  # durable raises MemoryError past 1,024 live sessions per ruleset
TERMS_PER_SHARD = 32  # durable fails (error 303) when more than 64 rules match one fact
TESTS_PER_SHARD = 256  # durable loops forever at 512 sibling tests in one ruleset
TERMS_PER_RULE = 256  # a bound on the flattened (or-of-ands) form of one condition
_TAG = "k"  # every wrapper fact carries it, so no rule can match durable's own state fact


def fnv1a32(data: str) -> int:
    """The 32-bit FNV-1a hash durable-rules keys facts by (of the id's text, for ints too)."""
    h = 0x811C9DC5
    for byte in data.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


# -- the durable host, sessions and ids ---------------------------------------------------------


class _QuietHost(engine.Host):  # type: ignore[misc]
    """A durable host that starts no dispatch or timer threads: the wrapper drives it."""

    def _run(self) -> None:
        return None


class _Ids:
    """Fact ids from a counter; any id whose FNV-1a hash is already live is skipped."""

    def __init__(self) -> None:
        self._next = 1

    def take(self, live: set[int]) -> int:
        while True:
            n = self._next
            self._next += 1
            h = fnv1a32(str(n))
            if h not in live:
                live.add(h)
                return n


class _Sessions:
    """A fixed pool of session ids; one in use at a time, a failed one is retired for good."""

    def __init__(self, size: int) -> None:
        if not 1 <= size <= MAX_SESSIONS:
            raise ValueError(f"max_sessions must be 1..{MAX_SESSIONS}, not {size}")
        self._pool = [f"s{i}" for i in range(size)]
        if len({fnv1a32(s) for s in self._pool}) != size:  # pragma: no cover - fixed names
            raise AssertionError("session ids collide under FNV-1a")
        self.used: set[str] = set()

    def current(self) -> str:
        if not self._pool:
            raise DurableError("every durable session has failed and been retired")
        sid = self._pool[0]
        self.used.add(sid)
        return sid

    def retire(self, sid: str) -> None:
        if sid in self._pool:
            self._pool.remove(sid)


class _Driver:
    """What both matchers share: own host, session pool, id counter, one-thread guard."""

    def __init__(self, max_sessions: int) -> None:
        self._host = _QuietHost()
        self._sessions = _Sessions(max_sessions)
        self._ids = _Ids()
        self._busy = threading.Lock()
        self._names: list[str] = []
        self._closed = False
        self._fired: list[tuple[int, Any]] = []
        self._recording = False

    @property
    def sessions_used(self) -> int:
        """How many distinct durable sessions this matcher has ever used (at most the pool)."""
        return len(self._sessions.used)

    def _register(self, name: str, rules: dict[str, Any]) -> None:
        self._host.register_rulesets({name: rules})
        self._names.append(name)

    def _action(self, index: int, alias: str) -> Callable[[Any], None]:
        def run(c: Any) -> None:
            if self._recording:
                self._fired.append((index, getattr(c, alias)["id"]))

        return run

    @contextmanager
    def _turn(self) -> Iterator[None]:
        if self._closed:
            raise RuntimeError("this matcher is closed")
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("a durable matcher is driven from one thread, one call at a time")
        try:
            yield
        finally:
            self._busy.release()

    def _assert(self, ruleset: str, fact: dict[str, Any]) -> bool:
        """Assert one fact; False when no rule took it (durable then keeps nothing)."""
        try:
            self._host.assert_fact(ruleset, fact)
        except engine.MessageNotHandledException:
            return False
        return True

    def _retract_all(self, ruleset: str, facts: Iterable[dict[str, Any]]) -> None:
        for fact in facts:
            self._host.retract_fact(ruleset, fact)

    def _fail(
        self, sid: str, ruleset: str, stored: list[dict[str, Any]], exc: Exception
    ) -> NoReturn:
        self._recording = False
        self._sessions.retire(sid)
        with suppress(Exception):  # the session is retired either way
            self._retract_all(ruleset, stored)
        raise DurableError(f"durable-rules failed in {ruleset!r}: {exc!r}") from exc

    def close(self) -> None:
        """Free the rulesets in durable's engine; the matcher cannot be used afterwards."""
        if self._closed:
            return
        with self._turn():
            self._closed = True
            for name in self._names:
                rs = self._host.get_ruleset(name)
                engine.durable_rules_engine.delete_ruleset(rs._handle)
            self._names.clear()


# -- encoding values as integers ----------------------------------------------------------------

Kind: TypeAlias = Literal["rank", "date", "bool", "list"]
_KIND: dict[Type, Kind] = {
    Type.NUMBER: "rank",
    Type.STRING: "rank",
    Type.DATE: "date",
    Type.BOOL: "bool",
    Type.STRING_LIST: "list",
}
_DATE_LO, _DATE_HI = 0, date.max.toordinal() + 1
_LIST_END = -1  # ends every asserted list: durable's $iall is false on an empty list


@dataclass
class _Operand:
    """A value a condition compares: a fact, or a subexpression computed in Python.

    durable compares integers exactly but strings in an order Python does not share (``"a"``
    sorts after ``"a b"``) and numbers as C doubles, so every value is asserted as an integer:

    * numbers and strings (``rank``): the distinct literals this operand is compared with,
      sorted, give literal *i* the code ``2i + 2``; any other value gets the odd code between
      its neighbours. Comparing codes gives exactly what comparing the values gives, for any
      Decimal, with no scale or range limit;
    * dates: their ordinal, so two date facts compare with each other too;
    * true/false: 1/0.

    A missing value (``None``) is a sentinel below every code in the ``lo`` property and above
    every code in the ``hi`` property, so each arflow test is one durable test: ``x > 5`` reads
    ``lo`` (missing is never greater), ``not x > 5`` reads ``hi`` (missing satisfies it),
    ``x != 5`` and ``x == null`` read ``lo``.
    """

    kind: Kind
    get: Callable[[Mapping[str, Any]], Any]
    literals: set[Any] = field(default_factory=set)
    lo: str = ""
    hi: str = ""
    table: list[Any] = field(default_factory=list)

    def freeze(self) -> None:
        self.table = sorted(self.literals)

    def code(self, v: Any) -> int:
        if self.kind == "date":
            if not isinstance(v, date):
                raise TypeError(f"expected a date, got {v!r}")
            return v.toordinal()
        if self.kind == "bool":
            if v is True:
                return 1
            if v is False:
                return 0
            raise TypeError(f"expected true or false, got {v!r}")
        if isinstance(v, bool) or (
            self.table and isinstance(v, str) != isinstance(self.table[0], str)
        ):
            raise TypeError(f"{v!r} has not the type of the literals it is compared with")
        i = bisect_left(self.table, v)
        return 2 * i + 2 if i < len(self.table) and self.table[i] == v else 2 * i + 1

    @property
    def sentinels(self) -> tuple[int, int]:
        if self.kind == "date":
            return _DATE_LO, _DATE_HI
        if self.kind == "bool":
            return -1, -1
        return -1, 2 * len(self.table) + 2

    def encode(self, facts: Mapping[str, Any], out: dict[str, Any]) -> None:
        v = self.get(facts)
        if self.kind == "list":
            codes = [] if v is None else [self.code(x) for x in v]
            codes.append(_LIST_END)
            out[self.lo] = codes
            return
        if v is None:
            lo, hi = self.sentinels
        else:
            lo = hi = self.code(v)
        if self.lo:
            out[self.lo] = lo
        if self.hi:
            out[self.hi] = hi


# -- conditions as or-of-ands of durable tests ---------------------------------------------------

Key: TypeAlias = tuple[str, str]  # ("f", path) | ("v", text) | ("b", text)


@dataclass(frozen=True)
class _Test:
    """One durable test, symbolic until the operands' codes are known.

    ``what``: ``cmp`` (operand vs literal), ``ref`` (operand vs operand), ``null``, ``truth``
    (a true/false operand), ``any`` (a literal in a list operand). ``pos`` False negates it
    with arflow's semantics (``not`` is true when the test is not true, null included).
    """

    what: str
    key: Key
    op: str = "=="
    value: Any = None
    other: Key | None = None
    pos: bool = True


@dataclass(frozen=True)
class _All:
    items: tuple[Formula, ...]


@dataclass(frozen=True)
class _Any:
    items: tuple[Formula, ...]


Formula: TypeAlias = bool | _Test | _All | _Any

_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEG = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_DOP = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


def _all(items: Iterable[Formula]) -> Formula:
    out: list[Formula] = []
    for i in items:
        if i is False:
            return False
        if i is not True:
            out.append(i)
    return True if not out else out[0] if len(out) == 1 else _All(tuple(out))


def _any(items: Iterable[Formula]) -> Formula:
    out: list[Formula] = []
    for i in items:
        if i is True:
            return True
        if i is not False:
            out.append(i)
    return False if not out else out[0] if len(out) == 1 else _Any(tuple(out))


def _dnf(f: Formula, rule: str) -> list[tuple[_Test, ...]]:
    """Flatten to an or of ands; durable takes each and as its own rule, without nesting."""
    if f is True:
        return [()]
    if f is False:
        return []
    if isinstance(f, _Test):
        return [(f,)]
    if isinstance(f, _Any):
        terms = [t for i in f.items for t in _dnf(i, rule)]
    else:
        terms = [()]
        for i in f.items:
            terms = [a + b for a in terms for b in _dnf(i, rule)]
            if len(terms) > TERMS_PER_RULE:
                break
    if len(terms) > TERMS_PER_RULE:
        raise UnsupportedForDurable(
            f"rule {rule!r}: its condition flattens to more than {TERMS_PER_RULE} alternatives"
        )
    return [tuple(dict.fromkeys(t)) for t in dict.fromkeys(terms)]


class _Translator:
    """Turns checked trees of one subject into formulas over operands (pass 1 of 2)."""

    def __init__(self, types: Mapping[str, Type]) -> None:
        self.types = types
        self.operands: dict[Key, _Operand] = {}

    def operand(self, node: Node) -> tuple[Literal["const"], Any] | tuple[Literal["op"], Key]:
        if not facts_used(node):
            return "const", compile_(node)({})
        if isinstance(node, Fact):
            key: Key = ("f", node.path)
            t = self.types[node.path]
            getter: Callable[[Mapping[str, Any]], Any] = methodcaller("get", node.path)
        else:
            text = unparse(node)
            t = check(node, self.types, text, want=None)
            key = ("v", text)
            getter = compile_(node)
        if key not in self.operands:
            self.operands[key] = _Operand(_KIND[t], getter)
        return "op", key

    def derived(self, node: Node, pos: bool) -> Formula:
        """A test durable cannot express natively, computed in Python as a true/false fact."""
        key: Key = ("b", unparse(node))
        if key not in self.operands:
            fn = compile_(node)
            self.operands[key] = _Operand("bool", lambda f: fn(f) is True)
        return _Test("truth", key, pos=pos)

    def formula(self, node: Node, pos: bool = True) -> Formula:
        if isinstance(node, Lit):
            return (node.value is True) == pos
        if isinstance(node, Not):
            return self.formula(node.item, not pos)
        if isinstance(node, BoolOp):
            parts = [self.formula(i, pos) for i in node.items]
            return _all(parts) if (node.op == "and") == pos else _any(parts)
        if isinstance(node, Fact):
            _, key = self.operand(node)
            return _Test("truth", key, pos=pos)
        if isinstance(node, Compare):
            return self.compare(node, pos)
        if isinstance(node, Member):
            return self.member(node, pos)
        if isinstance(node, Call) or not facts_used(node):
            return (compile_(node)({}) is True) == pos
        return self.derived(node, pos)

    def compare(self, node: Compare, pos: bool) -> Formula:
        left, right = self.operand(node.left), self.operand(node.right)
        op = node.op
        if left[0] == "const" and right[0] == "const":
            return (compile_(node)({}) is True) == pos
        if left[0] == "const":
            left, right, op = right, left, _FLIP[op]
        key = left[1]
        a = self.operands[key]
        if right[0] == "const":
            value = right[1]
            if value is None:
                if op not in ("==", "!="):
                    return not pos  # an ordering with null is false
                if a.kind == "list":
                    return self.derived(node, pos)
                return _Test("null", key, pos=(op == "==") == pos)
            if a.kind == "list":  # pragma: no cover - the checker refuses it
                return self.derived(node, pos)
            if a.kind == "rank":
                a.literals.add(value)
            return _Test("cmp", key, op, value, pos=pos)
        other = right[1]
        b = self.operands[other]
        if a.kind == b.kind and a.kind in ("date", "bool"):
            return _Test("ref", key, op, other=other, pos=pos)
        return self.derived(node, pos)

    def member(self, node: Member, pos: bool) -> Formula:
        inside = pos != node.negate  # the formula says "item is in the container"
        item = self.operand(node.item)
        if isinstance(node.container, ListNode):
            elems = [self.operand(e) for e in node.container.items]
            if item[0] == "const" or any(e[0] != "const" for e in elems):
                if item[0] == "const" and all(e[0] == "const" for e in elems):
                    return (compile_(node)({}) is True) == pos
                return self.derived(node, pos)
            key = item[1]
            a = self.operands[key]
            if a.kind == "list":
                return self.derived(node, pos)
            tests: list[Formula] = []
            for _, value in elems:
                if value is None:
                    tests.append(_Test("null", key, pos=inside))
                else:
                    if a.kind == "rank":
                        a.literals.add(value)
                    tests.append(_Test("cmp", key, "==", value, pos=inside))
            return _any(tests) if inside else _all(tests)
        container = self.operand(node.container)
        if item[0] == "const" and container[0] == "op" and isinstance(item[1], str):
            lst = self.operands[container[1]]
            if lst.kind == "list":
                lst.literals.add(item[1])
                return _Test("any", container[1], value=item[1], pos=inside)
        return self.derived(node, pos)


class _Codes:
    """Pass 2: durable property names for operands, and durable JSON for tests."""

    def __init__(self, operands: Mapping[Key, _Operand]) -> None:
        self.operands = operands
        self._names = (f"p{i}" for i in itertools.count())

    def prop(self, key: Key, side: str) -> str:
        a = self.operands[key]
        if side == "hi" and a.kind != "bool":
            if not a.hi:
                a.hi = next(self._names)
            return a.hi
        if not a.lo:
            a.lo = next(self._names)
        return a.lo

    def literal(self, key: Key, value: Any) -> int:
        return self.operands[key].code(value)

    def render(self, t: _Test) -> tuple[dict[str, Any], set[str]]:
        if t.what == "truth":
            p = self.prop(t.key, "lo")
            return ({p: 1} if t.pos else {"$neq": {p: 1}}), {p}
        if t.what == "null":
            p = self.prop(t.key, "lo")
            lo = self.operands[t.key].sentinels[0]
            return ({p: lo} if t.pos else {"$neq": {p: lo}}), {p}
        if t.what == "any":
            p = self.prop(t.key, "lo")
            code = self.literal(t.key, t.value)
            if t.pos:
                return {"$iany": {p: {"$i": code}}}, {p}
            return {"$iall": {p: {"$neq": {"$i": code}}}}, {p}
        op = t.op if t.pos else _NEG[t.op]
        if op in ("==", "!="):
            a_side = b_side = "lo"
        else:
            missing_ok = not t.pos
            a_side = "lo" if (op in ("<", "<=")) == missing_ok else "hi"
            b_side = "hi" if a_side == "lo" else "lo"
        p = self.prop(t.key, a_side)
        props = {p}
        rhs: Any
        if t.what == "ref":
            assert t.other is not None
            q = self.prop(t.other, b_side)
            props.add(q)
            rhs = {"$m": q}
        else:
            rhs = self.literal(t.key, t.value)
        return ({p: rhs} if op == "==" else {_DOP[op]: {p: rhs}}), props


# -- the single-subject matcher --------------------------------------------------------------------

RuleInput: TypeAlias = tuple[str, Condition | Node, str]


@dataclass
class _Shard:
    name: str
    props: list[str]
    terms: list[tuple[int, list[dict[str, Any]]]]


@dataclass
class _Plan:
    """Everything needed to match one subject kind: operands to encode and the shards."""

    operands: list[_Operand]
    shards: list[_Shard]


class DurableMatcher(_Driver):
    """Matches single-subject conditions with durable-rules; decisions equal the predicates'.

    ``rules`` are ``(rule_id, condition, subject)`` with the condition a :class:`Condition` or
    a tree, type-checked here against ``fact_types(subject)``. Comparisons of a fact (or of a
    computed value) with literals, ``and``/``or``/``not``, ``in`` lists, ``== null`` and date or
    true/false facts compared with each other become durable tests. What durable cannot
    compare exactly (arithmetic, ``min``/``max``/``abs``, two numbers or two texts compared
    with each other, a fact inside a list fact) is computed in Python with the predicate
    compiler and asserted as a derived fact, so the answers cannot differ.

    ``definitions`` holds the generated durable rulesets (without actions) for inspection.
    """

    def __init__(self, rules: Iterable[RuleInput], *, max_sessions: int = 8) -> None:
        super().__init__(max_sessions)
        self.rule_ids: list[str] = []
        self._plans: dict[str, _Plan] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        by_subject: dict[str, list[tuple[int, Node]]] = {}
        for rule_id, cond, subject in rules:
            if subject not in SUBJECTS:
                raise ValueError(f"unknown subject {subject!r} (known: {', '.join(SUBJECTS)})")
            tree = cond.tree if isinstance(cond, Condition) else cond
            check(tree, fact_types(subject), unparse(tree))
            by_subject.setdefault(subject, []).append((len(self.rule_ids), tree))
            self.rule_ids.append(rule_id)
        for subject, trees in by_subject.items():
            self._plans[subject] = self._plan(subject, trees)

    def _plan(self, subject: str, trees: list[tuple[int, Node]]) -> _Plan:
        tr = _Translator(fact_types(subject))
        formulas = [(i, tr.formula(tree)) for i, tree in trees]
        for a in tr.operands.values():
            a.freeze()
        codes = _Codes(tr.operands)
        terms: list[tuple[int, list[dict[str, Any]], set[str]]] = []
        for i, f in formulas:
            for term in _dnf(f, self.rule_ids[i]):
                rendered = [codes.render(t) for t in term]
                tests = [{_TAG: 1}] + [r[0] for r in rendered]
                props = set().union(*(r[1] for r in rendered)) if rendered else set()
                if len(tests) > TESTS_PER_SHARD:
                    raise UnsupportedForDurable(
                        f"rule {self.rule_ids[i]!r}: more than {TESTS_PER_SHARD} tests in one"
                        " alternative"
                    )
                terms.append((i, tests, props))
        groups: list[list[tuple[int, list[dict[str, Any]], set[str]]]] = [[]]
        size = 0
        for entry in terms:
            if len(groups[-1]) >= TERMS_PER_SHARD or size + len(entry[1]) > TESTS_PER_SHARD:
                groups.append([])
                size = 0
            groups[-1].append(entry)
            size += len(entry[1])
        shards = [self._shard(f"{subject}-{n}", g) for n, g in enumerate(groups) if g]
        used = [a for a in tr.operands.values() if a.lo or a.hi]
        return _Plan(used, shards)

    def _shard(self, name: str, terms: list[tuple[int, list[dict[str, Any]], set[str]]]) -> _Shard:
        rules: dict[str, Any] = {}
        for n, (i, tests, _props) in enumerate(terms):
            cond = tests[0] if len(tests) == 1 else {"$and": tests}
            rules[f"t{n}"] = {"all": [{"m": cond}], "run": self._action(i, "m")}
        self.definitions[name] = {k: {"all": v["all"]} for k, v in rules.items()}
        self._register(name, rules)
        props = sorted(set().union(*(t[2] for t in terms)))
        return _Shard(name, props, [(i, tests) for i, tests, _ in terms])

    def match(
        self, facts_by_subject: Mapping[str, Mapping[str, Any]], subject: str | None = None
    ) -> dict[str, set[str]]:
        """For each subject id, the ids of the rules whose condition holds on its facts.

        ``subject`` limits matching to the rules of one subject kind; by default every rule
        is tried on every facts mapping.
        """
        if subject is not None and subject not in SUBJECTS:
            raise ValueError(f"unknown subject {subject!r} (known: {', '.join(SUBJECTS)})")
        kinds = list(self._plans) if subject is None else [subject]
        out: dict[str, set[str]] = {s: set() for s in facts_by_subject}
        with self._turn():
            for kind in kinds:
                plan = self._plans.get(kind)
                if plan is None:
                    continue
                for subject_id, facts in facts_by_subject.items():
                    values: dict[str, Any] = {}
                    for a in plan.operands:
                        a.encode(facts, values)
                    for shard in plan.shards:
                        for i in self._evaluate(shard, values):
                            out[subject_id].add(self.rule_ids[i])
        return out

    def _evaluate(self, shard: _Shard, values: Mapping[str, Any]) -> set[int]:
        sid = self._sessions.current()
        fact: dict[str, Any] = {_TAG: 1, "id": self._ids.take(set()), "sid": sid}
        for p in shard.props:
            fact[p] = values[p]
        stored: list[dict[str, Any]] = []
        self._fired.clear()
        self._recording = True
        try:
            if self._assert(shard.name, fact):
                stored.append(fact)
            self._recording = False
            fired = {i for i, fid in self._fired if fid == fact["id"]}
            if any(fid != fact["id"] for _, fid in self._fired):
                raise DurableError(f"rules fired for facts not asserted now: {self._fired}")
            self._retract_all(shard.name, stored)
        except Exception as exc:
            self._fail(sid, shard.name, stored, exc)
        return fired

    def __enter__(self) -> DurableMatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- patterns over one customer's history -----------------------------------------------------------


@dataclass(frozen=True)
class Promise:
    """A promise to pay ``receivable_id`` by ``promised_date``, made on ``made_on``."""

    receivable_id: str
    made_on: date
    promised_date: date


@dataclass(frozen=True)
class Payment:
    """Money received on ``paid_on`` for ``receivable_id``, which was due on ``due_date``."""

    receivable_id: str
    paid_on: date
    due_date: date


@dataclass(frozen=True)
class UnpaidPromise:
    """Holds when a promise's date plus ``grace_days`` is before ``as_of`` and no payment for
    its receivable arrived between the day it was made and that deadline."""

    name: str = "unpaid_promise"
    grace_days: int = 0


@dataclass(frozen=True)
class LatePayments:
    """Holds when at least ``count`` payments made after their due date fall in the
    ``window_days`` days up to ``as_of`` (both ends included)."""

    name: str = "late_payments"
    count: int = 3
    window_days: int = 180


Pattern: TypeAlias = UnpaidPromise | LatePayments
_PROMISE, _PAYMENT, _CLOCK, _START = 1, 2, 3, 9
MAX_LATE_COUNT = 12  # durable joins at most 16 facts per rule


def _plus(alias: str, prop: str, n: int) -> Any:
    ref = {alias: prop}
    return ref if n == 0 else {"$add": {"$l": ref, "$r": n}}


def _joined(alias: str, *tests: dict[str, Any]) -> dict[str, Any]:
    """Tests on a fact joined to ``alias``, closed by one that is always true.

    durable evaluates the tests that refer to other facts as a sequence; when the last one
    is false it skips past the sequence's end marker and reads memory it does not own
    (valgrind shows it; after enough rulesets the process dies with SIGSEGV). A last test
    that always holds (every wrapper fact has ``one: 1``) keeps it inside the sequence.
    """
    return {"$and": [*tests, {"$lte": {"one": {alias: "one"}}}]}


def _late_rule(p: LatePayments) -> list[dict[str, Any]]:
    """A chain of late payments with consecutive late ranks, starting at the first one in the
    window (no earlier late payment is in it), whose last one is not after the clock."""
    last = f"l{p.count - 1}"
    steps: list[dict[str, Any]] = [
        {"l0": {"$and": [{_TAG: _PAYMENT}, {"$gt": {"lr": 0}}]}},
    ]
    for j in range(1, p.count):
        prev = f"l{j - 1}"
        steps.append({f"l{j}": _joined(prev, {_TAG: _PAYMENT}, {"lr": _plus(prev, "lr", 1)})})
    steps.append(
        {
            "t": _joined(
                "l0",
                {_TAG: _CLOCK},
                {"$gte": {"day": {last: "day"}}},
                {"$lte": {"day": _plus("l0", "day", p.window_days)}},
            )
        }
    )
    earlier = {"$sub": {"$l": {"t": "day"}, "$r": p.window_days}}
    steps.append(
        {
            "x$not": _joined(
                "l0",
                {_TAG: _PAYMENT},
                {"$gt": {"lr": 0}},
                {"$lt": {"lr": {"l0": "lr"}}},
                {"$gte": {"day": earlier}},
            )
        }
    )
    return steps


def _promise_rule(p: UnpaidPromise) -> list[dict[str, Any]]:
    """A promise, a clock past its deadline, and no payment for it between made and deadline."""
    deadline = _plus("p", "day", p.grace_days)
    return [
        {"p": {_TAG: _PROMISE}},
        {"t": _joined("p", {_TAG: _CLOCK}, {"$gt": {"day": deadline}})},
        {
            "x$not": _joined(
                "p",
                {_TAG: _PAYMENT},
                {"r": {"p": "r"}},
                {"$gte": {"day": {"p": "made"}}},
                {"$lte": {"day": deadline}},
            )
        },
    ]


class PatternMatcher(_Driver):
    """Matches patterns that join one customer's promises, payments and the date.

    Time is a fact: ``match`` asserts the history first and a clock fact holding ``as_of``
    last, so nothing can fire before the clock is there. No durable timer is ever started.
    Durable does the joins and the absence tests; the wrapper only numbers the late payments
    (a payment is late when paid after its due date) in date order, so the join can walk them.

    Facts that took part in a completed join are not retracted one by one: durable then
    reads join memory it has already released (valgrind shows it). Each evaluation instead
    starts its session with a start fact that fires a no-op action, and ends by deleting the
    session's state, which is safe once the session has run an action (deleting one that
    never has crashes the process). The session id is then reused, so at most
    ``max_sessions`` sessions exist.
    """

    RULESET = "patterns"

    def __init__(self, patterns: Sequence[Pattern], *, max_sessions: int = 8) -> None:
        super().__init__(max_sessions)
        if not patterns:
            raise ValueError("at least one pattern is needed")
        if len(patterns) > 16:
            raise UnsupportedForDurable("at most 16 patterns per matcher")
        self.patterns = list(patterns)
        rules: dict[str, Any] = {"start": {"all": [{"m": {_TAG: _START}}], "run": _nothing}}
        for i, p in enumerate(self.patterns):
            if isinstance(p, LatePayments):
                if not 1 <= p.count <= MAX_LATE_COUNT:
                    raise UnsupportedForDurable(
                        f"pattern {p.name!r}: count must be 1..{MAX_LATE_COUNT}, not {p.count}"
                    )
                if p.window_days < 0:
                    raise ValueError(f"pattern {p.name!r}: window_days must not be negative")
                rules[f"q{i}"] = {"all": _late_rule(p), "run": self._action(i, "l0")}
            elif isinstance(p, UnpaidPromise):
                if p.grace_days < 0:
                    raise ValueError(f"pattern {p.name!r}: grace_days must not be negative")
                rules[f"q{i}"] = {"all": _promise_rule(p), "run": self._action(i, "p")}
            else:
                raise TypeError(f"not a pattern: {p!r}")
        self.definitions = {self.RULESET: {k: {"all": v["all"]} for k, v in rules.items()}}
        self._register(self.RULESET, rules)
        promise_rules = sum(isinstance(p, UnpaidPromise) for p in self.patterns)
        late_rules = len(self.patterns) - promise_rules
        # Each late rule matches at most once; the promise rules once per promise asserted.
        self._chunk = max(1, (48 - late_rules) // max(1, promise_rules))

    def match(
        self,
        histories: Mapping[str, tuple[Sequence[Promise], Sequence[Payment]]],
        as_of: date,
    ) -> dict[str, set[str]]:
        """For each customer id, the names of the patterns that hold on ``as_of``.

        ``histories`` maps a customer id to ``(promises, payments)``.
        """
        return {
            c: {name for name, _ in found}
            for c, found in self.match_details(histories, as_of).items()
        }

    def match_details(
        self,
        histories: Mapping[str, tuple[Sequence[Promise], Sequence[Payment]]],
        as_of: date,
    ) -> dict[str, list[tuple[str, Promise | Payment]]]:
        """Like :meth:`match`, with what each match hangs on: for an unpaid-promise pattern
        every promise that went unpaid; for a late-payments pattern the first late payment of
        the run that fills the window. Sorted by pattern name, then date."""
        out: dict[str, list[tuple[str, Promise | Payment]]] = {c: [] for c in histories}
        with self._turn():
            for customer, (promises, payments) in histories.items():
                found = {
                    (self.patterns[i].name, obj)
                    for i, obj in self._evaluate(promises, payments, as_of)
                }
                out[customer] = sorted(found, key=_detail_order)
        return out

    def _evaluate(
        self, promises: Sequence[Promise], payments: Sequence[Payment], as_of: date
    ) -> set[tuple[int, Promise | Payment]]:
        refs: dict[str, int] = {}

        def ref(receivable_id: str) -> int:
            return refs.setdefault(receivable_id, len(refs) + 1)

        order = sorted(range(len(payments)), key=lambda j: (payments[j].paid_on, j))
        late_rank: dict[int, int] = {}
        for j in order:
            if payments[j].paid_on > payments[j].due_date:
                late_rank[j] = len(late_rank) + 1
        history = [
            {
                _TAG: _PAYMENT,
                "r": ref(p.receivable_id),
                "day": p.paid_on.toordinal(),
                "lr": late_rank.get(j, 0),
            }
            for j, p in enumerate(payments)
        ]
        promised = [
            {
                _TAG: _PROMISE,
                "r": ref(p.receivable_id),
                "made": p.made_on.toordinal(),
                "day": p.promised_date.toordinal(),
            }
            for p in promises
        ]
        sources: list[Promise | Payment] = [*payments]
        result: set[tuple[int, Promise | Payment]] = set()
        step = self._chunk
        for at in range(0, max(1, len(promised)), step):
            chunk = [*sources, *promises[at : at + step]]
            for i, position in self._round(history + promised[at : at + step], as_of):
                result.add((i, chunk[position]))
        return result

    def _round(self, facts: list[dict[str, Any]], as_of: date) -> set[tuple[int, int]]:
        """One session's life: start (an action runs), history, clock, delete the state.
        Returns (pattern index, position in ``facts`` of the fact the match hangs on)."""
        sid = self._sessions.current()
        live: set[int] = set()
        position: dict[Any, int] = {}
        try:
            self._assert(
                self.RULESET,
                {_TAG: _START, "id": self._ids.take(live), "sid": sid, "one": 1},
            )
            for n, values in enumerate(facts):
                fact = {**values, "id": self._ids.take(live), "sid": sid, "one": 1}
                position[fact["id"]] = n
                self._assert(self.RULESET, fact)
            clock = {_TAG: _CLOCK, "day": as_of.toordinal()}
            self._fired.clear()
            self._recording = True
            self._assert(self.RULESET, {**clock, "id": self._ids.take(live), "sid": sid, "one": 1})
            self._recording = False
            fired = {(i, position[fid]) for i, fid in self._fired}
            self._host.delete_state(self.RULESET, sid)
        except Exception as exc:
            self._fail(sid, self.RULESET, [], exc)
        return fired

    def __enter__(self) -> PatternMatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _detail_order(item: tuple[str, Promise | Payment]) -> tuple[str, date, str]:
    name, obj = item
    day = obj.promised_date if isinstance(obj, Promise) else obj.paid_on
    return name, day, obj.receivable_id


def _nothing(_c: Any) -> None:
    """The start rule's action: its only purpose is that the session has run one."""
