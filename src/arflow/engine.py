"""The engine: the book plus a rule pack, as of a date, give a list of explained decisions.

``Engine.plan(as_of)`` is pure: it reads the book, the rules and the decision ledger and
returns what should happen, each decision with an idempotency key and the facts that made
it fire. ``Engine.run(as_of)`` records a plan atomically: the decisions go into the decision
ledger (keys are unique there) and their effects on the book go through audited events
whose ids derive from the keys, so running a day twice, or two runners at once, adds
nothing the second time. ``Engine.handle(event)`` applies an event and returns (and
records) the decisions it triggers.

A day's run does not read the whole book: each ladder step's schedule says how far from the
due date it can fire, so the run asks the store only for receivables whose due date falls
in those windows (:meth:`Store.find_due`), and computes a customer's facts only for the
customers those receivables belong to.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import sys
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from . import _planner
from ._child import Child, WorkerFailed
from ._gc import fewer_gc_passes
from ._planner import pack_digest
from .calendar import Schedule
from .decisions import Decision, DecisionKind, Notice, decision_key
from .domain import MAX_EVENT_ID_LENGTH, Customer, PromiseStatus, PromiseToPay, Receivable
from .errors import ArflowError
from .events import (
    BaseEvent,
    DunningStepRecorded,
    Event,
    InvoiceIssued,
    MilestoneCompleted,
    OrderApprovalRequested,
    OrderLockLifted,
    OrderLockPlaced,
    OrderSubmitted,
    PaymentReceived,
    PromiseBroken,
    RiskFlagged,
)
from .ledger import LIVE_STATES, Applied, Batch, InvoiceRequest, Ledger
from .money import Money
from .rules import durable as dr
from .rules.expr import Condition
from .rules.facts import customer_facts, order_facts, receivable_facts
from .rules.loader import CompiledLadder, CompiledRule, CompiledStep, RulePack, load_pack
from .rules.schema import Action, PatternRule, Scoring
from .store.base import DecisionRecord, RunRecord

ENGINE_ACTOR = "arflow-engine"

log = logging.getLogger(__name__)


@dataclass
class Failure:
    """A rule or subject the plan could not decide for, and why; the rest of the day goes on."""

    subject_kind: str
    subject_id: str
    error: str
    #: whose book the subject is in (None: not one customer's)
    customer_id: str | None = None
    #: the rule that failed on the subject (None: the subject itself could not be read)
    rule: str | None = None


@dataclass
class Plan:
    as_of: date
    since: date | None
    decisions: list[Decision] = field(default_factory=list)
    skipped: list[Decision] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    candidates: int = 0
    audit_mark: int | None = None  # the book's audit position when the plan was made
    #: where the decisions of the receivables end and where those of the patterns end
    #: (the customers' locks follow): :func:`merge_plans` keeps that order
    segments: tuple[int, int] = (0, 0)
    #: more than one: a run planned and recorded this many slices of the customers one
    #: after the other (``Engine.slice_candidates``), whose decisions are in the decision
    #: ledger only (``decisions`` and ``skipped`` are left empty)
    slices: int = 1
    #: customers whose book changed between planning and recording (a payment committed
    #: meanwhile): planned again, as the book stood when the run recorded its decisions
    replanned: int = 0

    @property
    def notices(self) -> list[Notice]:
        return group_notices(self.decisions)


@dataclass
class RunResult:
    as_of: date
    recorded: int
    skipped: int
    failures: list[Failure]
    plan: Plan


# -- schedule reach: how far from the due date a step can fire -------------------------------


def _reach_days(offset: Any) -> tuple[int, int]:
    """Calendar-day bounds of an offset from its anchor (business days and months widened)."""
    n = int(offset.n)
    unit = offset.unit
    if unit == "d":
        return n, n
    if unit == "w":
        return 7 * n, 7 * n
    if unit == "m":
        return (28 * n, 31 * n) if n >= 0 else (31 * n, 28 * n)
    # business days: at least n calendar days, at most about 7/5 n plus a long holiday
    wide = (n * 7) // 5 + 15 if n >= 0 else (n * 7) // 5 - 15
    return (n, wide) if n >= 0 else (wide, n)


def schedule_reach(schedule: Any) -> tuple[int, int | None]:
    """(earliest, latest) calendar days after the anchor at which ``schedule`` can fire;
    latest is None for a recurrence without ``until``."""
    start = schedule.start
    lo, hi = _reach_days(start)
    if schedule.every is None:
        return lo, hi
    if schedule.until is None:
        return lo, None
    return lo, _reach_days(schedule.until)[1]


def _failure(kind: str, subject: str, customer: str, rule: str | None, exc: Exception) -> Failure:
    """``rule`` (None: reading the subject) failed on ``subject``: an arflow error as it
    says, anything else with its class (reported, not raised: the day goes on without it)."""
    error = str(exc) if isinstance(exc, ArflowError) else f"{type(exc).__name__}: {exc}"
    return Failure(kind, subject, error, customer, rule)


def _holds(
    rule: CompiledRule,
    facts: Mapping[str, Any],
    failures: list[Failure],
    kind: str,
    subject: str,
    customer: str,
) -> bool:
    """Whether ``rule``'s condition holds (no condition: it does); one that raises is a
    failure of that rule and subject, and does not hold."""
    if rule.when is None:
        return True
    try:
        return rule.when(facts)
    except Exception as exc:
        failures.append(_failure(kind, subject, customer, rule.id, exc))
        return False


def _shift(d: date, days: int) -> date:
    """``d`` plus ``days``, held to the calendar's range: a window reaching past it holds
    no due date out there."""
    try:
        return d + timedelta(days)
    except OverflowError:
        return date.max if days > 0 else date.min


@functools.cache
def _due_reach(schedule: Schedule) -> tuple[int, int | None] | None:
    """``schedule_reach`` as calendar days after the *due date*, or None when the schedule
    starts from another anchor. An ``until`` on the issue date is bounded as if on the due
    date (a receivable is never due before it is issued); one on another anchor leaves the
    reach open."""
    if schedule.start.anchor != "due":
        return None
    lo, hi = schedule_reach(schedule)
    if schedule.until is not None and schedule.until.anchor not in ("due", "issue"):
        hi = None
    return lo, hi


def _lower_bound(cond: Condition | None, fact: str) -> int | None:
    """N when ``cond`` is ``fact > N - 1`` or ``fact >= N``, alone or in a top-level ``and``."""
    from .rules.expr import BoolOp, Compare, Fact
    from .rules.expr import Literal as Lit

    if cond is None:
        return None
    tree = cond.tree
    parts = tree.items if isinstance(tree, BoolOp) and tree.op == "and" else (tree,)
    bound: int | None = None
    for p in parts:
        if (
            isinstance(p, Compare)
            and isinstance(p.left, Fact)
            and p.left.path == fact
            and isinstance(p.right, Lit)
            and p.op in (">", ">=")
        ):
            n = int(p.right.value) + (1 if p.op == ">" else 0)
            bound = n if bound is None else max(bound, n)
    return bound


def _anchors(r: Receivable, promise_date: date | None) -> dict[str, date]:
    out = {"due": r.due_date, "issue": r.issue_date}
    if promise_date is not None:
        out["promise"] = promise_date
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v.normalize(), "f") if v == v.to_integral() else str(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    return v


def _jsonable_deep(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _jsonable_deep(x) for k, x in v.items()}
    return _jsonable(v)


def _why(
    rule: str,
    facts: Mapping[str, Any],
    conditions: Sequence[Condition | None],
    extra: Mapping[str, Any],
    always: Iterable[str] = (),
) -> dict[str, Any]:
    texts, used = _why_shape(tuple(conditions), tuple(always))
    return {
        "rule": rule,
        **{k: _jsonable(v) for k, v in extra.items()},
        "conditions": list(texts),
        "facts": {k: _jsonable(facts.get(k)) for k in used},
    }


#: ``_why_shape`` by the identities of the conditions: a condition's hash walks its tree
_WHY_SHAPES: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def _why_shape(
    conditions: tuple[Condition | None, ...], always: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The condition texts of a rule and the facts its explanation shows (those its
    conditions read, and ``always``), sorted: the same for every decision of the rule."""
    key = (*map(id, conditions), always)
    found = _WHY_SHAPES.get(key)
    if found is not None and all(a is b for a, b in zip(found[0], conditions, strict=True)):
        return found[1], found[2]  # (the same objects: an id is not reused while they live)
    used: set[str] = set(always)
    texts = []
    for c in conditions:
        if c is not None:
            used |= c.facts
            texts.append(c.text)
    if len(_WHY_SHAPES) >= 4096:
        _WHY_SHAPES.clear()
    _WHY_SHAPES[key] = (conditions, tuple(texts), tuple(sorted(used)))
    return tuple(texts), tuple(sorted(used))


