"""The single-subject matcher: conditions matched by durable-rules, equal to the predicates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from ...errors import DurableError, UnsupportedForDurable
from ..expr import Condition, Node, check, unparse
from ..facts import SUBJECTS, fact_types
from ._encode import _Operand
from ._host import _TAG, TERMS_PER_SHARD, TESTS_PER_SHARD, _Driver
from ._translate import _Codes, _dnf, _Translator

__all__ = ["DurableMatcher", "RuleInput"]

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
