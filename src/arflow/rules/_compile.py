"""Compiling a checked rule file into the pack, one function per section.

The pack-wide sections (name, roles, settings, calendar, scoring) are merged from every file
first, since rules are checked against the roles of the whole pack; then each file's rules
are compiled section by section. Both passes run from a table: adding a rule kind is its
schema entry (:mod:`arflow.rules.schema`), a list on :class:`RulePack`, and one compile
function in :data:`RULE_SECTIONS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from .. import calendar as cal
from ..domain import OWNER_PATHS, ROLE_HOLDERS
from ..errors import ExpressionError, Problem, ValidationError
from ._pack import CompiledLadder, CompiledRule, CompiledStep, RulePack, Source
from ._yaml import Path_, _Lines, _short
from .expr import Condition, Type, condition
from .facts import fact_types
from .schema import Action, Ladder, RuleFile

__all__ = ["CROSS_CHECKS", "PACK_SECTIONS", "RULE_SECTIONS", "FileContext"]


@dataclass
class FileContext:
    """One file being compiled into ``pack``: where its values were written, and the
    problems and rule ids found so far across the pack."""

    pack: RulePack
    file: str
    lines: _Lines
    positions: dict[str, list[int]]
    problems: list[Problem]
    seen_ids: dict[tuple[str, str], str]
    roles: frozenset[str] = frozenset()

    def problem(self, path: Path_, message: str, rule: str | None) -> None:
        """A problem at ``path`` of this file, about ``rule``."""
        self.problems.append(Problem(self.file, self.lines.line(path), rule, message))

    def path(self, section: str, index: int) -> Path_:
        """Where the ``index``-th valid rule of ``section`` was written."""
        return (section, self.positions[section][index])

    def source(self, path: Path_) -> Source:
        """The file and lines of the rule at ``path``, kept on the compiled rule."""
        line = self.lines.line(path)
        keys = self.lines.key
        return Source(
            self.file, line, keys.get((*path, "when"), line), keys.get((*path, "at"), line)
        )

    def cond(self, text: str | None, subject: str, path: Path_, rule: str) -> Condition | None:
        """``text`` compiled against the facts of ``subject``; None (and a problem pointing
        at the line of the column at fault) when it is not a valid condition."""
        if text is None:
            return None
        try:
            return condition(text, fact_types(subject))
        except ExpressionError as exc:
            line = self.lines.text_line(path, exc.position)
            msg = f"{exc.reason} at column {exc.position + 1} of {_short(text, 200)}"
            self.problems.append(Problem(self.file, line, rule, msg))
            return None

    def unique(self, kind: str, rid: str, path: Path_) -> None:
        """``rid`` is the first ``kind`` of that id in the pack."""
        if (kind, rid) in self.seen_ids:
            self.problem(
                path, f"{kind} id {rid!r} is also defined in {self.seen_ids[(kind, rid)]}", rid
            )
        self.seen_ids[(kind, rid)] = self.file

    def known_roles(
        self, who: Sequence[str], path: Path_, rule: str, *, known: bool = False
    ) -> None:
        """Every role in ``who`` is one the pack defines (``known``: list them if not)."""
        for j, name in enumerate(who):
            if name not in self.roles:
                shown = f" (known: {', '.join(sorted(self.roles))})" if known else ""
                self.problem((*path, j), f"unknown role {name!r}{shown}", rule)

    def template(self, name: str | None, path: Path_, rule: str) -> None:
        """``name`` (if any) is a template the pack has."""
        if name is not None and name not in self.pack.templates:
            self.problem(path, f"unknown template {name!r}", rule)

    def actions(self, acts: Sequence[Action], path: Path_, rule: str) -> None:
        """Roles, templates and ``due_in`` offsets of ``acts`` are valid."""
        for i, a in enumerate(acts):
            for where in ("to", "cc"):
                self.known_roles(getattr(a, where), (*path, i, where), rule, known=True)
            self.template(a.template, (*path, i, "template"), rule)
            if a.due_in is not None:
                try:
                    cal.Offset.parse("due+" + a.due_in)
                except ValueError as exc:
                    self.problem((*path, i, "due_in"), f"bad due_in {a.due_in!r}: {exc}", rule)
            if a.escalate_after is not None:
                try:
                    cal.Offset.parse("due+" + a.escalate_after)
                except ValueError as exc:
                    self.problem(
                        (*path, i, "escalate_after"),
                        f"bad escalate_after {a.escalate_after!r}: {exc}",
                        rule,
                    )


# -- pack-wide sections: merged from every file, later files overriding -------------------------


def _pack_name_and_roles(ctx: FileContext, spec: RuleFile) -> None:
    if spec.pack and not ctx.pack.name:
        ctx.pack.name = spec.pack
    ctx.pack.roles.update(spec.roles)


def _settings(ctx: FileContext, spec: RuleFile) -> None:
    if spec.settings is None:
        return
    ctx.pack.settings = spec.settings
    if spec.settings.send_window:
        try:
            cal.SendWindow.parse(spec.settings.send_window)
        except ValueError as exc:
            ctx.problem(
                ("settings", "send_window"),
                f"bad send_window {spec.settings.send_window!r}: {exc}",
                None,
            )
    if spec.settings.task_escalation:
        try:
            cal.Offset.parse("due+" + spec.settings.task_escalation)
        except ValueError as exc:
            ctx.problem(
                ("settings", "task_escalation"),
                f"bad task_escalation {spec.settings.task_escalation!r}: {exc}",
                None,
            )


def _calendar(ctx: FileContext, spec: RuleFile) -> None:
    c = spec.calendar
    if c is None:
        return
    days: dict[str, frozenset[Any]] = {}
    for name in ("extra_holidays", "extra_workdays"):
        ok = []
        for i, text in enumerate(getattr(c, name)):
            try:
                ok.append(date.fromisoformat(text))
            except ValueError as exc:
                ctx.problem(
                    ("calendar", name, i), f"{text!r} is not a date (YYYY-MM-DD): {exc}", None
                )
        days[name] = frozenset(ok)
    try:
        ctx.pack.calendar = cal.BusinessCalendar(
            country=c.country,
            subdivision=c.subdivision,
            extra_holidays=days["extra_holidays"],
            extra_workdays=days["extra_workdays"],
        )
    except (ValueError, ValidationError) as exc:
        ctx.problem(("calendar", "country"), str(exc), None)


def _scoring(ctx: FileContext, spec: RuleFile) -> None:
    if spec.scoring is not None:
        ctx.pack.scoring = spec.scoring


Compile = Callable[[FileContext, RuleFile], None]

#: Pack-wide sections, merged from every file (in file order) before any rule is compiled.
PACK_SECTIONS: tuple[tuple[str, Compile], ...] = (
    ("pack", _pack_name_and_roles),
    ("calendar", _calendar),
    ("settings", _settings),
    ("scoring", _scoring),
)


# -- rules: compiled file by file, section by section --------------------------------------------


def _known_grades(ctx: FileContext, grades: Sequence[str], path: Path_, rule: str) -> None:
    """Every grade in ``grades`` is one the pack's scoring defines (no scoring: any)."""
    scoring = ctx.pack.scoring
    if scoring is None:
        return
    names = [g.grade for g in scoring.grades]
    for j, g in enumerate(grades):
        if g not in names:
            ctx.problem((*path, j), f"unknown grade {g!r} (the pack's: {', '.join(names)})", rule)


