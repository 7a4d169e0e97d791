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

The engine decides nothing itself: each rule kind has its planner
(:mod:`arflow.engine.planners`), called at its point of a day or an event
(:mod:`arflow.engine._planner`); the engine holds them in order and loops over them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from .._gc import fewer_gc_passes
from ..calendar import SendWindow
from ..decisions import Decision
from ..domain import Receivable
from ..errors import ArflowError, RunNeedsOwnTransaction, StoreError
from ..events import (
    BaseEvent,
    CreditReviewed,
    CustomerUpdated,
    Event,
    OrderApproved,
    OrderSubmitted,
)
from ..ledger import Applied, Batch, Ledger
from ..rules import patterns as dr
from ..rules.loader import RulePack, load_pack
from ._address import SendTimes
from ._candidates import candidates as find_candidates
from ._context import Day, DayBook, FactCache, TxBook
from ._explain import explain as explain_key
from ._log import running
from ._parallel import (
    _in_slice,
    helper_spec,
    pack_digest,
    run_in_slices,
    slices_needed,
)
from ._parallel import run as run_day
from ._planner import CustomerPlanner, EventPlanner, HistoryPlanner, ReceivablePlanner
from ._processes import (
    check_discount,
    hold_raise,
    start_raise,
    start_raises,
    start_terms,
    with_owners,
)
from ._processes import follow as follow_process
from ._processes import start_for as start_process
from ._processes import sweep as sweep_processes
from ._record import ENGINE_ACTOR, record_helpers, record_in, record_plan
from ._record import record as record_decisions
from ._results import Plan, RunResult, _failure
from ._review import CustomerProposal, ProposedMessage
from ._review import drop as drop_held
from ._review import edit as edit_held
from ._review import hold as hold_held
from ._review import proposal as held_decisions
from ._review import release as release_held
from ._review import view as proposal_view
from ._tasks import InboxItem, close_decided, inbox
from ._tasks import sweep as sweep_tasks
from .planners import (
    ApprovalPlanner,
    ContractTermsPlanner,
    CreditReviewPlanner,
    CreditScore,
    CustomerAlerts,
    DunningPlanner,
    LockPlanner,
    MilestonePlanner,
    OrderAlerts,
    PatternPlanner,
    ReceivableAlerts,
    check_grades,
    check_terms,
    score_customer,
    with_grade_terms,
)

log = logging.getLogger("arflow.engine")


class _RunScope(threading.local):
    """What a run plans for (a slice of the customers, the customers planned again), set
    while it plans and kept per thread: an engine shared by threads may run a day in one
    while others plan or handle events, and these see every customer."""

    slice: tuple[int, int] | None = None
    only: frozenset[str] | None = None


