"""SQLite and PostgreSQL stores through SQLAlchemy 2 Core.

Each kind of object is a table with the columns a query needs (id, customer, state, due
date) and the whole object as JSON. Writers are serialised: ``BEGIN IMMEDIATE`` on SQLite,
a transaction-scoped advisory lock on PostgreSQL, so the read-validate-write of an event
never races another writer. The schema is created and upgraded by :func:`migrate`: a
numbered list of steps recorded in ``arflow_schema``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ...domain import AuditRecord
from ...errors import StoreError, UnsupportedDatabase
from ...summary import ReceivableSummary, summary_from_json, summary_from_text
from ..base import (
    KINDS,
    MOVEMENT_COLUMNS,
    DecisionRecord,
    Movement,
    RunRecord,
    expanded,
    expanded_all,
)
from ._driver import (
    _DUE_BATCH,
    _IN_BATCH,
    _SUMMARY_COLUMNS,
    _by_customer,
    _by_id,
    _driver_cursor,
    _due_query,
    _marks,
    _Models,
    _select_in,
)
from ._errors import _Edge, translated
from ._naming import SCHEMA_OPTION, check_schema, engine_for, qualified, with_schema
from ._outbox import _SqlOutbox
from ._schema import AUDIT, DECISIONS, EVENTS, MOVEMENTS, OBJECT_TABLES, RUNS, _lock, migrate
from ._sqlite import _Checkpoints, _sqlite_setup
from ._tx import _SqlTx
from ._upgrade import require_current


class SqlStore(_SqlOutbox):
    """A book in SQLite or PostgreSQL. Pass a URL or a ready SQLAlchemy ``Engine``.

    ``schema``: on PostgreSQL, the schema arflow's tables live in (created if missing),
    whatever the connections' search path; a URL may name it instead, as its
    ``arflow_schema`` option. ``upgrade``: bring arflow's tables to this version's schema
    (the default); with False, a book at another version is refused
    (:class:`~arflow.errors.SchemaTooOld`: run ``arflow db upgrade``)."""

    #: whether the store's transactions are savepoints of the host's (``JoinedSqlStore``)
    joined = False

    def __init__(
        self,
        url_or_engine: str | Engine,
        *,
        upgrade: bool = True,
        schema: str | None = None,
        _unchecked: bool = False,
    ) -> None:
        if isinstance(url_or_engine, str):
            engine, schema = engine_for(url_or_engine, schema)
        else:
            engine = url_or_engine
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise UnsupportedDatabase(f"unsupported database {engine.dialect.name!r}")
        try:
            check_schema(schema, engine.dialect.name)
        except StoreError:
            if isinstance(url_or_engine, str):
                engine.dispose()
            raise
        if engine.dialect.name == "sqlite":
            _sqlite_setup(engine)
        #: the PostgreSQL schema of arflow's tables (None: where the search path puts them)
        self.schema = schema
        engine = with_schema(engine, schema)
        self.engine = engine
        # the URL as messages show it: with arflow's schema, if it has one
        named = engine.url
        if schema is not None:
            named = named.update_query_dict({SCHEMA_OPTION: schema})
        self._edge = _Edge(named)
        self.url = self._edge.where
        self._source_url = url_or_engine if isinstance(url_or_engine, str) else None
        self._models = _Models()
        # an SQLite file named by its path (not a file: URI, not in memory)
        path = engine.url.database if engine.dialect.name == "sqlite" else None
        file = path not in (None, "", ":memory:") and not str(path).startswith("file:")
        self._checkpoints = _Checkpoints(os.path.abspath(str(path))) if file else None
        try:
            if upgrade:
                migrate(engine)
            elif not _unchecked:  # (``_unchecked``: tests writing a book of an older version)
                require_current(engine)
        except StoreError:
            if self._source_url is not None:  # the engine is ours: leave no pool behind
                engine.dispose()
            raise

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
        if self.schema is not None and SCHEMA_OPTION not in url.query:  # given as an argument
            url = url.update_query_dict({SCHEMA_OPTION: self.schema})
            return url.render_as_string(hide_password=False)
        return source

    @contextmanager
    @translated("a transaction on the book")
    def transaction(self) -> Iterator[_SqlTx]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(arflow_write=True)
            tx: _SqlTx | None = None
            try:
                with conn.begin():
                    _lock(conn)
                    tx = _SqlTx(conn, self._models, self._checkpoints, edge=self._edge)
                    yield tx
                    tx.flush()
            finally:
                if tx is not None:
                    tx._end()

    @contextmanager
    @translated("a staging transaction")
    def staging(self) -> Iterator[_SqlTx]:
        """A transaction that reads the committed book and is never committed: what is
        written to it stays staged, for :meth:`_SqlTx.staged_rows`. It takes no writer's
        lock (a run's helper process stages its slice while the run's own process holds
        that lock)."""
        with self.engine.connect() as conn, conn.begin() as tx:
            try:
                yield _SqlTx(conn, self._models, staging=True, edge=self._edge)
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

    @translated("reading an object")
    def get(self, kind: str, object_id: str) -> Any | None:
        t = OBJECT_TABLES[kind]
        with self._read() as conn:
            data = conn.execute(sa.select(t.c.data).where(t.c.id == object_id)).scalar()
        return None if data is None else self._models.parse(KINDS[kind].model, data)

    @translated("finding objects")
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

    @translated("reading objects by id")
    def get_many(self, kind: str, ids: Iterable[str]) -> dict[str, Any]:
        with self._read() as conn:
            return _by_id(conn, kind, list(ids), self._models)

    @translated("reading customers' objects")
    def find_for_customers(
        self, kind: str, customer_ids: Iterable[str], *, states: Iterable[str] | None = None
    ) -> dict[str, list[Any]]:
        # states=() finds nothing, states=None everything: an empty IN () is not SQL
        wanted = None if states is None else tuple(sorted({str(s) for s in states}))
        if wanted == ():
            return {}
        with self._read() as conn, conn.begin():  # one snapshot for every batch
            return _by_customer(conn, kind, list(customer_ids), self._models, wanted or ())

    @translated("reading receivable summaries")
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

    def _stream(self, query: Any) -> Iterator[Any]:
        """The rows of ``query``, fetched 5,000 at a time (a whole table, a whole log)."""
        with self._read() as conn:
            yield from conn.execution_options(yield_per=5000).execute(query)

    @translated("reading every object of a kind")
    def all(self, kind: str) -> Iterator[Any]:
        t = OBJECT_TABLES[kind]
        model = KINDS[kind].model
        for (d,) in self._stream(sa.select(t.c.data).order_by(t.c.id)):
            yield model.model_validate_json(d)

    @translated("reading the event log")
    def event_log(self) -> Iterator[tuple[str, str]]:
        for t, body in self._stream(
            sa.select(EVENTS.c.event_type, EVENTS.c.body).order_by(EVENTS.c.seq)
        ):
            yield str(t), str(body)

    @translated("reading the movement journal")
    def movements(self) -> Iterator[Movement]:
        cols = [MOVEMENTS.c[n] for n in MOVEMENT_COLUMNS]
        for row in self._stream(sa.select(*cols).order_by(MOVEMENTS.c.seq)):
            yield tuple(row)

    @translated("counting events")
    def event_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar() or 0)

    @translated("reading an audit trail")
    def audit_trail(self, kind: str, object_id: str) -> list[AuditRecord]:
        q = (
            sa.select(AUDIT.c.body)
            .where(AUDIT.c.subject_kind == kind, AUDIT.c.subject_id == object_id)
            .order_by(AUDIT.c.seq)
        )
        with self._read() as conn:
            return [AuditRecord.model_validate_json(b) for (b,) in conn.execute(q)]

    @translated("reading audit trails")
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

    @translated("reading the audit trail")
    def audit_log(self) -> Iterator[tuple[int, AuditRecord]]:
        for seq, body in self._stream(sa.select(AUDIT.c.seq, AUDIT.c.body).order_by(AUDIT.c.seq)):
            yield int(seq), AuditRecord.model_validate_json(body)

    @translated("counting audit records")
    def audit_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(AUDIT)).scalar() or 0)

    @translated("finding due receivables")
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
            if customers is None:
                sql, params = _due_query(conn, "data", due_from, due_to, wanted)
                with _driver_cursor(conn, sql) as cursor:
                    cursor.execute(sql, params)
                    return [parse(model, d) for (d,) in cursor.fetchall()]
            # a slice of the customers: their ids first (in batches, the others' rows are
            # dropped as they come), then their JSON alone
            sql, params = _due_query(conn, "customer_id, id", due_from, due_to, wanted)
            ids: list[str] = []
            with _driver_cursor(conn, sql) as cursor:
                cursor.execute(sql, params)
                while batch := cursor.fetchmany(_DUE_BATCH):
                    ids.extend(oid for cid, oid in batch if customers(cid))
            rows = _select_in(conn, "ar_receivable", "data", "id", ids)
        found = (parse(model, d) for (d,) in rows)
        # as the first query read them (on PostgreSQL a commit may come between the two)
        return [r for r in found if str(r.state) in wanted and due_from <= r.due_date <= due_to]

    @translated("counting due receivables")
    def count_due(self, due_from: date, due_to: date, states: Iterable[str]) -> int:
        with self._read() as conn:
            sql, params = _due_query(conn, "count(*)", due_from, due_to, states)
            with _driver_cursor(conn, sql) as cursor:
                cursor.execute(sql, params)
                return int(cursor.fetchone()[0])

    @translated("reading decisions")
    def decisions(
        self, *, as_of: date | None = None, status: str | None = None
    ) -> list[DecisionRecord]:
        q = sa.select(DECISIONS).order_by(DECISIONS.c.key)
        if as_of is not None:
            q = q.where(DECISIONS.c.as_of == as_of)
        if status is not None:
            q = q.where(DECISIONS.c.status == status)
        with self._read() as conn:
            found = [DecisionRecord(**row._mapping) for row in conn.execute(q)]
        return expanded_all(found, self._decision)

    @translated("looking up decisions")
    def known_decisions(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        found: set[str] = set()
        with self._read() as conn:
            for i in range(0, len(keys), 500):
                q = sa.select(DECISIONS.c.key).where(DECISIONS.c.key.in_(keys[i : i + 500]))
                found.update(conn.execute(q).scalars())
        return found

    @translated("reading a decision")
    def decision(self, key: str) -> DecisionRecord | None:
        found = self._decision(key)
        return None if found is None else expanded(found, self._decision)

    def _decision(self, key: str) -> DecisionRecord | None:
        """The decision ledger's row of ``key`` as stored (see ``expanded``)."""
        with self._read() as conn:
            row = conn.execute(sa.select(DECISIONS).where(DECISIONS.c.key == key)).first()
        return None if row is None else DecisionRecord(**row._mapping)

    @translated("reading run records")
    def runs(self) -> list[RunRecord]:
        with self._read() as conn:
            rows = conn.execute(sa.select(RUNS.c.as_of, RUNS.c.body).order_by(RUNS.c.seq))
            return [RunRecord(as_of=a, body=b) for a, b in rows]

    # -- change tracking ---------------------------------------------------------------------
    @translated("reading the audit mark")
    def audit_mark(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.max(AUDIT.c.seq))).scalar() or 0)

    @translated("finding changed customers")
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

    @translated("finding changed objects")
    def objects_changed_since(self, mark: int, kinds: Iterable[str]) -> dict[str, set[str]]:
        wanted = sorted(set(kinds))
        out: dict[str, set[str]] = {}
        if not wanted:
            return out
        with self._read() as conn, conn.begin():
            # the driver's own cursor: the day after a first run reads every record it
            # wrote (hundreds of thousands), where SQLAlchemy's rows cost 4 times the query
            dialect = conn.dialect.name
            sql = (
                f"SELECT subject_kind, subject_id FROM {qualified(conn, 'ar_audit')} "
                f"WHERE seq > {_marks(dialect, 1)} "
                f"AND subject_kind IN ({_marks(dialect, len(wanted))})"
            )
            with _driver_cursor(conn, sql) as cursor:
                cursor.execute(sql, (int(mark), *wanted))
                while rows := cursor.fetchmany(_DUE_BATCH):
                    for kind, oid in rows:
                        found = out.get(kind)
                        if found is None:
                            found = out[kind] = set()
                        found.add(oid)
        return out

    @translated("finding calls about closed receivables")
    def calls_on_closed(
        self, task_ids: Iterable[str], receivable_ids: Iterable[str], live: Iterable[str]
    ) -> list[Any]:
        t, r = OBJECT_TABLES["task"], OBJECT_TABLES["receivable"]
        tids, rids = set(task_ids), set(receivable_ids)
        if not tids and not rids:
            return []
        alive = sorted({str(s) for s in live})
        with self._read() as conn, conn.begin():
            # one pass over the open tasks, the database reading their kind and subject
            # (a call's customer need not be its receivable's), parsing none of them
            field = _json_field(conn, t.c.data)
            q = sa.select(t.c.id, field("subject_id")).where(
                t.c.state.in_(("open", "overdue")),
                field("kind") == "call",
                field("subject_kind") == "receivable",
            )
            calls = {
                str(i): str(subject)
                for i, subject in conn.execute(q)
                if i in tids or subject in rids
            }
            subjects = sorted(set(calls.values()))
            closed: set[str] = set()
            for at in range(0, len(subjects), 500):
                q = sa.select(r.c.id).where(
                    r.c.id.in_(subjects[at : at + 500]), r.c.state.not_in(alive)
                )
                closed.update(str(i) for (i,) in conn.execute(q))
        gone = [i for i, subject in calls.items() if subject in closed]
        found = self.get_many("task", gone).values()
        return [x for x in found if str(x.status) in ("open", "overdue")]

    @translated("finding objects by due date")
    def find_due_by(self, kind: str, due_to: date, states: Iterable[str]) -> list[Any]:
        t = OBJECT_TABLES[kind]
        model = KINDS[kind].model
        parse = self._models.parse
        q = sa.select(t.c.data).where(
            t.c.state.in_(sorted({str(s) for s in states})), t.c.due_date <= due_to
        )
        with self._read() as conn:
            return [parse(model, d) for (d,) in conn.execute(q)]

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


def _json_field(conn: sa.Connection, data: Any) -> Callable[[str], Any]:
    """A top-level field of a row's stored JSON, read by the database."""

    def field(name: str) -> Any:
        if conn.dialect.name == "sqlite":
            return sa.func.json_extract(data, f"$.{name}")
        return sa.cast(data, sa.JSON)[name].as_string()

    return field
