"""Shared fixtures: one backend-parametrised store, book factories, service checks.

Tests that need a service (PostgreSQL) read its URL from the environment, skip with the
reason when it is absent on a laptop, and fail instead when ``CI`` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, settings

from arflow import MemoryStore, Store
from arflow.store.sql import SqlStore

# Property tests must not fail because a shared CI machine is slow: no per-example
# deadline, and no health check on slow data generation.
settings.register_profile("arflow", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("arflow")

POSTGRES_URL = os.environ.get(
    "ARFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: every store backend; PostgreSQL's carries the ``postgres`` marker (``-m "not postgres"``)
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def service_unavailable(name: str, url: str, exc: BaseException) -> None:
    """Skip on a laptop without the service; fail in CI, where it must be there."""
    reason = f"{name} not reachable at {url}: {type(exc).__name__}: {exc}"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that reach PostgreSQL without the backend fixture (a ``backend`` parameter of
    their own, or PostgreSQL URLs) carry the ``postgres`` marker too."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        fixtures = getattr(item, "fixturenames", ())
        if params.get("backend") == "postgres" or "pg_urls" in fixtures:
            item.add_marker(pytest.mark.postgres)


_pg_checked: list[BaseException | None] = []


def _postgres_engine(schema: str):  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    if not _pg_checked:
        try:
            probe = sa.create_engine(POSTGRES_URL)
            with probe.connect() as conn:
                conn.execute(sa.text("select 1"))
            probe.dispose()
            _pg_checked.append(None)
        except Exception as exc:  # any driver or network error means "absent"
            _pg_checked.append(exc)
    if _pg_checked[0] is not None:
        service_unavailable("PostgreSQL", POSTGRES_URL, _pg_checked[0])
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return _schema_engine(schema)


def _schema_engine(schema: str):  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    return sa.create_engine(
        POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"}, pool_size=2
    )


def _drop_schema(schema: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


# -- reusing PostgreSQL schemas ------------------------------------------------------------------
# Making a schema and migrating it takes about a hundred round trips; hundreds of tests make
# one. A store's schema is therefore emptied after its test and handed to a later test,
# but only when it is provably the schema a fresh migration makes: the same relations,
# columns, defaults, indexes, constraints, triggers, functions, views and types, and the
# same rows in the tables a fresh migration fills (the schema version). Every other table
# is truncated and every sequence restarted. Anything else (a test that changed the schema
# or its version, a lock still held) drops the schema as before.

_pg_pool: list[str] = []  # emptied schemas, as fresh as a new one
_pg_fresh: list[tuple[dict[str, list[tuple[str, ...]]], dict[str, list[str]]]] = []  # fresh

_CATALOG = {
    "relations": "SELECT c.relname, c.relkind, coalesce(c.reloptions::text, ''), "
    "c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = :s",
    "columns": "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
    "a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), '') FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
    "WHERE n.nspname = :s AND a.attnum > 0 AND NOT a.attisdropped",
    "indexes": "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s "
    "AND c.relkind IN ('i', 'I')",
    "constraints": "SELECT coalesce(c.relname, ''), con.conname, pg_get_constraintdef(con.oid) "
    "FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace "
    "LEFT JOIN pg_class c ON c.oid = con.conrelid WHERE n.nspname = :s",
    "triggers": "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
    "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = :s AND NOT t.tgisinternal",
    "functions": "SELECT p.proname, pg_get_function_identity_arguments(p.oid), p.prosrc "
    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :s",
    "views": "SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s "
    "AND c.relkind IN ('v', 'm')",
    "types": "SELECT t.typname, t.typtype, coalesce(e.enumlabel, '') FROM pg_type t "
    "JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_enum e ON e.enumtypid = t.oid "
    "WHERE n.nspname = :s",
    "policies": "SELECT c.relname, p.polname FROM pg_policy p JOIN pg_class c "
    "ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s",
}


def _catalog(conn, schema: str) -> dict[str, list[tuple[str, ...]]]:  # type: ignore[no-untyped-def]
    """The schema's definition, its own name written as ``<schema>``."""
    import sqlalchemy as sa

    return {
        what: sorted(
            tuple(str(v).replace(schema, "<schema>") for v in row)
            for row in conn.execute(sa.text(query), {"s": schema})
        )
        for what, query in _CATALOG.items()
    }


