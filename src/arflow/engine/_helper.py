"""The helper process's side of a run in several processes (see :mod:`._parallel`): load
the same rules, open the same database, plan a slice, stage its recording, hand it over.

This module is the child's entry point (``Child("engine._helper", "serve", ...)``); nothing
in the engine imports it, so the engine and its helper do not import each other.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from .._child import Send, WorkerFailed
from .._child import serve as _serve
from ..ledger import Batch, Ledger
from ._engine import Engine
from ._parallel import pack_digest


def serve() -> None:
    """The helper's side (see :mod:`._parallel`)."""
    _serve(_plan)


def _plan(spec: dict[str, Any], send: Send) -> None:
    from ..store.sql import SqlStore

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
