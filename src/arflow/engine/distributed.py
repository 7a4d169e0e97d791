"""A day's run over several machines, on Celery, against one PostgreSQL book.

The day splits by customer (a customer's decisions read that customer alone, see
:mod:`arflow.engine._parallel`): shard ``i`` of ``K`` holds the customers whose
``crc32(id) % K == i``, the slicing of ``Engine(..., workers=N)``. A coordinator
(:func:`run_on_celery`, ``arflow run --celery URL --shards K``) claims the date in the
database, sends one Celery task per shard and waits; each worker (``celery -A
arflow.engine.distributed worker``, or ``arflow worker --celery URL``) plans its shard and
records it in its own transaction, with a row saying what it recorded
(``ar_run_shard``). Once every shard's row is there, the coordinator does what is not
per customer, once: the sweep of processes and tasks past their deadline, and the run
record, with the shards' counts and the audit mark taken before any shard recorded.

Why it is safe: decision keys are unique, and a shard's row is written in the
transaction of its decisions, which takes the book's writer lock; a shard delivered
twice finds its row (or, on a new run of the day, its decisions) and records nothing.
Tasks are acknowledged late and rejected when their worker process dies
(``task_acks_late``, ``task_reject_on_worker_lost``): a shard whose worker was killed is
delivered again. Two coordinators of one date: the second waits for the first's claim
(a session advisory lock, let go if the first dies) and returns the run it recorded.
docs/distributed.md tells how to deploy it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..errors import ArflowError, StoreError, WorkerFailed
from ..ledger import Ledger
from ..rules.loader import RulePack
from ..store.sql import SqlStore, add_shard, claim_day, shard_recorded, shard_rows
from ._engine import Engine
from ._log import running
from ._parallel import _recheck, run_batch
from ._record import _run_record
from ._results import Failure, Plan, RunResult

try:
    import celery  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - the extra is installed where this is tested
    raise ArflowError("a distributed run needs Celery: pip install 'arflow[celery]'") from None

__all__ = [
    "DEFAULT_QUEUE",
    "SHARD_TASK",
    "DistributedRun",
    "app",
    "celery_app",
    "run_on_celery",
    "run_shard",
]

log = logging.getLogger("arflow.engine")

#: The name of the task that plans and records one shard of a day.
SHARD_TASK = "arflow.run_shard"
#: The queue shards are sent to unless another is given.
DEFAULT_QUEUE = "arflow.runs"
#: How often a shard whose store failed (a dropped connection) is tried again.
STORE_RETRIES = 5


@dataclass(frozen=True)
class DistributedRun:
    """What a distributed run did: the run's result (counts; its plan keeps no decisions,
    they are in the decision ledger), the run's id, in how many shards, and whether this
    coordinator found the date run by another one it waited for (``joined``)."""

    result: RunResult
    run_id: str
    shards: int
    queued: int = 0
    joined: bool = False
    workers: list[str] = field(default_factory=list)


# -- the Celery app -------------------------------------------------------------------------------


def celery_app(
    broker: str | None = None,
    *,
    store: str | None = None,
    rules: list[str] | None = None,
    queue: str = DEFAULT_QUEUE,
    **config: Any,
) -> celery.Celery:
    """A Celery app that runs shards of days: ``broker`` (default ``$ARFLOW_CELERY_BROKER``)
    carries them; a worker opens the book ``store`` (default ``$ARFLOW_DB``) with the rule
    files ``rules`` (default ``$ARFLOW_RULES``, paths separated by ``os.pathsep``, else the
    shipped default pack). ``config`` goes to ``app.conf`` as it is."""
    broker = broker or os.environ.get("ARFLOW_CELERY_BROKER")
    if not broker:
        raise ArflowError(
            "no Celery broker: pass one (redis://..., amqp://...) or set ARFLOW_CELERY_BROKER"
        )
    a = celery.Celery("arflow", broker=broker, set_as_current=False)
    a.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        arflow_store=store,
        arflow_rules=rules,
    )
    a.conf.update(config)
    a.task(name=SHARD_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(_shard_task)
    return a


def _lazy_app() -> celery.Celery:
    """The module's app for ``celery -A arflow.engine.distributed worker``: from the
    environment, or an app without a broker that says so when used."""
    return celery_app(os.environ.get("ARFLOW_CELERY_BROKER") or "arflow-needs-a-broker://")


# -- the worker's side ------------------------------------------------------------------------------

_engines: dict[tuple[str, tuple[str, ...]], Engine] = {}
#: one shard at a time per worker process: an engine plans one slice at a time (a worker
#: with a thread pool gets no parallelism from its threads, only correctness)
_one_at_a_time = threading.Lock()


def rules_digest(pack: RulePack) -> str:
    """A digest of the contents of a pack's rule and template files, by file name (not by
    path: the workers' copies may live elsewhere)."""
    h = hashlib.sha256()
    files = [Path(f) for f in pack.files]
    for folder in pack.template_dirs:
        if folder.is_dir():
            files.extend(p for p in folder.iterdir() if p.is_file())
    for path in sorted(files, key=lambda p: (p.name, str(p))):
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"(missing)")
        h.update(b"\0")
    return h.hexdigest()


