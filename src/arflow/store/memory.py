"""The in-memory store: for tests, simulations and small embedded uses.

Writes become visible only when the transaction commits; one writer at a time. It may be
shared by the threads of one process: a commit is published under a lock that every read
takes too, so a reader sees a transaction's writes all or none, and never a dictionary
changing under its loop.
"""

from __future__ import annotations

import functools
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from typing import Any, ParamSpec, TypeVar

from ..domain import AuditRecord
from ..summary import ReceivableSummary, summary_of
from .base import (
    KINDS,
    OUTBOX_STATUSES,
    BufferedTx,
    DecisionRecord,
    Movement,
    OutboxRecord,
    RunRecord,
    Settle,
    _Layer,
    claimable,
    claimed,
    expanded,
    expanded_all,
    holds,
    new_claim,
    retried,
    settled,
)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _viewed(read: Callable[_P, _R]) -> Callable[_P, _R]:
    """A read of the committed book, done under the store's view lock (see ``_publish``)."""

    @functools.wraps(read)
    def locked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        store = args[0]
        assert isinstance(store, MemoryStore)
        with store._view:
            return read(*args, **kwargs)

    return locked


class _MemoryTx(BufferedTx):
    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self._store = store
        self._pending = _Layer()

    def _load(self, kind: str, object_id: str) -> Any | None:
        obj = self._pending.objects.get((kind, object_id))
        return obj if obj is not None else self._store._objects[kind].get(object_id)

    def _find(self, kind: str, customer_id: str, states: frozenset[str] | None) -> list[Any]:
        found = {o.id: o for o in self._store._find(kind, customer_id)}
        for oid in self._pending.by_customer.get((kind, customer_id), ()):
            found[oid] = self._pending.objects[(kind, oid)]
        return list(found.values())

    def _has_event(self, event_id: str) -> bool:
        return event_id in self._pending.event_ids or event_id in self._store._event_ids

    def _due_keys(self, customer_id: str, states: frozenset[str]) -> list[tuple[str, date]]:
        return [
            (r.id, r.due_date)
            for r in self._find("receivable", customer_id, states)
            if str(r.state) in states
        ]

    def _write(self, layer: _Layer) -> None:
        self._pending.merge(layer)

    def _known_decisions(self, keys: list[str]) -> set[str]:
        return {k for k in keys if k in self._pending.decisions or k in self._store._decisions}