#: customer facts that can fall with time alone (counts over a trailing window)
_WINDOWED_FACTS = frozenset({"customer.late_payments_180d", "customer.broken_promises_180d"})


def _effect_id(d: Decision, action: int | None = None) -> str:
    """The event id of a decision's effect on the book (of its action ``action``, if given):
    keyed by the decision, so recording it twice is a no-op. A key too long for an event id
    (long rule, step and invoice ids together) is stood for by its digest."""
    eid = f"engine:{d.key}" if action is None else f"engine:{d.key}#{action}"
    if len(eid) <= MAX_EVENT_ID_LENGTH:
        return eid
    return f"engine:{hashlib.sha256(eid.encode()).hexdigest()}"


#: Events that change no customer fact a lock condition can read (a run's own dunning steps,
#: risk flags and locks): a customer they touched need not be re-checked for a lift.
_LOCK_NEUTRAL_EVENTS = frozenset(
    {"DunningStepRecorded", "RiskFlagged", "OrderLockPlaced", "OrderLockLifted"}
)

_DUNNING_FACTS = (
    "balance",
    "undisputed_balance",
    "days_past_due",
    "due_date",
    "state",
    "dunning_level",
)


def group_notices(decisions: Iterable[Decision]) -> list[Notice]:
    """Merge the message actions of decisions per customer, action, template, level and
    currency into notices; tasks likewise per owner."""
    groups: dict[tuple[Any, ...], list[tuple[Decision, Action]]] = defaultdict(list)
    singles: list[Notice] = []
    for d in decisions:
        if d.status != "planned":
            continue
        for i, a in enumerate(d.actions):
            if (
                a.type in ("email", "sms", "task", "notify", "handover")
                and d.kind == "dunning"
                and d.why.get("group", True)
            ):
                key = (
                    d.customer_id,
                    a.type,
                    a.template,
                    tuple(a.to),
                    tuple(a.cc),
                    d.level,
                    d.currency,
                )
                groups[key].append((d, a))
            else:
                singles.append(
                    Notice.model_construct(  # from validated parts: no need to check again
                        key=f"{d.key}#{i}",
                        customer_id=d.customer_id,
                        action=a,
                        level=d.level,
                        currency=d.currency,
                        decision_keys=(d.key,),
                        subject_ids=(d.subject_id,),
                    )
                )
    out: list[Notice] = []
    for (cust, atype, template, to, _cc, level, cur), items in sorted(
        groups.items(), key=lambda kv: str(kv[0])
    ):
        keys = tuple(sorted({d.key for d, _a in items}))
        as_of = items[0][0].as_of
        out.append(
            Notice.model_construct(
                # the decisions' keys are in it: a second batch released from a review on
                # the same day is a second notice, not a repeat of the first
                key=(
                    f"notice:{cust}:{atype}:{template}:{'+'.join(to)}:{level}:{cur}:{as_of}:"
                    + hashlib.sha256("|".join(keys).encode()).hexdigest()[:12]
                ),
                customer_id=cust,
                action=items[0][1],
                level=level,
                currency=cur,
                decision_keys=keys,
                subject_ids=tuple(sorted({d.subject_id for d, _a in items})),
            )
        )
    return out + singles


def _in_slice(customer_id: str, i: int, k: int) -> bool:
    """Whether ``customer_id`` is in slice ``i`` of ``k`` (crc32 of the id, mod k)."""
    return zlib.crc32(customer_id.encode()) % k == i


def _without(plan: Plan, customers: frozenset[str]) -> Plan:
    """``plan`` less everything it decided for ``customers`` (its segments counted again)."""

    def kept(ds: Sequence[Decision]) -> list[Decision]:
        return [d for d in ds if d.customer_id not in customers]

    a, b = plan.segments
    return replace(
        plan,
        decisions=kept(plan.decisions),
        skipped=kept(plan.skipped),
        failures=[f for f in plan.failures if f.customer_id not in customers],
        segments=(len(kept(plan.decisions[:a])), len(kept(plan.decisions[:b]))),
    )


def merge_plans(plans: Sequence[Plan]) -> Plan:
    """One plan from the plans of disjoint slices of the customers for one day, in the
    order a plan over every customer has: the receivables' decisions, then the patterns',
    then the locks', each by customer (a customer's decisions keep their order: they all
    come from one slice). The audit mark is the first plan's."""
    first = plans[0]
    tagged: list[tuple[int, str, Decision]] = []
    for p in plans:
        a, b = p.segments
        for i, d in enumerate(p.decisions):
            tagged.append((0 if i < a else 1 if i < b else 2, d.customer_id, d))
    tagged.sort(key=lambda t: (t[0], t[1]))  # stable: keeps a customer's order
    return Plan(
        as_of=first.as_of,
        since=first.since,
        decisions=[d for _seg, _cid, d in tagged],
        skipped=sorted((d for p in plans for d in p.skipped), key=lambda d: d.customer_id),
        failures=[f for p in plans for f in p.failures],
        candidates=sum(p.candidates for p in plans),
        audit_mark=first.audit_mark,
        segments=(sum(p.segments[0] for p in plans), sum(p.segments[1] for p in plans)),
    )


# -- the engine -------------------------------------------------------------------------------


