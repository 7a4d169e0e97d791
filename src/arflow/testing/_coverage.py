"""Rule coverage: which rules of a pack the tests made fire, and which none did.

A pack's rules are its ladder steps (``dunning LADDER/STEP``), its locks placed and lifted
(``lock ID``, ``unlock ID``), its alerts, patterns, milestone rules and approval tiers
(``alert ID``, ``pattern ID``, ``milestone ID``, ``approval ID``): the names
:class:`RuleHarness` prints for decisions. While :func:`watching` is active, every plan
and every handled event of an :class:`~arflow.engine.Engine` in this process reports its
decisions; a :class:`RuleCoverage` keeps those of its own pack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..rules.loader import RulePack, Source, load_pack

if TYPE_CHECKING:
    from ..decisions import Decision

__all__ = ["RuleCoverage", "rule_items", "watching"]

Observer = Callable[[RulePack, "list[Decision]"], None]


def _where(source: Source | None) -> str:
    return "" if source is None else f"{Path(source.file).name}:{source.line}"


def rule_items(pack: RulePack) -> dict[str, str]:
    """Every rule of ``pack`` a test can make fire, by name, with its ``file:line``."""
    items: dict[str, str] = {}
    for ladder in pack.ladders:
        for step in ladder.steps:
            items[f"dunning {ladder.id}/{step.id}"] = _where(step.source)
    for lock in pack.locks:
        items[f"lock {lock.id}"] = _where(lock.source)
        items[f"unlock {lock.id}"] = _where(lock.source)
    for kind, rules in (
        ("alert", pack.alerts),
        ("pattern", pack.patterns),
        ("milestone", pack.milestones),
        ("approval", pack.approvals),
    ):
        for rule in rules:
            items[f"{kind} {rule.id}"] = _where(rule.source)
    return items


def _name(decision: Decision) -> str:
    step = f"/{decision.step}" if decision.step else ""
    return f"{decision.kind} {decision.rule}{step}"


class RuleCoverage:
    """The rules of the pack at ``path`` and which of them fired in what was observed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.pack = load_pack(self.path)
        self.items = rule_items(self.pack)
        self.fired: set[str] = set()
        self._files = frozenset(Path(f).resolve() for f in self.pack.files)
        self._root = self.path.resolve()

    def _ours(self, pack: RulePack) -> bool:
        """Whether ``pack`` was loaded from this pack's files (some of them at least)."""
        for f in pack.files:
            p = Path(f).resolve()
            if p in self._files or self._root in p.parents:
                return True
        return False

    def observe(self, pack: RulePack, decisions: Iterable[Decision]) -> None:
        """Count the decisions an engine running ``pack`` made, if it is this pack."""
        if not self._ours(pack):
            return
        for decision in decisions:
            name = _name(decision)
            if name in self.items:
                self.fired.add(name)

    @property
    def unfired(self) -> dict[str, str]:
        """The rules no observed decision came from, with their ``file:line``."""
        return {k: v for k, v in self.items.items() if k not in self.fired}

    @property
    def percent(self) -> float:
        """The share of the pack's rules that fired (100 for a pack without rules)."""
        return 100.0 if not self.items else 100.0 * len(self.fired) / len(self.items)

    def report(self) -> list[str]:
        """Lines for a terminal: the summary, then each rule that never fired."""
        lines = [
            f"{self.path}: {len(self.fired)} of {len(self.items)} rules fired ({self.percent:.0f}%)"
        ]
        unfired = self.unfired
        if unfired:
            width = max(map(len, unfired))
            lines.append("  never fired:")
            lines.extend(f"    {k:<{width}}  {v}".rstrip() for k, v in unfired.items())
        return lines


@contextmanager
def watching(observe: Observer) -> Iterator[None]:
    """While the block runs, ``observe(pack, decisions)`` gets the decisions of every
    ``Engine.plan``, ``Engine.run`` and ``Engine.handle`` in this process. A run in helper
    processes (``workers > 1``) plans its slices there, out of sight: its merged plan is
    seen when the run returns (the same decision seen twice counts once)."""
    from ..engine import Engine

    plan, run, handle = Engine.plan, Engine.run, Engine.handle

    def plan_and_observe(self: Engine, *args: Any, **kwargs: Any) -> Any:
        got = plan(self, *args, **kwargs)
        observe(self.pack, list(got.decisions))
        return got

    def run_and_observe(self: Engine, *args: Any, **kwargs: Any) -> Any:
        got = run(self, *args, **kwargs)
        observe(self.pack, list(got.plan.decisions))
        return got

    def handle_and_observe(self: Engine, event: Any) -> Any:
        applied, decisions = handle(self, event)
        observe(self.pack, list(decisions))
        return applied, decisions

    setattr(Engine, "plan", plan_and_observe)  # noqa: B010
    setattr(Engine, "run", run_and_observe)  # noqa: B010
    setattr(Engine, "handle", handle_and_observe)  # noqa: B010
    try:
        yield
    finally:
        setattr(Engine, "plan", plan)  # noqa: B010
        setattr(Engine, "run", run)  # noqa: B010
        setattr(Engine, "handle", handle)  # noqa: B010
