"""The buffered unit of work every backend shares (:class:`BufferedTx`).

A backend implements five private hooks (``_load``, ``_find``, ``_has_events``, ``_write``
and the transaction around them); the staging layer here is shared, so the memory, SQLite
and PostgreSQL stores behave the same way by construction: reads see the transaction's own
writes, writes reach the backend in bulk, and an event's changes can be dropped as a whole
when the event is refused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel

from ..domain import AuditRecord
from ..errors import StoreError
from ._records import (
    KINDS,
    AuditRow,
    DecisionRecord,
    Movement,
    ObjectRow,
    OutboxRecord,
    RunRecord,
    StagedRows,
    kind_of,
)


@dataclass
class _Layer:
    objects: dict[tuple[str, str], BaseModel] = field(default_factory=dict)
    by_customer: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    events: list[tuple[str, str, str]] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)
    audits: list[AuditRecord | AuditRow] = field(default_factory=list)
    decisions: dict[str, DecisionRecord] = field(default_factory=dict)
    runs: list[RunRecord] = field(default_factory=list)
    outbox: dict[str, OutboxRecord] = field(default_factory=dict)
    #: Keys of ``objects`` that the backend is known not to hold: written with a plain
    #: INSERT instead of an upsert.
    new: set[tuple[str, str]] = field(default_factory=set)
    #: New objects staged as their stored row, not as models (``BufferedTx.put_row``).
    rows: dict[tuple[str, str], ObjectRow] = field(default_factory=dict)
    #: Movements of receivables' balances (``add_movements``), in the order made.
    movements: list[Movement] = field(default_factory=list)

    def put(self, obj: BaseModel) -> None:
        k = kind_of(obj)
        oid: str = obj.id  # type: ignore[attr-defined]
        self.objects[(k.name, oid)] = obj
        cust = k.customer_id(obj)
        if cust is not None:
            self.by_customer[(k.name, cust)].add(oid)

    def merge(self, other: _Layer) -> None:
        self.objects.update(other.objects)
        self.rows.update(other.rows)
        self.new |= other.new
        for key, ids in other.by_customer.items():
            self.by_customer[key] |= ids
        self.events.extend(other.events)
        self.event_ids |= other.event_ids
        self.audits.extend(other.audits)
        self.decisions.update(other.decisions)
        self.runs.extend(other.runs)
        self.movements.extend(other.movements)
        for k, rec in other.outbox.items():
            self.outbox.setdefault(k, rec)


_NOTHING: Any = object()  # "no entry", where None means "the backend has no such object"


class BufferedTx:
    """Shared unit of work: a staging layer over the backend.

    Writes go to the staged layer; an event's writes are undone as a whole (an undo log
    kept from ``begin_event`` to ``commit_event``) when the event is refused. Reads look at
    the staged layer, then at what this transaction already read from the backend (kept
    until the transaction writes that key; at most ``_READ_CACHE`` objects), then at the
    backend. ``prefetch`` reads ahead, in a few queries, what the next events will ask.
    """

    #: Objects read from the backend kept for later reads (the cache starts over past it).
    _READ_CACHE = 100_000
    #: Whether ``_write`` takes objects staged as rows (``put_row``) and audit records
    #: staged as rows as they are; if not, they are turned into models before it is called.
    _TAKES_ROWS = False

    def __init__(self) -> None:
        self._staged = _Layer()
        self._in_event = False
        self._undo: list[tuple[Any, ...]] = []
        self._marks = (0, 0, 0, 0, 0)
        # The backend's version of keys read in this transaction (None: it has none). An
        # entry goes as soon as the transaction writes the key (the backend's version is
        # then about to change), so it always tells what the backend holds.
        self._read: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        # Event ids the backend is known to hold / not to hold (from the last prefetch).
        self._logged: set[str] = set()
        self._unlogged: set[str] = set()
        # The backend's objects of (kind, customer), every state, read ahead by ``prefetch``
        # for ``find``; dropped when the transaction writes to the backend.
        self._found: dict[tuple[str, str], list[Any]] = {}

    def forget_reads(self) -> None:
        """Drop what this transaction read from the backend: it was written past it, or
        what comes next reads none of it (a run's next slice of customers)."""
        self._read = {kind: {} for kind in KINDS}
        self._logged = set()
        self._unlogged = set()
        self._found = {}

    def bulk(self) -> None:
        """This transaction writes a lot: backends that can tune themselves for it override
        this (``StoreTx.bulk``); here, nothing to do."""

    def defer_checkpoint(self) -> None:
        """Leave the commit's checkpoint to a thread: backends with a WAL override this
        (``StoreTx.defer_checkpoint``); here, nothing to do."""

    def write_rows(self, rows: StagedRows) -> None:
        """Rows staged by another process's transaction: only SQL stores take them."""
        raise StoreError(
            f"{type(self).__name__} takes no staged rows: only a store another process can "
            "open (shared_url) has helpers that stage them"
        )

    # -- backend hooks -------------------------------------------------------------------
    def _load(self, kind: str, object_id: str) -> Any | None:
        raise NotImplementedError

    def _load_many(self, kind: str, object_ids: list[str]) -> dict[str, Any]:
        """The backend's objects of ``kind`` by id (missing ids left out); backends that
        can should do it in a few queries."""
        found = {}
        for oid in object_ids:
            obj = self._load(kind, oid)
            if obj is not None:
                found[oid] = obj
        return found

    def _find(self, kind: str, customer_id: str, states: frozenset[str] | None) -> list[Any]:
        """The backend's objects of ``kind`` for a customer, in ``states`` if given (an
        indexed query: a payment must not parse every paid invoice of its customer)."""
        raise NotImplementedError

    def _find_many(self, kind: str, customer_ids: list[str]) -> dict[str, list[Any]]:
        """The backend's objects of ``kind`` of each customer, every state (customers
        without any left out); backends that can should do it in a few queries."""
        found = {}
        for cid in customer_ids:
            objects = self._find(kind, cid, None)
            if objects:
                found[cid] = objects
        return found

    def _has_event(self, event_id: str) -> bool:
        raise NotImplementedError

    def _has_events(self, event_ids: list[str]) -> set[str]:
        """Which of ``event_ids`` the backend's log holds."""
        return {e for e in event_ids if self._has_event(e)}

    def _due_keys(self, customer_id: str, states: frozenset[str]) -> list[tuple[str, date]]:
        """(id, due date) of the backend's receivables of a customer in ``states``."""
        raise NotImplementedError

    def _write(self, layer: _Layer) -> None:
        """Write a staged layer to the backend, inside the backend's open transaction."""
        raise NotImplementedError

    def _known_decisions(self, keys: list[str]) -> set[str]:
        raise NotImplementedError

    # -- unit of work ----------------------------------------------------------------------
    def get(self, kind: str, object_id: str) -> Any | None:
        obj = self._staged.objects.get((kind, object_id))
        if obj is not None:
            return obj
        if self._staged.rows and (kind, object_id) in self._staged.rows:
            return self._materialise((kind, object_id))
        read = self._read[kind]
        obj = read.get(object_id, _NOTHING)
        if obj is not _NOTHING:
            return obj
        obj = self._load(kind, object_id)
        if len(read) >= self._READ_CACHE:
            read.clear()
        read[object_id] = obj
        return obj

    def prefetch(
        self,
        event_ids: list[str],
        ids: dict[str, list[str]],
        customers: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        """Read ahead what the next events will ask, in a few queries: which of
        ``event_ids`` the backend's log holds, the objects named in ``ids`` (ids by
        kind), and what ``find`` will answer for the customers named in ``customers`` (ids
        by kind). Only a speed-up: reads give the same answers with or without it."""
        for kind, cids in (customers or {}).items():
            todo = sorted({c for c in cids if (kind, c) not in self._found})
            if todo:
                got = self._find_many(kind, todo)
                for cid in todo:
                    self._found[(kind, cid)] = got.get(cid, [])
        staged = self._staged.event_ids
        todo = [e for e in event_ids if e not in staged]
        logged = self._has_events(todo) if todo else set()
        self._logged = logged
        self._unlogged = set(todo)
        self._unlogged -= logged
        objects = self._staged.objects
        for kind, oids in ids.items():
            read = self._read[kind]
            if len(read) + len(oids) > self._READ_CACHE:
                read.clear()
            # not staged: a staged key's backend version is not kept (see ``put``)
            wanted = [o for o in set(oids) if o not in read and (kind, o) not in objects]
            if wanted:
                found = self._load_many(kind, wanted)
                for oid in wanted:
                    read[oid] = found.get(oid)

    def find(
        self, kind: str, *, customer_id: str, states: Iterable[str] | None = None
    ) -> list[Any]:
        wanted = None if states is None else frozenset(str(s) for s in states)
        ahead = self._found.get((kind, customer_id))
        found = {
            o.id: o for o in (ahead if ahead is not None else self._find(kind, customer_id, wanted))
        }
        st = self._staged
        for oid in st.by_customer.get((kind, customer_id), ()):
            found[oid] = self._staged_object(kind, oid)  # staged versions win, any state
        if wanted is None:
            return list(found.values())
        state_of = KINDS[kind].state
        return [o for o in found.values() if state_of(o) in wanted]

    def iter_by_due(self, customer_id: str, states: Iterable[str]) -> Iterator[Any]:
        wanted = frozenset(str(s) for s in states)
        due = dict(self._due_keys(customer_id, wanted))
        st = self._staged
        for oid in st.by_customer.get(("receivable", customer_id), ()):
            r: Any = self._staged_object("receivable", oid)
            if str(r.state) in wanted:
                due[oid] = r.due_date
            else:
                due.pop(oid, None)
        order = sorted(due.items(), key=lambda kv: (kv[1], kv[0]))
        i = 0
        while i < len(order):
            j = i
            while j < len(order) and order[j][1] == order[i][1]:
                j += 1
            same_day = [self.get("receivable", oid) for oid, _d in order[i:j]]
            for r in sorted(
                (r for r in same_day if r is not None), key=lambda r: (r.issue_date, r.id)
            ):
                if str(r.state) in wanted:
                    yield r
            i = j

    def _target(self) -> _Layer:
        return self._staged

    def _staged_object(self, kind: str, oid: str) -> Any:
        found = self._staged.objects.get((kind, oid))
        return found if found is not None else self._materialise((kind, oid))

    def _materialise(self, key: tuple[str, str]) -> Any:
        """Turn an object staged as a row into its model (it stays new)."""
        st = self._staged
        data = st.rows.pop(key)[3]
        obj = KINDS[key[0]].model.model_validate_json(data)
        st.objects[key] = obj
        return obj

    def put_row(
        self,
        kind: str,
        oid: str,
        customer_id: str | None,
        state: str,
        due: date | None,
        data: str,
        summary: str | None = None,
    ) -> None:
        """Stage a *new* object as its stored row: ``data`` is exactly ``json_of`` of the
        model, which is only built if something reads the object before it is written, and
        ``summary`` of a receivable its ``summary_text``. For bulk paths, outside an event
        (nothing to undo): the caller has checked, with ``get``, that neither this
        transaction nor the backend holds the key."""
        if self._in_event:
            raise RuntimeError("put_row is for writes outside an event")
        key = (kind, oid)
        st = self._staged
        self._read[kind].pop(oid, None)
        st.rows[key] = (customer_id, state, due, data, summary)
        st.new.add(key)
        if customer_id is not None:
            st.by_customer[(kind, customer_id)].add(oid)

    def add_audit_row(self, row: AuditRow) -> None:
        """Stage an audit record as its stored row (see ``put_row``)."""
        self._staged.audits.append(row)

    def put(self, obj: BaseModel) -> None:
        k = kind_of(obj)
        oid: str = obj.id  # type: ignore[attr-defined]
        key = (k.name, oid)
        st = self._staged
        if key in st.rows:
            self._materialise(key)
        before = st.objects.get(key)
        # A key staged before keeps what it was (new or not). Otherwise the backend's version,
        # if it was read, is about to change: forget it; if it was "none", the object is new.
        fresh = before is None and self._read[k.name].pop(oid, _NOTHING) is None
        st.objects[key] = obj
        if fresh:
            st.new.add(key)
        cust = k.customer_id(obj)
        added = None
        if cust is not None:
            ids = st.by_customer[(k.name, cust)]
            if oid not in ids:
                ids.add(oid)
                added = (k.name, cust)
        if self._in_event:
            self._undo.append((key, before, fresh, added))

    def has_event(self, event_id: str) -> bool:
        if event_id in self._staged.event_ids:
            return True
        if event_id in self._unlogged:
            return False
        if event_id in self._logged:
            return True
        return self._has_event(event_id)

    def add_event(self, event_id: str, event_type: str, body: str) -> None:
        target = self._target()
        target.events.append((event_id, event_type, body))
        if event_id not in target.event_ids:
            target.event_ids.add(event_id)
            if self._in_event:
                self._undo.append(("event", event_id))
        self._unlogged.discard(event_id)  # it will be, once flushed

    def add_audit(self, record: AuditRecord) -> None:
        self._target().audits.append(record)

    def known_decisions(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        staged = {k for k in keys if k in self._staged.decisions}
        rest = [k for k in keys if k not in staged]
        return staged | (self._known_decisions(rest) if rest else set())

    def add_decision(self, record: DecisionRecord) -> None:
        decisions = self._target().decisions
        if self._in_event:
            self._undo.append(("decision", record.key, decisions.get(record.key)))
        decisions[record.key] = record

    def add_run(self, record: RunRecord) -> None:
        self._target().runs.append(record)

    def add_movements(self, movements: Iterable[Movement]) -> None:
        """Stage movements of receivables' balances (the journal ``arflow.analytics``
        sums), written with the objects whose change they record."""
        self._target().movements.extend(movements)

    def add_outbox(self, record: OutboxRecord) -> None:
        """Queue an action for delivery, in this transaction; a key already queued (here
        or in the store) is left as it is."""
        self._target().outbox.setdefault(record.key, record)

    def begin_event(self) -> None:
        st = self._staged
        self._in_event = True
        self._undo = []
        self._marks = (
            len(st.events),
            len(st.audits),
            len(st.runs),
            len(st.outbox),
            len(st.movements),
        )

    def commit_event(self) -> None:
        self._in_event = False
        self._undo = []

    def abort_event(self) -> None:
        """Undo what the event being applied wrote (nothing of it reaches the backend)."""
        if not self._in_event:
            return
        st = self._staged
        for entry in reversed(self._undo):
            if entry[0] == "event":
                st.event_ids.discard(entry[1])
            elif entry[0] == "decision":
                if entry[2] is None:
                    del st.decisions[entry[1]]
                else:
                    st.decisions[entry[1]] = entry[2]
            else:
                key, before, fresh, added = entry
                if before is None:
                    del st.objects[key]
                else:
                    st.objects[key] = before
                if fresh:
                    st.new.discard(key)
                if added is not None:
                    st.by_customer[added].discard(key[1])
        events, audits, runs, outbox, movements = self._marks
        del st.movements[movements:]
        del st.events[events:]
        del st.audits[audits:]
        del st.runs[runs:]
        while len(st.outbox) > outbox:  # add_outbox only appends keys
            st.outbox.popitem()
        self.commit_event()

    def flush(self) -> None:
        """Hand what is staged to the backend (still inside the transaction)."""
        self.commit_event()
        st = self._staged
        if not self._TAKES_ROWS:
            for key in list(st.rows):
                self._materialise(key)
            st.audits = [
                AuditRecord.model_validate_json(a[3]) if isinstance(a, tuple) else a
                for a in st.audits
            ]
        if (
            st.objects or st.rows or st.events or st.audits or st.decisions or st.runs
            or st.outbox or st.movements
        ):  # fmt: skip
            self._write(self._staged)
            self._staged = _Layer()
            self._found = {}
