"""arflow inside the host's transaction (issue 16, item 1): a ``Ledger`` on the host's
SQLAlchemy ``Connection`` or ORM ``Session`` writes in the host's transaction, so the host's
own rows and arflow's events, audit, decisions and outbox rows commit together or not at
all; a refused event undoes only its own savepoint and leaves the host's transaction
usable; a joined store never migrates; bad input raises a specific error.

On an SQLite file and on PostgreSQL (its own schema per test)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from arflow import (
    Contact,
    CreditProfile,
    Customer,
    CustomerRegistered,
    Engine,
    InvoiceIssued,
    Ledger,
    Money,
    OrderSubmitted,
)
from arflow.errors import (
    ArflowError,
    HostTransactionFailed,
    RunNeedsOwnTransaction,
    SchemaTooNew,
    SchemaTooOld,
    UnknownObject,
    UnsupportedDatabase,
)
from arflow.rules.loader import load_pack
from arflow.store.sql import SCHEMA, SCHEMA_VERSION, SqlStore, prepare_sqlite

from .conftest import _drop_schema, _postgres_engine

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
T = datetime(2026, 3, 5, 11, tzinfo=UTC)

HOST = sa.MetaData()
HOST_INVOICE = sa.Table(
    "host_invoice",
    HOST,
    sa.Column("number", sa.String(40), primary_key=True),
    sa.Column("amount", sa.Numeric(18, 2), nullable=False),
)


class HostInvoice:
    """The host's ORM model of its invoice row."""

    def __init__(self, number: str, amount: object) -> None:
        self.number, self.amount = number, amount


sa.orm.registry().map_imperatively(HostInvoice, HOST_INVOICE)


def make_host(
    kind: str, tmp_path: Path, *, prepared: bool = False
) -> tuple[sa.Engine, Callable[[], None]]:
    """An engine of the host's on a database holding arflow's schema (made by opening the
    book once, as a deployment does) and the host's own table. SQLite: the host's engine
    is a plain one, pysqlite's own transactions, nothing of arflow's set on it, unless
    ``prepared`` (``prepare_sqlite``: what the host's own savepoints need)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / f'host-{uuid.uuid4().hex[:6]}.db'}"
        SqlStore(url).close()
        engine = sa.create_engine(url)
        if prepared:
            prepare_sqlite(engine)
        HOST.create_all(engine)
        return engine, engine.dispose
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = _postgres_engine(schema)
    SqlStore(engine)  # migrates; the engine stays the host's
    HOST.create_all(engine)

    def done() -> None:
        engine.dispose()
        _drop_schema(schema)

    return engine, done


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    engine, done = make_host(str(request.param), tmp_path)
    yield engine
    done()


def registered(cid: str = "C1") -> CustomerRegistered:
    return CustomerRegistered(
        event_id=f"reg-{cid}",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        actor="crm",
        customer=Customer(
            id=cid,
            name=f"Customer {cid}",
            salesperson="li.wei",
            sales_manager="zhang.min",
            contacts=[Contact(name="Wang", email="ap@c1.example")],
            credit=CreditProfile(
                grade="B", credit_limit=Money.of(100_000, "CNY"), payment_terms_days=30
            ),
        ),
    )


def issued(number: str, customer: str = "C1", amount: str = "100.00") -> InvoiceIssued:
    return InvoiceIssued(
        event_id=f"erp:{number}",
        occurred_at=T,
        actor="erp",
        number=number,
        customer_id=customer,
        issue_date=date(2026, 3, 5),
        due_date=date(2026, 4, 4),
        amount=Money.of(amount, "CNY"),
    )


def submitted() -> OrderSubmitted:
    """An order over the pack's ceiling: rejected at entry, with a lock placed and lifted."""
    return OrderSubmitted(
        event_id="submit-SO-1",
        occurred_at=T,
        actor="sales",
        order_id="SO-1",
        customer_id="C1",
        amount=Money.of(160_000, "CNY"),
        submitted_on=T.date(),
    )


def post_invoice(conn: sa.Connection, book: Ledger, number: str, amount: str = "100.00") -> None:
    """What the host does: its own invoice row, and the matching event, in its transaction."""
    conn.execute(HOST_INVOICE.insert().values(number=number, amount=amount))
    book.apply(issued(number, amount=amount))


