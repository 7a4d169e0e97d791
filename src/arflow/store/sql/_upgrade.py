"""arflow's schema steps run from a host's deployment (``arflow db upgrade``, or
:func:`upgrade` from its own migration script), and the version check of a store opened
without upgrading. The steps themselves are ``_schema.MIGRATIONS``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ...errors import SchemaTooNew, SchemaTooOld, StoreError
from ._errors import _Edge
from ._naming import check_schema, engine_for, schema_of, with_schema
from ._schema import SCHEMA, SCHEMA_VERSION, _migrate

#: What :func:`upgrade` and :func:`schema_version` take: a URL, an engine, or a connection
#: (whose transaction, if one is begun, they work in, leaving the commit to its owner).
Target = str | Engine | Connection


def upgrade(target: Target, *, schema: str | None = None) -> tuple[int, int]:
    """Bring arflow's tables (in PostgreSQL ``schema``, or the URL's ``arflow_schema``, if
    given) to this arflow's schema version, creating them where there are none; return
    the versions before and after. A database whose arflow schema is newer than this
    arflow is refused with :class:`~arflow.errors.SchemaTooNew` and left as it is."""
    with _connection(target, schema, "upgrading arflow's schema") as conn:
        before = _migrate(conn)
    return before, SCHEMA_VERSION


def schema_version(target: Target, *, schema: str | None = None) -> int:
    """The version of arflow's tables in the database (0 where there are none); this
    arflow's is ``SCHEMA_VERSION``. Reads only."""
    with _connection(target, schema, "reading arflow's schema version") as conn:
        return stored_version(conn)


def stored_version(conn: Connection) -> int:
    """The schema version recorded on ``conn`` (in arflow's schema, if it has one); 0 when
    arflow's version table is not there."""
    if not sa.inspect(conn).has_table(SCHEMA.name, schema=schema_of(conn)):
        return 0
    return int(conn.execute(sa.select(sa.func.max(SCHEMA.c.version))).scalar() or 0)


def require_current(engine: Engine) -> None:
    """Refuse a book whose schema is not this arflow's: older (:class:`SchemaTooOld`,
    saying to run ``arflow db upgrade``) or newer (:class:`SchemaTooNew`)."""
    with _Edge(engine.url)("opening the book"), engine.connect() as conn:
        found = stored_version(conn)
    where = schema_of(engine)
    tables = "arflow's tables" + ("" if where is None else f" in schema {where!r}")
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{tables} are at schema version {found}, newer than this arflow (version "
            f"{SCHEMA_VERSION}); upgrade arflow",
            found,
            SCHEMA_VERSION,
        )
    if found < SCHEMA_VERSION:
        state = "are not there" if found == 0 else f"are at schema version {found}"
        raise SchemaTooOld(
            f"{tables} {state}, and this arflow needs version {SCHEMA_VERSION}: run "
            "`arflow db upgrade` (or arflow.store.sql.upgrade) first, or open the store "
            "with upgrade=True",
            found,
            SCHEMA_VERSION,
        )


@contextmanager
def _connection(target: Target, schema: str | None, what: str) -> Iterator[Connection]:
    """A connection to ``target`` naming arflow's ``schema``, in a transaction: its own
    (committed when the block ends) or, for a connection already in one, the caller's."""
    if isinstance(target, str):
        engine, schema = engine_for(target, schema)
        try:
            with _connection(engine, schema, what) as conn:
                yield conn
        finally:
            engine.dispose()
        return
    dialect = target.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise StoreError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")
    check_schema(schema, dialect)
    if isinstance(target, Engine):
        engine = with_schema(target, schema)
        with _Edge(engine.url)(what), engine.connect() as conn, conn.begin():
            yield conn
        return
    conn = target
    before = conn.get_execution_options().get("schema_translate_map")
    if schema is not None:
        conn.execution_options(schema_translate_map={None: schema})
    try:
        with _Edge(conn.engine.url)(what):
            if conn.in_transaction():
                yield conn
            else:
                with conn.begin():
                    yield conn
    finally:
        if schema is not None:
            conn.execution_options(schema_translate_map=before)
