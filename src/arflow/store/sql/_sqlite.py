"""What only SQLite needs: its connection pragmas, ``BEGIN IMMEDIATE`` for writers, and the
thread that checkpoints an SQLite file's WAL after a commit that deferred it."""

from __future__ import annotations

import sqlite3
import threading
import urllib.parse
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine


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


def _sqlite_begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def prepare_sqlite(engine: Engine, *, immediate: bool = True) -> Engine:
    """Make a host's SQLite engine transactional the way arflow (and savepoints) need, and
    return it: every transaction begins with ``BEGIN`` when SQLAlchemy begins it (pysqlite
    begins lazily, at the first write, and a SAVEPOINT outside a transaction commits at
    its release), ``BEGIN IMMEDIATE`` unless ``immediate`` is False, so a transaction that
    reads before it writes holds the write lock from its start; new connections get
    arflow's pragmas (WAL, a busy timeout). Call it once, right after ``create_engine``.
    A PostgreSQL engine is returned as it is; another database raises
    :class:`~arflow.errors.UnsupportedDatabase`."""
    name = engine.dialect.name
    if name == "postgresql":
        return engine
    if name != "sqlite":
        from ...errors import UnsupportedDatabase

        raise UnsupportedDatabase(
            f"cannot prepare a {name!r} engine: arflow keeps its book in SQLite or PostgreSQL"
        )
    if not sa.event.contains(engine, "connect", _sqlite_connect):
        sa.event.listen(engine, "connect", _sqlite_connect)
    for begin in (_sqlite_begin, _sqlite_begin_immediate):
        if sa.event.contains(engine, "begin", begin):
            sa.event.remove(engine, "begin", begin)
    sa.event.listen(engine, "begin", _sqlite_begin_immediate if immediate else _sqlite_begin)
    return engine


def _sqlite_setup(engine: Engine) -> None:
    """Writers take SQLite's write lock at BEGIN (not at their first write), so the
    read-validate-write of an event cannot interleave with another writer."""
    if not sa.event.contains(engine, "connect", _sqlite_connect):
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)


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
