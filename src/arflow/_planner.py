"""The daily run's helper processes (``Engine(..., workers=N)``).

A day's plan is a function of (book, rules, as_of) that splits by customer: the decisions
about one customer read that customer's receivables, orders, promises and payments only,
and its messages list its own invoices. With ``workers=N`` the engine plans one slice of
the customers (``crc32(customer id) % N``) itself and starts N - 1 helper processes
(``arflow._child``), each of which loads the same rule files, opens the same database,
plans its slice and records it the way the engine records a plan (messages rendered, the
decisions' effects booked as events) in a transaction that reads the committed book and is
never committed. It hands the rows that transaction staged to the engine, which writes
them in its own transaction after its slice: the book, the decision ledger and the outbox
come out as a run in one process leaves them (only the order of the day's events in the
log differs, slice by slice). The engine merges the plans in the order one plan over
every customer has.

Message: ``("end", plan, rows)`` with the plan's decisions and skipped decisions as JSON,
its failures, candidates, segments and (decisions recorded, messages queued), and the
staged rows (``arflow.store.sql.StagedRows``).
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._child import Child, Send, WorkerFailed
from ._child import serve as _serve

if TYPE_CHECKING:
    from .rules.loader import RulePack


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
    return Child("_planner", "serve", spec, f"the run's helper process {spec['slice']}")


def serve() -> None:
    """The helper's side (see the module's docstring)."""
    _serve(_plan)


def _plan(spec: dict[str, Any], send: Send) -> None:
    from .engine import Engine
    from .ledger import Batch, Ledger
    from .store.sql import SqlStore

    # the schema is current (the engine's process opened the book), and an upgrade would
    # wait for the writer's lock that process holds while it records its own slice
    store = SqlStore(spec["url"], upgrade=False)
    engine = Engine(Ledger(store), spec["pack"])
    if pack_digest(engine.pack) != spec["digest"]:
        raise WorkerFailed("the rule pack's files changed while the run started its helpers")
    i, k = spec["slice"]
    as_of = date.fromisoformat(spec["as_of"])
    at = datetime.fromisoformat(spec["at"])
    since = None if spec["since"] is None else date.fromisoformat(spec["since"])
    with engine._bulk_reads():
        plan = engine._plan_slice((i, k), as_of, since, spec["first_run"])
        with store.staging() as tx:
            counts = engine._record_plan(Batch(engine.ledger, tx), plan, at)
            rows = tx.staged_rows()
    send(
        (
            "end",
            {
                "decisions": [d.model_dump_json() for d in plan.decisions],
                "skipped": [d.model_dump_json() for d in plan.skipped],
                "failures": [
                    (f.subject_kind, f.subject_id, f.error, f.customer_id, f.rule)
                    for f in plan.failures
                ],
                "candidates": plan.candidates,
                "audit_mark": plan.audit_mark,
                "segments": plan.segments,
                "counts": counts,
            },
            rows,
        )
    )
    store.close()
