"""A whole book copied into another store: every object, the event log, the audit trail,
the movement journal, the decision ledger with its run records, and the outbox.

``arflow simulate`` runs days on such a copy, so that what the real book already decided
is not decided again (the decision keys are there) and nothing reaches the real book. The
copy is written as stored, not replayed: a replay would rebuild the objects but not the
refused attempts in the audit trail, and a run's record names its place in that trail.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import replace

from .base import KINDS, RunRecord, Store
from .memory import MemoryStore


def copy_book(source: Store, target: Store | None = None) -> Store:
    """Copy ``source`` into ``target`` (a new :class:`MemoryStore` by default), which
    must be empty, in one transaction; return ``target``.

    Audit marks (where a run's record says it stood in the audit trail) are translated to
    the copy's own positions, so the next run on the copy judges the same customers the
    next run on the source would."""
    into: Store = MemoryStore() if target is None else target
    seqs: list[int] = []
    with into.transaction() as tx:
        for name in KINDS:
            for obj in source.all(name):
                tx.put(obj)
        for event_type, body in source.event_log():
            tx.add_event(str(json.loads(body)["event_id"]), event_type, body)
        for seq, record in source.audit_log():
            seqs.append(seq)
            tx.add_audit(record)
        tx.add_movements(source.movements())
        for decision in source.decisions():
            tx.add_decision(decision)
        for run in source.runs():
            tx.add_run(_moved_mark(run, seqs))
        for item in source.outbox():
            tx.add_outbox(item)
    return into


def _moved_mark(run: RunRecord, seqs: list[int]) -> RunRecord:
    """``run`` with its audit mark (a sequence number of the source's audit trail, which
    may have gaps) as the copy's mark for the same place: how many records come up to it
    (the mark of an empty store that then took them is their count)."""
    body = json.loads(run.body)
    mark = body.get("audit_mark")
    if not isinstance(mark, int):
        return run
    body["audit_mark"] = bisect_right(seqs, mark)
    return replace(run, body=json.dumps(body, sort_keys=True))