class Engine:
    """Evaluates one rule pack against one book: the planners of its rule kinds, in order,
    over the receivables and customers a day reads or the event given."""

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
        #: what a run of this engine plans for, the running thread's own (see _RunScope)
        self._scope = _RunScope()
        self.settings = self.pack.settings
        self.calendar = self.pack.calendar
        window = self.settings.send_window
        self._window = SendWindow.parse(window) if window else None
        self._send_times = SendTimes()
        self._dunning, self._locks = DunningPlanner(), LockPlanner()
        self._patterns = PatternPlanner()
        #: the planners of each point of a day or an event, in the order their decisions
        #: come in a plan (see :mod:`arflow.engine._planner`)
        self.receivable_planners: tuple[ReceivablePlanner, ...] = (
            self._dunning,
            ReceivableAlerts(),
        )
        self.history_planners: tuple[HistoryPlanner, ...] = (self._patterns,)
        self._reviews = CreditReviewPlanner()
        self.customer_planners: tuple[CustomerPlanner, ...] = (
            self._locks,
            CustomerAlerts(),
            self._reviews,
        )
        self._approvals = ApprovalPlanner()
        self.event_planners: tuple[EventPlanner, ...] = (
            MilestonePlanner(),
            self._approvals,
            OrderAlerts(),
            self._patterns,
            self._locks,
            self._reviews,
            ContractTermsPlanner(),
        )
        from ..messages import Composer

        #: renders outbound actions into the outbox, in the transaction that records them
        self.composer = Composer(self.pack, store=self.store)
        self._as_loaded = self._shape()
        self._digest = None if workers == 1 or self._source is None else pack_digest(self.pack)

    @property
    def _slice(self) -> tuple[int, int] | None:
        """The slice of the customers this engine plans for, (i, k): crc32(id) % k == i."""
        return self._scope.slice

    @_slice.setter
    def _slice(self, part: tuple[int, int] | None) -> None:
        self._scope.slice = part

    @property
    def _only(self) -> frozenset[str] | None:
        """The customers this engine plans for when they are planned again (None: all)."""
        return self._scope.only

    @_only.setter
    def _only(self, customers: frozenset[str] | None) -> None:
        self._scope.only = customers

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
            # a planner added or replaced here: a helper building its own engine lacks it
            tuple(map(id, (*self.receivable_planners, *self.history_planners))),
            tuple(map(id, self.customer_planners)),
        )

    # -- life -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Free the pattern matcher of this engine (a durable-rules one's rulesets)."""
        self._patterns.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def matcher(self) -> dr.PatternMatching | None:
        """The matcher of the pack's patterns (``settings.matcher``): this engine's own (a
        durable-rules one has its own host), built on first use; None when the pack has no
        patterns."""
        return self._patterns.matcher(self.pack, self.settings)

    @property
    def _matcher(self) -> dr.PatternMatching | None:
        return self._patterns._matcher

    # seams tests replace: the dunning planner's ladder, the lock planner's customer
    @property
    def _plan_ladder(self) -> Callable[..., None]:
        return self._dunning.plan_ladder

    @_plan_ladder.setter
    def _plan_ladder(self, f: Callable[..., None]) -> None:
        self._dunning.plan_ladder = f  # type: ignore[method-assign]

    @property
    def _plan_locks(self) -> Callable[..., None]:
        return self._locks.plan_customer

    @_plan_locks.setter
    def _plan_locks(self, f: Callable[..., None]) -> None:
        self._locks.plan_customer = f  # type: ignore[method-assign]

    # -- reading ---------------------------------------------------------------------------------
    def last_run(self) -> date | None:
        runs = self.store.runs()
        return max((r.as_of for r in runs), default=None)

    def _customer_facts(
        self, customer_id: str, as_of: date, cache: object = None
    ) -> dict[str, Any]:
        """A customer's facts as of ``as_of`` (from ``cache`` if it is a :class:`FactCache`
        of that day)."""
        facts = cache if isinstance(cache, FactCache) and cache.as_of == as_of else None
        if facts is None:
            facts = FactCache(self.store, self.settings, as_of)
        return facts.get(customer_id).facts

    def candidates(self, as_of: date, since: date | None) -> list[Receivable]:
        """Live receivables whose due date lets some step fire in [since, as_of]."""
        return find_candidates(self.store, self.pack, as_of, since, self._slice_filter())

    def _day(self, plan: Plan, last_mark: int | None = None, book: DayBook | None = None) -> Day:
        """The context planners plan ``plan``'s day in, with this engine's rules, on
        ``book`` (default: the committed book)."""
        return Day(
            as_of=plan.as_of,
            since=plan.since,
            plan=plan,
            facts=FactCache(self.store if book is None else book, self.settings, plan.as_of),
            pack=self.pack,
            settings=self.settings,
            calendar=self.calendar,
            ledger=self.ledger,
            window=self._window,
            send_times=self._send_times,
            mine=self._slice_filter(),
            last_mark=last_mark,
        )

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
        day = self._day(plan, None if first_run else self._last_mark())
        cands = find_candidates(self.store, self.pack, as_of, since, day.mine)
        plan.candidates = len(cands)
        day.facts.prefetch(r.customer_id for r in cands)
        planners = self.receivable_planners
        for r in cands:
            try:
                cf, facts = day.receivable_facts(r)
                for p in planners:
                    p.plan_receivable(day, r, cf, facts)
            except Exception as exc:  # one bad item must not stop the run
                plan.failures.append(_failure("receivable", r.id, r.customer_id, None, exc))
        after_receivables = len(plan.decisions)
        for h in self.history_planners:
            h.plan_day(day)
        plan.segments = (after_receivables, len(plan.decisions))
        for c in self.customer_planners:  # in a few queries, not one each
            day.facts.prefetch(c.customers(day))
        for cid in sorted(day.facts):
            try:
                for c in self.customer_planners:
                    c.plan_customer(plan, cid, as_of, day)
            except Exception as exc:  # one bad customer must not stop the run
                plan.failures.append(_failure("customer", cid, cid, None, exc))
        known = self.store.known_decisions([d.key for d in plan.decisions + plan.skipped])
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

    def _last_mark(self) -> int | None:
        """The audit mark of the last run that judged locks (None: no run yet, or one from
        before marks were recorded): the last one recorded whose date was not earlier than
        a run recorded before it. A run for an earlier day judges no lock, so the changes
        made before it are still to be judged by the next later day."""
        latest: date | None = None
        body: str | None = None
        for r in self.store.runs():
            if latest is None or r.as_of >= latest:
                latest, body = r.as_of, r.body
        mark = None if body is None else json.loads(body).get("audit_mark")
        return mark if isinstance(mark, int) else None

    def _last_run_says(self, what: str) -> Any:
        """What the latest run's record says of ``what`` (None: no run yet)."""
        runs = self.store.runs()
        return json.loads(runs[-1].body).get(what) if runs else None

    # -- recording ----------------------------------------------------------------------------------
    def run(
        self,
        as_of: date,
        *,
        since: date | None = None,
        first_run: bool = False,
        at: datetime | None = None,
    ) -> RunResult:
        """Plan ``as_of`` and record it in one transaction; a second run adds nothing.

        On a ledger joined to the host's transaction the run records in that transaction
        (a savepoint of it); ``workers`` above 1 then raise
        :class:`~arflow.errors.RunNeedsOwnTransaction` (helper processes cannot write in
        the host's transaction)."""
        if self.workers > 1 and getattr(self.store, "joined", False):
            raise RunNeedsOwnTransaction(
                f"a run with workers={self.workers} cannot share the host's transaction: its "
                "helper processes write in transactions of their own. Run it with workers=1 "
                "inside the host's transaction, or give it the book's own transaction: "
                "Engine(Ledger(url), pack, workers=...).run(as_of)"
            )
        when = at or datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
        with running(as_of) as run:
            extra = {"arflow_run": run}
            log.info(
                "run %s started (pack %s%s)",
                run,
                self.pack.name,
                ", first run" if first_run else "",
                extra=extra,
            )
            try:
                with self._bulk_reads():
                    result = run_day(self, as_of, since, first_run, when)
            except StoreError as exc:
                log.error("run %s failed, nothing recorded: %s", run, exc, extra=extra)
                raise
            log.info(
                "run %s done: %d decision(s) recorded, %d skipped, %d failure(s)",
                run,
                result.recorded,
                result.skipped,
                len(result.failures),
                extra=extra,
            )
            for f in result.failures:
                log.error(
                    "run %s: rule %s failed on %s %s: %s",
                    run,
                    f.rule,
                    f.subject_kind,
                    f.subject_id,
                    f.error,
                    extra=extra,
                )
            return result

    @contextmanager
    def _bulk_reads(self) -> Iterator[None]:
        """Where a run (or a helper's slice of it) reads its thousands of objects: fewer
        collector passes, and each stored object parsed once (planning, rendering and
        recording read the same receivables and customers)."""
        with fewer_gc_passes(), self.store.parse_once():
            yield

    def _plan_slice(
        self, part: tuple[int, int] | None, as_of: date, since: date | None, first_run: bool
    ) -> Plan:
        """:meth:`plan` for the customers of slice ``part`` (i, k) only (None: all)."""
        self._slice = part
        try:
            return self.plan(as_of, since=since, first_run=first_run)
        finally:
            self._slice = None

    def _slices_needed(self, as_of: date, since: date | None, first_run: bool) -> int:
        return slices_needed(self, as_of, since, first_run)

    def _run_in_slices(
        self, as_of: date, since: date | None, first_run: bool, when: datetime, k: int
    ) -> RunResult:
        return run_in_slices(self, as_of, since, first_run, when, k)

    def _helper_spec(
        self, as_of: date, since: date | None, first_run: bool, at: datetime
    ) -> dict[str, Any] | None:
        return helper_spec(
            self, self._source, self._digest, as_of, since, first_run, at, self._as_loaded
        )

    def _record_plan(self, batch: Batch, plan: Plan, when: datetime) -> tuple[int, int]:
        counts = record_plan(batch, plan, when, self.composer)
        start_raises(batch, self.pack, self.store, plan.decisions, when)
        return counts

    def _sweep_tasks(self, batch: Batch, as_of: date, when: datetime) -> int:
        """Process steps past their deadline timed out (their owners reminded before), then
        open tasks past their deadline marked overdue, and escalated as the pack says."""
        moved = sweep_processes(batch, self.store, self.pack, as_of, when)
        mark = self._last_mark()  # a run swept the book as of it (None: sweep every task)
        return moved + sweep_tasks(batch, self.store, self.pack, as_of, when, mark)

    def tasks_for(self, who: str, as_of: date) -> list[InboxItem]:
        """The inbox of ``who`` (a person id or a role): open and overdue tasks, overdue
        first, each with what happens if nothing is done."""
        return inbox(self.store, who, as_of)

    def _record_helpers(
        self, batch: Batch, plan: Plan, rows: Any, counts: tuple[int, int], when: datetime
    ) -> tuple[int, int]:
        got = record_helpers(batch, plan, rows, counts, when, self.composer)
        start_raises(batch, self.pack, self.store, plan.decisions, when)
        return got

    def record(self, decisions: Iterable[Decision], at: datetime) -> int:
        """Record decisions (a plan's, a released review's) in one transaction."""
        return record_decisions(self.ledger, decisions, at, self.composer)

    # -- review ------------------------------------------------------------------------------------
    def proposal(self) -> list[Decision]:
        """Decisions held for review (``settings.review: true``), oldest first."""
        return held_decisions(self.store)

    def proposal_view(self, customer: str | None = None) -> list[CustomerProposal]:
        """The proposal whole, by customer: each customer's held lines, whether a reviewer
        holds it, and its messages as they would go out if released now (edits applied)."""
        return proposal_view(self, customer)

    def edit_message(
        self,
        key: str,
        *,
        by: str,
        at: datetime,
        subject: str | None = None,
        text: str | None = None,
        send_on: date | None = None,
    ) -> ProposedMessage:
        """Change a held message's subject, text or send date (within the bounds of
        docs/review.md); ``key`` is the message's key or that of a line carrying one
        message. Audited; returns the message as it now stands."""
        return edit_held(self, key, by=by, at=at, subject=subject, text=text, send_on=send_on)

    def drop_lines(self, keys: Iterable[str], *, by: str, at: datetime) -> int:
        """Drop held lines (decision keys) for good, audited; returns how many."""
        return drop_held(self, keys, by=by, at=at)

    def hold_customer(self, customer: str, *, by: str, at: datetime, lift: bool = False) -> int:
        """Hold a customer's part of the proposal (``lift``: let it go), audited: a release
        of everything leaves it held. Returns how many lines the customer has held."""
        return hold_held(self, customer, by=by, at=at, lift=lift)

    def release(
        self,
        keys: Iterable[str] | None = None,
        *,
        drop: Iterable[str] = (),
        hold_customers: Iterable[str] = (),
        at: datetime | None = None,
        actor: str = ENGINE_ACTOR,
    ) -> dict[str, int]:
        """Release held decisions (all, or ``keys``): they are carried out now and their
        messages, as edited, queued. ``drop`` removes items for good; customers in
        ``hold_customers`` (and those a reviewer holds) stay held. ``actor`` must hold
        ``settings.review_role`` when the pack names one. Releasing twice sends once."""
        return release_held(
            self,
            keys,
            drop=drop,
            hold_customers=hold_customers,
            at=at,
            actor=actor,
        )

    # -- events -------------------------------------------------------------------------------------
    def attach(self) -> Engine:
        """Make this engine its ledger's order policy, and return it: from now on
        ``ledger.apply(OrderSubmitted(...))`` and ``ledger.apply(OrderApproved(...))`` run
        :meth:`handle` (the locks settled, the grade and terms checked, the order decided,
        its messages and tasks queued, a refusal audited), so a host that calls
        ``Ledger.apply`` gets the same order check as one that calls ``Engine.handle``.
        ``ledger.order_policy = None`` detaches it. Other events given to ``Ledger.apply``
        are still only recorded."""
        self.ledger.order_policy = self
        return self

    def handle(self, event: Event) -> tuple[Applied, list[Decision]]:
        """Apply ``event`` and decide what it triggers: an invoice request when a milestone
        is done, approval of an order beyond policy, an alert on the order, a lock placed
        or lifted when exposure or overdue items change. The decisions are recorded. An order
        that asks for no payment terms takes its grade's. Before an order is submitted or
        approved, its customer's locks are brought up to date (:meth:`_settle_locks`). In
        a pack declaring the processes of docs/workflows.md, a discount, terms beyond the
        grade or a raise of a credit limit start theirs (a raise is applied with the limit
        kept until its process approves it; a second one while it waits is refused,
        :class:`~arflow.errors.RaisePending`).

        All of it is one transaction: the event, the decisions (their effects on the book
        and their messages in the outbox) and the locks of the customers whose orders were
        decided, checked again after those decisions, commit together or not at all. The
        planners read the book as that transaction sees it (:class:`TxBook`).

        A refused event (a grade the pack does not define,
        :class:`~arflow.errors.UnknownGrade`; payment terms longer than the customer's
        grade allows when the pack names no tier to approve them,
        :class:`~arflow.errors.TermsNotAllowed`; or any refusal of the ledger) changes
        nothing; the refused attempt is then recorded in the audit trail, in a transaction
        of its own (:meth:`Ledger.record_refusal`), and the error is raised."""
        refused: list[ArflowError] = []
        try:
            with self.ledger.batch() as batch:
                try:
                    check_grades(self.pack.scoring, event)
                    event = with_grade_terms(self.pack, self.store, event)
                    check_terms(self.pack, self.store, event)
                    check_discount(self.pack, event)
                    event = with_owners(self.store, event)
                    event, raised = hold_raise(self.pack, batch.tx, event)
                    book = TxBook(batch.tx, self.store)
                    settled = self._settle_locks(batch, book, event)
                    settled += self._settle_order(batch, book, event)
                    applied = batch.apply(event)
                    if raised is not None and not applied.duplicate:
                        assert isinstance(event, CreditReviewed | CustomerUpdated)
                        on = event.occurred_at.astimezone(UTC).date()
                        if isinstance(event, CreditReviewed):
                            on = event.reviewed_on
                        start_raise(
                            batch,
                            self.pack,
                            self.store,
                            event.customer_id,
                            raised,
                            on,
                            event.occurred_at,
                        )
                except ArflowError as exc:
                    refused.append(exc)
                    raise
                if applied.duplicate or not isinstance(event, BaseEvent):
                    return applied, []
                return applied, self._decide(batch, book, event, applied, settled)
        except ArflowError as exc:
            if refused and exc is refused[0]:
                self.ledger.record_refusal(event, exc)
            raise

    def _decide(
        self,
        batch: Batch,
        book: TxBook,
        event: BaseEvent,
        applied: Applied,
        settled: list[Decision],
    ) -> list[Decision]:
        """What ``event``, applied in ``batch``, triggers, recorded in the same transaction
        (``settled``: the lock decisions taken before it, already recorded)."""
        as_of = event.occurred_at.astimezone(UTC).date()
        plan = Plan(as_of=as_of, since=as_of)
        plan.decisions.extend(settled)
        day = self._day(plan, book=book)
        for p in self.event_planners:
            p.on_event(event, applied, day)
        for f in plan.failures:  # the event stands, and so do the other rules' decisions
            log.error(
                "rule %s failed on %s %s after %s: %s",
                f.rule,
                f.subject_kind,
                f.subject_id,
                event.event_id,
                f.error,
                extra={"arflow_event": event.event_id},
            )
        record_in(batch, plan.decisions[len(settled) :], event.occurred_at, self.composer)
        close_decided(batch, event)  # an order decided: its approval tasks are done
        start_process(batch, self.pack, self.store, event, event.occurred_at)
        # a step decided: the next owner's task; a process ended: its raise applied, or
        # the order it refused rejected
        ended = follow_process(batch, self.pack, event)
        # The decisions' own effects (an order refused or approved at entry) change the
        # customer's exposure, and so does a process's end (a limit raised, an order
        # rejected): its locks are checked again on the book as it now stands in the
        # transaction (a fresh day: its facts are read again).
        touched = sorted(
            {d.customer_id for d in plan.decisions if d.subject_kind == "order"} | set(ended)
        )
        if touched and self.pack.locks:
            after = Plan(as_of=as_of, since=as_of)
            later = self._locks.judged_on(self._day(after, book=book))
            for cid in touched:
                self._locks._plan_locks(after, cid, later.as_of, later, f"{event.event_id}~decided")
            record_in(batch, after.decisions, event.occurred_at, self.composer)
            plan.decisions.extend(after.decisions)
        return plan.decisions

    def _settle_order(self, batch: Batch, book: TxBook, event: Event) -> list[Decision]:
        """Before a person's approval of an order no engine decided (submitted with
        ``Ledger.apply`` while no engine was attached): the order checked as at its entry,
        and a rejection or an approval path the pack gives it recorded first. The approval
        is then applied to an order sent for approval, which only a holder of the tier's role
        may approve: an intern's approval of a cash-on-delivery order not prepaid is refused
        (:class:`~arflow.errors.NotAuthorized`, nothing changed, the attempt audited). An
        order the check would approve at once is left to the person's approval."""
        if not isinstance(event, OrderApproved):
            return []
        o = book.get("order", event.order_id)
        if o is None or o.state != "submitted" or o.approvers:
            return []
        entry = OrderSubmitted(
            event_id=f"{event.event_id}~check",
            occurred_at=event.occurred_at,
            actor=ENGINE_ACTOR,
            reason="the order checked before its approval",
            order_id=o.id,
            customer_id=o.customer_id,
            amount=o.amount,
            submitted_on=o.submitted_on,
            order_type=o.order_type,
            contract_id=o.contract_id,
            payment_terms_days=o.payment_terms_days,
            discount_percent=o.discount_percent,
            discount_amount=o.discount_amount,
        )
        as_of = event.occurred_at.astimezone(UTC).date()
        plan = Plan(as_of=as_of, since=as_of)
        day = self._day(plan, book=book)
        self._approvals.on_event(entry, Applied(entry.event_id), day)
        held = [d for d in plan.decisions if d.why.get("on_order") in ("reject", "approve")]
        if held:
            record_in(batch, held, event.occurred_at, self.composer)
        # longer terms than its grade, in a pack whose terms process takes over from the
        # tier: that process, which the order then waits for to ship
        now = batch.tx.get("order", o.id)
        if now is not None and now.state != "rejected":
            start_terms(batch, self.pack, self.store, entry, event.occurred_at)
        return held

    def _settle_locks(self, batch: Batch, book: TxBook, event: Event) -> list[Decision]:
        """Before an order is submitted or approved: its customer's locks judged on the
        book as it stands, and recorded, so that the order is decided on them. A change
        the host recorded with ``Ledger.apply`` (which judges no rule), such as an order
        that took the customer to 90% of its limit, has not placed its lock yet; without
        this the next order would be approved by the engine, or by anyone, and the lock
        placed only after it."""
        if not self.pack.locks or not isinstance(event, OrderSubmitted | OrderApproved):
            return []
        if isinstance(event, OrderApproved):
            order = book.get("order", event.order_id)
            customer_id = None if order is None else order.customer_id
        else:
            customer_id = event.customer_id
        if customer_id is None or book.get("customer", customer_id) is None:
            return []  # the event is refused for it when applied
        as_of = event.occurred_at.astimezone(UTC).date()
        plan = Plan(as_of=as_of, since=as_of)
        day = self._locks.judged_on(self._day(plan, book=book))
        self._locks._plan_locks(plan, customer_id, day.as_of, day, f"{event.event_id}~before")
        if plan.decisions:
            record_in(batch, plan.decisions, event.occurred_at, self.composer)
        return plan.decisions

    # -- credit scoring and explanations ------------------------------------------------------
    def score(self, customer_id: str, as_of: date) -> CreditScore:
        if self.pack.scoring is None:
            raise ArflowError("the rule pack has no scoring section")
        return score_customer(self.pack.scoring, self._customer_facts(customer_id, as_of))

    def explain(self, key: str) -> dict[str, Any]:
        """The recorded decision behind ``key``: rule, step, status, reason and facts."""
        return explain_key(self.store, key)
