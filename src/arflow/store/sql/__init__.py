"""SQLite and PostgreSQL stores through SQLAlchemy 2 Core (see :class:`SqlStore`)."""

from __future__ import annotations

from ._store import (
    _SUMMARY_COLUMNS,
    AUDIT,
    BULK_CACHE_KIB,
    DECISIONS,
    EVENTS,
    MIGRATIONS,
    OBJECT_TABLES,
    OUTBOX,
    RUNS,
    SCHEMA,
    SCHEMA_VERSION,
    SqlStore,
    StagedRows,
    _Checkpoints,
    _Models,
    _SqlTx,
    metadata,
    migrate,
)

__all__ = [
    "AUDIT",
    "BULK_CACHE_KIB",
    "DECISIONS",
    "EVENTS",
    "MIGRATIONS",
    "OBJECT_TABLES",
    "OUTBOX",
    "RUNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "_SUMMARY_COLUMNS",
    "SqlStore",
    "StagedRows",
    "_Checkpoints",
    "_Models",
    "_SqlTx",
    "metadata",
    "migrate",
]
