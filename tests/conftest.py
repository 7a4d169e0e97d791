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
    return sa.create_engine(
        POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"}, pool_size=2
    )


def _drop_schema(schema: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


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
            schema = f"t_{uuid.uuid4().hex[:12]}"
            s = SqlStore(_postgres_engine(schema))
            made.append((s, schema))
        else:
            raise ValueError(backend)
        return s

    yield make
    for s, schema in made:
        s.close()
        if schema:
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