def book_of(store: SqlStore) -> list[str]:
    """Which book a store holds, as the database names it (database and schema): the
    coordinator's and its workers' must be the same."""
    import sqlalchemy as sa

    try:
        with store.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT current_database(), current_schema()")).one()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"reading which book {store.url} is failed: {exc}") from exc
    return [str(row[0]), store.schema or str(row[1])]


def _worker_engine(conf: Any, digest: str) -> Engine:
    """This worker process's engine (one per book and rule files), its pack loaded again
    when its files changed since."""
    from ..rules import default_pack_path

    url = conf.get("arflow_store") or os.environ.get("ARFLOW_DB")
    if not url:
        raise ArflowError("this worker has no book: start it with --db or ARFLOW_DB set")
    rules = conf.get("arflow_rules") or [
        p for p in os.environ.get("ARFLOW_RULES", "").split(os.pathsep) if p
    ]
    rules = list(rules) or [str(default_pack_path())]
    key = (str(url), tuple(rules))
    engine = _engines.get(key)
    if engine is not None and rules_digest(engine.pack) != digest:
        engine = None  # the files changed: load them again
    if engine is None:
        engine = Engine(Ledger(str(url)), rules)
        _engines[key] = engine
    return engine


def run_shard(engine: Engine, spec: dict[str, Any]) -> dict[str, Any]:
    """Plan shard ``spec["shard"]`` of ``spec["shards"]`` of the day and record it, with
    its row, in one transaction; a shard recorded already records nothing. Returns what
    its row says (``"again": True`` when it was there)."""
    store = engine.store
    if not isinstance(store, SqlStore) or store.engine.dialect.name != "postgresql":
        raise ArflowError(
            f"this worker's book ({getattr(store, 'url', 'in memory')}) is not in "
            "PostgreSQL: start it with the coordinator's database (--db or ARFLOW_DB)"
        )
    run_id, shard, shards = str(spec["run_id"]), int(spec["shard"]), int(spec["shards"])
    part = (shard, shards)
    as_of = date.fromisoformat(spec["as_of"])
    since = None if spec["since"] is None else date.fromisoformat(spec["since"])
    first_run = bool(spec["first_run"])
    when = datetime.fromisoformat(spec["at"])
    if book_of(store) != list(spec["book"]):
        raise ArflowError(
            f"this worker's book is {'.'.join(book_of(store))}, the run's is "
            f"{'.'.join(spec['book'])}: start the worker with the coordinator's database"
        )
    if rules_digest(engine.pack) != spec["digest"]:
        raise ArflowError(
            f"this worker's rule files ({', '.join(engine.pack.files)}) differ from the "
            "coordinator's: deploy the same rules to every worker"
        )
    with running(as_of), engine._bulk_reads():
        with store.engine.connect() as conn:
            if shard_recorded(conn, run_id, shard):
                return {"again": True}
        plan = engine._plan_slice(part, as_of, since, first_run)
        with run_batch(engine.ledger) as batch:
            conn = batch.tx.connection  # type: ignore[attr-defined]
            # the book's writer lock is held: another delivery of this shard waits here
            if shard_recorded(conn, run_id, shard):
                return {"again": True}
            plan = _recheck(engine, plan, part)
            recorded, queued = engine._record_plan(batch, plan, when)
            batch.tx.flush()
            body = {
                "recorded": recorded,
                "queued": queued,
                "skipped": len(plan.skipped),
                "candidates": plan.candidates,
                "replanned": plan.replanned,
                "failures": [f.__dict__ for f in plan.failures],
                "worker": f"{socket.gethostname()}:{os.getpid()}",
            }
            add_shard(conn, run_id, shard, shards, as_of, json.dumps(body))
    log.info("run %s: shard %d of %d recorded %d decision(s)", run_id, shard, shards, recorded)
    return body