def _tables(catalog: dict[str, list[tuple[str, ...]]]) -> tuple[list[str], list[str]]:
    """Tables and sequences of a catalog (names)."""
    rels = catalog["relations"]
    return [r[0] for r in rels if r[1] in ("r", "p")], [r[0] for r in rels if r[1] == "S"]


def _rows(conn, schema: str, table: str) -> list[str]:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    return sorted(map(repr, conn.execute(sa.text(f'SELECT * FROM "{schema}"."{table}"'))))


def _remember_fresh(schema: str) -> None:
    """What a schema holds right after its migration: the reference for reuse."""
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.connect() as conn:
            catalog = _catalog(conn, schema)
            tables, _ = _tables(catalog)
            filled = {t: rows for t in tables if (rows := _rows(conn, schema, t))}
        _pg_fresh.append((catalog, filled))
    finally:
        admin.dispose()


def _empty_schema(schema: str) -> bool:
    """Empty a used schema if it is still the fresh one's (see above); whether it was."""
    import sqlalchemy as sa

    if not _pg_fresh:
        return False
    catalog, filled = _pg_fresh[0]
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.connect() as conn, conn.begin():
            conn.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            if _catalog(conn, schema) != catalog:
                return False
            if any(_rows(conn, schema, t) != rows for t, rows in filled.items()):
                return False
            tables, sequences = _tables(catalog)
            used = " UNION ALL ".join(
                f'SELECT \'{t}\' WHERE EXISTS (SELECT 1 FROM "{schema}"."{t}")'
                for t in tables
                if t not in filled
            )
            emptied = [t for (t,) in conn.execute(sa.text(used))] if used else []
            if emptied:
                names = ", ".join(f'"{schema}"."{t}"' for t in emptied)
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY"))
            for seq in sequences:
                conn.execute(sa.text(f'ALTER SEQUENCE "{schema}"."{seq}" RESTART'))
        return True
    except sa.exc.DBAPIError:
        return False
    finally:
        admin.dispose()


def pytest_sessionfinish(session: pytest.Session) -> None:
    while _pg_pool:
        _drop_schema(_pg_pool.pop())


@pytest.fixture
def store_factory(backend: str, tmp_path) -> Iterator[Callable[[], Store]]:  # type: ignore[no-untyped-def]
    """Makes fresh, empty stores of the test's backend (memory, SQLite or PostgreSQL)."""
    made: list[tuple[Store, str | None]] = []

    def make() -> Store:
        if backend == "memory":
            s: Store = MemoryStore()
            made.append((s, None))
        elif backend == "sqlite":
            s = SqlStore(f"sqlite:///{tmp_path / f'book-{len(made)}.db'}")
            made.append((s, None))
        elif backend == "postgres":
            if _pg_pool:
                schema = _pg_pool.pop()
                s = SqlStore(_schema_engine(schema))
            else:
                schema = f"t_{uuid.uuid4().hex[:12]}"
                s = SqlStore(_postgres_engine(schema))
                if not _pg_fresh:
                    _remember_fresh(schema)
            made.append((s, schema))
        else:
            raise ValueError(backend)
        return s

    yield make
    for s, schema in made:
        s.close()
        if schema:
            if _empty_schema(schema):
                _pg_pool.append(schema)
            else:
                _drop_schema(schema)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(store_factory: Callable[[], Store]) -> Store:
    """A fresh empty store, once per backend (memory, SQLite, PostgreSQL)."""
    return store_factory()


def at(d: date, hour: int = 9) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)
