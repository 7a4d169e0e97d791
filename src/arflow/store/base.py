"""What a store is: the small surface every backend offers, as protocols.

:class:`Store` is a place the book lives; :class:`StoreTx` the unit of work the ledger
applies events through. Besides reads and writes, both declare the bulk capabilities the
engine and the ledger use (read-ahead, staged rows, checkpoints, parsing once): a backend
for which one means nothing implements it as a no-op, so callers never probe for them.
The kinds and records are in ``_records``, the shared buffered transaction in ``_buffered``;
both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import date
from typing import Any, Protocol

from pydantic import BaseModel

from ..domain import AuditRecord
from ..summary import ReceivableSummary
from ._buffered import _NOTHING, BufferedTx, _Layer
from ._records import (
    BUSINESS_DATE,
    CUSTOMER_DIM_COLUMNS,
    KIND_OF,
    KINDS,
    MOVEMENT_COLUMNS,
    MOVEMENT_KINDS,
    OUTBOX_STATUSES,
    SAME_AS_PREFIX,
    TEAM_TAG,
    UNAPPLIED,
    AuditRow,
    DecisionRecord,
    Kind,
    M,
    Movement,
    ObjectRow,
    OutboxRecord,
    RunRecord,
    Settle,
    StagedRows,
    claimable,
    claimed,
    customer_dim,
    expanded,
    expanded_all,
    holds,
    json_of,
    kind_of,
    minor_units,
    movements_of,
    new_claim,
    retried,
    same_as_body,
    settled,
)

__all__ = [
    "BUSINESS_DATE",
    "CUSTOMER_DIM_COLUMNS",
    "KINDS",
    "KIND_OF",
    "MOVEMENT_COLUMNS",
    "MOVEMENT_KINDS",
    "OUTBOX_STATUSES",
    "SAME_AS_PREFIX",
    "TEAM_TAG",
    "UNAPPLIED",
    "_NOTHING",
    "AuditRow",
    "BookReader",
    "BufferedTx",
    "DecisionRecord",
    "Kind",
    "M",
    "Movement",
    "ObjectRow",
    "OutboxRecord",
    "RunRecord",
    "Settle",
    "StagedRows",
    "Store",
    "StoreTx",
    "_Layer",
    "claimable",
    "claimed",
    "customer_dim",
    "dump_book",
    "expanded",
    "expanded_all",
    "holds",
    "json_of",
    "kind_of",
    "minor_units",
    "movements_of",
    "new_claim",
    "retried",
    "same_as_body",
    "settled",
]


class BookReader(Protocol):
    """What reading objects needs: a transaction (which sees its own writes) and a store
    (which sees what is committed) both do."""

    def get(self, kind: str, object_id: str) -> Any | None: ...
    def find(
        self, kind: str, *, customer_id: str, states: Iterable[str] | None = None
    ) -> list[Any]: ...


class StoreTx(Protocol):
    """The unit of work the ledger applies events through."""

    def get(self, kind: str, object_id: str) -> Any | None: ...
    def find(
        self, kind: str, *, customer_id: str, states: Iterable[str] | None = None
    ) -> list[Any]: ...
    def put(self, obj: BaseModel) -> None: ...
    def iter_by_due(self, customer_id: str, states: Iterable[str]) -> Iterator[Any]:
        """A customer's receivables in ``states``, oldest due date first (then issue date,
        then number), loaded one by one: automatic allocation stops when the cash runs out."""
        ...

    def has_event(self, event_id: str) -> bool: ...
    def add_event(self, event_id: str, event_type: str, body: str) -> None: ...
    def add_audit(self, record: AuditRecord) -> None: ...
    def begin_event(self) -> None: ...
    def commit_event(self) -> None: ...
    def abort_event(self) -> None: ...
    def flush(self) -> None: ...
    def known_decisions(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` the decision ledger already holds (committed or staged)."""
        ...

    def add_decision(self, record: DecisionRecord) -> None: ...
    def add_run(self, record: RunRecord) -> None: ...
    def add_movements(self, movements: Iterable[Movement]) -> None:
        """Stage movements of receivables' balances (``arflow.analytics``' journal), in the
        transaction that changes the receivables."""
        ...

    def add_outbox(self, record: OutboxRecord) -> None: ...

    # -- bulk work: speed-ups the ledger and the engine call on every store ------------------
    def prefetch(
        self,
        event_ids: list[str],
        ids: dict[str, list[str]],
        customers: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        """Read ahead, in a few queries, which of ``event_ids`` are logged, the objects
        named in ``ids`` (ids by kind) and what ``find`` will answer for ``customers`` (ids
        by kind). Only a speed-up: reads answer the same with or without it."""
        ...

    def forget_reads(self) -> None:
        """Drop what this transaction read from the backend (a run's next slice of
        customers reads none of it)."""
        ...

    def bulk(self) -> None:
        """This transaction writes a lot (``Ledger.apply_all``): tune the backend for it
        until the transaction ends (SQLite: a larger page cache). A no-op elsewhere."""
        ...

    def defer_checkpoint(self) -> None:
        """This transaction writes a lot (a day's run): leave its WAL checkpoint to the
        store's checkpoint thread, after the commit (SQLite files; a no-op elsewhere)."""
        ...

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
        """Stage a *new* object as its stored row, outside an event: ``data`` is exactly
        ``json_of`` of the model (the ledger's plain-invoice path, see ``BufferedTx``)."""
        ...

    def add_audit_row(self, row: AuditRow) -> None:
        """Stage an audit record as its stored row (see ``put_row``)."""
        ...

    def write_rows(self, rows: StagedRows) -> None:
        """Write ``rows`` staged by another transaction on the same database (``staged_rows``
        of ``SqlStore.staging``, a run's helper process), after what this one staged.
        Only stores whose ``shared_url`` is not None take them; others raise StoreError."""
        ...


class Store(Protocol):
    """A place the book lives. Backends: ``memory://``, SQLite, PostgreSQL."""

    url: str

    def transaction(self) -> AbstractContextManager[StoreTx]: ...
    def get(self, kind: str, object_id: str) -> Any | None: ...
    def find(
        self, kind: str, *, customer_id: str | None = None, states: Iterable[str] | None = None
    ) -> list[Any]:
        """Objects of ``kind`` by customer and/or state (both indexed)."""
        ...

    def known_decisions(self, keys: Iterable[str]) -> set[str]: ...
    def get_many(self, kind: str, ids: Iterable[str]) -> dict[str, Any]:
        """Objects by id (missing ids are left out), in as few queries as the backend can."""
        ...

    def find_for_customers(
        self, kind: str, customer_ids: Iterable[str], *, states: Iterable[str] | None = None
    ) -> dict[str, list[Any]]:
        """All objects of ``kind`` of each of ``customer_ids`` (only those in ``states``,
        if given: an indexed column), grouped by customer (customers without any left out)."""
        ...

    def receivable_summaries(
        self, customer_ids: Iterable[str]
    ) -> dict[str, list[ReceivableSummary]]:
        """``find_for_customers("receivable", ...)`` as summaries: what customer facts need,
        without building the models."""
        ...

    def all(self, kind: str) -> Iterator[Any]: ...
    def event_log(self) -> Iterator[tuple[str, str]]:
        """``(event_type, json_body)`` in the order the events were applied."""
        ...

    def event_count(self) -> int: ...
    def audit_trail(self, kind: str, object_id: str) -> list[AuditRecord]: ...
    def audit_trails(self, kind: str, object_ids: Iterable[str]) -> dict[str, list[AuditRecord]]:
        """``audit_trail`` of many objects in a few queries (ids without records left out)."""
        ...

    def audit_count(self) -> int: ...
    def audit_log(self) -> Iterator[tuple[int, AuditRecord]]:
        """Every audit record in the order written, with its sequence number (the numbers
        :meth:`audit_mark` hands out: increasing, not always consecutive)."""
        ...

    def audit_mark(self) -> int:
        """The position of the latest audit record (0 for an empty book)."""
        ...

    def customers_changed_since(self, mark: int, ignore: Iterable[str] = ()) -> set[str]:
        """The customers whose objects were changed after audit position ``mark`` by
        events of a type not in ``ignore``."""
        ...

    def objects_changed_since(self, mark: int, kinds: Iterable[str]) -> dict[str, set[str]]:
        """The ids of the objects of ``kinds`` changed after audit position ``mark``, by
        kind (kinds without a change left out)."""
        ...

    def calls_on_closed(
        self, task_ids: Iterable[str], receivable_ids: Iterable[str], live: Iterable[str]
    ) -> list[Any]:
        """The open and overdue calls, among ``task_ids`` or about one of
        ``receivable_ids``, whose receivable is stored in a state not in ``live``; found
        without parsing the other tasks (the task sweep's tasks and receivables changed
        since a mark: the day after a first run, tens of thousands of tasks)."""
        ...

    def find_due_by(self, kind: str, due_to: date, states: Iterable[str]) -> list[Any]:
        """Objects of ``kind`` in ``states`` whose due-date column is set and at most
        ``due_to``, through the (state, due date) index: for a task, the day the daily
        sweep next changes it by the calendar (``task_sweep_day``)."""
        ...

    def find_due(
        self,
        due_from: date,
        due_to: date,
        states: Iterable[str],
        *,
        customers: Callable[[str], bool] | None = None,
    ) -> list[Any]:
        """Receivables in ``states`` whose due date is in [due_from, due_to]: the sweep's
        index, so a day's run reads what can fall due, not the whole book. ``customers``,
        if given, says which customers' receivables to read (the others are not parsed)."""
        ...

    def count_due(self, due_from: date, due_to: date, states: Iterable[str]) -> int:
        """How many receivables ``find_due`` would return (without reading them)."""
        ...

    def decisions(
        self, *, as_of: date | None = None, status: str | None = None
    ) -> list[DecisionRecord]: ...
    def decision(self, key: str) -> DecisionRecord | None: ...
    def runs(self) -> list[RunRecord]: ...

    # the outbox (see arflow.outbox): claimed and settled by dispatchers
    def outbox_claim(
        self,
        worker: str,
        now: int,
        limit: int,
        lease: int,
        channels: Iterable[str] | None = None,
    ) -> list[OutboxRecord]: ...
    def outbox_renew(self, keys: Iterable[str], claim: str, now: int, lease: int) -> set[str]:
        """Extend to ``now + lease`` the claims on ``keys`` still held under the token
        ``claim``; return the keys held (a key missing was taken over or settled)."""
        ...

    def outbox_settle(self, key: str, change: Settle) -> bool: ...
    def outbox(
        self, *, status: str | None = None, limit: int | None = None
    ) -> list[OutboxRecord]: ...
    def outbox_item(self, key: str) -> OutboxRecord | None: ...
    def outbox_counts(self) -> dict[str, int]: ...
    def outbox_retry(self, keys: Iterable[str] | None, now: int) -> int: ...
    def close(self) -> None: ...

    # -- bulk work: speed-ups the engine calls on every store --------------------------------
    def parse_once(self) -> AbstractContextManager[None]:
        """While the block lasts, an object read again with the same stored JSON is not
        parsed again (a run reads the same receivables to plan and to record). Stores that
        keep objects rather than JSON give a block that does nothing."""
        ...

    def forget_parsed(self) -> None:
        """Within ``parse_once``: drop the objects kept so far (a no-op elsewhere)."""
        ...

    def movements(self) -> Iterator[Movement]:
        """The journal of receivables' balance movements, in the order written (the
        reference the figures' SQL is checked against)."""
        ...

    def shared_url(self) -> str | None:
        """A URL another process can open to read this very book (a run's helper
        processes), or None when there is none (memory, SQLite in memory, a store opened
        from an engine object)."""
        ...


def dump_book(store: Store) -> dict[str, dict[str, Any]]:
    """Every object of the book as plain JSON data, by kind and id: for comparing books."""
    return {
        name: {o.id: o.model_dump(mode="json") for o in sorted(store.all(name), key=lambda o: o.id)}
        for name in KINDS
    }