def host_rows(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(HOST_INVOICE.c.number)).scalars())


@contextmanager
def reader(engine: sa.Engine) -> Iterator[SqlStore]:
    """The committed book, read by a store of its own, on connections of its own (an SQLite
    store of its own engine: arflow's pragmas stay off the host's)."""
    if engine.dialect.name == "sqlite":
        store = SqlStore(engine.url.render_as_string(hide_password=False), upgrade=False)
    else:
        store = SqlStore(engine, upgrade=False)
    try:
        yield store
    finally:
        if engine.dialect.name == "sqlite":
            store.close()


def committed(engine: sa.Engine) -> tuple[list[str], list[str]]:
    """The host's invoice numbers and arflow's logged event ids, as committed."""
    with reader(engine) as store:
        events = sorted(str(json.loads(body)["event_id"]) for _t, body in store.event_log())
    return host_rows(engine), events


def setup_customer(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        Ledger(conn).apply(registered())


# -- commit and rollback with the host ------------------------------------------------------------
def test_connection_commit_keeps_both_and_rollback_neither(host: sa.Engine) -> None:
    setup_customer(host)
    with host.connect() as conn:
        book = Ledger(conn)
        with conn.begin() as tx:
            post_invoice(conn, book, "INV-1")
            tx.rollback()
        assert committed(host) == ([], ["reg-C1"])
        with conn.begin():
            post_invoice(conn, book, "INV-2")
            # arflow sees its own uncommitted write through the host's connection
            assert book.receivable("INV-2").open_balance == Money.of("100.00", "CNY")
            assert committed(host) == ([], ["reg-C1"])  # nobody else does yet
    assert committed(host) == (["INV-2"], ["erp:INV-2", "reg-C1"])


def test_session_commit_keeps_both_and_rollback_neither(host: sa.Engine) -> None:
    setup_customer(host)
    with Session(host) as session:
        book = Ledger(session)
        session.execute(HOST_INVOICE.insert().values(number="INV-1", amount="1.00"))
        book.apply(issued("INV-1"))
        session.rollback()
        assert committed(host) == ([], ["reg-C1"])
        session.execute(HOST_INVOICE.insert().values(number="INV-2", amount="1.00"))
        book.apply(issued("INV-2"))
        session.commit()
    assert committed(host) == (["INV-2"], ["erp:INV-2", "reg-C1"])


def test_a_crash_between_the_hosts_write_and_its_commit_leaves_nothing(host: sa.Engine) -> None:
    setup_customer(host)

    class Crash(Exception):
        pass

    with pytest.raises(Crash), host.begin() as conn:
        post_invoice(conn, Ledger(conn), "INV-1")
        raise Crash("the host dies before its commit")
    assert committed(host) == ([], ["reg-C1"])
    with reader(host) as store:
        assert store.audit_trail("receivable", "INV-1") == []


def test_a_refused_event_leaves_the_hosts_transaction_usable(host: sa.Engine) -> None:
    setup_customer(host)
    with host.begin() as conn:
        book = Ledger(conn)
        post_invoice(conn, book, "INV-1")
        conn.execute(HOST_INVOICE.insert().values(number="INV-X", amount="5.00"))
        with pytest.raises(UnknownObject):
            book.apply(issued("INV-X", customer="NOBODY"))
        with pytest.raises(ArflowError):  # a duplicate invoice number: refused as well
            book.apply(issued("INV-1").model_copy(update={"event_id": "erp:again"}))
        post_invoice(conn, book, "INV-2")  # the host and arflow go on in the same tx
    assert committed(host) == (
        ["INV-1", "INV-2", "INV-X"],
        ["erp:INV-1", "erp:INV-2", "reg-C1"],
    )


def test_engine_handle_and_the_refusals_audit_in_the_hosts_transaction(host: sa.Engine) -> None:
    setup_customer(host)
    pack = load_pack(RULES)
    with host.connect() as conn:
        engine = Engine(Ledger(conn), pack)
        with conn.begin() as tx:
            _applied, ds = engine.handle(submitted())
            assert [d.kind for d in ds] == ["approval", "lock", "unlock"]
            tx.rollback()
        with reader(host) as store:
            assert store.get("order", "SO-1") is None
            assert store.decisions() == [] and store.outbox() == []
        with conn.begin():
            engine.handle(submitted())
            bad = submitted().model_copy(
                update={"event_id": "submit-SO-2", "order_id": "SO-2", "customer_id": "NOBODY"}
            )
            with pytest.raises(UnknownObject):
                engine.handle(bad)
            # the refusal's audit record is written in a savepoint after the refusal
            refused = engine.ledger.audit_trail("order", "SO-2")
            assert [a.refused for a in refused] == ["UnknownObject"]
    with reader(host) as store:
        assert store.get("order", "SO-1").state == "rejected"
        assert len(store.decisions()) == 3 and len(store.outbox()) == 2
        assert [a.refused for a in store.audit_trail("order", "SO-2")] == ["UnknownObject"]


def test_bulk_paths_in_the_hosts_transaction(host: sa.Engine) -> None:
    setup_customer(host)
    pack = load_pack(RULES)
    with host.connect() as conn:
        book = Ledger(conn)
        with conn.begin() as tx:
            assert book.apply_all([issued(f"INV-{i}") for i in range(5)]) == 5
            Engine(book, pack).run(date(2026, 5, 20))
            tx.rollback()
        with reader(host) as store:
            assert store.event_count() == 1 and store.runs() == []
            assert store.decisions() == []
        with conn.begin():
            book.apply_all([issued(f"INV-{i}") for i in range(5)])
            result = Engine(book, pack).run(date(2026, 5, 20))
            assert result.recorded > 0
            logged = book.store.event_count()
        with pytest.raises(RunNeedsOwnTransaction, match="workers=1"):
            Engine(book, pack, workers=2).run(date(2026, 5, 21))
        conn.rollback()
    with reader(host) as store:
        assert store.event_count() == logged and len(store.runs()) == 1
        assert len(store.find("receivable", customer_id="C1")) == 5
        assert len(store.decisions()) == result.recorded + result.skipped


# -- what the host passes in ------------------------------------------------------------------------
def test_a_joined_store_never_migrates(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with engine.connect() as conn:
        with pytest.raises(SchemaTooOld, match="arflow db upgrade"):
            Ledger(conn).apply(registered())
        conn.rollback()
        assert not sa.inspect(conn).has_table("ar_event")
    engine.dispose()


def test_a_schema_newer_or_older_than_the_code(host: sa.Engine) -> None:
    with host.begin() as conn:
        conn.execute(SCHEMA.insert().values(version=SCHEMA_VERSION + 1))
    with host.connect() as conn:
        with pytest.raises(SchemaTooNew, match="upgrade arflow"):
            Ledger(conn).apply(registered())
        conn.rollback()
    with host.begin() as conn:
        conn.execute(sa.delete(SCHEMA).where(SCHEMA.c.version >= SCHEMA_VERSION))
    outdated = pytest.raises(SchemaTooOld, match=f"version {SCHEMA_VERSION - 1}")
    with Session(host) as session, outdated:
        Ledger(session).get("customer", "C1")


def test_a_session_in_a_failed_transaction(host: sa.Engine) -> None:
    setup_customer(host)
    with Session(host) as session:
        book = Ledger(session)
        book.apply(issued("INV-1"))
        session.execute(HOST_INVOICE.insert().values(number="A", amount="1.00"))
        with pytest.raises(sa.exc.IntegrityError):
            session.execute(HOST_INVOICE.insert().values(number="A", amount="1.00"))
        if host.dialect.name == "postgresql":  # the database holds the transaction failed
            with pytest.raises(HostTransactionFailed, match="roll it back"):
                book.apply(issued("INV-2"))
        session.rollback()
        book.apply(issued("INV-3"))
        session.commit()
    assert committed(host) == ([], ["erp:INV-3", "reg-C1"])


def test_a_session_whose_flush_failed(host: sa.Engine) -> None:
    setup_customer(host)
    with host.begin() as conn:
        conn.execute(HOST_INVOICE.insert().values(number="B", amount=1))
    with Session(host) as session:
        session.add(HostInvoice(number="B", amount=2))
        with pytest.raises(sa.exc.IntegrityError):
            session.flush()
        with pytest.raises(HostTransactionFailed, match="Session is in a failed transaction"):
            Ledger(session).apply(issued("INV-1"))
    assert committed(host) == (["B"], ["reg-C1"])


@pytest.mark.postgres
def test_a_connection_in_a_failed_transaction_on_postgresql(tmp_path: Path) -> None:
    engine, done = make_host("postgres", tmp_path)
    try:
        with engine.connect() as conn:
            book = Ledger(conn)
            conn.begin()
            with pytest.raises(sa.exc.ProgrammingError):
                conn.execute(sa.text("SELECT * FROM no_such_table"))
            with pytest.raises(HostTransactionFailed, match="roll it back"):
                book.apply(registered())
            conn.rollback()
            with conn.begin():
                book.apply(registered())
        assert committed(engine) == ([], ["reg-C1"])
    finally:
        done()


def test_a_connection_of_another_database() -> None:
    other = sa.create_mock_engine("mysql+pymysql://", lambda *a, **k: None)
    with pytest.raises(UnsupportedDatabase, match="'mysql'"):
        prepare_sqlite(other)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedDatabase, match="'mysql'"):
        Ledger(other)
    with pytest.raises(UnsupportedDatabase, match="'mysql'"):
        Ledger(Session(other))  # type: ignore[arg-type]


@pytest.mark.postgres
def test_the_writer_lock_is_held_until_the_host_commits(tmp_path: Path) -> None:
    """A second writer waits for the host's transaction, not for arflow's savepoint:
    checked without timing, by asking PostgreSQL whether the advisory lock is free."""
    engine, done = make_host("postgres", tmp_path)
    probe = "SELECT pg_try_advisory_xact_lock(hashtext('arflow:' || current_schema()))"
    try:
        with engine.connect() as conn, engine.connect() as other:
            with conn.begin():
                Ledger(conn).apply(registered())
                with other.begin():
                    assert other.execute(sa.text(probe)).scalar() is False
            with other.begin():
                assert other.execute(sa.text(probe)).scalar() is True
    finally:
        done()


# -- an invariant over many host transactions ------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_book_holds_exactly_the_committed_transactions(kind: str, tmp_path: Path) -> None:
    engine, done = make_host(kind, tmp_path)
    setup_customer(engine)
    numbers = iter(range(10**6))

    @settings(
        max_examples=15 if kind == "sqlite" else 8,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        st.lists(
            st.tuples(st.integers(1, 3), st.sampled_from(["commit", "rollback", "crash"])),
            min_size=1,
            max_size=5,
        )
    )
    def check(txs: list[tuple[int, str]]) -> None:
        expected_hosts, expected_events = committed(engine)
        with Session(engine) as session:
            book = Ledger(session)
            for n, end in txs:
                made = [f"N-{next(numbers)}" for _ in range(n)]
                try:
                    with session.begin():
                        for number in made:
                            session.execute(HOST_INVOICE.insert().values(number=number, amount=1))
                            book.apply(issued(number, amount="1.00"))
                        if end == "crash":
                            raise KeyError(end)
                        if end == "rollback":
                            session.rollback()
                except KeyError:
                    pass
                if end == "commit":
                    expected_hosts += made
                    expected_events += [f"erp:{m}" for m in made]
        assert committed(engine) == (sorted(expected_hosts), sorted(expected_events))
        with reader(engine) as store:
            held = sorted(r.id for r in store.find("receivable", customer_id="C1"))
        assert held == sorted(expected_hosts)

    try:
        check()
    finally:
        done()


def test_one_store_per_session_or_connection(host: sa.Engine) -> None:
    """Ledgers made per request on one long-lived session or connection share its joined
    store (and add no listeners to it each time); a new checkout gets a new one."""
    with Session(host) as session:
        first, second = Ledger(session), Ledger(session)
        assert first.store is second.store
        assert first.subscribers is not second.subscribers
    with host.connect() as conn:
        store = Ledger(conn).store
        assert Ledger(conn).store is store
    with host.connect() as conn:
        assert Ledger(conn).store is not store


def test_sqlite_arflow_begins_the_hosts_transaction_and_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    """pysqlite begins a transaction lazily, at the host's first write: when arflow writes
    first, it begins the host's transaction itself (``BEGIN IMMEDIATE``), so its savepoint
    does not commit at its release, and the write lock is held until the host ends."""
    engine, done = make_host("sqlite", tmp_path)
    try:
        setup_customer(engine)
        path = engine.url.database
        with engine.connect() as conn:
            conn.execute(sa.select(HOST_INVOICE)).all()  # the host only read so far
            Ledger(conn).apply(issued("INV-1"))
            other = sqlite3.connect(str(path), timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
                conn.rollback()
                other.execute("BEGIN IMMEDIATE")  # free once the host's transaction ended
                other.execute("ROLLBACK")
            finally:
                other.close()
        assert committed(engine) == ([], ["reg-C1"])
    finally:
        done()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_hosts_own_savepoints(kind: str, tmp_path: Path) -> None:
    """arflow's work in a savepoint of the host's goes with it: rolled back with it, kept
    when it is released and the host commits (SQLite: on a prepared engine; pysqlite's own
    transactions break savepoints, arflow's and the host's alike)."""
    engine, done = make_host(kind, tmp_path, prepared=True)
    try:
        setup_customer(engine)
        with Session(engine) as session:
            book = Ledger(session)
            with session.begin_nested() as savepoint:
                session.execute(HOST_INVOICE.insert().values(number="INV-1", amount=1))
                book.apply(issued("INV-1"))
                savepoint.rollback()
            with session.begin_nested():
                session.execute(HOST_INVOICE.insert().values(number="INV-2", amount=1))
                book.apply(issued("INV-2"))
            assert book.store.get("receivable", "INV-1") is None
            session.commit()
        assert committed(engine) == (["INV-2"], ["erp:INV-2", "reg-C1"])
    finally:
        done()


def test_every_read_goes_through_the_hosts_connection(host: sa.Engine) -> None:
    """The store's reads (streamed ones included) see the host's uncommitted work, and
    leave the host's connection as it was (no execution option left on it)."""
    setup_customer(host)
    with host.connect() as conn, conn.begin():
        book = Ledger(conn)
        book.apply_all([issued(f"INV-{i}") for i in range(3)])
        store = book.store
        assert [r.id for r in store.all("receivable")] == ["INV-0", "INV-1", "INV-2"]
        assert [t for t, _b in store.event_log()][-3:] == ["InvoiceIssued"] * 3
        assert len(list(store.movements())) == 3
        assert store.find_due(date(2026, 4, 1), date(2026, 4, 30), ["open"])
        assert len(store.receivable_summaries(["C1"])["C1"]) == 3
        assert store.customers_changed_since(0) == {"C1"}
        assert set(store.get_many("receivable", ["INV-0", "INV-9"])) == {"INV-0"}
        assert "yield_per" not in conn.get_execution_options()
    assert committed(host)[1] == ["erp:INV-0", "erp:INV-1", "erp:INV-2", "reg-C1"]


#: The host's process: its invoice row and arflow's event in one transaction, then it dies
#: (``os._exit``: no rollback, no cleanup) before the commit.
DYING_HOST = """
import os, sys
from datetime import UTC, date, datetime
import sqlalchemy as sa
from arflow import InvoiceIssued, Ledger, Money

url, search_path = sys.argv[1], sys.argv[2]
args = {"options": f"-csearch_path={search_path}"} if search_path else {}
engine = sa.create_engine(url, connect_args=args)
conn = engine.connect()
conn.begin()
conn.execute(sa.text("INSERT INTO host_invoice (number, amount) VALUES ('INV-K', 5)"))
Ledger(conn).apply(InvoiceIssued(
    event_id="erp:INV-K", occurred_at=datetime(2026, 3, 5, tzinfo=UTC), actor="erp",
    number="INV-K", customer_id="C1", issue_date=date(2026, 3, 5),
    due_date=date(2026, 4, 4), amount=Money.of("5.00", "CNY"),
))
print("written", flush=True)
os._exit(3)
"""


def test_a_host_killed_before_its_commit_leaves_nothing(host: sa.Engine) -> None:
    setup_customer(host)
    url = host.url.render_as_string(hide_password=False)
    search_path = ""
    if host.dialect.name == "postgresql":
        with host.connect() as conn:
            search_path = str(conn.execute(sa.text("SELECT current_schema()")).scalar())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    done = subprocess.run(
        [sys.executable, "-c", DYING_HOST, url, search_path],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3 and done.stdout.decode().strip() == "written", done.stderr
    assert committed(host) == ([], ["reg-C1"])
    with host.begin() as conn:  # and the book takes the same event afterwards, once
        post_invoice(conn, Ledger(conn), "INV-K", "5.00")
    assert committed(host) == (["INV-K"], ["erp:INV-K", "reg-C1"])