class Engine:
    """Evaluates one rule pack against one book."""

    #: With ``workers`` > 1, helpers are started only when the last run read at least
    #: this many candidates (or on a first run): a helper takes about half a second to
    #: start, more than a small day takes to plan.
    helpers_from = 5_000
    #: A run with more candidates than this (a large book's first run, when every step
    #: ever due counts, or a run after a long downtime) plans and records slices of the
    #: customers one after the other, in its one transaction, so that its memory does not
    #: grow with the book; its result then keeps counts, not decisions. A first run's
    #: slices hold a quarter of this: every step a receivable ever reached is a decision
    #: then (the latest one, the others recorded as skipped), four or more per candidate.
    slice_candidates = 50_000

    def __init__(
        self,
        ledger: Ledger,
        pack: RulePack | str | Path | Sequence[str | Path],
        *,
        workers: int = 1,
    ):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.ledger = ledger
        self.store = ledger.store
        self.pack = pack if isinstance(pack, RulePack) else load_pack(pack)
        #: processes a run plans and renders in (see :meth:`run`)
        self.workers = workers
        #: where the pack was loaded from (None: given loaded), for the other processes
        self._source = None if isinstance(pack, RulePack) else pack
        #: the slice of the customers this engine plans for, (i, k): crc32(id) % k == i
        self._slice: tuple[int, int] | None = None
        #: the customers this engine plans for when they are planned again (None: all)
        self._only: frozenset[str] | None = None
        self.settings = self.pack.settings
        self.calendar = self.pack.calendar
        from .calendar import SendWindow

        window = self.settings.send_window
        self._window = SendWindow.parse(window) if window else None
        #: ``_send_at`` by (time zone, day): thousands of decisions share a few of them
        self._send_at_by_zone: dict[tuple[str, date], datetime] = {}
        self._send_at_basis: tuple[Any, Any] = (self._window, self.calendar)
        self._matcher: dr.PatternMatcher | None = None
        from .messages import Composer

        #: renders outbound actions into the outbox, in the transaction that records them
        self.composer = Composer(self.pack, store=self.store)
        self._as_loaded = self._shape()
        self._digest = None if workers == 1 or self._source is None else pack_digest(self.pack)

    # -- slices of the customers, for runs in several processes ---------------------------------
    def _slice_filter(self) -> Callable[[str], bool] | None:
        """Whether a customer is in this engine's slice (None: no slice, every customer)."""
        only = self._only
        if self._slice is None:
            return None if only is None else only.__contains__
        i, k = self._slice
        if only is not None:
            return lambda customer_id: customer_id in only and _in_slice(customer_id, i, k)
        return lambda customer_id: _in_slice(customer_id, i, k)

    def _shape(self) -> tuple[Any, ...]:
        """What the engine decides with, as identities and text: if it is what it was when
        the pack was loaded, another process loading the same files decides alike."""
        p = self.pack
        rules = (*p.ladders, *p.locks, *p.alerts, *p.milestones, *p.approvals, *p.patterns)
        return (
            type(self),
            id(p),
            tuple(map(id, rules)),
            self.settings.model_dump_json(),
            id(self.settings),
            id(self.calendar),
            id(self.composer),
            tuple(sorted(p.roles.items())),
            p.scoring is None or p.scoring.model_dump_json(),
        )

    # -- life -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Free the durable-rules rulesets of this engine's patterns (if it has any)."""
        if self._matcher is not None:
            self._matcher.close()
            self._matcher = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def matcher(self) -> dr.PatternMatcher | None:
        """The durable-rules matcher of the pack's patterns: this engine's own (its own
        durable host), built on first use; None when the pack has no patterns."""
        if self._matcher is None and self.pack.patterns:
            built: list[dr.Pattern] = []
            for rule in self.pack.patterns:
                spec: PatternRule = rule.spec
                if spec.match == "unpaid_promise":
                    grace = spec.grace_days
                    if grace is None:
                        grace = self.settings.promise_grace_days
                    built.append(dr.UnpaidPromise(rule.id, grace))
                else:
                    assert spec.count is not None and spec.window_days is not None
                    built.append(dr.LatePayments(rule.id, spec.count, spec.window_days))
            self._matcher = dr.PatternMatcher(built)
        return self._matcher

    # -- reading ---------------------------------------------------------------------------------
    def last_run(self) -> date | None:
        runs = self.store.runs()
        return max((r.as_of for r in runs), default=None)

    def _customer_facts(
        self, customer_id: str, as_of: date, cache: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        got = cache.get(customer_id)
        if got is None:
            self._prefetch([customer_id], as_of, cache)
            got = cache[customer_id]
        return got

    def _prefetch(
        self, customer_ids: Iterable[str], as_of: date, cache: dict[str, dict[str, Any]]
    ) -> None:
        """Customer facts for many customers with a handful of queries, not three each."""
        ids = sorted({c for c in customer_ids if c not in cache})
        for start in range(0, len(ids), 2000):
            chunk = ids[start : start + 2000]
            customers = self.store.get_many("customer", chunk)
            objs: dict[str, dict[str, list[Any]]] = {
                k: self.store.find_for_customers(k, chunk) for k in ("order", "promise")
            }
            # every receivable of the customer (closed ones feed the payment behaviour
            # facts): summaries, not models
            objs["receivable"] = dict(self.store.receivable_summaries(chunk))
            for cid in chunk:
                c = customers.get(cid)
                if c is None:
                    raise ArflowError(f"unknown customer {cid!r}")
                facts = customer_facts(
                    c,
                    objs["receivable"].get(cid, []),
                    objs["order"].get(cid, []),
                    objs["promise"].get(cid, []),
                    as_of,
                    base_currency=self.settings.base_currency,
                    min_balance=self.settings.min_balance,
                )
                facts["_customer"] = c
                facts["_receivables"] = objs["receivable"].get(cid, [])
                cache[cid] = facts

    def _recipients(self, customer: Customer, actions: Iterable[Action]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for a in actions:
            for role in (*a.to, *a.cc):
                if role == "customer":
                    contact = customer.contacts[0] if customer.contacts else None
                    addr = None
                    if contact is not None:
                        addr = (
                            contact.phone if a.type == "sms" else (contact.email or contact.phone)
                        )
                    out[role] = addr
                elif role == "salesperson":
                    out[role] = customer.salesperson
                elif role == "sales_manager":
                    out[role] = customer.sales_manager
                else:
                    out[role] = self.pack.roles.get(role)
        return out

    def _send_at(self, customer: Customer, as_of: date) -> datetime | None:
        """The first instant of ``as_of`` or later inside the send window, in the time zone
        of the customer's contact: a reminder is not sent at 3 a.m. the customer's time."""
        if self._window is None:
            return None
        tz = customer.contacts[0].timezone if customer.contacts else "UTC"
        basis = self._send_at_basis
        if basis[0] is not self._window or basis[1] is not self.calendar:
            self._send_at_by_zone.clear()  # computed under another window or calendar
            self._send_at_basis = (self._window, self.calendar)
        found = self._send_at_by_zone.get((tz, as_of))
        if found is None:
            start = datetime(as_of.year, as_of.month, as_of.day, tzinfo=ZoneInfo(tz))
            found = self._window.next_allowed(start, tz, self.calendar).astimezone(UTC)
            if len(self._send_at_by_zone) > 10_000:
                self._send_at_by_zone.clear()
            self._send_at_by_zone[(tz, as_of)] = found
        return found

    def candidates(self, as_of: date, since: date | None) -> list[Receivable]:
        """Live receivables whose due date lets some step fire in [since, as_of]."""
        seen: dict[str, Receivable] = {}
        mine = self._slice_filter()
        for lo_d, hi_d in self._due_windows(as_of, since):
            for r in self.store.find_due(lo_d, hi_d, LIVE_STATES, customers=mine):
                seen[r.id] = r
        return sorted(seen.values(), key=lambda r: (r.customer_id, r.due_date, r.id))

    def _due_windows(self, as_of: date, since: date | None) -> list[tuple[date, date]]:
        """The due dates (disjoint windows) of the receivables a step, alert or lock can
        fire for in [since, as_of]; every due date when a step hangs off another anchor."""
        windows: list[tuple[date, date]] = []
        first = date.min if since is None else since
        for ladder in self.pack.ladders:
            for st in ladder.steps:
                reach = _due_reach(st.schedule)
                if reach is None:
                    return [(date.min, date.max)]
                lo, hi = reach
                start = date.min if hi is None or first == date.min else _shift(first, -hi)
                windows.append((start, _shift(as_of, -lo)))
        for rule in self.pack.alerts:
            if rule.subject == "receivable":
                w = self._threshold_window(rule.when, "days_past_due", as_of, first)
                windows.append(w if w is not None else (date.min, date.max))
        for rule in self.pack.locks:
            w = self._threshold_window(rule.when, "customer.overdue_max_days", as_of, first)
            if w is not None:
                windows.append(w)
        windows.sort()
        merged: list[tuple[date, date]] = []
        for lo_d, hi_d in windows:
            last = merged[-1][1] if merged else None
            if last is not None and (last == date.max or lo_d <= last + timedelta(1)):
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi_d))
            else:
                merged.append((lo_d, hi_d))
        return merged

    def _threshold_window(
        self, cond: Condition | None, fact: str, as_of: date, first: date
    ) -> tuple[date, date] | None:
        """Receivables that can have crossed ``fact > N`` (an alert or lock threshold on
        days past due) since ``first``: due in [first - N, as_of - N]. None when the
        condition has no such bound (then it changes only with events)."""
        bound = _lower_bound(cond, fact)
        if bound is None:
            return None
        lo = date.min if first == date.min else _shift(first, -bound)
        return lo, _shift(as_of, -bound)

    # -- planning ---------------------------------------------------------------------------------
    def plan(self, as_of: date, *, since: date | None = None, first_run: bool = False) -> Plan:
        """What the rules decide for ``as_of`` that is not recorded yet.

        ``since`` is the first day whose due steps still count (default: the day after the
        last run; on the very first run, every past step counts and the catch-up policy
        decides which are sent).
        """
        with fewer_gc_passes():
            return self._plan(as_of, since=since, first_run=first_run)

    def _first_day(self, as_of: date, since: date | None, first_run: bool) -> date | None:
        """The first day whose due steps count (see :meth:`plan`), at most ``as_of``; None:
        every past step."""
        if since is None and not first_run:
            last = self.last_run()
            since = None if last is None else last + timedelta(1)
        return None if since is None else min(since, as_of)

    def _plan(self, as_of: date, *, since: date | None, first_run: bool) -> Plan:
        since = self._first_day(as_of, since, first_run)
        plan = Plan(as_of=as_of, since=since, audit_mark=self.store.audit_mark())
        last_mark = None if first_run else self._last_mark()
        cache: dict[str, dict[str, Any]] = {}
        cands = self.candidates(as_of, since)
        plan.candidates = len(cands)
        self._prefetch((r.customer_id for r in cands), as_of, cache)
        promises: dict[str, Any] = {}
        for r in cands:
            try:
                self._plan_receivable(plan, r, as_of, since, cache, promises)
            except Exception as exc:  # one bad item must not stop the run
                plan.failures.append(_failure("receivable", r.id, r.customer_id, None, exc))
        after_receivables = len(plan.decisions)
        self._plan_patterns(plan, as_of, cache)
        plan.segments = (after_receivables, len(plan.decisions))
        locked = self._locked_customers(last_mark)
        self._prefetch((c.id for c in locked), as_of, cache)  # in a few queries, not one each
        for cid in sorted(cache):
            try:
                self._plan_locks(plan, cid, as_of, cache)
            except Exception as exc:  # one bad customer must not stop the run
                plan.failures.append(_failure("customer", cid, cid, None, exc))
        known = self._known([d.key for d in plan.decisions + plan.skipped])
        if known:
            plan.segments = (
                sum(1 for d in plan.decisions[: plan.segments[0]] if d.key not in known),
                sum(1 for d in plan.decisions[: plan.segments[1]] if d.key not in known),
            )
            plan.decisions = [d for d in plan.decisions if d.key not in known]
            plan.skipped = [d for d in plan.skipped if d.key not in known]
        if self.settings.review:
            plan.decisions = [d.model_copy(update={"status": "held"}) for d in plan.decisions]
        return plan

    def _known(self, keys: list[str]) -> set[str]:
        return self.store.known_decisions(keys)

    def _locked_customers(self, mark: int | None) -> list[Customer]:
        """The locked customers whose lock may have to lift today. A lock's cause goes only
        through events (a payment, a credit note, a limit raised), so after a run that left a
        mark only the locked customers the book changed for since are looked at: the day's
        cost does not grow with the number of locked customers. Conditions on facts that
        fall with time alone (counts over a trailing window) re-check every locked customer."""
        if not self.pack.locks:
            return []
        windowed = any(
            rule.when is not None and rule.when.facts & _WINDOWED_FACTS for rule in self.pack.locks
        )
        mine = self._slice_filter()
        if mark is None or windowed:
            locked = self.store.find("customer", states=["locked"])
            return [c for c in locked if mine is None or mine(c.id)]
        changed = self.store.customers_changed_since(mark, ignore=_LOCK_NEUTRAL_EVENTS)
        if mine is not None:
            changed = {c for c in changed if mine(c)}
        return [c for c in self.store.get_many("customer", sorted(changed)).values() if c.locks]

    def _last_mark(self) -> int | None:
        """The audit mark the latest run recorded (None: no run yet, or one from before)."""
        mark = self._last_run_says("audit_mark")
        return mark if isinstance(mark, int) else None

    def _last_run_says(self, what: str) -> Any:
        """What the latest run's record says of ``what`` (None: no run yet)."""
        runs = self.store.runs()
        return json.loads(runs[-1].body).get(what) if runs else None

    def _plan_receivable(
        self,
        plan: Plan,
        r: Receivable,
        as_of: date,
        since: date | None,
        cache: dict[str, dict[str, Any]],
        promises: dict[str, Any],
    ) -> None:
        cf = self._customer_facts(r.customer_id, as_of, cache)
        customer: Customer = cf["_customer"]
        promise = None
        if r.promise_id is not None:
            promise = promises.get(r.promise_id) or self.store.get("promise", r.promise_id)
            promises[r.promise_id] = promise
        facts = receivable_facts(r, cf, as_of, self.calendar, promise=promise)
        anchors = _anchors(r, facts["promise_date"])
        for ladder in self.pack.ladders:
            try:
                self._plan_ladder(plan, ladder, r, customer, facts, anchors, as_of, since)
            except Exception as exc:  # one rule failing must not stop the others
                plan.failures.append(_failure("receivable", r.id, r.customer_id, ladder.id, exc))
        small = facts["balance"] < self.settings.min_balance  # a small balance: no alert
        for rule in self.pack.alerts:
            if rule.subject != "receivable" or rule.when is None or small:
                continue
            if _holds(rule, facts, plan.failures, "receivable", r.id, r.customer_id):
                spec = rule.spec
                plan.decisions.append(
                    Decision(
                        key=decision_key("alert", rule.id, r.id),
                        kind="alert",
                        rule=rule.id,
                        subject_kind="receivable",
                        subject_id=r.id,
                        customer_id=r.customer_id,
                        currency=r.currency,
                        occurrence=as_of,
                        as_of=as_of,
                        actions=tuple(spec.actions),
                        recipients=self._recipients(customer, spec.actions),
                        send_at=self._send_at(customer, as_of),
                        why=_why(rule.id, facts, [rule.when], {}, ("balance", "days_past_due")),
                    )
                )

    def _pause_reason(
        self, ladder: CompiledLadder, st: CompiledStep, facts: Mapping[str, Any], as_of: date
    ) -> str | None:
        """Why a step that is due must not go out now (None: it may)."""
        if facts["dunning_block"]:
            return "dunning blocked"
        if facts.get("customer.grade") in ladder.exempt_grades:
            return f"grade {facts['customer.grade']} is exempt from ladder {ladder.id}"
        if facts["promised"] and facts["promise_date"] is not None:
            grace = facts["promise_date"] + timedelta(self.settings.promise_grace_days)
            if as_of <= grace:
                return f"promise to pay until {facts['promise_date']} (+{self.settings.promise_grace_days}d grace)"
        minimum = max(ladder.min_balance, st.min_balance or Decimal(0), self.settings.min_balance)
        if facts["undisputed_balance"] < minimum or facts["undisputed_balance"] <= 0:
            if facts["disputed"]:
                return "the open balance is under dispute"
            return (
                f"undisputed balance {facts['undisputed_balance']} is under the minimum {minimum}"
            )
        return None

    def _plan_ladder(
        self,
        plan: Plan,
        ladder: CompiledLadder,
        r: Receivable,
        customer: Customer,
        facts: dict[str, Any],
        anchors: dict[str, date],
        as_of: date,
        since: date | None,
    ) -> None:
        if ladder.when is not None and not ladder.when(facts):
            return
        due: list[tuple[date, CompiledStep]] = []
        start = since if since is not None else date.min + timedelta(1)
        # steps that cannot fire in [start, as_of] for this due date, by arithmetic
        days = r.due_date.toordinal()
        first, last = start.toordinal() - days, as_of.toordinal() - days
        for st in ladder.steps:
            reach = _due_reach(st.schedule)
            if reach is not None and (
                reach[0] > last or (reach[1] is not None and reach[1] < first)
            ):
                continue
            for occ in st.schedule.occurrences(anchors, self.calendar, start=start, end=as_of):
                due.append((occ, st))
        if not due:
            return
        policy = self.settings.catch_up
        latest = max(occ for occ, _st in due)
        for occ, st in sorted(due, key=lambda x: (x[0], x[1].level)):
            key = decision_key("dunning", ladder.id, st.id, r.id, occ)
            why = _why(
                f"{ladder.id}/{st.id}",
                facts,
                [ladder.when, st.when],
                {"at": st.at, "occurrence": occ, "group": st.group},
                _DUNNING_FACTS,
            )
            base = dict(
                key=key,
                kind="dunning",
                rule=ladder.id,
                step=st.id,
                level=st.level,
                subject_kind="receivable",
                subject_id=r.id,
                customer_id=r.customer_id,
                currency=r.currency,
                occurrence=occ,
                as_of=as_of,
                why=why,
            )
            stale = (policy == "latest" and occ < latest) or (policy == "none" and occ < as_of)
            if stale:
                plan.skipped.append(
                    Decision(
                        **base,
                        status="skipped",
                        reason=f"stale on catch-up ({policy}): the latest due step is on {latest}",
                    )
                )
                continue
            if st.when is not None and not st.when(facts):
                continue
            pause = self._pause_reason(ladder, st, facts, as_of)
            if pause is not None:
                plan.skipped.append(Decision(**base, status="skipped", reason=pause))
                continue
            plan.decisions.append(
                Decision(
                    **base,
                    actions=st.actions,
                    recipients=self._recipients(customer, st.actions),
                    send_at=self._send_at(customer, as_of),
                )
            )

    def _plan_locks(
        self, plan: Plan, customer_id: str, as_of: date, cache: dict[str, dict[str, Any]]
    ) -> None:
        """Place the locks whose condition holds and lift those whose cause is gone.

        A contract-scoped lock is judged per contract, on facts computed from that
        contract's receivables and orders only; other scopes on the customer's facts."""
        cf = self._customer_facts(customer_id, as_of, cache)
        customer: Customer = cf["_customer"]
        held = {(lk.lock_id, lk.ref) for lk in customer.locks}
        for rule in self.pack.locks:
            try:
                self._plan_lock(plan, rule, customer, cf, held, as_of)
            except Exception as exc:  # one rule failing must not stop the others
                plan.failures.append(_failure("customer", customer_id, customer_id, rule.id, exc))

    def _plan_lock(
        self,
        plan: Plan,
        rule: CompiledRule,
        customer: Customer,
        cf: dict[str, Any],
        held: set[tuple[str, str | None]],
        as_of: date,
    ) -> None:
        """Place or lift the lock of ``rule`` on ``customer`` (see :meth:`_plan_locks`)."""
        customer_id = customer.id
        spec = rule.spec
        if spec.scope == "contract":
            subjects = [
                (c.id, self._contract_facts(customer, c.id, as_of))
                for c in self.store.find("contract", customer_id=customer_id)
            ]
        else:
            ref = spec.order_type if spec.scope == "order_type" else None
            subjects = [(ref, cf)]
        for ref, facts in subjects:
            holds = rule.when is not None and rule.when(facts)
            if holds == ((rule.id, ref) in held):
                continue
            kind: DecisionKind = "lock" if holds else "unlock"
            acts: list[Action] = [
                Action(
                    type="block_orders" if holds else "unblock_orders",
                    scope=spec.scope,
                    order_type=spec.order_type,
                    reason=spec.description or rule.id,
                )
            ]
            if spec.notify and spec.template:
                acts.append(Action(type="notify", to=spec.notify, template=spec.template))
            where = ref if spec.scope == "contract" else None
            plan.decisions.append(
                Decision(
                    key=decision_key(kind, rule.id, customer_id, where, as_of),
                    kind=kind,
                    rule=rule.id,
                    subject_kind="customer",
                    subject_id=customer_id,
                    customer_id=customer_id,
                    currency=facts["customer.currency"],
                    occurrence=as_of,
                    as_of=as_of,
                    actions=tuple(acts),
                    recipients=self._recipients(customer, acts),
                    send_at=self._send_at(customer, as_of),
                    why=_why(
                        rule.id,
                        facts,
                        [rule.when],
                        {"holds": holds, "scope": spec.scope, "ref": ref},
                    ),
                )
            )

    # -- patterns over a customer's history (durable-rules) -----------------------------------
    def _plan_patterns(self, plan: Plan, as_of: date, cache: dict[str, dict[str, Any]]) -> None:
        """Unpaid promises of every customer with an open promise past its date plus grace;
        late-payment runs of the customers evaluated today (those are also checked as each
        payment arrives, in :meth:`handle`)."""
        if self.matcher is None:
            return
        overdue: dict[str, list[PromiseToPay]] = defaultdict(list)
        if any(r.spec.match == "unpaid_promise" for r in self.pack.patterns):
            mine = self._slice_filter()
            for p in self.store.find("promise", states=[PromiseStatus.OPEN]):
                if p.promised_date < as_of and (mine is None or mine(p.customer_id)):
                    overdue[p.customer_id].append(p)
        customers = sorted(set(overdue) | set(cache))
        try:
            plan.decisions.extend(self._pattern_decisions(customers, as_of, cache, plan.failures))
        except Exception as exc:
            plan.failures.append(Failure("patterns", ",".join(customers[:5]), str(exc)))

    def _pattern_decisions(
        self,
        customer_ids: Sequence[str],
        as_of: date,
        cache: dict[str, dict[str, Any]],
        failures: list[Failure],
    ) -> list[Decision]:
        """The patterns matched in these customers' histories; a rule whose condition fails
        on a customer is reported in ``failures`` and the others go on."""
        matcher = self.matcher
        if matcher is None or not customer_ids:
            return []
        self._prefetch(customer_ids, as_of, cache)
        histories: dict[str, tuple[list[dr.Promise], list[dr.Payment]]] = {}
        promises: dict[tuple[str, str, date], PromiseToPay] = {}
        least_late = min(
            (r.spec.count for r in self.pack.patterns if r.spec.match == "late_payments"),
            default=10**9,
        )
        for start in range(0, len(customer_ids), 2000):
            chunk = list(customer_ids[start : start + 2000])
            paid = self.store.find_for_customers("payment", chunk)
            open_promises = self.store.find_for_customers("promise", chunk)
            for cid in chunk:
                due = {r.id: r.due_date for r in cache[cid]["_receivables"]}
                pays = [
                    dr.Payment(a.receivable_id, p.received_on, due[a.receivable_id])
                    for p in paid.get(cid, ())
                    if not p.reversed
                    for a in p.allocations
                    if a.receivable_id in due
                ]
                proms = []
                for pr in open_promises.get(cid, ()):
                    if pr.status != PromiseStatus.OPEN:
                        continue
                    for rid in pr.receivable_ids:
                        proms.append(dr.Promise(rid, pr.made_on, pr.promised_date))
                        promises[(rid, pr.made_on.isoformat(), pr.promised_date)] = pr
                # only histories that could match reach durable-rules: a promise, or enough
                # late payments for the smallest count
                if proms or sum(p.paid_on > p.due_date for p in pays) >= least_late:
                    histories[cid] = (proms, pays)
        rules = {r.id: r for r in self.pack.patterns}
        out: list[Decision] = []
        seen: set[str] = set()
        for cid, found in sorted(matcher.match_details(histories, as_of).items()):
            cf = cache[cid]
            customer: Customer = cf["_customer"]
            for name, obj in found:
                rule = rules[name]
                spec: PatternRule = rule.spec
                if not _holds(rule, cf, failures, "customer", cid, cid):
                    continue
                if isinstance(obj, dr.Promise):
                    pr = promises[(obj.receivable_id, obj.made_on.isoformat(), obj.promised_date)]
                    key = decision_key("pattern", rule.id, pr.id)
                    subject = ("promise", pr.id)
                    detail: dict[str, Any] = {
                        "match": spec.match,
                        "promise": pr.id,
                        "promised_date": pr.promised_date,
                        "unpaid_receivable": obj.receivable_id,
                        "break_promise": spec.break_promise,
                    }
                    currency: str | None = pr.amount.currency
                else:
                    key = decision_key("pattern", rule.id, cid, obj.receivable_id, obj.paid_on)
                    subject = ("customer", cid)
                    detail = {
                        "match": spec.match,
                        "count": spec.count,
                        "window_days": spec.window_days,
                        "first_late_payment": {
                            "receivable": obj.receivable_id,
                            "paid_on": obj.paid_on,
                            "due_date": obj.due_date,
                        },
                    }
                    currency = None
                if key in seen:
                    continue
                seen.add(key)
                acts = tuple(spec.actions)
                out.append(
                    Decision(
                        key=key,
                        kind="pattern",
                        rule=rule.id,
                        subject_kind=subject[0],
                        subject_id=subject[1],
                        customer_id=cid,
                        currency=currency,
                        occurrence=as_of,
                        as_of=as_of,
                        actions=acts,
                        recipients=self._recipients(customer, acts),
                        send_at=self._send_at(customer, as_of),
                        why=_why(
                            rule.id,
                            {k: v for k, v in cf.items() if not k.startswith("_")},
                            [rule.when],
                            {k: _jsonable_deep(v) for k, v in detail.items()},
                            ("customer.on_time_rate", "customer.open_promises"),
                        ),
                    )
                )
        return out

    def _contract_facts(self, customer: Customer, contract_id: str, as_of: date) -> dict[str, Any]:
        return customer_facts(
            customer,
            [
                r
                for r in self.store.find("receivable", customer_id=customer.id)
                if r.contract_id == contract_id
            ],
            [
                o
                for o in self.store.find("order", customer_id=customer.id)
                if o.contract_id == contract_id
            ],
            [],
            as_of,
            base_currency=self.settings.base_currency,
            min_balance=self.settings.min_balance,
        )

    # -- recording ----------------------------------------------------------------------------------
    def run(
        self,
        as_of: date,
        *,
        since: date | None = None,
        first_run: bool = False,
        at: datetime | None = None,
    ) -> RunResult:
        """Plan ``as_of`` and record it in one transaction; a second run adds nothing."""
        with self._bulk_reads():
            return self._run(as_of, since=since, first_run=first_run, at=at)

    @contextmanager
    def _bulk_reads(self) -> Iterator[None]:
        """Where a run (or a helper's slice of it) reads its thousands of objects: fewer
        collector passes, and each stored object parsed once (planning, rendering and
        recording read the same receivables and customers)."""
        parse_once = getattr(self.store, "parse_once", None)
        with fewer_gc_passes(), parse_once() if parse_once is not None else nullcontext():
            yield

    def _run(
        self, as_of: date, *, since: date | None, first_run: bool, at: datetime | None
    ) -> RunResult:
        when = at or datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
        slices = self._slices_needed(as_of, since, first_run)
        if slices > 1:
            return self._run_in_slices(as_of, since, first_run, when, slices)
        spec = self._helper_spec(as_of, since, first_run, when)
        with ExitStack() as stack:
            helpers = [
                stack.enter_context(_planner.start({**spec, "slice": (i, self.workers)}))
                for i in range(1, self.workers)
                if spec is not None
            ]
            mine = (0, self.workers) if helpers else None
            plan = self._plan_slice(mine, as_of, since, first_run)
            with self._run_batch() as batch:
                # no one else writes now: what changed since planning is planned again
                plan = self._recheck(plan, mine)
                # this process's slice is recorded while the helpers still plan theirs
                recorded, queued = self._record_plan(batch, plan, when)
                if helpers:
                    batch.tx.flush()  # written while the helpers finish
                plans = [plan]
                for i, helper in enumerate(helpers, 1):
                    theirs, rows, counts = self._helper_plan(helper, plan)
                    again = self._recheck(theirs, (i, self.workers))
                    if again is not theirs:  # its staged rows are of a book gone by
                        more = self._record_plan(batch, again, when)
                        theirs = again
                    else:
                        more = self._record_helpers(batch, theirs, rows, counts, when)
                    recorded, queued = recorded + more[0], queued + more[1]
                    plans.append(theirs)
                if helpers:
                    plan = replace(merge_plans(plans), replanned=sum(p.replanned for p in plans))
                batch.tx.add_run(_run_record(plan, recorded, queued, len(plan.skipped)))
        return RunResult(as_of, recorded, len(plan.skipped), plan.failures, plan)

    def _plan_slice(
        self, part: tuple[int, int] | None, as_of: date, since: date | None, first_run: bool
    ) -> Plan:
        """:meth:`plan` for the customers of slice ``part`` (i, k) only (None: all)."""
        self._slice = part
        try:
            return self.plan(as_of, since=since, first_run=first_run)
        finally:
            self._slice = None

    def _recheck(self, plan: Plan, part: tuple[int, int] | None) -> Plan:
        """``plan`` (of slice ``part``) as the book stands now: the customers whose book
        changed since the plan read it (a payment committed meanwhile) are planned again,
        and what was planned for the others stands. Called where no one else can write
        (inside the run's transaction), so what it reads is what the run records on."""
        if plan.audit_mark is None or self.store.audit_mark() == plan.audit_mark:
            return plan
        changed = frozenset(
            c
            for c in self.store.customers_changed_since(plan.audit_mark)
            if part is None or _in_slice(c, *part)
        )
        if not changed:
            return plan
        self._only = changed
        try:
            # since is given: first_run only makes every locked customer of these count
            again = self._plan_slice(part, plan.as_of, plan.since, True)
        finally:
            self._only = None
        log.info("planned %d customers again: their book changed while planning", len(changed))
        return replace(
            merge_plans([_without(plan, changed), again]),
            since=plan.since,
            candidates=plan.candidates,
            audit_mark=again.audit_mark,
            replanned=plan.replanned + len(changed),
        )

    @contextmanager
    def _run_batch(self) -> Iterator[Batch]:
        """The transaction a run records in; on SQLite its pages are checkpointed after
        the commit, by the store's thread (``_SqlTx.defer_checkpoint``)."""
        with self.ledger.batch() as batch:
            defer_checkpoint = getattr(batch.tx, "defer_checkpoint", None)
            if defer_checkpoint is not None:
                defer_checkpoint()
            yield batch

    def _slices_needed(self, as_of: date, since: date | None, first_run: bool) -> int:
        """In how many slices of the customers the run must be planned to keep each slice
        under ``slice_candidates`` candidates, a quarter of it on a first run (1: the
        whole day at once)."""
        count_due = getattr(self.store, "count_due", None)
        if count_due is None:
            return 1
        since = self._first_day(as_of, since, first_run)
        windows = self._due_windows(as_of, since)
        count = sum(count_due(lo, hi, LIVE_STATES) for lo, hi in windows)
        per_slice = self.slice_candidates if since is not None else self.slice_candidates // 4
        return max(1, -(-int(count) // max(1, per_slice)))

    def _run_in_slices(
        self, as_of: date, since: date | None, first_run: bool, when: datetime, k: int
    ) -> RunResult:
        """Plan and record slice i of k of the customers (crc32 % k) for i = 0 .. k - 1,
        one after the other, in one transaction: what a run records, with at most one
        slice's plan in memory (the slices are disjoint: a customer's decisions read that
        customer alone, see :mod:`arflow._planner`)."""
        recorded = queued = skipped = 0
        whole = Plan(as_of=as_of, since=since, slices=k)  # since and mark: the first slice's
        with self._run_batch() as batch:
            for i in range(k):
                plan = self._plan_slice((i, k), as_of, since, first_run)
                got = self._record_plan(batch, plan, when)
                # to the database: the next slice (other customers) starts from nothing
                batch.tx.flush()
                for forget in (
                    getattr(batch.tx, "forget_reads", None),
                    getattr(self.store, "forget_parsed", None),
                ):
                    if forget is not None:
                        forget()
                recorded, queued = recorded + got[0], queued + got[1]
                skipped += len(plan.skipped)
                whole.candidates += plan.candidates
                whole.failures.extend(plan.failures)
                if i == 0:
                    whole.since, whole.audit_mark = plan.since, plan.audit_mark
            batch.tx.add_run(_run_record(whole, recorded, queued, skipped))
        return RunResult(as_of, recorded, skipped, whole.failures, whole)

    def _record_plan(self, batch: Batch, plan: Plan, when: datetime) -> tuple[int, int]:
        """Record ``plan``'s decisions not recorded yet, their messages and their effects;
        (decisions recorded, messages queued)."""
        known = batch.tx.known_decisions([d.key for d in plan.decisions + plan.skipped])
        self._read_ahead(batch, [d for d in plan.decisions if d.key not in known])
        carried = [d for d in plan.decisions if d.key not in known and d.status == "planned"]
        # rendered before the effects are booked: from the book the rules decided on
        queued = self.composer.queue(batch.tx, carried, when)
        recorded = 0
        for d in plan.decisions + plan.skipped:
            if d.key in known:
                continue
            batch.tx.add_decision(_record(d))
            if d.status == "planned":
                self._effects(batch, d, when)
            if d.status in ("planned", "held"):
                recorded += 1
        return recorded, queued

    def _record_helpers(
        self, batch: Batch, plan: Plan, rows: Any, counts: tuple[int, int], when: datetime
    ) -> tuple[int, int]:
        """Write what a helper recorded of its slice (``rows``, staged against the
        committed book) after this process's own; if another run recorded some of the
        slice's decisions meanwhile, record the slice here instead, like this process's."""
        write_rows = getattr(batch.tx, "write_rows", None)  # helpers need an SqlStore
        keys = [d.key for d in plan.decisions + plan.skipped]
        if write_rows is None or batch.tx.known_decisions(keys):
            return self._record_plan(batch, plan, when)
        write_rows(rows)
        return counts

    def _helper_spec(
        self, as_of: date, since: date | None, first_run: bool, at: datetime
    ) -> dict[str, Any] | None:
        """What helper processes need to plan their slices of ``as_of`` like this engine;
        None when the run stays in this process: one worker, a pack given already loaded or
        changed since (its rules, settings, calendar or composer replaced: a helper loading
        the files would not see it), a store another process cannot open (memory, SQLite
        in memory, or opened from an engine object rather than a URL), no interpreter to
        start, or a small day (the last run read fewer than ``helpers_from`` candidates)."""
        if self.workers == 1 or self._source is None or not sys.executable:
            return None
        shared_url = getattr(self.store, "shared_url", None)  # SQL stores only
        source = shared_url() if shared_url is not None else None
        if source is None:
            return None
        if self._shape() != self._as_loaded or pack_digest(self.pack) != self._digest:
            return None
        if not first_run:  # a day like the last one: worth a helper's start-up?
            last = self._last_run_says("candidates")
            if isinstance(last, int) and last < self.helpers_from:
                return None
        pack = self._source
        paths = [pack] if isinstance(pack, str | Path) else list(pack)
        return {
            "url": source,
            "pack": [str(p) for p in paths],
            "digest": self._digest,
            "as_of": as_of.isoformat(),
            "since": None if since is None else since.isoformat(),
            "first_run": first_run,
            "at": at.isoformat(),
        }

    @staticmethod
    def _helper_plan(helper: Child, mine: Plan) -> tuple[Plan, Any, tuple[int, int]]:
        """A helper's plan of its slice, the rows it staged recording it, and (decisions
        recorded, messages queued) in them."""
        for message in helper.messages():
            if message[0] == "end":
                got, rows = message[1], message[2]
                plan = Plan(
                    as_of=mine.as_of,
                    since=mine.since,
                    decisions=[Decision.model_validate_json(d) for d in got["decisions"]],
                    skipped=[Decision.model_validate_json(d) for d in got["skipped"]],
                    failures=[Failure(*f) for f in got["failures"]],
                    candidates=got["candidates"],
                    audit_mark=got["audit_mark"],
                    segments=tuple(got["segments"]),
                )
                return plan, rows, tuple(got["counts"])
        raise WorkerFailed(f"{helper.what} sent no plan")  # pragma: no cover

    @staticmethod
    def _read_ahead(batch: Batch, decisions: list[Decision]) -> None:
        """Read what recording ``decisions`` will look up (whether their events are logged,
        their receivables and customers) in a few queries instead of one each."""
        prefetch = getattr(batch.tx, "prefetch", None)
        todo = [d for d in decisions if d.status == "planned"]
        if prefetch is None or not todo:
            return
        event_ids = [_effect_id(d) for d in todo]
        event_ids += [_effect_id(d, i) for d in todo for i in range(len(d.actions))]
        receivables = [d.subject_id for d in todo if d.subject_kind == "receivable"]
        prefetch(
            event_ids,
            {"receivable": receivables, "customer": sorted({d.customer_id for d in todo})},
            # a message about a customer lists its open invoices (``Composer._items_of``)
            {"receivable": [d.customer_id for d in todo if d.subject_kind == "customer"]},
        )

    def _effects(self, batch: Batch, d: Decision, at: datetime) -> None:
        """The book changes a decision implies, as audited events keyed by the decision."""
        meta: dict[str, Any] = {
            "occurred_at": at,
            "actor": ENGINE_ACTOR,
            "reason": d.reason or f"rule {d.rule}",
        }
        if d.kind == "dunning" and d.level is not None and d.step is not None:
            batch.apply(
                DunningStepRecorded(
                    event_id=_effect_id(d),
                    receivable_id=d.subject_id,
                    ladder=d.rule,
                    step=d.step,
                    level=d.level,
                    decision_key=d.key,
                    sent_on=d.as_of,
                    **meta,
                )
            )
        if d.kind == "pattern" and d.subject_kind == "promise" and d.why.get("break_promise"):
            promise = batch.tx.get("promise", d.subject_id)
            if promise is not None and promise.status == PromiseStatus.OPEN:
                batch.apply(
                    PromiseBroken(
                        event_id=_effect_id(d),
                        promise_id=d.subject_id,
                        broken_on=d.as_of,
                        **meta,
                    )
                )
        if d.kind == "approval":
            order = batch.tx.get("order", d.subject_id)
            if order is not None and order.state == "submitted":
                batch.apply(
                    OrderApprovalRequested(event_id=_effect_id(d), order_id=d.subject_id, **meta)
                )
        for i, a in enumerate(d.actions):
            eid = _effect_id(d, i)
            ref = {"order_type": a.order_type, "contract": d.why.get("ref")}.get(a.scope)
            if a.type == "charge":
                self._charge(batch, d, a, eid, meta)
            if a.type == "risk_flag" and a.level is not None:
                batch.apply(
                    RiskFlagged(
                        event_id=eid,
                        receivable_id=d.subject_id,
                        level=a.level,
                        rule=d.rule,
                        flagged_on=d.as_of,
                        **meta,
                    )
                )
            elif a.type in ("block_orders", "unblock_orders"):
                lock: dict[str, Any] = {
                    "event_id": eid,
                    "customer_id": d.customer_id,
                    "lock_id": d.rule,
                    "scope": a.scope,
                    "ref": ref,
                    **meta,
                    "reason": a.reason or meta["reason"],  # the rule's description
                }
                if a.type == "block_orders":
                    batch.apply(OrderLockPlaced(placed_on=d.as_of, **lock))
                else:
                    batch.apply(OrderLockLifted(lifted_on=d.as_of, **lock))

    def _charge(self, batch: Batch, d: Decision, a: Action, eid: str, meta: dict[str, Any]) -> None:
        """A dunning fee and/or late interest, booked as a receivable of its own so it is
        audited, dunned and paid like any other; exempt grades and customers tagged
        ``no-dunning-charges`` are never charged."""
        r = batch.tx.get("receivable", d.subject_id)
        customer = batch.tx.get("customer", d.customer_id)
        if r is None or customer is None:
            return
        if customer.credit.grade in a.exempt_grades or "no-dunning-charges" in customer.tags:
            return
        amount = a.fee or Decimal(0)
        if a.interest_rate:
            start = r.due_date
            if a.interest_from == "last_dunning" and r.last_dunned_on is not None:
                start = max(start, r.last_dunned_on)
            days = max(0, (d.as_of - start).days)
            basis = Decimal(360) if a.day_count in ("act/360", "30/360") else Decimal(365)
            amount += r.open_balance.amount * a.interest_rate * days / basis
        money = Money(amount=amount, currency=r.currency)
        if not money.is_positive:
            return
        terms = customer.credit.payment_terms_days
        batch.apply(
            InvoiceIssued(
                event_id=eid,
                number=f"CHG-{r.id}-{d.step}-{d.occurrence.isoformat()}",
                customer_id=r.customer_id,
                issue_date=d.as_of,
                due_date=d.as_of + timedelta(max(terms, 0)),
                amount=money,
                contract_id=r.contract_id,
                tags=("dunning-charge", f"for:{r.id}"),
                salesperson=r.salesperson,
                region=r.region,
                **meta,
            )
        )

    # -- review ------------------------------------------------------------------------------------
    def proposal(self) -> list[Decision]:
        """Decisions held for review (``settings.review: true``), oldest first."""
        held = [Decision.model_validate_json(r.body) for r in self.store.decisions(status="held")]
        return sorted(held, key=lambda d: (d.as_of, d.customer_id, d.key))

    def release(
        self,
        keys: Iterable[str] | None = None,
        *,
        drop: Iterable[str] = (),
        hold_customers: Iterable[str] = (),
        at: datetime | None = None,
        actor: str = ENGINE_ACTOR,
    ) -> dict[str, int]:
        """Release held decisions (all, or ``keys``): they are carried out now. ``drop``
        removes items for good; customers in ``hold_customers`` stay held."""
        wanted = None if keys is None else set(keys)
        dropped, kept = set(drop), set(hold_customers)
        counts = {"released": 0, "dropped": 0, "held": 0, "skipped": 0}
        released: list[tuple[Decision, datetime]] = []
        with self.ledger.batch() as batch:
            for d in self.proposal():
                if d.key in dropped:
                    batch.tx.add_decision(
                        _record(
                            d.model_copy(
                                update={"status": "dropped", "reason": f"dropped by {actor}"}
                            )
                        )
                    )
                    counts["dropped"] += 1
                elif d.customer_id in kept or (wanted is not None and d.key not in wanted):
                    counts["held"] += 1
                elif (gone := self._gone(batch, d)) is not None:
                    batch.tx.add_decision(
                        _record(d.model_copy(update={"status": "skipped", "reason": gone}))
                    )
                    counts["skipped"] += 1
                else:
                    when = at or datetime(d.as_of.year, d.as_of.month, d.as_of.day, tzinfo=UTC)
                    released.append((d.model_copy(update={"status": "planned"}), when))
                    counts["released"] += 1
            if released:
                # rendered before the effects are booked, as in run()
                moment = at or max(when for _d, when in released)
                self.composer.queue(batch.tx, [d for d, _when in released], moment)
            for d, when in released:
                batch.tx.add_decision(_record(d))
                self._effects(batch, d, when)
        return counts

    @staticmethod
    def _gone(batch: Batch, d: Decision) -> str | None:
        """Why a decision held for review can no longer be carried out (None: it can): the
        receivable it is about was paid, credited or written off since."""
        if d.subject_kind != "receivable" or d.kind not in ("dunning", "alert"):
            return None
        r = batch.tx.get("receivable", d.subject_id)
        if r is None or r.state not in LIVE_STATES:
            return f"receivable {d.subject_id} is {'gone' if r is None else r.state} since it was decided"
        return None

    def record(self, decisions: Iterable[Decision], at: datetime) -> int:
        """Record decisions (from :meth:`handle` or a released review) in one transaction."""
        n = 0
        with self.ledger.batch() as batch:
            ds = list(decisions)
            known = batch.tx.known_decisions([d.key for d in ds])
            # rendered before the effects are booked, as in run()
            self.composer.queue(
                batch.tx, [d for d in ds if d.key not in known and d.status == "planned"], at
            )
            for d in ds:
                if d.key not in known:
                    batch.tx.add_decision(_record(d))
                    if d.status == "planned":
                        self._effects(batch, d, at)
                    n += 1
        return n

    # -- events -------------------------------------------------------------------------------------
    def handle(self, event: Event) -> tuple[Applied, list[Decision]]:
        """Apply ``event`` and decide what it triggers: an invoice request when a milestone
        is done, approval of an order beyond policy, a lock placed or lifted when exposure
        or overdue items change. The decisions are recorded."""
        applied = self.ledger.apply(event)
        if applied.duplicate or not isinstance(event, BaseEvent):
            return applied, []
        as_of = event.occurred_at.astimezone(UTC).date()
        decisions: list[Decision] = []
        cache: dict[str, dict[str, Any]] = {}
        failures: list[Failure] = []
        if isinstance(event, MilestoneCompleted):
            for req in applied.invoice_requests:
                decisions.extend(self._milestone_decisions(req, as_of, cache, failures))
        if isinstance(event, OrderSubmitted):
            decisions.extend(self._order_decisions(event, as_of, cache, failures))
        if isinstance(event, PaymentReceived) and self.matcher is not None:
            late = self._pattern_decisions([event.customer_id], as_of, cache, failures)
            decisions.extend(d for d in late if d.subject_kind == "customer")
        if self.pack.locks:
            plan = Plan(as_of=as_of, since=as_of, failures=failures)
            for cid in self._customers_touched(applied):
                self._plan_locks(plan, cid, as_of, cache)
            decisions.extend(plan.decisions)
        for f in failures:  # the event stands, and so do the other rules' decisions
            log.error(
                "rule %s failed on %s %s after %s: %s",
                f.rule,
                f.subject_kind,
                f.subject_id,
                event.event_id,
                f.error,
            )
        self.record(decisions, event.occurred_at)
        return applied, decisions

    def _customers_touched(self, applied: Applied) -> list[str]:
        """The customers whose objects an event changed (from its audit records)."""
        out: set[str] = set()
        for a in applied.audit:
            if a.subject_kind == "customer":
                out.add(a.subject_id)
                continue
            obj = self.store.get(a.subject_kind, a.subject_id)
            cid = getattr(obj, "customer_id", None)
            if isinstance(cid, str):
                out.add(cid)
        return sorted(out)

    def _milestone_decisions(
        self,
        req: InvoiceRequest,
        as_of: date,
        cache: dict[str, dict[str, Any]],
        failures: list[Failure],
    ) -> list[Decision]:
        cf = self._customer_facts(req.customer_id, as_of, cache)
        out = []
        for rule in self.pack.milestones:
            if not _holds(rule, cf, failures, "contract", req.contract_id, req.customer_id):
                continue
            acts = tuple(rule.spec.actions)
            out.append(
                Decision(
                    key=decision_key("milestone", rule.id, req.contract_id, req.payment_node_id),
                    kind="milestone",
                    rule=rule.id,
                    subject_kind="contract",
                    subject_id=req.contract_id,
                    customer_id=req.customer_id,
                    currency=req.amount.currency,
                    occurrence=as_of,
                    as_of=as_of,
                    actions=acts,
                    recipients=self._recipients(cf["_customer"], acts),
                    why={
                        "rule": rule.id,
                        "milestone": req.milestone_id,
                        "payment_node": req.payment_node_id,
                        "amount": str(req.amount),
                    },
                )
            )
        return out

    def _order_decisions(
        self,
        e: OrderSubmitted,
        as_of: date,
        cache: dict[str, dict[str, Any]],
        failures: list[Failure],
    ) -> list[Decision]:
        cf = self._customer_facts(e.customer_id, as_of, cache)
        order = self.ledger.get("order", e.order_id)
        facts = order_facts(order, cf, as_of)
        customer: Customer = cf["_customer"]
        out = []
        for lock in customer.locks:
            applies = (
                lock.scope == "customer"
                or (lock.scope == "order_type" and lock.ref == order.order_type)
                or (lock.scope == "contract" and lock.ref == order.contract_id)
            )
            if not applies:
                continue
            acts = (
                (
                    Action(
                        type="task",
                        to=("sales_manager",),
                        template="approval_request",
                        priority="high",
                    ),
                )
                if "approval_request" in self.pack.templates
                else ()
            )
            out.append(
                Decision(
                    key=decision_key("approval", f"lock-{lock.lock_id}", e.order_id),
                    kind="approval",
                    rule=f"lock-{lock.lock_id}",
                    subject_kind="order",
                    subject_id=e.order_id,
                    customer_id=e.customer_id,
                    currency=e.amount.currency,
                    occurrence=as_of,
                    as_of=as_of,
                    actions=acts,
                    recipients=self._recipients(customer, acts),
                    reason=f"orders locked by {lock.lock_id} since {lock.since}: {lock.reason}",
                    why={"rule": lock.lock_id, "lock": lock.model_dump(mode="json")},
                )
            )
        for rule in self.pack.approvals:
            if rule.when is None:
                continue
            if not _holds(rule, facts, failures, "order", e.order_id, e.customer_id):
                continue
            tier = rule.spec
            acts = (
                Action(type="task", to=tier.approvers, template=tier.template, priority="high"),
            )
            out.append(
                Decision(
                    key=decision_key("approval", rule.id, e.order_id),
                    kind="approval",
                    rule=rule.id,
                    subject_kind="order",
                    subject_id=e.order_id,
                    customer_id=e.customer_id,
                    currency=e.amount.currency,
                    occurrence=as_of,
                    as_of=as_of,
                    actions=acts,
                    recipients=self._recipients(cf["_customer"], acts),
                    reason=tier.description or None,
                    why=_why(rule.id, facts, [rule.when], {}, ("order.amount",)),
                )
            )
        return out

    # -- credit scoring ---------------------------------------------------------------------------
    def score(self, customer_id: str, as_of: date) -> CreditScore:
        if self.pack.scoring is None:
            raise ArflowError("the rule pack has no scoring section")
        cf = self._customer_facts(customer_id, as_of, {})
        return score_customer(self.pack.scoring, cf)

    def explain(self, key: str) -> dict[str, Any]:
        """The recorded decision behind ``key``: rule, step, status, reason and facts."""
        rec = self.store.decision(key)
        if rec is None:
            raise ArflowError(f"no decision with key {key!r}")
        body: dict[str, Any] = json.loads(rec.body)
        return body


@dataclass(frozen=True)
class CreditScore:
    score: Decimal
    grade: str
    credit_limit: Decimal
    payment_terms_days: int
    prepayment_percent: Decimal
    breakdown: dict[str, Decimal]


def score_customer(scoring: Scoring, facts: Mapping[str, Any]) -> CreditScore:
    """Weighted points per factor; the grade is the first whose min_score is reached."""
    total = Decimal(0)
    breakdown: dict[str, Decimal] = {}
    for f in scoring.factors:
        v = facts.get(f.fact)
        if v is None:
            pts = f.missing
        elif f.points is not None:
            pts = f.points.get(str(v), f.missing)
        else:
            pts = f.missing
            for band in f.bands or ():
                if band.min is None or Decimal(v) >= band.min:
                    pts = band.points
                    break
        breakdown[f.fact] = pts * f.weight
        total += pts * f.weight
    for g in scoring.grades:
        if total >= g.min_score:
            return CreditScore(
                total,
                g.grade,
                g.credit_limit,
                g.payment_terms_days,
                g.prepayment_percent,
                breakdown,
            )
    last = scoring.grades[-1]
    return CreditScore(
        total,
        last.grade,
        last.credit_limit,
        last.payment_terms_days,
        last.prepayment_percent,
        breakdown,
    )


def _run_record(plan: Plan, recorded: int, queued: int, skipped: int) -> RunRecord:
    """What the run record of ``plan`` says (``Engine._last_run_says`` reads it)."""
    return RunRecord(
        as_of=plan.as_of,
        body=json.dumps(
            {
                "since": None if plan.since is None else plan.since.isoformat(),
                "candidates": plan.candidates,
                "audit_mark": plan.audit_mark,
                "recorded": recorded,
                "queued": queued,
                "skipped": skipped,
                "failed": len(plan.failures),
                "failures": [f.__dict__ for f in plan.failures],
                **({"slices": plan.slices} if plan.slices > 1 else {}),
                **({"replanned": plan.replanned} if plan.replanned else {}),
            }
        ),
    )


def _record(d: Decision) -> DecisionRecord:
    return DecisionRecord(
        key=d.key,
        as_of=d.as_of,
        kind=d.kind,
        customer_id=d.customer_id,
        subject_id=d.subject_id,
        status=d.status,
        body=d.model_dump_json(),
    )


__all__ = [
    "CreditScore",
    "Decision",
    "Engine",
    "Notice",
    "Plan",
    "RunResult",
    "group_notices",
    "score_customer",
]
