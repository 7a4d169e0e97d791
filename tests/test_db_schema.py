"""One database, two owners (issue 16 item 2): arflow's tables in a PostgreSQL schema of
their own, its upgrades run from the host's deployment (``upgrade``, ``arflow db``), a
store opened without upgrading refusing a schema of another version, and the host's
Alembic autogenerate leaving arflow's tables alone (``alembic_include_object``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import arflow.engine._parallel as planner
from arflow import Dispatcher, Ledger, MemoryAdapter, Money, OrderSubmitted, dump_book
from arflow.analytics import build_report, forecasts
from arflow.cli import main
from arflow.engine import Engine
from arflow.errors import SchemaNotSupported, SchemaTooNew, SchemaTooOld, StoreError
from arflow.store.sql import (
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    TABLE_NAMES,
    SqlStore,
    alembic_include_object,
    metadata,
    schema_version,
    upgrade,
)
from arflow.testing import BookBuilder

from .conftest import POSTGRES_URL, service_unavailable
from .test_engine_workers import DAYS, RULES, build


@pytest.fixture
def pg_schemas() -> Iterator[Callable[[], str]]:
    """Fresh schema names in the test database (dropped afterwards, whether arflow or the
    test created them)."""
    names: list[str] = []
    try:
        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:
        service_unavailable("PostgreSQL", POSTGRES_URL, exc)

    def make() -> str:
        names.append(f"arflow_x_{uuid.uuid4().hex[:10]}")
        return names[-1]

    yield make
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    admin.dispose()


def _url(search_path: str, **query: str) -> str:
    """The test database's URL whose connections' search path is ``search_path``, with
    ``query`` added (``arflow_schema=...``)."""
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{search_path}{extra}"


def _tables(engine: sa.Engine, schema: str) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names(schema=schema))


# -- a whole book in a schema of its own ----------------------------------------------------


@pytest.mark.postgres
def test_a_whole_book_lives_in_its_schema_beside_same_named_host_tables(
    pg_schemas: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host's schema (its connections' search path) holds tables under every one of
    arflow's names; the book, in schema ``arflow_x_...``, is applied, run (in two
    processes), dispatched and reported on without reading or writing a row of them."""
    started: list[Any] = []
    real = planner.start
    monkeypatch.setattr(planner, "start", lambda spec: started.append(spec) or real(spec))
    host, ax = pg_schemas(), pg_schemas()
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{host}"'))
    host_db = sa.create_engine(_url(host))
    host_md = sa.MetaData()
    for name in sorted(TABLE_NAMES):  # the host's own tables, under arflow's names
        sa.Table(name, host_md, sa.Column("host_id", sa.Integer, primary_key=True))
    host_md.create_all(host_db)
    with host_db.begin() as conn:
        for t in host_md.sorted_tables:
            conn.execute(t.insert().values(host_id=7))

    ledger = Ledger(_url(host, arflow_schema=ax))  # the URL names arflow's schema
    store = ledger.store
    assert isinstance(store, SqlStore) and store.schema == ax
    assert f"arflow_schema={ax}" in store.url  # as messages show it
    try:
        assert _tables(admin, ax) == TABLE_NAMES
        build(BookBuilder(ledger), customers=6)
        engine = Engine(ledger, RULES, workers=2)
        engine.helpers_from = 0  # a helper process even on a small day: it opens the same book
        for day in DAYS[:2]:
            assert engine.run(day).recorded > 0
        applied, _decisions = engine.handle(
            OrderSubmitted(
                event_id="shop:SO-X",
                occurred_at=datetime(2026, 3, 3, 10, tzinfo=UTC),
                actor="shop",
                order_id="SO-X",
                customer_id="C001",
                amount=Money.of("900000.00", "CNY"),
                submitted_on=DAYS[1],
            )
        )
        assert not applied.duplicate and store.get("order", "SO-X") is not None
        assert len(started) == 2  # a helper process each day, opening the book by its URL
        assert ax in (store.shared_url() or "")
        due = store.find_due(DAYS[0] - timedelta(100), DAYS[3], ["open", "partially_paid"])
        assert len(due) == store.count_due(
            DAYS[0] - timedelta(100), DAYS[3], ["open", "partially_paid"]
        )
        assert due
        assert store.find_due(DAYS[0] - timedelta(100), DAYS[3], ["open"], customers=bool)
        assert store.receivable_summaries(["C000"])["C000"]
        sink = MemoryAdapter()
        stats = Dispatcher(store, {"email": sink, "sms": sink, "task": sink}).run()
        assert stats.sent > 0 and store.outbox_counts()["pending"] == 0
        report = build_report(store, DAYS[1])
        assert report.headline and forecasts(store, DAYS[1])
        # the same book through an engine: SqlStore(engine, schema=...)
        again = SqlStore(sa.create_engine(_url(host)), schema=ax, upgrade=False)
        assert dump_book(again) == dump_book(store)
        assert again.decisions() == store.decisions()
        again.close()
        with host_db.connect() as conn:
            for t in host_md.sorted_tables:  # untouched: one row each, the host's
                assert conn.execute(sa.select(t.c.host_id)).scalars().all() == [7], t.name
        with admin.connect() as conn:
            events = conn.execute(sa.text(f'SELECT count(*) FROM "{ax}".ar_event')).scalar()
        assert events == store.event_count() > 0
    finally:
        store.close()  # type: ignore[attr-defined]
        host_db.dispose()
        admin.dispose()


