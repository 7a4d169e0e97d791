"""Where arflow's tables are in the database: in a PostgreSQL schema of their own, or
where the connection's search path puts them.

A schema is carried by the engine (or connection) as SQLAlchemy's ``schema_translate_map``
``{None: schema}``: every Core statement on arflow's tables (which have no schema of their
own in :data:`~arflow.store.sql.metadata`) names ``schema.table``. The few statements
written as SQL text (the driver's bulk reads and inserts, some schema steps, the forecast's
read of every summary) take their table names from :func:`qualified`, which reads the same
option, so a book in a schema never reads or writes a same-named table elsewhere.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from ...errors import SchemaNotSupported, StoreError
from ._errors import _hidden

#: The URL query option naming arflow's PostgreSQL schema:
#: ``postgresql+psycopg://host/db?arflow_schema=arflow``. The store takes it out of the
#: URL before connecting (the driver would refuse an option it does not know).
SCHEMA_OPTION = "arflow_schema"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")


def check_schema(schema: str | None, dialect: str) -> str | None:
    """``schema`` if it can hold arflow's tables on ``dialect`` (None stays None); else
    :class:`~arflow.errors.SchemaNotSupported` saying why."""
    if schema is None:
        return None
    if not isinstance(schema, str) or not _IDENTIFIER.match(schema):
        raise SchemaNotSupported(
            f"schema {schema!r} for arflow's tables: give a plain identifier (letters, digits "
            "and _, not starting with a digit, at most 63 characters)"
        )
    if dialect != "postgresql":
        raise SchemaNotSupported(
            f"schema {schema!r} for arflow's tables: {dialect} has no schemas; a schema of "
            "their own is a PostgreSQL feature (on SQLite, give arflow a database file of "
            "its own)"
        )
    return schema


def schema_from_url(url: sa.URL, schema: str | None) -> tuple[sa.URL, str | None]:
    """``url`` without its ``arflow_schema`` option, and the schema: the option's, or
    ``schema``; both given and different is refused (:class:`SchemaNotSupported`)."""
    given = url.query.get(SCHEMA_OPTION)
    if given is None:
        return url, schema
    if isinstance(given, tuple):
        raise SchemaNotSupported(f"the URL names {SCHEMA_OPTION} more than once: {given!r}")
    if schema is not None and schema != given:
        raise SchemaNotSupported(
            f"two schemas for arflow's tables: {given!r} in the URL and {schema!r} as an argument"
        )
    return url.difference_update_query([SCHEMA_OPTION]), given


def with_schema(engine: sa.Engine, schema: str | None) -> sa.Engine:
    """``engine`` whose statements on arflow's tables name ``schema`` (the same engine and
    pool; ``engine`` itself unchanged); ``engine`` as it is for None."""
    if schema is None:
        return engine
    return engine.execution_options(schema_translate_map={None: schema})


def schema_of(bind: Any) -> str | None:
    """The schema arflow's tables are in on ``bind`` (an engine or a connection), as
    :func:`with_schema` set it; None when they are where its search path puts them."""
    found = bind.get_execution_options().get("schema_translate_map") or {}
    return found.get(None)


def qualified(bind: Any, table: str) -> str:
    """``table`` (one of arflow's) as SQL text names it on ``bind``: ``schema.table`` in
    the schema :func:`schema_of` gives, else the bare name."""
    schema = schema_of(bind)
    if schema is None:
        return table
    quote = bind.dialect.identifier_preparer
    return f"{quote.quote_schema(schema)}.{quote.quote(table)}"


def engine_for(url: str, schema: str | None) -> tuple[sa.engine.Engine, str | None]:
    """A new engine for ``url`` and the schema arflow's tables are in (``schema``, or the
    URL's ``arflow_schema`` option, which is taken off the URL the driver sees); a URL
    that cannot be opened is a :class:`~arflow.errors.StoreError` that shows no password."""
    try:
        bare, schema = schema_from_url(sa.engine.make_url(url), schema)
        return sa.create_engine(bare), schema
    except (sa.exc.ArgumentError, ValueError, ImportError) as exc:
        shown, why = _hidden(url), _hidden(str(exc))
        raise StoreError(f"cannot open store {shown!r}: {why}") from exc