def _ladder(ctx: FileContext, ladder: Ladder, lp: Path_) -> CompiledLadder:
    ctx.unique("ladder", ladder.id, lp)
    _known_grades(ctx, ladder.exempt_grades, (*lp, "exempt_grades"), ladder.id)
    steps: list[CompiledStep] = []
    step_ids: set[str] = set()
    top_level = -1
    for si, st in enumerate(ladder.steps):
        sp: Path_ = (*lp, "steps", si)
        rid = f"{ladder.id}/{st.id}"
        if st.id in step_ids:
            ctx.problem(
                (*sp, "id"), f"step id {st.id!r} appears twice in ladder {ladder.id!r}", rid
            )
        step_ids.add(st.id)
        if st.level < top_level:
            ctx.problem(
                (*sp, "level"),
                f"level {st.level} is below the level {top_level} "
                "of an earlier step: levels must not go down along the ladder",
                rid,
            )
        top_level = max(top_level, st.level)
        try:
            schedule = cal.Schedule.parse(st.at)
        except ValueError as exc:
            ctx.problem((*sp, "at"), f"bad 'at' {st.at!r}: {exc}", rid)
            schedule = None
        when = ctx.cond(st.when, "receivable", (*sp, "when"), rid)
        for ai, a in enumerate(st.actions):
            _known_grades(ctx, a.exempt_grades, (*sp, "actions", ai, "exempt_grades"), rid)
        ctx.actions(st.actions, (*sp, "actions"), rid)
        for ai, a in enumerate(st.actions):
            if a.type in ("block_orders", "unblock_orders"):
                ctx.problem(
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
                ctx.source(sp),
            )
        )
    return CompiledLadder(
        ladder.id,
        ctx.cond(ladder.when, "receivable", (*lp, "when"), ladder.id),
        ladder.min_balance,
        tuple(ladder.exempt_grades),
        tuple(steps),
        ctx.source(lp),
    )