@pytest.mark.postgres
def test_two_books_in_two_schemas_of_one_database(pg_schemas: Callable[[], str]) -> None:
    """Two schemas, two books: what one is given the other never sees; each has its own
    writers' lock (a transaction open on one does not hold up the other)."""
    a, b = pg_schemas(), pg_schemas()
    one, two = SqlStore(POSTGRES_URL, schema=a), SqlStore(POSTGRES_URL, schema=b)
    try:
        BookBuilder(Ledger(one)).customer("C1")
        assert one.get("customer", "C1") is not None
        assert two.get("customer", "C1") is None
        with one.transaction():
            BookBuilder(Ledger(two)).customer("C2")  # not waiting for the other's lock
        assert [c.id for c in two.all("customer")] == ["C2"]
    finally:
        one.close()
        two.close()


def test_a_schema_on_sqlite_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "book.db"
    with pytest.raises(SchemaNotSupported, match="sqlite has no schemas"):
        SqlStore(f"sqlite:///{path}", schema="arflow")
    with pytest.raises(SchemaNotSupported, match="sqlite has no schemas"):
        Ledger(f"sqlite:///{path}?arflow_schema=arflow")
    with pytest.raises(SchemaNotSupported, match="sqlite has no schemas"):
        upgrade(f"sqlite:///{path}", schema="arflow")
    assert not path.exists()


@pytest.mark.parametrize(
    ("url", "schema", "why"),
    [
        ("postgresql+psycopg://h/db", "ar; drop table x", "plain identifier"),
        ("postgresql+psycopg://h/db", "9lives", "plain identifier"),
        ("postgresql+psycopg://h/db?arflow_schema=a", "b", "two schemas"),
        ("postgresql+psycopg://h/db?arflow_schema=a&arflow_schema=b", None, "more than once"),
    ],
)
def test_a_schema_that_cannot_be_used_is_refused_before_connecting(
    url: str, schema: str | None, why: str
) -> None:
    """No connection is made (the host in the URL does not exist)."""
    with pytest.raises(SchemaNotSupported, match=why):
        SqlStore(url, schema=schema)


# -- upgrades from the host's deployment --------------------------------------------------


def _old_book(engine: sa.Engine, version: int) -> None:
    """arflow's tables as steps 1..``version`` made them."""
    with engine.begin() as conn:
        SCHEMA.create(conn)
        for v in range(1, version + 1):
            MIGRATIONS[v - 1](conn)
            conn.execute(SCHEMA.insert().values(version=v))


