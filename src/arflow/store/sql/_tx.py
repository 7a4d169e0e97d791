"""The SQL store's transaction: the shared buffered unit of work (``BufferedTx``) over one
connection, whose staged writes reach the database as plain rows through the driver."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ...errors import StoreError
from ..base import (
    CUSTOMER_DIM_COLUMNS,
    KINDS,
    BufferedTx,
    StagedRows,
    _Layer,
    customer_dim,
    json_of,
)
from ._driver import (
    _FIND,
    _FIND_IN,
    _HAS_EVENT,
    _TABLE_COLUMNS,
    _by_customer,
    _by_id,
    _columns,
    _day_param,
    _driver_cursor,
    _driver_write,
    _insert_sql,
    _Models,
    _object_values,
    _select_in,
)
from ._errors import _Edge, translated
from ._schema import DECISIONS, RUNS
from ._sqlite import _AUTOCHECKPOINT_PAGES, BULK_CACHE_KIB, _Checkpoints


class _SqlTx(BufferedTx):
    _TAKES_ROWS = True

    def __init__(
        self,
        conn: Connection,
        models: _Models,
        checkpoints: _Checkpoints | None = None,
        *,
        staging: bool = False,
        edge: _Edge | None = None,
    ) -> None:
        super().__init__()
        self._edge = edge if edge is not None else _Edge(conn.engine.url)
        #: ``SqlStore.staging``: what it stages leaves by ``staged_rows`` only
        self._staging = staging
        self._conn = conn
        self._models = models
        self._cache_size: int | None = None  # to restore after a bulk transaction
        self._checkpoints = checkpoints  # an SQLite file's checkpoint thread
        self._deferred = False

    @property
    def connection(self) -> Connection:
        """The transaction's connection, for statements of its own (a distributed run's
        shard row, ``arflow.engine.distributed``)."""
        return self._conn

    @translated("preparing a bulk transaction")
    def bulk(self) -> None:
        """This transaction writes a lot (``Ledger.apply_all``): on SQLite, give it a larger
        page cache, until the transaction ends."""
        if self._conn.dialect.name != "sqlite" or self._cache_size is not None:
            return
        before = int(self._conn.exec_driver_sql("PRAGMA cache_size").scalar() or 0)
        # negative: KiB; positive: pages (4 KiB by default)
        self.defer_checkpoint()
        if (-before if before < 0 else before * 4) < BULK_CACHE_KIB:
            self._cache_size = before
            self._conn.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")

    @translated("deferring a checkpoint")
    def defer_checkpoint(self) -> None:
        """This transaction writes a lot (a day's run, an import): on an SQLite file, its
        commit leaves the WAL's checkpoint (copying the pages it wrote into the database
        file, and the fsync) to the store's checkpoint thread, which starts on it as soon
        as the commit returns, instead of doing it inside the commit. What is committed is
        in the WAL either way; readers read it from there until the checkpoint is done."""
        if self._checkpoints is not None and not self._deferred:
            self._driver_pragma("wal_autocheckpoint = 0")
            self._deferred = True

    @translated("writing the transaction's changes")
    def flush(self) -> None:
        super().flush()

    @translated("reading ahead")
    def prefetch(
        self,
        event_ids: list[str],
        ids: dict[str, list[str]],
        customers: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        super().prefetch(event_ids, ids, customers)

    def _driver_pragma(self, pragma: str) -> None:
        """A pragma on the driver's connection: through SQLAlchemy it would begin a
        transaction."""
        driver = self._conn.connection.driver_connection
        if driver is not None:
            driver.execute(f"PRAGMA {pragma}")

    def _end(self) -> None:
        """Back to the connection's own cache size and checkpoints, once the transaction
        is over; a deferred checkpoint goes to the checkpoint thread."""
        if self._cache_size is not None:
            self._driver_pragma(f"cache_size = {self._cache_size}")
            self._cache_size = None
        if self._deferred and self._checkpoints is not None:
            self._driver_pragma(f"wal_autocheckpoint = {_AUTOCHECKPOINT_PAGES}")
            self._deferred = False
            self._checkpoints.request()

    def _load(self, kind: str, object_id: str) -> Any | None:
        # through the driver: an event reads a few objects one by one, and binding through
        # SQLAlchemy cost more than the query (a bank feed's payments)
        rows = _select_in(self._conn, f"ar_{kind}", "data", "id", [object_id])
        return self._models.parse(KINDS[kind].model, rows[0][0]) if rows else None

    def _find(self, kind: str, customer_id: str, states: frozenset[str] | None) -> list[Any]:
        model = KINDS[kind].model
        if states is None:
            rows = self._conn.execute(_FIND[kind], {"cid": customer_id})
        else:
            rows = self._conn.execute(_FIND_IN[kind], {"cid": customer_id, "st": sorted(states)})
        return [self._models.parse(model, d) for (d,) in rows]

    def _due_keys(self, customer_id: str, states: frozenset[str]) -> list[tuple[str, date]]:
        rows = _select_in(
            self._conn, "ar_receivable", "id, due_date", "customer_id", [customer_id],
            tuple(sorted(states)),
        )  # fmt: skip
        # sqlite3 hands a DATE column back as its text
        return [(i, date.fromisoformat(d) if isinstance(d, str) else d) for i, d in rows]

    def _has_event(self, event_id: str) -> bool:
        return self._conn.execute(_HAS_EVENT, {"eid": event_id}).first() is not None

    def _load_many(self, kind: str, object_ids: list[str]) -> dict[str, Any]:
        return _by_id(self._conn, kind, object_ids, self._models)

    def _find_many(self, kind: str, customer_ids: list[str]) -> dict[str, list[Any]]:
        return _by_customer(self._conn, kind, customer_ids, self._models)

    def _has_events(self, event_ids: list[str]) -> set[str]:
        found = _select_in(self._conn, "ar_event", "event_id", "event_id", event_ids)
        return {e for (e,) in found}

    def _known_decisions(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            q = sa.select(DECISIONS.c.key).where(DECISIONS.c.key.in_(keys[i : i + 500]))
            found.update(self._conn.execute(q).scalars())
        return found

    def _write(self, layer: _Layer) -> None:
        if self._staging:  # written to a transaction that is rolled back: lost unseen
            raise StoreError("a staging transaction is never written: hand its staged_rows over")
        self._write_rows(self._rows(layer))

    def _rows(self, layer: _Layer) -> StagedRows:
        """A staged layer as the rows ``_write_rows`` writes (plain data, picklable).

        Objects the backend is known not to hold (read as absent, see BufferedTx.put) are
        inserted; the others are upserted."""
        new = layer.new
        rows = StagedRows()
        day = _day_param(self._conn.dialect.name)
        dims = []
        for key, obj in layer.objects.items():
            kind = key[0]
            if kind == "customer":
                dim = customer_dim(obj)  # type: ignore[arg-type]
                dims.append(dict(zip(CUSTOMER_DIM_COLUMNS, dim, strict=True)))
            values = _object_values(kind, obj, day)
            if key in new:
                rows.inserts.setdefault(f"ar_{kind}", []).append(values)
            else:
                rows.upserts.setdefault(kind, []).append(
                    dict(zip(_columns(kind), values, strict=True))
                )
        for (kind, oid), (cust, state, due, data, summary) in layer.rows.items():
            values = (oid, cust, state, None if due is None else day(due), data, summary)
            rows.inserts.setdefault(f"ar_{kind}", []).append(values[: len(_columns(kind))])
        if dims:
            rows.upserts["customer_dim"] = dims
        if layer.movements:
            rows.inserts["ar_movement"] = [
                (*m[:4], day(m[4]), m[5], m[6], day(m[7]), day(m[8]), *m[9:])
                for m in layer.movements
            ]
        if layer.events:
            rows.inserts["ar_event"] = list(layer.events)
        if layer.decisions:
            rows.upserts["decision"] = [
                {**d.__dict__, "as_of": day(d.as_of)} for d in layer.decisions.values()
            ]
        if layer.outbox:
            rows.upserts["outbox"] = [r.__dict__ for r in layer.outbox.values()]
        if layer.audits:
            rows.inserts["ar_audit"] = [
                a
                if isinstance(a, tuple)
                else (a.subject_kind, a.subject_id, a.event_id, json_of(a))
                for a in layer.audits
            ]
        rows.runs = [{"as_of": r.as_of, "body": r.body} for r in layer.runs]
        return rows

    def _write_rows(self, rows: StagedRows) -> None:
        # Everything but run records goes to the driver's own executemany as plain rows
        # (``_driver_cursor``): binding through the SQL expression costs more than SQLite
        # takes to store them. The values are the ones the expression would bind.
        for table, values in rows.inserts.items():
            self._insert_rows(table, _TABLE_COLUMNS.get(table) or _columns(table[3:]), values)
        for what, dicts in rows.upserts.items():
            _driver_write(self._conn, what, dicts)
        if rows.runs:
            self._conn.execute(RUNS.insert(), rows.runs)

    @translated("staging rows")
    def staged_rows(self) -> StagedRows:
        """What this transaction has staged, as rows another transaction on the same
        database can write with :meth:`write_rows` (a run's helper process records its
        slice in a transaction it never commits and hands the rows over)."""
        self.commit_event()
        return self._rows(self._staged)

    @translated("writing a helper's rows")
    def write_rows(self, rows: StagedRows) -> None:
        """Write ``rows`` from :meth:`staged_rows` of another transaction, after what this
        one has staged. What this transaction read before is read again afterwards."""
        self.flush()
        self._write_rows(rows)
        self.forget_reads()

    def _insert_rows(
        self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        """INSERT ``rows`` with the driver's own ``executemany``, in this transaction."""
        sql = _insert_sql(self._conn, table, columns)
        with _driver_cursor(self._conn, sql) as cursor:
            cursor.executemany(sql, rows)
