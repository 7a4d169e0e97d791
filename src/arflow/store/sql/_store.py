"""SQLite and PostgreSQL stores through SQLAlchemy 2 Core.

Each kind of object is a table with the columns a query needs (id, customer, state, due
date) and the whole object as JSON. Writers are serialised: ``BEGIN IMMEDIATE`` on SQLite,
a transaction-scoped advisory lock on PostgreSQL, so the read-validate-write of an event
never races another writer. The schema is created and upgraded by :func:`migrate`: a
numbered list of steps recorded in ``arflow_schema``.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine

from ...domain import AuditRecord
from ...errors import StoreError
from ...summary import (
    ReceivableSummary,
    summary_from_json,
    summary_from_text,
    summary_text,
)
from ..base import (
    KINDS,
    OUTBOX_STATUSES,
    BufferedTx,
    DecisionRecord,
    OutboxRecord,
    RunRecord,
    Settle,
    _Layer,
    json_of,
    new_claim,
)

metadata = sa.MetaData()
_SUMMARY_INDEX = "ix_ar_receivable_customer_summary"
_BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

OBJECT_TABLES: dict[str, sa.Table] = {
    name: sa.Table(
        f"ar_{name}",
        metadata,
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=True),
        sa.Column("state", sa.String(40), nullable=True),
        sa.Column("due_date", sa.Date, nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        *(
            # what a day's customer facts read of every receivable (``summary_text``)
            [sa.Column("summary", sa.String(120), nullable=True)] if name == "receivable" else []
        ),
        *(
            # a day's customer facts read every receivable of their customers from this
            # index alone (``receivable_summaries``), without the rows' JSON
            [sa.Index(_SUMMARY_INDEX, "customer_id", "state", "due_date", "id", "summary")]
            if name == "receivable"
            else [sa.Index(f"ix_ar_{name}_customer_state", "customer_id", "state")]
        ),
    )
    for name in KINDS
}
sa.Index(
    "ix_ar_receivable_state_due",
    OBJECT_TABLES["receivable"].c.state,
    OBJECT_TABLES["receivable"].c.due_date,
)

EVENTS = sa.Table(
    "ar_event",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(200), nullable=False, unique=True),
    sa.Column("event_type", sa.String(60), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
AUDIT = sa.Table(
    "ar_audit",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("subject_kind", sa.String(40), nullable=False),
    sa.Column("subject_id", sa.String(200), nullable=False),
    sa.Column("event_id", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_ar_audit_subject", "subject_kind", "subject_id"),
)
DECISIONS = sa.Table(
    "ar_decision",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("subject_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_ar_decision_as_of", "as_of", "status"),
)
RUNS = sa.Table(
    "ar_run",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
OUTBOX = sa.Table(
    "ar_outbox",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("lease_until", sa.BigInteger, nullable=True),
    sa.Column("sent_at", sa.BigInteger, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("receipt", sa.Text, nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("claim", sa.String(40), nullable=True),
    sa.Index("ix_ar_outbox_status_next", "status", "next_at"),
)
SCHEMA = sa.Table(
    "arflow_schema",
    sa.MetaData(),
    sa.Column("version", sa.Integer, nullable=False),
)


_V1 = ["ar_event", "ar_audit", *(t.name for t in OBJECT_TABLES.values())]


def _v1(conn: Connection) -> None:
    """The book: objects, event log, audit trail."""
    metadata.create_all(conn, tables=[metadata.tables[n] for n in _V1])


def _v2(conn: Connection) -> None:
    """The engine's decision ledger and run records."""
    metadata.create_all(conn, tables=[DECISIONS, RUNS])


def _v3(conn: Connection) -> None:
    """The outbox: actions waiting for delivery, written with the decisions."""
    metadata.create_all(conn, tables=[OUTBOX])