def test_upgrade_by_url_engine_and_connection(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    (tmp_path / "book.db").touch()
    assert schema_version(url) == 0
    assert upgrade(url) == (0, SCHEMA_VERSION)
    assert upgrade(url) == (SCHEMA_VERSION, SCHEMA_VERSION)  # nothing left to do
    assert schema_version(url) == SCHEMA_VERSION

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    _old_book(engine, 5)
    assert schema_version(engine) == 5
    with engine.connect() as conn:  # in the host's transaction: gone with its rollback
        trans = conn.begin()
        assert upgrade(conn) == (5, SCHEMA_VERSION)
        assert schema_version(conn) == SCHEMA_VERSION
        trans.rollback()
    assert schema_version(engine) == 5
    with engine.begin() as conn:  # and there with its commit
        assert upgrade(conn) == (5, SCHEMA_VERSION)
    assert schema_version(engine) == SCHEMA_VERSION
    with engine.connect() as conn:  # a connection outside a transaction: committed
        assert upgrade(conn) == (SCHEMA_VERSION, SCHEMA_VERSION)
    engine.dispose()


def test_a_newer_schema_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    SqlStore(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(SCHEMA.insert().values(version=SCHEMA_VERSION + 1))
    for attempt in (
        lambda: upgrade(url),
        lambda: upgrade(engine),
        lambda: SqlStore(url),
        lambda: SqlStore(url, upgrade=False),
    ):
        with pytest.raises(SchemaTooNew, match=f"version {SCHEMA_VERSION + 1}, newer") as got:
            attempt()
        assert (got.value.found, got.value.expected) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    assert schema_version(engine) == SCHEMA_VERSION + 1
    engine.dispose()


def test_opening_without_upgrading_refuses_an_older_schema(tmp_path: Path) -> None:
    path = tmp_path / "book.db"
    path.touch()
    url = f"sqlite:///{path}"
    with pytest.raises(SchemaTooOld, match=r"not there.*arflow db upgrade") as got:
        SqlStore(url, upgrade=False)
    assert got.value.found == 0
    engine = sa.create_engine(url)
    _old_book(engine, 6)
    with pytest.raises(SchemaTooOld, match=r"version 6.*`arflow db upgrade`") as got:
        SqlStore(url, upgrade=False)
    assert (got.value.found, got.value.expected) == (6, SCHEMA_VERSION)
    assert schema_version(engine) == 6  # nothing changed
    assert upgrade(url) == (6, SCHEMA_VERSION)
    store = SqlStore(url, upgrade=False)  # now current
    assert store.event_count() == 0
    store.close()
    engine.dispose()


@pytest.mark.postgres
def test_upgrade_in_a_schema_of_its_own(pg_schemas: Callable[[], str]) -> None:
    ax = pg_schemas()
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with pytest.raises(SchemaTooOld, match=f"in schema '{ax}' are not there"):
            SqlStore(engine, schema=ax, upgrade=False)
        assert upgrade(engine, schema=ax) == (0, SCHEMA_VERSION)  # the schema is created
        assert _tables(engine, ax) == TABLE_NAMES
        assert schema_version(f"{POSTGRES_URL}?arflow_schema={ax}") == SCHEMA_VERSION
        SqlStore(engine, schema=ax, upgrade=False).close()
        with engine.connect() as conn:  # a host connection keeps its own options
            assert upgrade(conn, schema=ax) == (SCHEMA_VERSION, SCHEMA_VERSION)
            assert conn.get_execution_options().get("schema_translate_map") is None
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_an_old_book_in_its_schema_upgrades_there_and_not_in_the_search_path(
    pg_schemas: Callable[[], str],
) -> None:
    """A book of schema version 3 in ``arflow_x_...``, shaped as that version made it (no
    receivable summary, the old customer index, no outbox claim), beside same-named tables
    in the search path's schema: every step's ALTER, UPDATE and DROP INDEX lands in
    arflow's schema."""
    host, ax = pg_schemas(), pg_schemas()
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{host}"'))
        conn.execute(sa.text(f'CREATE SCHEMA "{ax}"'))
    db = sa.create_engine(_url(host))
    try:
        host_md = sa.MetaData()
        for name in ("ar_receivable", "ar_outbox", "ar_payment", "ar_credit_note"):
            sa.Table(name, host_md, sa.Column("host_id", sa.Integer, primary_key=True))
        host_md.create_all(db)
        _old_book(db.execution_options(schema_translate_map={None: ax}), 3)
        with db.begin() as conn:
            conn.execute(sa.text(f'DROP INDEX "{ax}".ix_ar_receivable_customer_summary'))
            conn.execute(sa.text(f'ALTER TABLE "{ax}".ar_receivable DROP COLUMN summary'))
            conn.execute(
                sa.text(
                    "CREATE INDEX ix_ar_receivable_customer_state "
                    f'ON "{ax}".ar_receivable (customer_id, state)'
                )
            )
            conn.execute(sa.text(f'ALTER TABLE "{ax}".ar_outbox DROP COLUMN claim'))
        assert upgrade(db, schema=ax) == (3, SCHEMA_VERSION)
        with db.connect() as conn:
            look = sa.inspect(conn)
            assert "summary" in {c["name"] for c in look.get_columns("ar_receivable", ax)}
            assert "claim" in {c["name"] for c in look.get_columns("ar_outbox", ax)}
            indexes = {ix["name"] for ix in look.get_indexes("ar_receivable", ax)}
            assert "ix_ar_receivable_customer_summary" in indexes
            assert "ix_ar_receivable_customer_state" not in indexes
            for t in host_md.sorted_tables:  # the host's: as they were
                assert [c["name"] for c in look.get_columns(t.name, host)] == ["host_id"]
        store = SqlStore(db, schema=ax, upgrade=False)
        b = BookBuilder(Ledger(store))
        b.customer("C1")
        b.invoice("INV-1", "C1", 100)
        assert store.receivable_summaries(["C1"])["C1"][0].id == "INV-1"
        store.close()
    finally:
        db.dispose()
        admin.dispose()


# -- the host's Alembic ------------------------------------------------------------------


def _host_models() -> sa.MetaData:
    host = sa.MetaData()
    sa.Table(
        "shop_order",
        host,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer", sa.String(40), index=True),
    )
    return host


def _diffs(conn: sa.Connection, host: sa.MetaData, **opts: object) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    return list(compare_metadata(MigrationContext.configure(conn, opts=opts), host))


def _arflow_ops(diffs: list[object]) -> set[tuple[str, str]]:
    """(operation, table) of each difference about one of arflow's tables."""
    out = set()
    for d in diffs:
        items = d if isinstance(d, list) else [d]
        for op in items:
            obj = op[1] if isinstance(op, tuple) else None
            table = getattr(obj, "name", None) if op[0].endswith("_table") else None
            table = table or getattr(getattr(obj, "table", None), "name", None)
            if table in TABLE_NAMES:
                out.add((op[0], table))
    return out


def _autogenerate_checks(conn: sa.Connection, **opts: object) -> None:
    host = _host_models()
    naive = _arflow_ops(_diffs(conn, host, **opts))
    # without the filter autogenerate would drop every table of arflow's
    assert {t for op, t in naive if op == "remove_table"} == TABLE_NAMES
    filtered = _diffs(conn, host, include_object=alembic_include_object, **opts)
    assert filtered == []  # nothing at all: the host's models match its tables
    # the host's own changes are still seen: a new table of its models
    sa.Table("shop_invoice", host, sa.Column("id", sa.Integer, primary_key=True))
    ops = _diffs(conn, host, include_object=alembic_include_object, **opts)
    assert [(op[0], op[1].name) for op in ops] == [("add_table", "shop_invoice")]  # type: ignore[index]


def test_alembic_autogenerate_leaves_arflow_tables_alone_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'host.db'}"
    db = sa.create_engine(url)
    _host_models().create_all(db)
    SqlStore(url).close()  # arflow's tables beside the host's
    with db.connect() as conn:
        _autogenerate_checks(conn)
    db.dispose()


@pytest.mark.postgres
def test_alembic_autogenerate_leaves_arflow_tables_alone_on_postgresql(
    pg_schemas: Callable[[], str],
) -> None:
    """In the host's schema (its search path) and in a schema of arflow's own, with
    ``include_schemas`` on."""
    host, ax = pg_schemas(), pg_schemas()
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{host}"'))
    admin.dispose()
    db = sa.create_engine(_url(host))
    try:
        _host_models().create_all(db)
        SqlStore(db).close()  # the same schema as the host's
        with db.connect() as conn:
            _autogenerate_checks(conn)
        upgrade(db, schema=ax)
        # (the schemas compared are the two of this test: other tests' come and go)
        ours = {
            "include_name": lambda name, type_, parents: type_ != "schema" or name in (None, ax)
        }
        with db.connect() as conn:
            naive = _diffs(conn, _host_models(), include_schemas=True, **ours)
            dropped = {
                (op[1].schema, op[1].name)  # type: ignore[index]
                for op in naive
                if op[0] == "remove_table"  # type: ignore[index]
            }
            assert {(ax, n) for n in TABLE_NAMES} <= dropped
            filtered = _diffs(
                conn,
                _host_models(),
                include_schemas=True,
                include_object=alembic_include_object,
                **ours,
            )
            assert filtered == []
    finally:
        db.dispose()


def test_metadata_is_arflows_tables() -> None:
    assert {t.name for t in metadata.tables.values()} | {SCHEMA.name} == TABLE_NAMES
    assert all(t.schema is None for t in metadata.tables.values())


# -- arflow db ----------------------------------------------------------------------------


def test_cli_db_upgrade_version_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "book.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    _old_book(engine, 4)
    assert main(["db", "version", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"database: version 4, arflow: version {SCHEMA_VERSION}" in out
    assert "arflow db upgrade" in out
    assert main(["db", "check", "--db", str(db)]) == 5
    assert "`arflow db upgrade`" in capsys.readouterr().err
    assert main(["db", "upgrade", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "before": 4,
        "after": SCHEMA_VERSION,
        "schema": None,
    }
    assert main(["db", "upgrade", "--db", str(db)]) == 0
    assert f"already at version {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["db", "check", "--db", str(db)]) == 0
    assert f"version {SCHEMA_VERSION}, this arflow's" in capsys.readouterr().out
    assert main(["db", "version", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "database": SCHEMA_VERSION,
        "arflow": SCHEMA_VERSION,
        "schema": None,
        "state": "current",
    }
    with engine.begin() as conn:
        conn.execute(SCHEMA.insert().values(version=SCHEMA_VERSION + 1))
    assert main(["db", "upgrade", "--db", str(db)]) == 5
    assert "newer than this arflow" in capsys.readouterr().err
    assert main(["db", "check", "--db", str(db)]) == 5
    capsys.readouterr()
    assert main(["db", "upgrade", "--db", str(db), "--db-schema", "arflow"]) == 5
    assert "sqlite has no schemas" in capsys.readouterr().err
    assert main(["db", "upgrade", "--db", str(tmp_path / "none.db")]) == 4  # no such book
    engine.dispose()


@pytest.mark.postgres
def test_cli_db_schema_option_and_config(
    pg_schemas: Callable[[], str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ax, ay = pg_schemas(), pg_schemas()
    assert main(["db", "upgrade", "--db", POSTGRES_URL, "--db-schema", ax]) == 0
    assert f"to version {SCHEMA_VERSION}" in capsys.readouterr().out
    assert schema_version(POSTGRES_URL, schema=ax) == SCHEMA_VERSION
    assert main(["init", "--db", f"{POSTGRES_URL}?arflow_schema={ax}", "--json"]) == 0
    init = json.loads(capsys.readouterr().out)
    assert init["events"] == 0 and f"arflow_schema={ax}" in init["db"]
    # arflow.toml: db and db_schema
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARFLOW_DB", raising=False)
    (tmp_path / "arflow.toml").write_text(f'db = "{POSTGRES_URL}"\ndb_schema = "{ay}"\n')
    assert main(["db", "check"]) == 5
    assert f"in schema '{ay}' are not there" in capsys.readouterr().err
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "check"]) == 0
    assert main(["decisions", "list"]) == 0
    assert schema_version(POSTGRES_URL, schema=ay) == SCHEMA_VERSION


def test_store_error_is_the_base_of_the_schema_errors() -> None:
    for cls in (SchemaTooOld, SchemaTooNew, SchemaNotSupported):
        assert issubclass(cls, StoreError)
