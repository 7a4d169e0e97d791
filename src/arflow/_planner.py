"""The daily run's helper processes (``Engine(..., workers=N)``).

A day's plan is a function of (book, rules, as_of) that splits by customer: the decisions
about one customer read that customer's receivables, orders, promises and payments only,
and its messages list its own invoices. With ``workers=N`` the engine plans one slice of
the customers (``crc32(customer id) % N``) itself and starts N - 1 helper processes
(``arflow._child``), each of which loads the same rule files, opens the same database,
plans its slice and renders the messages of its decisions. The engine merges the plans in
the order one plan over every customer has and records everything in one transaction, as
a run in one process does: the book, the decision ledger and the outbox come out the same.

Message: ``("end", plan, records)`` with the plan's decisions and skipped decisions as
JSON, its failures, candidates and segments, and the outbox records as dictionaries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._child import Child, Send, WorkerFailed
from ._child import serve as _serve

if TYPE_CHECKING:
    from .engine import Decision
    from .rules.loader import RulePack
    from .store.base import Store


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
    from .ledger import Ledger
    from .store.sql import SqlStore

    # the schema is current (the engine's process opened the book), and an upgrade would
    # wait for the writer's lock that process holds while it records its own slice
    engine = Engine(Ledger(SqlStore(spec["url"], upgrade=False)), spec["pack"])
    if pack_digest(engine.pack) != spec["digest"]:
        raise WorkerFailed("the rule pack's files changed while the run started its helpers")
    i, k = spec["slice"]
    engine._slice = (i, k)
    as_of = date.fromisoformat(spec["as_of"])
    since = None if spec["since"] is None else date.fromisoformat(spec["since"])
    with engine._bulk_reads():
        plan = engine.plan(as_of, since=since, first_run=spec["first_run"])
        planned = [d for d in plan.decisions if d.status == "planned"]
        at = datetime.fromisoformat(spec["at"])
        records = engine.composer.records(_ReadAhead(engine.store, planned), planned, at)
    send(
        (
            "end",
            {
                "decisions": [d.model_dump_json() for d in plan.decisions],
                "skipped": [d.model_dump_json() for d in plan.skipped],
                "failures": [(f.subject_kind, f.subject_id, f.error) for f in plan.failures],
                "candidates": plan.candidates,
                "segments": plan.segments,
            },
            [r.__dict__ for r in records],
        )
    )
    close = getattr(engine.store, "close", None)
    if close is not None:
        close()


class _ReadAhead:
    """The store as the composer reads it, with the customers and receivables of the
    decisions read in a few queries instead of one each."""

    def __init__(self, store: Store, decisions: list[Decision]) -> None:
        self.store = store
        self.objects = {
            "customer": store.get_many("customer", sorted({d.customer_id for d in decisions})),
            "receivable": store.get_many(
                "receivable",
                sorted({d.subject_id for d in decisions if d.subject_kind == "receivable"}),
            ),
        }

    def get(self, kind: str, object_id: str) -> Any | None:
        found = self.objects.get(kind, {})
        return found[object_id] if object_id in found else self.store.get(kind, object_id)

    def find(
        self, kind: str, *, customer_id: str, states: Iterable[str] | None = None
    ) -> list[Any]:
        return self.store.find(kind, customer_id=customer_id, states=states)
