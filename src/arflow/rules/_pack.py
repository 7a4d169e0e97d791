"""A compiled rule pack: what the engine reads, checked and compiled by the loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .expr import Condition
from .schema import BUILTIN_ROLES, Action, Settings

__all__ = ["CompiledLadder", "CompiledRule", "CompiledStep", "RulePack", "Source"]


@dataclass(frozen=True)
class Source:
    """Where a compiled rule was written, for messages about it (lint): its file, the line
    of the rule, and the lines of its ``when`` and ``at`` (the rule's line when absent)."""

    file: str
    line: int
    when: int
    at: int


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
    processes: list[Any] = field(default_factory=list)  # arflow.domain.ProcessDefinition
    scoring: Any = None  # arflow.rules.schema.Scoring
    templates: frozenset[str] = frozenset()
    template_dirs: tuple[Path, ...] = ()

    def process(self, name: str) -> Any | None:
        """The declared process ``name`` (None: the pack declares none of that id)."""
        return next((p for p in self.processes if p.id == name), None)

    def process_for(self, trigger: str) -> Any | None:
        """The process that ``trigger`` (``order_discount``...) starts, if any."""
        return next((p for p in self.processes if p.starts_on == trigger), None)

    def all_roles(self) -> frozenset[str]:
        return BUILTIN_ROLES | frozenset(self.roles)