def _shard_failed(engine: Engine | None, conf: Any, spec: dict[str, Any], exc: Exception) -> None:
    """Write shard ``spec``'s failure where its coordinator reads it (if the book can be
    reached), so that the run fails at once rather than at its timeout."""
    log.error("run %s: shard %s failed: %s", spec.get("run_id"), spec.get("shard"), exc)
    url = conf.get("arflow_store") or os.environ.get("ARFLOW_DB")
    own = None
    try:
        store = engine.store if engine is not None else None
        if not isinstance(store, SqlStore):
            store = own = SqlStore(str(url), upgrade=False)
        with store.engine.begin() as conn:
            if not shard_recorded(conn, str(spec["run_id"]), int(spec["shard"])):
                error = str(exc) if isinstance(exc, ArflowError) else f"{type(exc).__name__}: {exc}"
                body = json.dumps({"error": error, "worker": socket.gethostname()})
                add_shard(
                    conn,
                    str(spec["run_id"]),
                    int(spec["shard"]),
                    int(spec["shards"]),
                    date.fromisoformat(spec["as_of"]),
                    body,
                )
    except Exception as again:  # the coordinator's timeout covers it
        log.error("run %s: could not record the failure: %s", spec.get("run_id"), again)
    finally:
        if own is not None:
            own.close()


def _shard_task(task: Any, spec: dict[str, Any]) -> dict[str, Any] | None:
    engine = None
    try:
        with _one_at_a_time:
            engine = _worker_engine(task.app.conf, str(spec["digest"]))
            return run_shard(engine, spec)
    except StoreError as exc:
        if task.request.retries < STORE_RETRIES:  # the book may be back in a moment
            raise task.retry(exc=exc, countdown=min(30, 2**task.request.retries)) from exc
        _shard_failed(engine, task.app.conf, spec, exc)
    except Exception as exc:  # a wrong book or rules, a bug: the run fails, with why
        _shard_failed(engine, task.app.conf, spec, exc)
    return None


# -- the coordinator -------------------------------------------------------------------------------


