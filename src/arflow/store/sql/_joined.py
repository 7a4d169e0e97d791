"""A book inside the host's transaction: :class:`JoinedSqlStore` reads and writes through a
SQLAlchemy ``Connection`` or ORM ``Session`` the host passes in, and never commits.

Each write of arflow's (an event, a run, a refusal's audit record) runs in a SAVEPOINT of the
host's transaction: a refused event undoes its own part only, and the host's transaction
stays usable. What arflow wrote commits with the host's commit and is gone with its rollback.
Writers are still serialised: on PostgreSQL by the advisory lock every arflow writer takes,
which a joined write takes in the host's transaction and so holds until the host commits or
rolls back; on SQLite by the database's one write lock, which a joined write takes with
``BEGIN IMMEDIATE`` when the host's connection has no transaction open in the database yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, SessionTransaction

from ...errors import (
    HostTransactionFailed,
    RunNeedsOwnTransaction,
    SchemaTooNew,
    SchemaTooOld,
    StoreError,
    UnsupportedDatabase,
)
from ._driver import _Models
from ._errors import _Edge, translated
from ._schema import SCHEMA_VERSION, _lock
from ._store import SqlStore
from ._tx import _SqlTx
from ._upgrade import stored_version

#: Where a Session keeps its joined store (``JoinedSqlStore.of``).
_INFO_KEY = "arflow.joined_store"
#: Where a Connection keeps it: on the Connection object itself, not in ``Connection.info``,
#: which belongs to the pooled DBAPI connection and outlives this Connection.
_ATTRIBUTE = "_arflow_joined_store"


class _HostConnection:
    """The host's connection as the store's reads use it (``with self._read() as conn``):
    leaving the block does not close it, ``begin()`` opens nothing (the host's transaction is
    the snapshot), and execution options apply to one statement, not to the host's
    connection (``Connection.execution_options`` would change it for the host too)."""

    __slots__ = ("_conn", "_options")

    def __init__(self, conn: Connection, options: dict[str, Any] | None = None) -> None:
        self._conn = conn
        self._options = options or {}

    def __enter__(self) -> _HostConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def begin(self) -> nullcontext[None]:
        return nullcontext()

    def execution_options(self, **options: Any) -> _HostConnection:
        return _HostConnection(self._conn, {**self._options, **options})

    def execute(self, statement: Any, parameters: Any = None) -> Any:
        if self._options:
            return self._conn.execute(statement, parameters, execution_options=self._options)
        return self._conn.execute(statement, parameters)

    def __getattr__(self, name: str) -> Any:  # dialect, connection, exec_driver_sql...
        return getattr(self._conn, name)


class JoinedSqlStore(SqlStore):
    """A book read and written through the host's own ``Connection`` or ``Session``, inside
    the host's transaction (see the module). It never creates or upgrades arflow's schema:
    it checks the schema's version on its first use, and raises :class:`SchemaTooOld` or
    :class:`SchemaTooNew` when it is not the one this arflow knows."""

    #: a joined store: its transactions are savepoints of the host's
    joined = True

    @classmethod
    def of(cls, host: Any) -> JoinedSqlStore:
        """The joined store of ``host``, made once per Session or Connection and kept with
        it (a ledger made per request on a long-lived session or connection adds no
        listeners to it each time)."""
        if isinstance(host, Session):
            store = host.info.get(_INFO_KEY)
            if not isinstance(store, cls):
                store = host.info[_INFO_KEY] = cls(host)
            return store
        if isinstance(host, Connection):  # its ``info`` is the pooled DBAPI connection's
            store = getattr(host, _ATTRIBUTE, None)
            if not isinstance(store, cls):
                store = cls(host)
                setattr(host, _ATTRIBUTE, store)
            return store
        return cls(host)

    def __init__(self, host: Connection | Session) -> None:
        bind = host.get_bind() if isinstance(host, Session) else host
        dialect = getattr(getattr(bind, "dialect", None), "name", None)
        if dialect is not None and dialect not in ("sqlite", "postgresql"):
            raise UnsupportedDatabase(
                f"cannot join a {dialect!r} connection: arflow keeps its book in SQLite or "
                "PostgreSQL"
            )
        if isinstance(host, Session):
            self._session: Session | None = host
            self._conn: Connection | None = None
        elif isinstance(host, Connection):
            self._session, self._conn = None, host
        else:
            raise StoreError(
                f"cannot join {type(host).__name__!r}: pass a SQLAlchemy Connection or Session"
            )
        engine = bind if isinstance(bind, sa.engine.Engine) else bind.engine
        self.engine = engine
        self._edge = _Edge(engine.url)
        self.url = self._edge.where
        self._source_url = None
        self._models = _Models()
        self._checkpoints = None
        #: arflow's tables are where the host's connection finds them (its search path):
        #: a schema of arflow's own is for books opened by URL or engine (docs/storage.md)
        self.schema: str | None = None
        #: notices waiting for the host's commit: (the host's transaction they belong to,
        #: the callable that delivers them)
        self._pending: list[tuple[Any, Callable[[], None]]] = []
        self._committed: list[Callable[[], None]] = []  # a Connection's, until notified
        #: whether the schema's version was checked (at the first use: making the store
        #: must not begin the host's transaction, the host may begin it after)
        self._checked = False
        self._listen()

    # -- the host's connection -----------------------------------------------------------------
    def _connection(self) -> Connection:
        """The host's connection in its current transaction; HostTransactionFailed when
        that transaction failed and waits for the host's rollback."""
        if self._session is not None:
            current = self._session.get_transaction()
            if current is not None and not current.is_active:
                raise HostTransactionFailed(
                    "the host's Session is in a failed transaction: roll it back first"
                )
            conn = self._session.connection()
        else:
            conn = self._conn  # type: ignore[assignment]
            if conn.closed or conn.invalidated:
                raise HostTransactionFailed("the host's Connection is closed")
            current_tx = conn.get_transaction()
            if current_tx is not None and not current_tx.is_active:
                raise HostTransactionFailed(
                    "the host's Connection is in a failed transaction: roll it back first"
                )
        if _failed_in_database(conn):
            raise HostTransactionFailed(
                "the host's transaction failed in the database (an earlier statement raised): "
                "roll it back first"
            )
        if not self._checked:
            self._check_schema(conn)
            self._checked = True
        return conn

    def _check_schema(self, conn: Connection) -> None:
        with self._edge("checking the schema of the book"):
            found = stored_version(conn)
        if found < SCHEMA_VERSION:
            raise SchemaTooOld(
                f"arflow's schema in {self.url} is version {found}, older than this arflow "
                f"(version {SCHEMA_VERSION}); a joined store never migrates: run "
                "`arflow db upgrade` (or open the book once by its URL) first",
                found,
                SCHEMA_VERSION,
            )
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"arflow's schema in {self.url} is version {found}, newer than this arflow "
                f"(version {SCHEMA_VERSION}); upgrade arflow",
                found,
                SCHEMA_VERSION,
            )

    def _read(self) -> Any:
        return _HostConnection(self._connection())

    def shared_url(self) -> str | None:
        """None: another process cannot join the host's transaction."""
        return None

    # -- writing: savepoints of the host's transaction ------------------------------------------
    @contextmanager
    def _savepoint(self, *, writer: bool = True) -> Iterator[Connection]:
        """A savepoint of the host's transaction; ``writer``: holding the book's writer
        lock (the outbox's statements do without it, as on the book's own transactions)."""
        conn = self._connection()
        if conn.dialect.name == "sqlite":
            driver = conn.connection.driver_connection
            if driver is not None and not driver.in_transaction:
                # pysqlite left the host's transaction unopened (it begins lazily): open it,
                # taking the write lock now; the host's commit or rollback ends it
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        if writer:
            _lock(conn)  # PostgreSQL: before the savepoint, so that its rollback keeps the lock
        nested: Any = (
            self._session.begin_nested() if self._session is not None else conn.begin_nested()
        )
        try:
            yield conn
        except BaseException:
            if nested.is_active:
                nested.rollback()
            raise
        nested.commit()

    @contextmanager
    @translated("a transaction on the book inside the host's")
    def transaction(self) -> Iterator[_SqlTx]:
        with self._savepoint() as conn:
            tx = _SqlTx(conn, self._models, None, edge=self._edge)
            try:
                yield tx
                tx.flush()
            finally:
                tx._end()

    @contextmanager
    def _outbox_tx(self) -> Iterator[Connection]:
        with self._savepoint(writer=False) as conn:
            yield conn

    @contextmanager
    def staging(self) -> Iterator[_SqlTx]:
        raise RunNeedsOwnTransaction(
            "a run in several processes cannot share the host's transaction: each process "
            "writes in a transaction of its own. Run it with workers=1 inside the host's "
            "transaction, or on the book's own transaction: Engine(Ledger(url), pack, "
            "workers=...).run(as_of)"
        )
        yield  # pragma: no cover

    def close(self) -> None:
        """Nothing to close: the connection is the host's."""

    # -- after the host's commit ------------------------------------------------------------------
    def after_commit(self, deliver: Callable[[], None]) -> None:
        """Call ``deliver`` once the host's transaction commits (never if it rolls back).
        With a Session that is at its commit; with a Connection, when the host calls
        :meth:`notify_committed` after it (SQLAlchemy tells a Connection's listeners of a
        commit before the database has made it)."""
        self._pending.append((self._host_transaction(), deliver))

    def _host_transaction(self) -> Any:
        """What a rollback of the host's may undo: its innermost open transaction (Session)
        or the names of its open savepoints (Connection)."""
        if self._session is not None:
            return self._session.get_nested_transaction() or self._session.get_transaction()
        names: set[str] = set()
        nested: Any = self._conn.get_nested_transaction()  # type: ignore[union-attr]
        while nested is not None:
            names.add(str(getattr(nested, "_savepoint", "")))
            nested = getattr(nested, "_previous_nested", None)
        return frozenset(names)

    def _listen(self) -> None:
        if self._session is not None:
            sa.event.listen(self._session, "after_commit", self._session_committed)
            sa.event.listen(self._session, "after_soft_rollback", self._session_rolled_back)
        else:
            conn = self._conn
            sa.event.listen(conn, "commit", self._connection_committing)
            sa.event.listen(conn, "rollback", self._connection_rolled_back)
            sa.event.listen(conn, "rollback_savepoint", self._savepoint_rolled_back)
            sa.event.listen(conn, "begin", self._connection_begun)

    def _session_committed(self, session: Session) -> None:
        current = session._transaction  # the one committing: a savepoint, or the root
        if current is not None and current.nested:
            return  # a savepoint released: what it holds waits for the outer commit
        pending, self._pending = self._pending, []
        for _where, deliver in pending:
            deliver()

    def _session_rolled_back(self, session: Session, previous: SessionTransaction) -> None:
        def undone(where: Any) -> bool:
            while where is not None:
                if where is previous:
                    return True
                where = where.parent
            return False

        self._pending = [(w, d) for w, d in self._pending if not undone(w)]

    def _connection_committing(self, conn: Connection) -> None:
        self._committed.extend(d for _w, d in self._pending)
        self._pending = []

    def _connection_rolled_back(self, conn: Connection) -> None:
        self._pending = []

    def _savepoint_rolled_back(self, conn: Connection, name: str, context: Any) -> None:
        self._pending = [(w, d) for w, d in self._pending if name not in w]

    def _connection_begun(self, conn: Connection) -> None:
        self._committed = []  # a commit the host did not report (it failed, or was forgotten)

    def notify_committed(self) -> None:
        """Deliver the notices of the host's transaction that committed last (a store over a
        ``Connection``: the host calls this after its commit; over a Session it is done at
        the commit)."""
        committed, self._committed = self._committed, []
        for deliver in committed:
            deliver()


def _failed_in_database(conn: Connection) -> bool:
    """Whether PostgreSQL holds the connection's transaction as failed (a statement raised
    and no savepoint caught it): every statement would be refused until a rollback."""
    if conn.dialect.name != "postgresql":
        return False
    driver: Any = conn.connection.driver_connection
    info = getattr(driver, "info", None)  # psycopg 3
    if info is not None:
        return bool(getattr(info.transaction_status, "name", "") == "INERROR")
    status = getattr(driver, "get_transaction_status", None)  # psycopg2
    return status is not None and status() == 3  # TRANSACTION_STATUS_INERROR