def _v4(conn: Connection) -> None:
    """Receivables keep their summary (``summary_text``) beside the JSON, filled in here
    for the receivables already stored (a book created by step 1 of this version has the
    column already)."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("ar_receivable")}
    if "summary" not in columns:
        conn.execute(sa.text("ALTER TABLE ar_receivable ADD COLUMN summary VARCHAR(120)"))
    sqlite = conn.dialect.name == "sqlite"

    def field(path: str) -> str:
        if sqlite:
            return f"json_extract(data, '$.{path}')"
        return "(data::json #>> '{" + path.replace(".", ",") + "}')"

    number = "REAL" if sqlite else "NUMERIC"
    disputed = (
        f"CASE WHEN CAST({field('disputed_amount.amount')} AS {number}) = 0 THEN '0' ELSE '1' END"
    )
    parts = [
        field("open_balance.currency"),
        field("issue_date"),
        field("open_balance.amount"),
        disputed,
        f"coalesce({field('closed_on')}, '')",
    ]
    summary = " || '|' || ".join(parts)
    conn.execute(sa.text(f"UPDATE ar_receivable SET summary = {summary} WHERE summary IS NULL"))


def _v5(conn: Connection) -> None:
    """The receivables' customer index covers what ``receivable_summaries`` reads (customer,
    state, due date, id, summary), so that a day's run reads summaries from the index
    instead of visiting each row and its JSON; it replaces the index on
    (customer, state), whose queries it serves as well."""
    indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("ar_receivable")}
    if _SUMMARY_INDEX not in indexes:
        t = OBJECT_TABLES["receivable"]
        next(ix for ix in t.indexes if ix.name == _SUMMARY_INDEX).create(conn)
    if "ix_ar_receivable_customer_state" in indexes:
        conn.execute(sa.text("DROP INDEX ix_ar_receivable_customer_state"))


def _v6(conn: Connection) -> None:
    """Outbox claims carry a token (``claim``), new with every claim: a dispatcher renews
    its lease, and records an outcome, only while the action still holds its token (a book
    created by step 3 of this version has the column already). Claims made before the
    upgrade have none: they are taken over when their lease runs out."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("ar_outbox")}
    if "claim" not in columns:
        conn.execute(sa.text("ALTER TABLE ar_outbox ADD COLUMN claim VARCHAR(40)"))


#: Schema steps, oldest first. A new step is appended, never edited: version N of the
#: schema is what steps 1..N made. Each runs in the transaction that records it.
MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3, _v4, _v5, _v6]
SCHEMA_VERSION = len(MIGRATIONS)


def _lock(conn: Connection) -> None:
    """Serialise the book's writers: one advisory lock per schema (so two books in two
    schemas of one database do not wait for each other), released at commit."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext('arflow:' || current_schema()))")
        )


def migrate(engine: Engine) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`; return the version found before."""
    with engine.connect() as conn, conn.begin():
        _lock(conn)
        SCHEMA.create(conn, checkfirst=True)
        found = conn.execute(sa.select(sa.func.max(SCHEMA.c.version))).scalar() or 0
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"the database schema is version {found}, newer than this arflow "
                f"(version {SCHEMA_VERSION}); upgrade arflow"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version - 1](conn)
            conn.execute(SCHEMA.insert().values(version=version))
        return int(found)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("arflow_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _sqlite_setup(engine: Engine) -> None:
    """Writers take SQLite's write lock at BEGIN (not at their first write), so the
    read-validate-write of an event cannot interleave with another writer."""
    if not sa.event.contains(engine, "connect", _sqlite_connect):
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)


def _object_values(kind: str, obj: Any, day: Callable[[date], Any]) -> tuple[Any, ...]:
    """An object's row in ``_columns(kind)`` order, its due date as ``day`` hands it to
    the driver (``_day_param``)."""
    k = KINDS[kind]
    due = k.due_date(obj)
    values = (obj.id, k.customer_id(obj), k.state(obj), None if due is None else day(due))
    if kind == "receivable":
        return (*values, json_of(obj), summary_text(obj))
    return (*values, json_of(obj))


# Hot statements, built once: building a statement (and its cache key) per call cost more
# than running it.
_LOAD = {
    k: sa.select(t.c.data).where(t.c.id == sa.bindparam("id")) for k, t in OBJECT_TABLES.items()
}
_FIND = {
    k: sa.select(t.c.data).where(t.c.customer_id == sa.bindparam("cid"))
    for k, t in OBJECT_TABLES.items()
}
_FIND_IN = {
    k: sa.select(t.c.data).where(
        t.c.customer_id == sa.bindparam("cid"), t.c.state.in_(sa.bindparam("st", expanding=True))
    )
    for k, t in OBJECT_TABLES.items()
}
_R = OBJECT_TABLES["receivable"]
_DUE_KEYS = sa.select(_R.c.id, _R.c.due_date).where(
    _R.c.customer_id == sa.bindparam("cid"), _R.c.state.in_(sa.bindparam("st", expanding=True))
)
_HAS_EVENT = sa.select(EVENTS.c.seq).where(EVENTS.c.event_id == sa.bindparam("eid"))
#: ``receivable_summaries``: the customer, then what ``summary_from_text`` takes; all of it
#: in the index ``_SUMMARY_INDEX``.
_SUMMARY_COLUMNS = "customer_id, id, state, due_date, summary"
#: Ids per ``IN (...)`` of a read-ahead query (SQLite allows 999 parameters at least).
_IN_BATCH = 500


def _marks(dialect: str, n: int) -> str:
    """``n`` parameter marks in the driver's own style (sqlite3: ``?``, psycopg: ``%s``)."""
    return ", ".join(["?" if dialect == "sqlite" else "%s"] * n)


