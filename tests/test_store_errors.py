"""The SQL store's edge: database failures leave it as ``StoreError`` (``StoreUnavailable``
when the database cannot be reached), saying what failed, with the driver's exception as
``__cause__`` and never the URL's password."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from arflow import open_store
from arflow.errors import StoreError, StoreUnavailable, ValidationError
from arflow.store import Store
from arflow.store.base import OutboxRecord
from arflow.store.sql import SqlStore, migrate

SQL_BACKENDS = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
PASSWORD = "s3cret-pw"


def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_postgresql_is_unavailable_on_open() -> None:
    url = f"postgresql+psycopg://bob:{PASSWORD}@127.0.0.1:{closed_port()}/book"
    with pytest.raises(StoreUnavailable) as info:
        open_store(url)
    assert isinstance(info.value.__cause__, sa.exc.OperationalError)
    assert PASSWORD not in str(info.value)
    assert "opening the book failed (postgresql+psycopg://bob:***@127.0.0.1:" in str(info.value)


def test_an_unparsable_url_does_not_show_its_password() -> None:
    with pytest.raises(StoreError) as info:
        SqlStore(f"postgresql+psycopg://bob:{PASSWORD}@host:port-is-not-a-number/db")
    assert PASSWORD not in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg//bob:{PASSWORD}@host/db",  # no "://"
        f"postgresql+psycopg://bob:{PASSWORD}@host/db?connect_timeout=" + "x" * 3,
        f"nosuchdb://bob:{PASSWORD}@host/db",
    ],
)
def test_no_refused_url_shows_its_password(url: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert PASSWORD not in str(info.value)


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "book.db"
    path.write_bytes(b"these are not the pages of an SQLite database\n" * 200)
    with pytest.raises(StoreError, match="opening the book failed") as info:
        SqlStore(f"sqlite:///{path}")
    assert not isinstance(info.value, StoreUnavailable)  # the file is there: it is not a book
    assert isinstance(info.value.__cause__, sa.exc.DatabaseError)


def test_a_directory_that_does_not_exist_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as info:
        SqlStore(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'book.db'}")
    assert isinstance(info.value.__cause__, sa.exc.OperationalError)


@SQL_BACKENDS
def test_a_constraint_violation_at_commit_is_a_store_error(
    store_factory: Callable[[], Store],
) -> None:
    store = store_factory()
    with store.transaction() as tx:
        tx.add_event("e-1", "Note", "{}")
    # a second writer logging the same id (no read first): refused at the commit's flush
    second = store.transaction()
    with pytest.raises(StoreError, match="changes failed") as info, second as tx:
        tx.add_event("e-1", "Note", "{}")
    assert isinstance(info.value.__cause__, sa.exc.IntegrityError)
    assert store.event_count() == 1  # rolled back, and the store still works


@SQL_BACKENDS
def test_a_flush_inside_the_transaction_is_translated(store_factory: Callable[[], Store]) -> None:
    store = store_factory()
    with store.transaction() as tx:
        tx.add_event("e-1", "Note", "{}")
    second = store.transaction()
    with pytest.raises(StoreError, match="changes failed") as info, second as tx:
        tx.add_event("e-1", "Note", "{}")
        tx.flush()
    assert isinstance(info.value.__cause__, sa.exc.IntegrityError)


@SQL_BACKENDS
def test_reads_and_the_outbox_are_translated(store_factory: Callable[[], Store]) -> None:
    store = store_factory()
    assert isinstance(store, SqlStore)
    with store.engine.begin() as conn:  # a book someone damaged
        conn.execute(sa.text("DROP TABLE ar_customer"))
        conn.execute(sa.text("DROP TABLE ar_outbox"))
    with pytest.raises(StoreError, match="reading an object failed") as info:
        store.get("customer", "C1")
    assert isinstance(info.value.__cause__, sa.exc.DBAPIError)
    with pytest.raises(StoreError, match="reading every object of a kind failed"):
        list(store.all("customer"))  # a generator: translated as it is read
    with pytest.raises(StoreError, match="claiming outbox actions failed"):
        store.outbox_claim("w", 0, 10, 1_000_000)
    with pytest.raises(StoreError, match="counting the outbox failed"):
        store.outbox_counts()


@SQL_BACKENDS
def test_a_driver_error_inside_the_block_leaves_it_translated(
    store_factory: Callable[[], Store],
) -> None:
    """The ledger's per-object reads inside a transaction keep the driver's error (handlers
    refuse events with ArflowError; a broken database is no refusal); the block's edge
    translates it."""
    store = store_factory()
    assert isinstance(store, SqlStore)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE ar_customer"))
    block = store.transaction()
    with pytest.raises(StoreError, match="a transaction on the book failed") as info, block as tx:
        try:
            tx.get("customer", "C1")
        except StoreError:  # pragma: no cover - what the test rules out
            pytest.fail("per-object reads inside the block are not translated")
    assert isinstance(info.value.__cause__, sa.exc.DBAPIError)


@SQL_BACKENDS
def test_arflow_errors_pass_the_edge_untouched(store_factory: Callable[[], Store]) -> None:
    store = store_factory()
    with pytest.raises(ValidationError, match="refused"), store.transaction():
        raise ValidationError("refused")


def test_a_locked_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "book.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    store = SqlStore(engine)
    # wait 50 ms for the lock, not the store's 30 s (listeners run in order: after the store's)
    sa.event.listen(engine, "connect", lambda c, _r: c.execute("PRAGMA busy_timeout=50"))
    engine.dispose()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the book
        with pytest.raises(StoreError, match="locked") as info, store.transaction() as tx:
            tx.add_event("e-1", "Note", "{}")
        assert not isinstance(info.value, StoreUnavailable)
        assert isinstance(info.value.__cause__, sa.exc.OperationalError)
        record = OutboxRecord(key="k", channel="email", customer_id="C1", body="{}")
        with pytest.raises(StoreError, match="retrying dead letters failed"):
            store.outbox_retry([record.key], 0)
    finally:
        other.rollback()
        other.close()
    with store.transaction() as tx:  # released: the store goes on
        tx.add_event("e-1", "Note", "{}")
    assert store.event_count() == 1
    store.close()


def test_migrate_translates_too(tmp_path: Path) -> None:
    path = tmp_path / "book.db"
    path.write_bytes(b"\x00garbage" * 1000)
    engine = sa.create_engine(f"sqlite:///{path}")
    with pytest.raises(StoreError, match="opening the book failed"):
        migrate(engine)
    engine.dispose()
