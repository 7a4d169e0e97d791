"""Warnings about a pack that loads but is probably not what its author meant.

Ladder gaps and overlaps, unreachable steps, roles with nobody behind them or a value no
message can reach (a bare name where an address, a person id or ``role:NAME`` belongs);
steps whose condition rules out every day their schedule falls on, and conditions that
contradict themselves (with the file and line they were written on).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator

from ..actions import CHANNEL_OF
from ..calendar import due_reach, schedule_reach
from ..domain import PERSON_ID, ROLE_HOLDERS, Person, check_email, check_phone
from ..errors import Problem
from .expr import Condition, contradictions, interval
from .loader import CompiledRule, RulePack, Source


def lint(pack: RulePack, people: Iterable[Person] | None = None) -> list[str]:
    """Ladder gaps and overlaps, unreachable steps, actions nobody receives; with the
    ``people`` of a book's directory, also each person a rule reaches on a channel where
    the person has no address (:func:`unaddressed_people`)."""
    out: list[str] = []
    for ladder in pack.ladders:
        spans: list[tuple[int, int | None, str]] = []
        for st in ladder.steps:
            lo, hi = schedule_reach(st.schedule)
            spans.append((lo, hi, st.id))
        for i, (lo, hi, sid) in enumerate(spans):
            for lo2, hi2, sid2 in spans[i + 1 :]:
                same = lo == lo2 and hi == hi2
                if same and ladder.steps[i].when is None:
                    out.append(
                        f"{ladder.id}: steps {sid} and {sid2} fire on the same days with no "
                        f"condition telling them apart"
                    )
            if hi is None and i + 1 < len(spans):
                later = [s for s in spans[i + 1 :] if s[0] > lo]
                if later:
                    out.append(
                        f"{ladder.id}/{sid}: repeats with no 'until' and overlaps the later "
                        f"step(s) {', '.join(s[2] for s in later)}"
                    )
        ordered = sorted(spans, key=lambda s: s[0])
        for (lo, hi, sid), (lo2, _hi2, sid2) in itertools.pairwise(ordered):
            end = lo if hi is None else hi
            if lo2 - end > 45:
                out.append(f"{ladder.id}: {lo2 - end} days with no step between {sid} and {sid2}")
        for st in ladder.steps:
            if st.min_balance is not None and st.min_balance < ladder.min_balance:
                out.append(
                    f"{ladder.id}/{st.id}: min_balance {st.min_balance} is below the ladder's "
                    f"{ladder.min_balance}, which applies anyway"
                )
    for role, who in sorted(pack.roles.items()):
        if not who:
            out.append(f"role {role!r} has nobody behind it")
        elif (why := unaddressable(who)) is not None:
            out.append(f"role {role!r}: {why}")
    out.extend(_never_fire(pack))
    out.extend(_self_contradictions(pack))
    out.extend(_process_warnings(pack))
    if people is not None:
        out.extend(unaddressed_people(pack, people))
    return out


def _process_warnings(pack: RulePack) -> list[str]:
    """Steps no path from ``start`` reaches, and terminal states nothing leads to."""
    out: list[str] = []
    for proc in pack.processes:
        seen, todo = {proc.start}, [proc.start]
        while todo:
            step = proc.step(todo.pop())
            if step is None:
                continue
            nxt = [*step.targets().values()] + ([proc.approved_state] if step.final_up_to else [])
            for dest in nxt:
                if dest not in seen:
                    seen.add(dest)
                    todo.append(dest)
        for s in proc.steps:
            if s.id not in seen:
                out.append(f"process {proc.id}: step {s.id} is never reached from {proc.start}")
        for t in proc.terminals:
            if t not in seen:
                out.append(f"process {proc.id}: terminal state {t} is never reached")
    return out


#: the channels a person needs an address of their own for (a task goes to the person's id)
_PERSONAL = frozenset({"email", "sms", "wecom", "dingtalk"})
#: roles the customers fill: a rule naming one reaches the people who hold it
_CUSTOMER_ROLES = ("salesperson", "sales_manager")


def _addressed(pack: RulePack) -> Iterator[tuple[str, str, list[str], tuple[str, ...]]]:
    """Each action of the pack that goes to people: where it is written, its type, its
    channels in order (its own, then its fallbacks) and the roles it names."""
    for ladder in pack.ladders:
        for st in ladder.steps:
            for a in st.actions:
                if a.type in CHANNEL_OF:
                    first = CHANNEL_OF[a.type]
                    chain: list[str] = [first, *(c for c in a.fallback if c != first)]
                    yield f"{ladder.id}/{st.id}", a.type, chain, (*a.to, *a.cc)
    for rule in [*pack.alerts, *pack.patterns, *pack.milestones]:
        for a in getattr(rule.spec, "actions", ()) or ():
            if a.type in CHANNEL_OF:
                first = CHANNEL_OF[a.type]
                chain = [first, *(c for c in a.fallback if c != first)]
                yield rule.id, str(a.type), chain, (*a.to, *a.cc)
    for rule in pack.locks:
        notify = tuple(getattr(rule.spec, "notify", ()) or ())
        if notify:
            yield rule.id, "notify", ["email"], notify


def unaddressed_people(pack: RulePack, people: Iterable[Person]) -> list[str]:
    """Each active person a rule reaches (through a pack role naming the person or
    ``role:NAME``, or as a holder of ``salesperson`` or ``sales_manager``) on a channel for
    which the person has no address: a WeCom notice to someone without a ``wecom`` id, an
    e-mail to someone without an ``email``. Says whether a fallback channel of the action
    still reaches the person."""
    everyone = [p for p in people if p.active]
    by_id = {p.id: p for p in everyone}

    def holders(role: str) -> list[Person]:
        return sorted((p for p in everyone if role in p.roles), key=lambda p: p.id)

    out: list[str] = []
    for where, kind, chain, roles in _addressed(pack):
        first = chain[0]
        if first not in _PERSONAL:
            continue
        for role in dict.fromkeys(roles):
            if role == "customer":
                continue
            value = pack.roles.get(role)
            if value is None and role in _CUSTOMER_ROLES:
                reached = holders(role)
            elif value is not None and value.startswith(ROLE_HOLDERS):
                reached = holders(value[len(ROLE_HOLDERS) :])
            elif value is not None and value in by_id:
                reached = [by_id[value]]
            else:
                continue
            for p in reached:
                if p.address(first) is not None:
                    continue
                later = next((c for c in chain[1:] if p.address(c) is not None), None)
                then = (
                    f"the {later} fallback reaches them instead"
                    if later
                    else "no channel of the action reaches them"
                )
                out.append(
                    f"{where}: a {kind} to {role} goes by {first}, but person {p.id} "
                    f"({p.name}) has no {first} address: {then}"
                )
    return list(dict.fromkeys(out))


_ROLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,59}")


def unaddressable(value: str) -> str | None:
    """Why a pack role's value can reach no one, or None when it can: it must be an e-mail
    address, a phone number, a person's id (``P-007``), ``role:NAME`` (the holders of a
    role) or ``robot:NAME`` (a chat group robot). Lint has no book, so a person id is judged by its form; the composer reports an
    id that names nobody when a message is queued."""
    if value.startswith(ROLE_HOLDERS):
        name = value[len(ROLE_HOLDERS) :]
        if _ROLE_NAME.fullmatch(name):
            return None
        return f"{value!r} names no role: after 'role:' give a lower-case role name"
    if "@" in value:
        try:
            check_email(value)
        except ValueError as exc:
            return str(exc)
        return None
    if PERSON_ID.fullmatch(value):
        return None
    if value.startswith("robot:") and _ROLE_NAME.fullmatch(value[len("robot:") :]):
        return None  # a group robot of the wecom or dingtalk adapter
    try:
        check_phone(value)
    except ValueError:
        return (
            f"{value!r} is neither an e-mail address, a person id (like P-007) nor "
            f"role:NAME, so no message reaches it"
        )
    return None


def _at(source: Source | None, line: str, rule: str, message: str) -> str:
    """``message`` about ``rule`` as ``file:line: [rule] message`` (the loader's form)."""
    if source is None:
        return f"{rule}: {message}"
    return str(Problem(source.file, getattr(source, line), rule, message))


def _never_fire(pack: RulePack) -> list[str]:
    """Steps whose ``when`` (with their ladder's) rules out the days past due on which
    their schedule falls: never on its own days, and never at all when even a late run
    (which judges a step on the day it runs, after its occurrence) cannot meet it."""
    out: list[str] = []
    late = pack.settings.catch_up != "none"
    for ladder in pack.ladders:
        for st in ladder.steps:
            reach = None if st.schedule is None else due_reach(st.schedule)
            if reach is None or (ladder.when is None and st.when is None):
                continue
            allowed = interval(ladder.when, "days_past_due") & interval(st.when, "days_past_due")
            lo, hi = reach
            if allowed.meets_days(lo, hi):
                continue
            rid = f"{ladder.id}/{st.id}"
            days = f"{lo}" if lo == hi else f"{lo} to {'any' if hi is None else hi}"
            needs = allowed.describe("days_past_due")
            if late and allowed.meets_days(lo, None):
                message = (
                    f"never fires on its own days: 'at: {st.at}' falls {days} days past due "
                    f"and the conditions need {needs} (only a run catching up late sends it)"
                )
            else:
                message = (
                    f"can never fire: 'at: {st.at}' falls {days} days past due and the "
                    f"conditions need {needs}"
                )
            out.append(_at(st.source, "when" if st.when is not None else "at", rid, message))
    return out


def _self_contradictions(pack: RulePack) -> list[str]:
    """Conditions that no value of some fact can satisfy (``balance > 10 and balance < 5``)."""
    out: list[str] = []
    found: list[tuple[Condition | None, Source | None, str]] = []
    for ladder in pack.ladders:
        found.append((ladder.when, ladder.source, ladder.id))
        found.extend((st.when, st.source, f"{ladder.id}/{st.id}") for st in ladder.steps)
    rules: list[CompiledRule] = [
        *pack.locks,
        *pack.alerts,
        *pack.milestones,
        *pack.approvals,
        *pack.patterns,
    ]
    found.extend((r.when, r.source, r.id) for r in rules)
    for cond, source, rid in found:
        if cond is None:
            continue
        for fact in contradictions(cond):
            out.append(
                _at(
                    source,
                    "when",
                    rid,
                    f"the condition contradicts itself: no value of {fact} satisfies "
                    f"{cond.text!r}, so it never holds",
                )
            )
    return out
