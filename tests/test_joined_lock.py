"""A book joined to the host's connection takes the same writer lock as a book opened on
arflow's own schema, wherever the host's search path puts arflow's tables (PostgreSQL).

The host's tables first on the search path and arflow's in a schema of their own
(``search_path=erp,arflow``) is a natural layout for a host; the daily run then opens the book
by URL with ``arflow_schema=arflow``. Both must take one lock, or a joined writer and the
run would record at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from arflow import Contact, CreditProfile, Customer, CustomerRegistered, Ledger, Money
from arflow.store.sql import SqlStore, upgrade

from .conftest import POSTGRES_URL, _drop_schema, _postgres_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def schemas() -> Iterator[tuple[str, str]]:
    host, book = f"h_{uuid.uuid4().hex[:10]}", f"a_{uuid.uuid4().hex[:10]}"
    _postgres_engine(host).dispose()  # skips (or fails in CI) without PostgreSQL
    yield host, book
    _drop_schema(host)
    _drop_schema(book)


def registered() -> CustomerRegistered:
    return CustomerRegistered(
        event_id="crm:C1",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        actor="crm",
        customer=Customer(
            id="C1",
            name="ACME",
            salesperson="li.wei",
            contacts=[Contact(name="AP", email="ap@acme.example")],
            credit=CreditProfile(grade="B", credit_limit=Money.of(1000, "CNY")),
        ),
    )


def test_a_joined_writer_holds_the_lock_of_arflows_own_schema(schemas: tuple[str, str]) -> None:
    host, book = schemas
    upgrade(POSTGRES_URL, schema=book)
    db = sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={host},{book}"})
    other = sa.create_engine(POSTGRES_URL)
    try:
        with db.connect() as conn, conn.begin():
            Ledger(conn).apply(registered())  # into arflow's tables, found on the search path
            assert conn.execute(sa.text("SELECT count(*) FROM ar_customer")).scalar() == 1
            with other.connect() as probe:  # what a book opened with arflow_schema takes
                free = probe.execute(
                    sa.text("SELECT pg_try_advisory_xact_lock(hashtext('arflow:' || :s))"),
                    {"s": book},
                ).scalar()
                probe.rollback()
            assert free is False, "the joined writer does not hold arflow's schema's lock"
        store = SqlStore(POSTGRES_URL, schema=book, upgrade=False)
        try:
            assert Ledger(store).get("customer", "C1") is not None
        finally:
            store.close()
    finally:
        db.dispose()
        other.dispose()


def test_a_book_opened_on_such_a_search_path_takes_the_same_lock(
    schemas: tuple[str, str],
) -> None:
    """The same layout, the book opened by its engine without naming arflow's schema: its
    writers too take the lock of the schema that holds the tables, not the search path's
    first."""
    host, book = schemas
    upgrade(POSTGRES_URL, schema=book)
    db = sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={host},{book}"})
    other = sa.create_engine(POSTGRES_URL)
    store = SqlStore(db, upgrade=False)
    try:
        with store.transaction() as tx:
            assert tx.get("customer", "C1") is None
            with other.connect() as probe:
                free = probe.execute(
                    sa.text("SELECT pg_try_advisory_xact_lock(hashtext('arflow:' || :s))"),
                    {"s": book},
                ).scalar()
                probe.rollback()
            assert free is False, "the book's writer does not hold arflow's schema's lock"
    finally:
        store.close()
        other.dispose()