def _ladders(ctx: FileContext, spec: RuleFile) -> None:
    for i, ladder in enumerate(spec.ladders):
        ctx.pack.ladders.append(_ladder(ctx, ladder, ctx.path("ladders", i)))


def _rule(ctx: FileContext, kind: str, subject: str, spec: Any, p: Path_) -> CompiledRule:
    """A rule of ``kind`` about ``subject`` with its condition compiled."""
    return CompiledRule(
        kind,
        spec.id,
        subject,
        ctx.cond(spec.when, subject, (*p, "when"), spec.id),
        spec,
        ctx.source(p),
    )


def _locks(ctx: FileContext, spec: RuleFile) -> None:
    for i, lock in enumerate(spec.locks):
        p = ctx.path("locks", i)
        ctx.unique("lock", lock.id, p)
        ctx.known_roles(lock.notify, (*p, "notify"), lock.id)
        ctx.template(lock.template, (*p, "template"), lock.id)
        ctx.template(lock.lift_template, (*p, "lift_template"), lock.id)
        ctx.pack.locks.append(_rule(ctx, "lock", "customer", lock, p))


def _alerts(ctx: FileContext, spec: RuleFile) -> None:
    for i, alert in enumerate(spec.alerts):
        p = ctx.path("alerts", i)
        ctx.unique("alert", alert.id, p)
        ctx.actions(alert.actions, (*p, "actions"), alert.id)
        ctx.pack.alerts.append(_rule(ctx, "alert", alert.subject, alert, p))


def _milestones(ctx: FileContext, spec: RuleFile) -> None:
    for i, ms in enumerate(spec.milestones):
        p = ctx.path("milestones", i)
        ctx.unique("milestone rule", ms.id, p)
        ctx.actions(ms.actions, (*p, "actions"), ms.id)
        ctx.pack.milestones.append(_rule(ctx, "milestone", "customer", ms, p))


def _approvals(ctx: FileContext, spec: RuleFile) -> None:
    for i, tier in enumerate(spec.approvals):
        p = ctx.path("approvals", i)
        ctx.unique("approval tier", tier.id, p)
        ctx.known_roles(tier.approvers, (*p, "approvers"), tier.id)
        ctx.template(tier.template, (*p, "template"), tier.id)
        ctx.pack.approvals.append(_rule(ctx, "approval", "order", tier, p))


_PERSON = re.compile(r"^[A-Za-z0-9_.:@-]+$")
_SUBJECT_OF = {
    "order_discount": "order",
    "contract_discount": "contract",
    "order_terms": "order",
    "contract_terms": "contract",
    "credit_limit_raise": "customer",
}


def _processes(ctx: FileContext, spec: RuleFile) -> None:
    """Declared processes: ids unique in the pack, one process per trigger, a trigger on
    its own subject, and every owner a role, a holder path or a person id."""
    for i, proc in enumerate(spec.processes):
        p = ctx.path("processes", i)
        ctx.unique("process", proc.id, p)
        if proc.starts_on is not None:
            ctx.unique("process trigger", proc.starts_on, (*p, "starts_on"))
            if _SUBJECT_OF[proc.starts_on] != proc.subject:
                ctx.problem(
                    (*p, "starts_on"),
                    f"{proc.starts_on} starts a process about a {_SUBJECT_OF[proc.starts_on]}, "
                    f"not a {proc.subject}",
                    proc.id,
                )
        for j, step in enumerate(proc.steps):
            for field in ("owner", "fallback"):
                who = getattr(step, field)
                if who is None or who in OWNER_PATHS:
                    continue
                name = who[len(ROLE_HOLDERS) :] if who.startswith(ROLE_HOLDERS) else who
                if not name or not _PERSON.fullmatch(name):
                    ctx.problem(
                        (*p, "steps", j, field),
                        f"{field} {who!r} is neither role:NAME, one of "
                        f"{', '.join(OWNER_PATHS)}, nor a person id",
                        proc.id,
                    )
        ctx.pack.processes.append(proc)


