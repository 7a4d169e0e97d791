"""The fast paths under the SQL store: statements built once, the driver's own cursor for
bulk reads and writes (binding through SQLAlchemy costs more than the database on them),
dialect-specific upserts, and parsing stored JSON (once, within ``SqlStore.parse_once``)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from ...errors import StoreError
from ...summary import summary_text
from ..base import KINDS, MOVEMENT_COLUMNS, OutboxRecord, json_of
from ._naming import qualified, schema_of
from ._schema import DECISIONS, EVENTS, OBJECT_TABLES, metadata


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
    conn: Connection, columns: str, due_from: date, due_to: date, states: Iterable[str]
) -> tuple[str, tuple[Any, ...]]:
    """``find_due``'s query (and its parameters) for ``columns``, on ``conn``."""
    dialect = conn.dialect.name
    wanted = [str(s) for s in states]
    table = qualified(conn, "ar_receivable")
    sql = (
        f"SELECT {columns} FROM {table} WHERE state IN ({_marks(dialect, len(wanted))}) "
        f"AND due_date BETWEEN {_marks(dialect, 1)} AND {_marks(dialect, 1)}"
    )
    day = _day_param(dialect)
    return sql, (*wanted, day(due_from), day(due_to))


#: Rows ``find_due`` fetches at a time.
_DUE_BATCH = 5_000


@functools.cache
def _select_in_sql(
    dialect: str, table: str, columns: str, key: str, n: int, states: int = 0
) -> str:
    sql = f"SELECT {columns} FROM {table} WHERE {key} IN ({_marks(dialect, n)})"
    if states:
        sql += f" AND state IN ({_marks(dialect, states)})"
    return sql


class _Models(threading.local):
    """Objects from their stored JSON. Within :meth:`SqlStore.parse_once`, a text parsed
    before gives the object parsed then (objects are immutable): an engine run reads the
    same receivables and customers to plan and again, in its transaction, to record.

    The memo is the thread's own (a ``threading.local``): a store shared by threads keeps
    one per thread, so one thread's run neither fills nor ends another thread's."""

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


_OBJECT_COLUMNS = ("id", "customer_id", "state", "due_date", "data")
_RECEIVABLE_COLUMNS = (*_OBJECT_COLUMNS, "summary")


def _columns(kind: str) -> tuple[str, ...]:
    return _RECEIVABLE_COLUMNS if kind == "receivable" else _OBJECT_COLUMNS


_EVENT_COLUMNS = ("event_id", "event_type", "body")
_AUDIT_COLUMNS = ("subject_kind", "subject_id", "event_id", "body")
_TABLE_COLUMNS = {
    "ar_event": _EVENT_COLUMNS,
    "ar_audit": _AUDIT_COLUMNS,
    "ar_movement": MOVEMENT_COLUMNS,
}


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
    conn: Connection,
    table: str,
    columns: str,
    key: str,
    values: list[str],
    states: tuple[str, ...] = (),
) -> list[Any]:
    """``SELECT columns FROM table WHERE key IN (values)`` (``AND state IN (states)`` if
    ``states`` are given), a batch of values at a time, through :func:`_driver_cursor`
    (read-ahead queries: cheaper than an expanding bind). ``table`` is one of arflow's, by
    its bare name (in arflow's schema on ``conn``, if it has one)."""
    out: list[Any] = []
    table = qualified(conn, table)
    for i in range(0, len(values), _IN_BATCH):
        part = values[i : i + _IN_BATCH]
        sql = _select_in_sql(conn.dialect.name, table, columns, key, len(part), len(states))
        with _driver_cursor(conn, sql) as cursor:
            cursor.execute(sql, (*part, *states))
            out.extend(cursor.fetchall())
    return out


def _by_id(conn: Connection, kind: str, ids: list[str], models: _Models) -> dict[str, Any]:
    """Objects of ``kind`` by id (missing ids left out), a batch of ids per query."""
    model = KINDS[kind].model
    rows = _select_in(conn, f"ar_{kind}", "id, data", "id", ids)
    return {oid: models.parse(model, d) for oid, d in rows}


def _by_customer(
    conn: Connection,
    kind: str,
    customer_ids: list[str],
    models: _Models,
    states: tuple[str, ...] = (),
) -> dict[str, list[Any]]:
    """Objects of ``kind`` of each customer, in ``states`` if given (every state if not;
    customers without any left out), a batch of customers per query."""
    model = KINDS[kind].model
    found: dict[str, list[Any]] = {}
    rows = _select_in(conn, f"ar_{kind}", "customer_id, data", "customer_id", customer_ids, states)
    for cid, d in rows:
        found.setdefault(cid, []).append(models.parse(model, d))
    return found


@functools.cache
def _driver_statement(
    dialect: Dialect, what: str, schema: str | None = None
) -> tuple[str, tuple[str, ...]]:
    """The SQL of an upsert (a kind's objects, ``decision``) or of the outbox's insert,
    compiled once for the driver (naming arflow's ``schema``, if any), with the order of
    its parameters when they are positional."""
    stmt = _insert_new(dialect.name, what) if what == "outbox" else _upsert(dialect.name, what)
    if schema is None:
        compiled = stmt.compile(dialect=dialect)
    else:
        compiled = stmt.compile(
            dialect=dialect, schema_translate_map={None: schema}, render_schema_translate=True
        )
    return str(compiled), tuple(compiled.positiontup or ())


def _driver_write(conn: Connection, what: str, rows: list[dict[str, Any]]) -> None:
    """Run :func:`_driver_statement` for ``rows`` (values as the driver takes them: dates
    through ``_day_param``) with the driver's ``executemany``, without SQLAlchemy's per-row
    work, which costs more than the database on a day's thousands of decisions."""
    sql, order = _driver_statement(conn.dialect, what, schema_of(conn))
    params: list[Any] = rows
    if order:  # positional (SQLite)
        params = [tuple(row[name] for name in order) for row in rows]
    with _driver_cursor(conn, sql) as cursor:
        cursor.executemany(sql, params)


@functools.cache
def _raw_insert(dialect: str, table: str, columns: tuple[str, ...]) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...)`` in the driver's parameter style."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(dialect, len(columns))})"


def _insert_sql(conn: Connection, table: str, columns: tuple[str, ...]) -> str:
    """:func:`_raw_insert` into arflow's ``table`` (a bare name) as ``conn`` names it (in
    arflow's schema, if it has one)."""
    return _raw_insert(conn.dialect.name, qualified(conn, table), columns)


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
    t = metadata.tables[f"ar_{kind}"]  # an object's table, or the customer dimension
    stmt = insert(t)
    return stmt.on_conflict_do_update(
        index_elements=[t.c.id],
        set_={c.name: stmt.excluded[c.name] for c in t.columns if c.name != "id"},
    )
