"""A day's run in slices of the customers: in helper processes beside this one
(``Engine(..., workers=N)``), or one slice after the other for a day too large to hold.

A day's plan is a function of (book, rules, as_of) that splits by customer: the decisions
about one customer read that customer's receivables, orders, promises and payments only,
and its messages list its own invoices. With ``workers=N`` the engine plans one slice of
the customers (``crc32(customer id) % N``) itself and starts N - 1 helper processes
(:mod:`arflow.engine._helper`, through :mod:`arflow._child`), each of which loads the same
rule files, opens the same database, plans its slice and records it the way the engine
records a plan (messages rendered, the decisions' effects booked as events) in a
transaction that reads the committed book and is never committed. It hands the rows that
transaction staged to the engine, which writes them in its own transaction after its
slice: the book, the decision ledger and the outbox come out as a run in one process
leaves them (only the order of the day's events in the log differs, slice by slice). The
engine merges the plans in the order one plan over every customer has.

Message: ``("end", plan, rows)`` with the plan's decisions and skipped decisions as JSON,
its failures, candidates, segments and (decisions recorded, messages queued), and the
staged rows (``arflow.store.sql.StagedRows``).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import zlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from .._child import Child, WorkerFailed
from ..decisions import Decision
from ..ledger import Batch, Ledger
from ..lifecycle import LIVE_STATES
from ..rules.loader import RulePack
from ..store.base import Store
from ._candidates import due_windows
from ._log import current_run
from ._record import _run_record
from ._results import Failure, Plan, RunResult

log = logging.getLogger("arflow.engine")


class Runner(Protocol):
    """What a run in slices needs of the engine (``Engine`` is one)."""

    store: Store
    ledger: Ledger
    pack: RulePack
    workers: int
    helpers_from: int
    slice_candidates: int
    _only: frozenset[str] | None

    def _plan_slice(
        self, part: tuple[int, int] | None, as_of: date, since: date | None, first_run: bool
    ) -> Plan: ...
    def _record_plan(self, batch: Batch, plan: Plan, when: datetime) -> tuple[int, int]: ...
    def _sweep_tasks(self, batch: Batch, as_of: date, when: datetime) -> int: ...
    def _record_helpers(
        self, batch: Batch, plan: Plan, rows: Any, counts: tuple[int, int], when: datetime
    ) -> tuple[int, int]: ...
    def _run_in_slices(
        self, as_of: date, since: date | None, first_run: bool, when: datetime, k: int
    ) -> RunResult: ...
    def _slices_needed(self, as_of: date, since: date | None, first_run: bool) -> int: ...
    def _helper_spec(
        self, as_of: date, since: date | None, first_run: bool, at: datetime
    ) -> dict[str, Any] | None: ...
    def _first_day(self, as_of: date, since: date | None, first_run: bool) -> date | None: ...
    def _last_run_says(self, what: str) -> Any: ...
    def _shape(self) -> tuple[Any, ...]: ...


# -- slices and plans -------------------------------------------------------------------------


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


# -- helper processes ---------------------------------------------------------------------------


def pack_digest(pack: RulePack) -> str:
    """A digest of the files a pack was loaded from (rules and templates): a helper that
    loads files with the same digest has the same rules."""
    h = hashlib.sha256()
    paths = [Path(f) for f in pack.files]
    for folder in pack.template_dirs:
        if folder.is_dir():
            paths.extend(sorted(p for p in folder.iterdir() if p.is_file()))
    for path in paths:
        h.update(str(path).encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"(missing)")
        h.update(b"\0")
    return h.hexdigest()


def start(spec: dict[str, Any]) -> Child:
    """A helper planning the slice ``spec["slice"]``; its plan is read with
    ``child.messages()``."""
    return Child("engine._helper", "serve", spec, f"the run's helper process {spec['slice']}")


def helper_spec(
    engine: Runner,
    source: Any,
    digest: str | None,
    as_of: date,
    since: date | None,
    first_run: bool,
    at: datetime,
    as_loaded: tuple[Any, ...],
) -> dict[str, Any] | None:
    """What helper processes need to plan their slices of ``as_of`` like this engine;
    None when the run stays in this process: one worker, a pack given already loaded or
    changed since (its rules, settings, calendar or composer replaced: a helper loading
    the files would not see it), a store another process cannot open (memory, SQLite
    in memory, or opened from an engine object rather than a URL), no interpreter to
    start, or a small day (the last run read fewer than ``helpers_from`` candidates)."""
    if engine.workers == 1 or source is None or not sys.executable:
        return None
    url = engine.store.shared_url()  # None: a store other processes cannot open
    if url is None:
        return None
    if engine._shape() != as_loaded or pack_digest(engine.pack) != digest:
        return None
    if not first_run:  # a day like the last one: worth a helper's start-up?
        last = engine._last_run_says("candidates")
        if isinstance(last, int) and last < engine.helpers_from:
            return None
    paths = [source] if isinstance(source, str | Path) else list(source)
    return {
        "url": url,
        "pack": [str(p) for p in paths],
        "digest": digest,
        "as_of": as_of.isoformat(),
        "since": None if since is None else since.isoformat(),
        "first_run": first_run,
        "at": at.isoformat(),
    }


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


# -- the run ------------------------------------------------------------------------------------


def run(
    engine: Runner, as_of: date, since: date | None, first_run: bool, when: datetime
) -> RunResult:
    """Plan ``as_of`` (in helpers too, if the engine has workers and the day is worth
    it, or slice after slice if it is too large) and record it in one transaction."""
    slices = engine._slices_needed(as_of, since, first_run)
    if slices > 1:
        return engine._run_in_slices(as_of, since, first_run, when, slices)
    spec = engine._helper_spec(as_of, since, first_run, when)
    workers = engine.workers
    with ExitStack() as stack:
        helpers = [
            stack.enter_context(start({**spec, "slice": (i, workers)}))
            for i in range(1, workers)
            if spec is not None
        ]
        mine = (0, workers) if helpers else None
        plan = engine._plan_slice(mine, as_of, since, first_run)
        with run_batch(engine.ledger) as batch:
            # no one else writes now: what changed since planning is planned again
            plan = _recheck(engine, plan, mine)
            # this process's slice is recorded while the helpers still plan theirs
            recorded, queued = engine._record_plan(batch, plan, when)
            if helpers:
                batch.tx.flush()  # written while the helpers finish
            plans = [plan]
            for i, helper in enumerate(helpers, 1):
                theirs, rows, counts = _helper_plan(helper, plan)
                again = _recheck(engine, theirs, (i, workers))
                if again is not theirs:  # its staged rows are of a book gone by
                    more = engine._record_plan(batch, again, when)
                    theirs = again
                else:
                    more = engine._record_helpers(batch, theirs, rows, counts, when)
                recorded, queued = recorded + more[0], queued + more[1]
                plans.append(theirs)
            if helpers:
                plan = replace(merge_plans(plans), replanned=sum(p.replanned for p in plans))
            engine._sweep_tasks(batch, as_of, when)
            batch.tx.add_run(_run_record(plan, recorded, queued, len(plan.skipped)))
    return RunResult(as_of, recorded, len(plan.skipped), plan.failures, plan)


def _recheck(engine: Runner, plan: Plan, part: tuple[int, int] | None) -> Plan:
    """``plan`` (of slice ``part``) as the book stands now: the customers whose book
    changed since the plan read it (a payment committed meanwhile) are planned again,
    and what was planned for the others stands. Called where no one else can write
    (inside the run's transaction), so what it reads is what the run records on."""
    store = engine.store
    if plan.audit_mark is None or store.audit_mark() == plan.audit_mark:
        return plan
    changed = frozenset(
        c
        for c in store.customers_changed_since(plan.audit_mark)
        if part is None or _in_slice(c, *part)
    )
    if not changed:
        return plan
    engine._only = changed
    try:
        # since is given: first_run only makes every locked customer of these count
        again = engine._plan_slice(part, plan.as_of, plan.since, True)
    finally:
        engine._only = None
    run = current_run()
    log.info(
        "run %s: planned %d customers again: their book changed while planning",
        run,
        len(changed),
        extra={"arflow_run": run},
    )
    return replace(
        merge_plans([_without(plan, changed), again]),
        since=plan.since,
        candidates=plan.candidates,
        audit_mark=again.audit_mark,
        replanned=plan.replanned + len(changed),
    )


@contextmanager
def run_batch(ledger: Ledger) -> Iterator[Batch]:
    """The transaction a run records in; on SQLite its pages are checkpointed after
    the commit, by the store's thread (``_SqlTx.defer_checkpoint``)."""
    with ledger.batch() as batch:
        batch.tx.defer_checkpoint()
        yield batch


def slices_needed(engine: Runner, as_of: date, since: date | None, first_run: bool) -> int:
    """In how many slices of the customers the run must be planned to keep each slice
    under ``slice_candidates`` candidates, a quarter of it on a first run (1: the
    whole day at once)."""
    since = engine._first_day(as_of, since, first_run)
    windows = due_windows(engine.pack, as_of, since)
    count = sum(engine.store.count_due(lo, hi, LIVE_STATES) for lo, hi in windows)
    per_slice = engine.slice_candidates if since is not None else engine.slice_candidates // 4
    return max(1, -(-int(count) // max(1, per_slice)))


def run_in_slices(
    engine: Runner, as_of: date, since: date | None, first_run: bool, when: datetime, k: int
) -> RunResult:
    """Plan and record slice i of k of the customers (crc32 % k) for i = 0 .. k - 1,
    one after the other, in one transaction: what a run records, with at most one
    slice's plan in memory (the slices are disjoint: a customer's decisions read that
    customer alone)."""
    recorded = queued = skipped = 0
    whole = Plan(as_of=as_of, since=since, slices=k)  # since and mark: the first slice's
    with run_batch(engine.ledger) as batch:
        for i in range(k):
            plan = engine._plan_slice((i, k), as_of, since, first_run)
            got = engine._record_plan(batch, plan, when)
            # to the database: the next slice (other customers) starts from nothing
            batch.tx.flush()
            batch.tx.forget_reads()
            engine.store.forget_parsed()
            recorded, queued = recorded + got[0], queued + got[1]
            skipped += len(plan.skipped)
            whole.candidates += plan.candidates
            whole.failures.extend(plan.failures)
            if i == 0:
                whole.since, whole.audit_mark = plan.since, plan.audit_mark
        engine._sweep_tasks(batch, as_of, when)
        batch.tx.add_run(_run_record(whole, recorded, queued, skipped))
    return RunResult(as_of, recorded, skipped, whole.failures, whole)