def _due_query(
    dialect: str, columns: str, due_from: date, due_to: date, states: Iterable[str]
) -> tuple[str, tuple[Any, ...]]:
    """``find_due``'s query (and its parameters) for ``columns``."""
    wanted = [str(s) for s in states]
    sql = (
        f"SELECT {columns} FROM ar_receivable WHERE state IN ({_marks(dialect, len(wanted))}) "
        f"AND due_date BETWEEN {_marks(dialect, 1)} AND {_marks(dialect, 1)}"
    )
    day = _day_param(dialect)
    return sql, (*wanted, day(due_from), day(due_to))


#: Rows ``find_due`` fetches at a time.
_DUE_BATCH = 5_000


@functools.cache
def _select_in_sql(dialect: str, table: str, columns: str, key: str, n: int) -> str:
    return f"SELECT {columns} FROM {table} WHERE {key} IN ({_marks(dialect, n)})"


#: SQLite's own default: a commit that leaves this many pages in the WAL checkpoints it.
_AUTOCHECKPOINT_PAGES = 1000


class _Checkpoints:
    """A thread that checkpoints an SQLite file's WAL when asked to (after a commit that
    deferred its checkpoint, see ``_SqlTx.defer_checkpoint``), on a connection of its own.
    SQLite's documentation suggests this for writers that must not wait for checkpoints.

    A PASSIVE checkpoint copies what no reader still needs and waits for nobody; what it
    leaves is checkpointed by a later request or by SQLite's automatic checkpoint on the
    next commit. A checkpoint cut short (the process exits mid-way) is safe: SQLite
    repeats it from the WAL."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._wanted = threading.Condition()
        self._pending = False
        self._busy = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.done = 0  # checkpoints run (for tests)

    def request(self) -> None:
        with self._wanted:
            if self._stopped:
                return
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="arflow-sqlite-checkpoint", daemon=True
                )
                self._thread.start()
            self._wanted.notify_all()

    def wait(self) -> None:
        with self._wanted:
            self._wanted.wait_for(lambda: not (self._pending or self._busy) or self._thread is None)

    def stop(self) -> None:
        with self._wanted:
            self._stopped = True
            self._wanted.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            # mode=rw: never create a database where the store's file was
            uri = f"file:{urllib.parse.quote(self._path)}?mode=rw"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            while True:
                with self._wanted:
                    self._wanted.wait_for(lambda: self._pending or self._stopped)
                    if not self._pending:
                        return
                    self._pending, self._busy = False, True
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.done += 1
                except sqlite3.Error:
                    pass  # a later request, or the next commit's own checkpoint, does it
                finally:
                    with self._wanted:
                        self._busy = False
                        self._wanted.notify_all()
        except sqlite3.Error:
            pass  # cannot open the file here: commits go on checkpointing by themselves
        finally:
            if conn is not None:
                conn.close()
            with self._wanted:
                self._thread = None
                self._pending = self._busy = False
                self._wanted.notify_all()


#: SQLite page cache (KiB) of a bulk transaction (``_SqlTx.bulk``): an import's indexes
#: stay in memory instead of being spilled to the WAL and read back page by page.
BULK_CACHE_KIB = 256 * 1024


class _Models:
    """Objects from their stored JSON. Within :meth:`SqlStore.parse_once`, a text parsed
    before gives the object parsed then (objects are immutable): an engine run reads the
    same receivables and customers to plan and again, in its transaction, to record."""

    #: Objects kept at most (a run over a whole large book must not keep all of them).
    MEMO_MAX = 200_000

    def __init__(self) -> None:
        self.memo: dict[str, Any] | None = None

    def parse(self, model: Any, data: str) -> Any:
        memo = self.memo
        if memo is None:
            return model.model_validate_json(data)
        got = memo.get(data)
        if got is None or type(got) is not model:
            if len(memo) >= self.MEMO_MAX:
                memo.clear()  # a bound, not a cache policy: beyond it, parse again
            got = memo[data] = model.model_validate_json(data)
        return got


class _SqlTx(BufferedTx):
    _TAKES_ROWS = True

    def __init__(
        self,
        conn: Connection,
        models: _Models,
        checkpoints: _Checkpoints | None = None,
        *,
        staging: bool = False,
    ) -> None:
        super().__init__()
        #: ``SqlStore.staging``: what it stages leaves by ``staged_rows`` only
        self._staging = staging
        self._conn = conn
        self._models = models
        self._cache_size: int | None = None  # to restore after a bulk transaction
        self._checkpoints = checkpoints  # an SQLite file's checkpoint thread
        self._deferred = False

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

    def defer_checkpoint(self) -> None:
        """This transaction writes a lot (a day's run, an import): on an SQLite file, its
        commit leaves the WAL's checkpoint (copying the pages it wrote into the database
        file, and the fsync) to the store's checkpoint thread, which starts on it as soon
        as the commit returns, instead of doing it inside the commit. What is committed is
        in the WAL either way; readers read it from there until the checkpoint is done."""
        if self._checkpoints is not None and not self._deferred:
            self._driver_pragma("wal_autocheckpoint = 0")
            self._deferred = True

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
        data = self._conn.execute(_LOAD[kind], {"id": object_id}).scalar()
        return None if data is None else self._models.parse(KINDS[kind].model, data)

    def _find(self, kind: str, customer_id: str, states: frozenset[str] | None) -> list[Any]:
        model = KINDS[kind].model
        if states is None:
            rows = self._conn.execute(_FIND[kind], {"cid": customer_id})
        else:
            rows = self._conn.execute(_FIND_IN[kind], {"cid": customer_id, "st": sorted(states)})
        return [self._models.parse(model, d) for (d,) in rows]

    def _due_keys(self, customer_id: str, states: frozenset[str]) -> list[tuple[str, date]]:
        rows = self._conn.execute(_DUE_KEYS, {"cid": customer_id, "st": sorted(states)})
        return [(i, d) for i, d in rows]

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
        for key, obj in layer.objects.items():
            kind = key[0]
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

    def staged_rows(self) -> StagedRows:
        """What this transaction has staged, as rows another transaction on the same
        database can write with :meth:`write_rows` (a run's helper process records its
        slice in a transaction it never commits and hands the rows over)."""
        self.commit_event()
        return self._rows(self._staged)

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
        sql = _raw_insert(self._conn.dialect.name, table, columns)
        with _driver_cursor(self._conn, sql) as cursor:
            cursor.executemany(sql, rows)


_OBJECT_COLUMNS = ("id", "customer_id", "state", "due_date", "data")
_RECEIVABLE_COLUMNS = (*_OBJECT_COLUMNS, "summary")


def _columns(kind: str) -> tuple[str, ...]:
    return _RECEIVABLE_COLUMNS if kind == "receivable" else _OBJECT_COLUMNS


_EVENT_COLUMNS = ("event_id", "event_type", "body")
_AUDIT_COLUMNS = ("subject_kind", "subject_id", "event_id", "body")
_TABLE_COLUMNS = {"ar_event": _EVENT_COLUMNS, "ar_audit": _AUDIT_COLUMNS}


@dataclass
class StagedRows:
    """A transaction's staged writes as plain rows (see ``_SqlTx.staged_rows``): INSERTs
    by table, upserts (and the outbox's insert-if-absent) by kind, run records."""

    inserts: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    upserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def _driver_cursor(conn: Connection, sql: str) -> Iterator[Any]:
    """A cursor of the driver itself, in the connection's current transaction, for work
    where SQLAlchemy's own layer costs more than the database (bulk inserts, reads of
    hundreds of thousands of small rows). Errors come out as through
    ``Connection.execute``: SQLAlchemy's ``DBAPIError``."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except dbapi_error as exc:
        raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi_error) from exc
    finally:
        cursor.close()


def _select_in(
    conn: Connection, table: str, columns: str, key: str, values: list[str]
) -> list[Any]:
    """``SELECT columns FROM table WHERE key IN (values)``, a batch of values at a time,
    through :func:`_driver_cursor` (read-ahead queries: cheaper than an expanding bind)."""
    out: list[Any] = []
    for i in range(0, len(values), _IN_BATCH):
        part = values[i : i + _IN_BATCH]
        sql = _select_in_sql(conn.dialect.name, table, columns, key, len(part))
        with _driver_cursor(conn, sql) as cursor:
            cursor.execute(sql, tuple(part))
            out.extend(cursor.fetchall())
    return out


def _by_id(conn: Connection, kind: str, ids: list[str], models: _Models) -> dict[str, Any]:
    """Objects of ``kind`` by id (missing ids left out), a batch of ids per query."""
    model = KINDS[kind].model
    rows = _select_in(conn, f"ar_{kind}", "id, data", "id", ids)
    return {oid: models.parse(model, d) for oid, d in rows}


def _by_customer(
    conn: Connection, kind: str, customer_ids: list[str], models: _Models
) -> dict[str, list[Any]]:
    """Objects of ``kind`` of each customer, every state (customers without any left
    out), a batch of customers per query."""
    model = KINDS[kind].model
    found: dict[str, list[Any]] = {}
    for cid, d in _select_in(conn, f"ar_{kind}", "customer_id, data", "customer_id", customer_ids):
        found.setdefault(cid, []).append(models.parse(model, d))
    return found


@functools.cache
def _driver_statement(dialect: Dialect, what: str) -> tuple[str, tuple[str, ...]]:
    """The SQL of an upsert (a kind's objects, ``decision``) or of the outbox's insert,
    compiled once for the driver, with the order of its parameters when they are
    positional."""
    stmt = _insert_new(dialect.name, what) if what == "outbox" else _upsert(dialect.name, what)
    compiled = stmt.compile(dialect=dialect)
    return str(compiled), tuple(compiled.positiontup or ())


def _driver_write(conn: Connection, what: str, rows: list[dict[str, Any]]) -> None:
    """Run :func:`_driver_statement` for ``rows`` (values as the driver takes them: dates
    through ``_day_param``) with the driver's ``executemany``, without SQLAlchemy's per-row
    work, which costs more than the database on a day's thousands of decisions."""
    sql, order = _driver_statement(conn.dialect, what)
    params: list[Any] = rows
    if order:  # positional (SQLite)
        params = [tuple(row[name] for name in order) for row in rows]
    with _driver_cursor(conn, sql) as cursor:
        cursor.executemany(sql, params)


@functools.cache
def _raw_insert(dialect: str, table: str, columns: tuple[str, ...]) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...)`` in the driver's parameter style."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(dialect, len(columns))})"


def _day_param(dialect: str) -> Callable[[date], Any]:
    """A ``Date`` column's value as the driver is given it: SQLAlchemy stores dates in
    SQLite as ``YYYY-MM-DD`` text; psycopg takes the ``date`` itself."""
    return date.isoformat if dialect == "sqlite" else _same_day


def _same_day(d: date) -> date:
    return d


@functools.cache
def _insert_new(dialect: str, table: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING: a key already there is left as it is."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert(metadata.tables[f"ar_{table}"]).on_conflict_do_nothing()


def _outbox_row(row: Any) -> OutboxRecord:
    return OutboxRecord(**row._mapping)


@functools.cache
def _upsert(dialect: str, kind: str) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE for a kind's table, built once per dialect."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:
        raise StoreError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")
    if kind == "decision":
        stmt = insert(DECISIONS)
        return stmt.on_conflict_do_update(
            index_elements=[DECISIONS.c.key],
            set_={"status": stmt.excluded.status, "body": stmt.excluded.body},
        )
    t = OBJECT_TABLES[kind]
    stmt = insert(t)
    return stmt.on_conflict_do_update(
        index_elements=[t.c.id],
        set_={c.name: stmt.excluded[c.name] for c in t.columns if c.name != "id"},
    )


class SqlStore:
    """A book in SQLite or PostgreSQL. Pass a URL or a ready SQLAlchemy ``Engine``."""

    def __init__(self, url_or_engine: str | Engine, *, upgrade: bool = True) -> None:
        if isinstance(url_or_engine, str):
            try:
                engine = sa.create_engine(url_or_engine)
            except (sa.exc.ArgumentError, ImportError) as exc:
                raise StoreError(f"cannot open store {url_or_engine!r}: {exc}") from exc
        else:
            engine = url_or_engine
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise StoreError(f"unsupported database {engine.dialect.name!r}")
        if engine.dialect.name == "sqlite":
            _sqlite_setup(engine)
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)
        self._source_url = url_or_engine if isinstance(url_or_engine, str) else None
        self._models = _Models()
        # an SQLite file named by its path (not a file: URI, not in memory)
        path = engine.url.database if engine.dialect.name == "sqlite" else None
        file = path not in (None, "", ":memory:") and not str(path).startswith("file:")
        self._checkpoints = _Checkpoints(os.path.abspath(str(path))) if file else None
        if upgrade:
            migrate(engine)

    def shared_url(self) -> str | None:
        """A URL another process can open to read this very book: the one the store was
        opened with, unless it is SQLite in memory (None then, and when the store was given
        an engine, whose connect arguments cannot be repeated from outside)."""
        source = self._source_url
        if source is None:
            return None
        url = sa.engine.make_url(source)
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return None
        return source

    @contextmanager
    def transaction(self) -> Iterator[_SqlTx]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(arflow_write=True)
            tx: _SqlTx | None = None
            try:
                with conn.begin():
                    _lock(conn)
                    tx = _SqlTx(conn, self._models, self._checkpoints)
                    yield tx
                    tx.flush()
            finally:
                if tx is not None:
                    tx._end()

    @contextmanager
    def staging(self) -> Iterator[_SqlTx]:
        """A transaction that reads the committed book and is never committed: what is
        written to it stays staged, for :meth:`_SqlTx.staged_rows`. It takes no writer's
        lock (a run's helper process stages its slice while the run's own process holds
        that lock)."""
        with self.engine.connect() as conn, conn.begin() as tx:
            try:
                yield _SqlTx(conn, self._models, staging=True)
            finally:
                tx.rollback()

    def _read(self) -> Any:
        return self.engine.connect()

    @contextmanager
    def parse_once(self) -> Iterator[None]:
        """While this lasts, an object read again with the same stored JSON is not parsed
        again (the first parse is kept, in memory, until the block ends)."""
        if self._models.memo is not None:
            yield
            return
        self._models.memo = {}
        try:
            yield
        finally:
            self._models.memo = None

    def forget_parsed(self) -> None:
        """Within :meth:`parse_once`: drop the objects kept so far (what comes next reads
        none of them: a run's next slice of customers)."""
        if self._models.memo is not None:
            self._models.memo.clear()

    def get(self, kind: str, object_id: str) -> Any | None:
        t = OBJECT_TABLES[kind]
        with self._read() as conn:
            data = conn.execute(sa.select(t.c.data).where(t.c.id == object_id)).scalar()
        return None if data is None else self._models.parse(KINDS[kind].model, data)

    def find(
        self, kind: str, *, customer_id: str | None = None, states: Iterable[str] | None = None
    ) -> list[Any]:
        t = OBJECT_TABLES[kind]
        q = sa.select(t.c.data)
        if customer_id is not None:
            q = q.where(t.c.customer_id == customer_id)
        if states is not None:
            q = q.where(t.c.state.in_([str(s) for s in states]))
        model = KINDS[kind].model
        with self._read() as conn:
            return [self._models.parse(model, d) for (d,) in conn.execute(q)]

    def get_many(self, kind: str, ids: Iterable[str]) -> dict[str, Any]:
        with self._read() as conn:
            return _by_id(conn, kind, list(ids), self._models)

    def find_for_customers(self, kind: str, customer_ids: Iterable[str]) -> dict[str, list[Any]]:
        with self._read() as conn, conn.begin():  # one snapshot for every batch
            return _by_customer(conn, kind, list(customer_ids), self._models)

    def receivable_summaries(
        self, customer_ids: Iterable[str]
    ) -> dict[str, list[ReceivableSummary]]:
        ids = list(customer_ids)
        out: dict[str, list[ReceivableSummary]] = {}
        with self._read() as conn, conn.begin():  # one snapshot for every batch
            rows = _select_in(conn, "ar_receivable", _SUMMARY_COLUMNS, "customer_id", ids)
            # rows stored without a summary text (by an older version): from their JSON
            bare = [oid for _cid, oid, _state, _due, summary in rows if summary is None]
            data = dict(_select_in(conn, "ar_receivable", "id, data", "id", bare))
        for cid, oid, state, due, summary in rows:
            out.setdefault(cid, []).append(
                summary_from_json(data[oid])
                if summary is None
                else summary_from_text(oid, state, due, summary)
            )
        return out

    def all(self, kind: str) -> Iterator[Any]:
        t = OBJECT_TABLES[kind]
        model = KINDS[kind].model
        with self._read() as conn:
            result = conn.execution_options(yield_per=5000).execute(
                sa.select(t.c.data).order_by(t.c.id)
            )
            for (d,) in result:
                yield model.model_validate_json(d)

    def event_log(self) -> Iterator[tuple[str, str]]:
        with self._read() as conn:
            result = conn.execution_options(yield_per=5000).execute(
                sa.select(EVENTS.c.event_type, EVENTS.c.body).order_by(EVENTS.c.seq)
            )
            for t, body in result:
                yield str(t), str(body)

    def event_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar() or 0)

    def audit_trail(self, kind: str, object_id: str) -> list[AuditRecord]:
        q = (
            sa.select(AUDIT.c.body)
            .where(AUDIT.c.subject_kind == kind, AUDIT.c.subject_id == object_id)
            .order_by(AUDIT.c.seq)
        )
        with self._read() as conn:
            return [AuditRecord.model_validate_json(b) for (b,) in conn.execute(q)]

    def audit_trails(self, kind: str, object_ids: Iterable[str]) -> dict[str, list[AuditRecord]]:
        ids = sorted(set(object_ids))
        out: dict[str, list[AuditRecord]] = {}
        with self._read() as conn:
            for i in range(0, len(ids), _IN_BATCH):
                part = ids[i : i + _IN_BATCH]
                q = (
                    sa.select(AUDIT.c.subject_id, AUDIT.c.body)
                    .where(AUDIT.c.subject_kind == kind, AUDIT.c.subject_id.in_(part))
                    .order_by(AUDIT.c.seq)
                )
                for oid, body in conn.execute(q):
                    out.setdefault(oid, []).append(AuditRecord.model_validate_json(body))
        return out

    def audit_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(AUDIT)).scalar() or 0)

    def find_due(
        self,
        due_from: date,
        due_to: date,
        states: Iterable[str],
        *,
        customers: Callable[[str], bool] | None = None,
    ) -> list[Any]:
        model = KINDS["receivable"].model
        parse = self._models.parse
        wanted = {str(s) for s in states}
        with self._read() as conn, conn.begin():
            dialect = conn.dialect.name
            if customers is None:
                sql, params = _due_query(dialect, "data", due_from, due_to, wanted)
                with _driver_cursor(conn, sql) as cursor:
                    cursor.execute(sql, params)
                    return [parse(model, d) for (d,) in cursor.fetchall()]
            # a slice of the customers: their ids first (in batches, the others' rows are
            # dropped as they come), then their JSON alone
            sql, params = _due_query(dialect, "customer_id, id", due_from, due_to, wanted)
            ids: list[str] = []
            with _driver_cursor(conn, sql) as cursor:
                cursor.execute(sql, params)
                while batch := cursor.fetchmany(_DUE_BATCH):
                    ids.extend(oid for cid, oid in batch if customers(cid))
            rows = _select_in(conn, "ar_receivable", "data", "id", ids)
        found = (parse(model, d) for (d,) in rows)
        # as the first query read them (on PostgreSQL a commit may come between the two)
        return [r for r in found if str(r.state) in wanted and due_from <= r.due_date <= due_to]

    def count_due(self, due_from: date, due_to: date, states: Iterable[str]) -> int:
        with self._read() as conn:
            sql, params = _due_query(conn.dialect.name, "count(*)", due_from, due_to, states)
            with _driver_cursor(conn, sql) as cursor:
                cursor.execute(sql, params)
                return int(cursor.fetchone()[0])

    def decisions(
        self, *, as_of: date | None = None, status: str | None = None
    ) -> list[DecisionRecord]:
        q = sa.select(DECISIONS).order_by(DECISIONS.c.key)
        if as_of is not None:
            q = q.where(DECISIONS.c.as_of == as_of)
        if status is not None:
            q = q.where(DECISIONS.c.status == status)
        with self._read() as conn:
            return [DecisionRecord(**row._mapping) for row in conn.execute(q)]

    def known_decisions(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        found: set[str] = set()
        with self._read() as conn:
            for i in range(0, len(keys), 500):
                q = sa.select(DECISIONS.c.key).where(DECISIONS.c.key.in_(keys[i : i + 500]))
                found.update(conn.execute(q).scalars())
        return found

    def decision(self, key: str) -> DecisionRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(DECISIONS).where(DECISIONS.c.key == key)).first()
        return None if row is None else DecisionRecord(**row._mapping)

    def runs(self) -> list[RunRecord]:
        with self._read() as conn:
            rows = conn.execute(sa.select(RUNS.c.as_of, RUNS.c.body).order_by(RUNS.c.seq))
            return [RunRecord(as_of=a, body=b) for a, b in rows]

    # -- change tracking ---------------------------------------------------------------------
    def audit_mark(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.max(AUDIT.c.seq))).scalar() or 0)

    def customers_changed_since(self, mark: int, ignore: Iterable[str] = ()) -> set[str]:
        q = sa.select(AUDIT.c.subject_kind, AUDIT.c.subject_id).where(AUDIT.c.seq > mark)
        skip = sorted(ignore)
        if skip:  # the event's type is in the log, beside the audit record's event id
            q = q.join(EVENTS, EVENTS.c.event_id == AUDIT.c.event_id).where(
                EVENTS.c.event_type.not_in(skip)
            )
        by_kind: dict[str, set[str]] = {}
        with self._read() as conn:
            for kind, oid in conn.execute(q):
                by_kind.setdefault(str(kind), set()).add(str(oid))
            out = by_kind.pop("customer", set())
            for kind, ids in by_kind.items():
                t = OBJECT_TABLES.get(kind)
                if t is None:
                    continue
                listed = sorted(ids)
                for i in range(0, len(listed), 500):
                    chunk = listed[i : i + 500]
                    rows = conn.execute(sa.select(t.c.customer_id).where(t.c.id.in_(chunk)))
                    out.update(str(c) for (c,) in rows if c is not None)
        return out

    # -- outbox --------------------------------------------------------------------------------
    # The dispatcher's statements run in short transactions of their own, without the book's
    # writer lock: delivering mail must not wait for a day's run, nor hold it up.
    @contextmanager
    def _outbox_tx(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(arflow_write=True)
            with conn.begin():
                yield conn

    def outbox_claim(
        self,
        worker: str,
        now: int,
        limit: int,
        lease: int,
        channels: Iterable[str] | None = None,
    ) -> list[OutboxRecord]:
        """Claim up to ``limit`` due actions. On PostgreSQL the rows are picked with
        ``FOR UPDATE SKIP LOCKED``, so dispatchers running at once never claim the same
        action and never wait for each other; SQLite serialises them (``BEGIN IMMEDIATE``).
        The rows claimed carry a new claim token.

        The keys are picked by a statement of their own: as a subquery of the UPDATE,
        PostgreSQL may run the pick again for each row, and claim more than ``limit``."""
        o = OUTBOX.c
        due = sa.or_(
            sa.and_(o.status == "pending", o.next_at <= now),
            sa.and_(o.status == "sending", o.lease_until < now),
        )
        pick = sa.select(o.key).where(due).order_by(o.next_at, o.key).limit(limit)
        if channels is not None:
            pick = pick.where(o.channel.in_(list(channels)))
        with self._outbox_tx() as conn:
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            keys = [str(k) for (k,) in conn.execute(pick)]
            if not keys:
                return []
            stmt = (
                sa.update(OUTBOX)
                .where(o.key.in_(keys), due)
                .values(
                    status="sending",
                    claimed_by=worker,
                    lease_until=now + lease,
                    attempts=o.attempts + 1,
                    claim=new_claim(),
                )
                .returning(*OUTBOX.c)
            )
            rows = [_outbox_row(r) for r in conn.execute(stmt)]
        return sorted(rows, key=lambda r: (r.next_at, r.key))

    def outbox_renew(self, keys: Iterable[str], claim: str, now: int, lease: int) -> set[str]:
        o = OUTBOX.c
        listed = list(dict.fromkeys(keys))
        held: set[str] = set()
        with self._outbox_tx() as conn:
            for i in range(0, len(listed), 500):
                stmt = (
                    sa.update(OUTBOX)
                    .where(o.key.in_(listed[i : i + 500]), o.status == "sending", o.claim == claim)
                    .values(lease_until=now + lease)
                    .returning(o.key)
                )
                held.update(str(k) for (k,) in conn.execute(stmt))
        return held

    def outbox_settle(self, key: str, change: Settle) -> bool:
        """Record an attempt's outcome (only while the action is being sent, under the
        change's claim when it names one) and queue its follow-up, in one transaction."""
        o = OUTBOX.c
        held = [o.key == key, o.status == "sending"]
        if change.claim is not None:
            held.append(o.claim == change.claim)
        values: dict[str, Any] = {"status": change.status, "lease_until": None, "claim": None}
        if change.next_at is not None:
            values["next_at"] = change.next_at
        if change.status == "sent":
            values["sent_at"] = change.now
        if change.error is not None:
            values["last_error"] = change.error
        if change.receipt is not None:
            values["receipt"] = change.receipt
        with self._outbox_tx() as conn:
            done = conn.execute(sa.update(OUTBOX).where(*held).values(**values)).rowcount
            if done and change.follow_up is not None:
                conn.execute(_insert_new(conn.dialect.name, "outbox"), [change.follow_up.__dict__])
        return bool(done)

    def outbox(self, *, status: str | None = None, limit: int | None = None) -> list[OutboxRecord]:
        q = sa.select(OUTBOX).order_by(OUTBOX.c.created_at, OUTBOX.c.key)
        if status is not None:
            q = q.where(OUTBOX.c.status == status)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [_outbox_row(r) for r in conn.execute(q)]

    def outbox_item(self, key: str) -> OutboxRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.key == key)).first()
        return None if row is None else _outbox_row(row)

    def outbox_counts(self) -> dict[str, int]:
        q = sa.select(OUTBOX.c.status, sa.func.count()).group_by(OUTBOX.c.status)
        out = dict.fromkeys(OUTBOX_STATUSES, 0)
        with self._read() as conn:
            out.update({str(st): int(n) for st, n in conn.execute(q)})
        return out

    def outbox_retry(self, keys: Iterable[str] | None, now: int) -> int:
        o = OUTBOX.c
        stmt = (
            sa.update(OUTBOX)
            .where(o.status == "dead")
            .values(
                status="pending",
                attempts=0,
                next_at=now,
                claimed_by=None,
                lease_until=None,
                claim=None,
            )
        )
        if keys is not None:
            stmt = stmt.where(o.key.in_(list(keys)))
        with self._outbox_tx() as conn:
            return int(conn.execute(stmt).rowcount)

    def wait_for_checkpoint(self) -> None:
        """Return once the checkpoint thread has no checkpoint to do (SQLite files)."""
        if self._checkpoints is not None:
            self._checkpoints.wait()

    def close(self) -> None:
        """Close the store's connections, after a checkpoint in progress (the last
        connection to close checkpoints what is left)."""
        if self._checkpoints is not None:
            self._checkpoints.stop()
        self.engine.dispose()