class MemoryStore:
    """A book held in dictionaries."""

    def __init__(self) -> None:
        self.url = "memory://"
        self._objects: dict[str, dict[str, Any]] = {k: {} for k in KINDS}
        self._by_customer: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._events: list[tuple[str, str, str]] = []
        self._event_ids: set[str] = set()
        self._audit: list[AuditRecord] = []
        self._audit_by_subject: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._decisions: dict[str, DecisionRecord] = {}
        self._runs: list[RunRecord] = []
        self._outbox: dict[str, OutboxRecord] = {}
        self._movements: list[Movement] = []
        self._lock = threading.RLock()  # one writer at a time
        #: held while a commit is published and by every read of the committed book: a
        #: reader in another thread never sees half a transaction, nor a set or dict
        #: changing size under its loop (a writer's own reads, inside its transaction,
        #: need no more than ``_lock``: no one else publishes then)
        self._view = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[_MemoryTx]:
        with self._lock:
            tx = _MemoryTx(self)
            yield tx
            tx.flush()
            with self._view:
                self._publish(tx._pending)

    @contextmanager
    def parse_once(self) -> Iterator[None]:
        """Objects are kept as models here, never parsed: nothing to do."""
        yield

    def forget_parsed(self) -> None:
        """Nothing parsed, nothing to drop (see ``parse_once``)."""

    @_viewed
    def movements(self) -> Iterator[Movement]:
        return iter(list(self._movements))

    def shared_url(self) -> str | None:
        """None: no other process can open a book held in this one's memory."""
        return None

    def _publish(self, layer: _Layer) -> None:
        for (kind, oid), obj in layer.objects.items():
            self._objects[kind][oid] = obj
            cust = KINDS[kind].customer_id(obj)
            if cust is not None:
                self._by_customer[(kind, cust)].add(oid)
        self._events.extend(layer.events)
        self._event_ids |= layer.event_ids
        for rec in layer.audits:
            # rows staged by put_row/add_audit_row are models again by now (flush: this
            # backend does not take rows)
            assert isinstance(rec, AuditRecord)
            self._audit_by_subject[(rec.subject_kind, rec.subject_id)].append(len(self._audit))
            self._audit.append(rec)
        self._decisions.update(layer.decisions)
        self._runs.extend(layer.runs)
        self._movements.extend(layer.movements)
        for k, item in layer.outbox.items():
            self._outbox.setdefault(k, item)

    def _find(self, kind: str, customer_id: str) -> list[Any]:
        objs = self._objects[kind]
        return [objs[i] for i in self._by_customer.get((kind, customer_id), ())]

    @_viewed
    def get(self, kind: str, object_id: str) -> Any | None:
        return self._objects[kind].get(object_id)

    @_viewed
    def find(
        self, kind: str, *, customer_id: str | None = None, states: Iterable[str] | None = None
    ) -> list[Any]:
        if customer_id is None:
            found = list(self._objects[kind].values())
        else:
            found = self._find(kind, customer_id)
        if states is None:
            return found
        wanted = {str(s) for s in states}
        return [o for o in found if KINDS[kind].state(o) in wanted]

    @_viewed
    def get_many(self, kind: str, ids: Iterable[str]) -> dict[str, Any]:
        objs = self._objects[kind]
        return {i: objs[i] for i in ids if i in objs}

    @_viewed
    def find_for_customers(
        self, kind: str, customer_ids: Iterable[str], *, states: Iterable[str] | None = None
    ) -> dict[str, list[Any]]:
        if states is None:
            return {c: found for c in customer_ids if (found := self._find(kind, c))}
        wanted = {str(s) for s in states}
        state_of = KINDS[kind].state
        return {
            c: found
            for c in customer_ids
            if (found := [o for o in self._find(kind, c) if state_of(o) in wanted])
        }

    @_viewed
    def receivable_summaries(
        self, customer_ids: Iterable[str]
    ) -> dict[str, list[ReceivableSummary]]:
        return {
            c: [summary_of(r) for r in found]
            for c, found in self.find_for_customers("receivable", customer_ids).items()
        }

    @_viewed
    def all(self, kind: str) -> Iterator[Any]:
        return iter(list(self._objects[kind].values()))

    @_viewed
    def event_log(self) -> Iterator[tuple[str, str]]:
        return iter([(t, body) for _id, t, body in self._events])

    @_viewed
    def event_count(self) -> int:
        return len(self._events)

    @_viewed
    def audit_trail(self, kind: str, object_id: str) -> list[AuditRecord]:
        return [self._audit[i] for i in self._audit_by_subject.get((kind, object_id), ())]

    @_viewed
    def audit_trails(self, kind: str, object_ids: Iterable[str]) -> dict[str, list[AuditRecord]]:
        return {oid: found for oid in object_ids if (found := self.audit_trail(kind, oid))}

    @_viewed
    def audit_count(self) -> int:
        return len(self._audit)

    @_viewed
    def audit_log(self) -> Iterator[tuple[int, AuditRecord]]:
        return iter(list(enumerate(self._audit, start=1)))

    @_viewed
    def find_due(
        self,
        due_from: date,
        due_to: date,
        states: Iterable[str],
        *,
        customers: Callable[[str], bool] | None = None,
    ) -> list[Any]:
        wanted = {str(s) for s in states}
        return [
            r
            for r in self._objects["receivable"].values()
            if due_from <= r.due_date <= due_to
            and str(r.state) in wanted
            and (customers is None or customers(r.customer_id))
        ]

    @_viewed
    def count_due(self, due_from: date, due_to: date, states: Iterable[str]) -> int:
        return len(self.find_due(due_from, due_to, states))

    @_viewed
    def decisions(
        self, *, as_of: date | None = None, status: str | None = None
    ) -> list[DecisionRecord]:
        found = [
            d
            for d in self._decisions.values()
            if (as_of is None or d.as_of == as_of) and (status is None or d.status == status)
        ]
        return expanded_all(found, self._decisions.get)

    @_viewed
    def decision(self, key: str) -> DecisionRecord | None:
        found = self._decisions.get(key)
        return None if found is None else expanded(found, self._decisions.get)

    @_viewed
    def known_decisions(self, keys: Iterable[str]) -> set[str]:
        return {k for k in keys if k in self._decisions}

    @_viewed
    def runs(self) -> list[RunRecord]:
        return list(self._runs)

    # -- change tracking ---------------------------------------------------------------------
    @_viewed
    def audit_mark(self) -> int:
        return len(self._audit)

    def customers_changed_since(self, mark: int, ignore: Iterable[str] = ()) -> set[str]:
        out: set[str] = set()
        skip = frozenset(ignore)
        with self._lock:
            for rec in self._audit[mark:]:
                if rec.event_type in skip:
                    continue
                if rec.subject_kind == "customer":
                    out.add(rec.subject_id)
                    continue
                obj = self._objects.get(rec.subject_kind, {}).get(rec.subject_id)
                cid = None if obj is None else KINDS[rec.subject_kind].customer_id(obj)
                if cid is not None:
                    out.add(cid)
        return out

    @_viewed
    def objects_changed_since(self, mark: int, kinds: Iterable[str]) -> dict[str, set[str]]:
        wanted = frozenset(kinds)
        out: dict[str, set[str]] = {}
        with self._lock:
            for rec in self._audit[mark:]:
                if rec.subject_kind in wanted:
                    out.setdefault(rec.subject_kind, set()).add(rec.subject_id)
        return out

    @_viewed
    def calls_on_closed(
        self, task_ids: Iterable[str], receivable_ids: Iterable[str], live: Iterable[str]
    ) -> list[Any]:
        wanted = {str(s) for s in live}
        tids, rids = set(task_ids), set(receivable_ids)
        receivables = self._objects["receivable"]
        found = []
        for t in self._objects["task"].values():
            if str(t.status) not in ("open", "overdue"):
                continue
            if t.kind != "call" or t.subject_kind != "receivable":
                continue
            if t.id not in tids and t.subject_id not in rids:
                continue
            r = receivables.get(t.subject_id)
            if r is not None and str(r.state) not in wanted:
                found.append(t)
        return found

    @_viewed
    def find_due_by(self, kind: str, due_to: date, states: Iterable[str]) -> list[Any]:
        k = KINDS[kind]
        wanted = {str(s) for s in states}
        found = []
        for o in self._objects[kind].values():
            if k.state(o) in wanted:
                day = k.due_date(o)
                if day is not None and day <= due_to:
                    found.append(o)
        return found

    # -- outbox ------------------------------------------------------------------------------
    def outbox_claim(
        self,
        worker: str,
        now: int,
        limit: int,
        lease: int,
        channels: Iterable[str] | None = None,
    ) -> list[OutboxRecord]:
        wanted = None if channels is None else set(channels)
        with self._lock:
            ready = sorted(
                (
                    r
                    for r in self._outbox.values()
                    if (wanted is None or r.channel in wanted) and claimable(r, now)
                ),
                key=lambda r: (r.next_at, r.key),
            )[:limit]
            out = []
            token = new_claim()
            for r in ready:
                new = claimed(r, worker, now, lease, token)
                self._outbox[r.key] = new
                out.append(new)
            return out

    def outbox_renew(self, keys: Iterable[str], claim: str, now: int, lease: int) -> set[str]:
        with self._lock:
            held = set()
            for k in keys:
                r = self._outbox.get(k)
                if r is not None and holds(r, claim):
                    self._outbox[k] = replace(r, lease_until=now + lease)
                    held.add(k)
            return held

    def outbox_settle(self, key: str, change: Settle) -> bool:
        with self._lock:
            r = self._outbox.get(key)
            if r is None or not holds(r, change.claim):
                return False
            self._outbox[key] = settled(r, change)
            if change.follow_up is not None:
                self._outbox.setdefault(change.follow_up.key, change.follow_up)
            return True

    def outbox(self, *, status: str | None = None, limit: int | None = None) -> list[OutboxRecord]:
        with self._lock:
            rows = sorted(
                (r for r in self._outbox.values() if status is None or r.status == status),
                key=lambda r: (r.created_at, r.key),
            )
        return rows if limit is None else rows[:limit]

    @_viewed
    def outbox_item(self, key: str) -> OutboxRecord | None:
        return self._outbox.get(key)

    def outbox_counts(self) -> dict[str, int]:
        with self._lock:
            out = dict.fromkeys(OUTBOX_STATUSES, 0)
            for r in self._outbox.values():
                out[r.status] += 1
            return out

    def outbox_retry(self, keys: Iterable[str] | None, now: int) -> int:
        with self._lock:
            chosen = (
                [k for k, r in self._outbox.items() if r.status == "dead"]
                if keys is None
                else [k for k in keys if k in self._outbox and self._outbox[k].status == "dead"]
            )
            for k in chosen:
                self._outbox[k] = retried(self._outbox[k], now)
            return len(chosen)

    def close(self) -> None:
        pass