def _patterns(ctx: FileContext, spec: RuleFile) -> None:
    for i, pat in enumerate(spec.patterns):
        p = ctx.path("patterns", i)
        ctx.unique("pattern", pat.id, p)
        ctx.actions(pat.actions, (*p, "actions"), pat.id)
        ctx.pack.patterns.append(_rule(ctx, "pattern", "customer", pat, p))
    if len(ctx.pack.patterns) > 16:
        ctx.problem(("patterns",), "at most 16 patterns per pack", None)


def _scoring_rules(ctx: FileContext, spec: RuleFile) -> None:
    """Scoring factors read known facts of the right type; grades go from the top down."""
    if spec.scoring is None:
        return
    known = fact_types("customer")
    for i, factor in enumerate(spec.scoring.factors):
        fp: Path_ = ("scoring", "factors", i)
        t = known.get(factor.fact)
        if t is None:
            ctx.problem((*fp, "fact"), f"unknown fact {factor.fact!r}", None)
        elif factor.bands is not None and t is not Type.NUMBER:
            ctx.problem(
                (*fp, "bands"),
                f"bands need a number, and {factor.fact} is a {t}: give 'points' by value instead",
                None,
            )
        elif factor.points is not None and t not in (Type.STRING, Type.BOOL):
            ctx.problem(
                (*fp, "points"),
                f"points by value need text, and {factor.fact} is a {t}: give 'bands' instead",
                None,
            )
    sc = spec.scoring
    if sc.max_auto_raise is not None or "raise_approvers" in sc.model_fields_set:
        ctx.known_roles(sc.raise_approvers, ("scoring", "raise_approvers"), "scoring", known=True)
    if "terms_approvers" in sc.model_fields_set:
        ctx.known_roles(sc.terms_approvers, ("scoring", "terms_approvers"), "scoring", known=True)
    grades = spec.scoring.grades
    for gi in range(1, len(grades)):
        if grades[gi].min_score > grades[gi - 1].min_score:
            ctx.problem(
                ("scoring", "grades", gi, "min_score"),
                "grades must be listed from the highest min_score down: grade "
                f"{grades[gi].grade} needs {grades[gi].min_score}, more than grade "
                f"{grades[gi - 1].grade} above it ({grades[gi - 1].min_score})",
                None,
            )
            break


def _order_settings(ctx: FileContext, spec: RuleFile) -> None:
    """What follows an approved order (``settings.order_approved``) names known roles and
    templates; checked here, once the roles of the whole pack are known."""
    if spec.settings is not None and spec.settings.order_approved:
        acts = spec.settings.order_approved
        ctx.actions(acts, ("settings", "order_approved"), "settings.order_approved")


def _tier_names(ctx: FileContext, spec: RuleFile) -> None:
    """Every approval tier a lock (``approval``) or a setting (``over_limit_tier``,
    ``terms_tier``) names is a tier of the pack: checked once every file's tiers are in."""
    tiers = {t.id for t in ctx.pack.approvals}

    def check(name: str | None, path: Path_, rule: str) -> None:
        if name is not None and name not in tiers:
            known = ", ".join(sorted(tiers)) or "none"
            ctx.problem(path, f"no approval tier {name!r} (the pack's tiers: {known})", rule)

    for i, lock in enumerate(spec.locks):
        check(lock.approval, (*ctx.path("locks", i), "approval"), lock.id)
    if spec.settings is not None:
        for key in ("over_limit_tier", "terms_tier"):
            check(getattr(spec.settings, key), ("settings", key), f"settings.{key}")


#: Cross-references between files, checked file by file once every rule section is in.
CROSS_CHECKS: tuple[tuple[str, Compile], ...] = (("approval tiers", _tier_names),)

#: Rule sections, compiled file by file in this order once the pack-wide sections are in.
RULE_SECTIONS: tuple[tuple[str, Compile], ...] = (
    ("ladders", _ladders),
    ("locks", _locks),
    ("alerts", _alerts),
    ("milestones", _milestones),
    ("approvals", _approvals),
    ("patterns", _patterns),
    ("processes", _processes),
    ("scoring", _scoring_rules),
    ("settings", _order_settings),
)