def run_on_celery(
    engine: Engine,
    as_of: date,
    *,
    app: celery.Celery,
    shards: int,
    since: date | None = None,
    first_run: bool = False,
    at: datetime | None = None,
    queue: str | None = None,
    timeout: float = 3600.0,
    poll: float = 0.2,
) -> DistributedRun:
    """Run ``as_of`` in ``shards`` Celery tasks over the engine's PostgreSQL book, as
    ``engine.run`` would in one process, and record the run; wait at most ``timeout``
    seconds for the claim of the date and as long for the shards. A day too large for
    ``shards`` shards of at most ``Engine.slice_candidates`` candidates each is sent in
    more. A coordinator that waited for another's claim of the date returns the run
    that one recorded."""
    if shards < 1:
        raise ArflowError(f"shards must be at least 1, not {shards}")
    store = engine.store
    if not isinstance(store, SqlStore) or store.engine.dialect.name != "postgresql":
        raise StoreError(
            "a distributed run needs the book in PostgreSQL, which every worker opens "
            "(docs/distributed.md)"
        )
    when = at or datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    queue = queue or app.conf.get("task_default_queue") or DEFAULT_QUEUE
    with running(as_of) as run, claim_day(store.engine, as_of, timeout) as claim:
        other = claim.recorded_meanwhile()
        if other is not None:
            body = json.loads(other)
            log.info("run %s: recorded by another coordinator meanwhile", run)
            return DistributedRun(
                _result_of(as_of, body), str(body.get("run_id", "")), shards, joined=True
            )
        since = engine._first_day(as_of, since, first_run)
        # a shard holds at most Engine.slice_candidates candidates, as a slice does
        asked, shards = shards, max(shards, engine._slices_needed(as_of, since, first_run))
        if shards > asked:
            log.info("run %s: %d shards, not %d: the day is large", run, shards, asked)
        mark = store.audit_mark()
        run_id = uuid.uuid4().hex
        spec = {
            "run_id": run_id,
            "shards": shards,
            "as_of": as_of.isoformat(),
            "since": None if since is None else since.isoformat(),
            "first_run": first_run,
            "at": when.isoformat(),
            "digest": rules_digest(engine.pack),
            "book": book_of(store),
        }
        log.info("run %s: %d shard(s) sent to %s as run %s", run, shards, queue, run_id)
        for i in range(shards):
            app.send_task(SHARD_TASK, args=[{**spec, "shard": i}], queue=queue)
        rows = _gather(store, run_id, shards, timeout, poll)
        plan = Plan(as_of=as_of, since=since, audit_mark=mark)
        recorded = queued = skipped = 0
        workers = []
        for i in range(shards):
            got = rows[i]
            recorded += got["recorded"]
            queued += got["queued"]
            skipped += got["skipped"]
            plan.candidates += got["candidates"]
            plan.replanned += got["replanned"]
            plan.failures.extend(Failure(**f) for f in got["failures"])
            workers.append(str(got.get("worker", "")))
        with run_batch(engine.ledger) as batch:
            engine._sweep_tasks(batch, as_of, when)
            record = _run_record(plan, recorded, queued, skipped)
            body = json.loads(record.body) | {"shards": shards, "run_id": run_id}
            batch.tx.add_run(type(record)(as_of=as_of, body=json.dumps(body)))
    log.info(
        "run %s done in %d shards: %d decision(s) recorded, %d skipped, %d failure(s)",
        run,
        shards,
        recorded,
        skipped,
        len(plan.failures),
    )
    result = RunResult(as_of, recorded, skipped, plan.failures, plan)
    return DistributedRun(result, run_id, shards, queued=queued, workers=workers)


def _gather(
    store: SqlStore, run_id: str, shards: int, timeout: float, poll: float
) -> dict[int, dict[str, Any]]:
    """Every shard's row of run ``run_id``, once all are written; a shard that failed
    fails the run (what the other shards recorded stays: running the day again adds the
    rest)."""
    end = time.monotonic() + timeout
    while True:
        rows = {i: json.loads(b) for i, b in shard_rows(store.engine, run_id).items()}
        failed = {i: r["error"] for i, r in rows.items() if "error" in r}
        if failed:
            said = "; ".join(f"shard {i}: {e}" for i, e in sorted(failed.items()))
            raise WorkerFailed(
                f"run {run_id} failed ({said}); the shards recorded stay, run the day again"
            )
        if len(rows) == shards:
            return rows
        if time.monotonic() > end:
            missing = sorted(set(range(shards)) - set(rows))
            raise WorkerFailed(
                f"run {run_id}: after {timeout:.0f}s shards {missing} are not recorded: "
                "are workers running on the queue, with this broker? (nothing is lost: "
                "their tasks wait in the queue; run the day again once workers are up)"
            )
        time.sleep(poll)


def _result_of(as_of: date, body: dict[str, Any]) -> RunResult:
    """A run's result as its run record tells it."""
    since = body.get("since")
    plan = Plan(
        as_of=as_of,
        since=None if since is None else date.fromisoformat(since),
        failures=[Failure(**f) for f in body.get("failures", [])],
        candidates=int(body.get("candidates", 0)),
        audit_mark=body.get("audit_mark"),
        replanned=int(body.get("replanned", 0)),
    )
    return RunResult(as_of, int(body["recorded"]), int(body["skipped"]), plan.failures, plan)


#: ``celery -A arflow.engine.distributed worker`` finds this app (configured from
#: ``$ARFLOW_CELERY_BROKER``, ``$ARFLOW_DB`` and ``$ARFLOW_RULES``).
app = _lazy_app()
