"""SQLite and PostgreSQL stores through SQLAlchemy 2 Core (see :class:`SqlStore`).

The package's modules: ``_schema`` (tables and migrations), ``_sqlite`` (SQLite's pragmas
and WAL checkpoints), ``_driver`` (statements built once, the driver's own cursor),
``_tx`` (the transaction), ``_outbox`` (the dispatchers' statements) and ``_store`` (the
store).
"""

from __future__ import annotations

from ..base import StagedRows
from ._driver import _SUMMARY_COLUMNS, _Models
from ._joined import JoinedSqlStore
from ._schema import (
    AUDIT,
    CUSTOMER_DIM,
    DECISIONS,
    EVENTS,
    MIGRATIONS,
    MOVEMENTS,
    OBJECT_TABLES,
    OUTBOX,
    RUNS,
    SCHEMA,
    SCHEMA_VERSION,
    metadata,
    migrate,
)
from ._sqlite import BULK_CACHE_KIB, _Checkpoints, prepare_sqlite
from ._store import SqlStore
from ._tx import _SqlTx

__all__ = [
    "AUDIT",
    "BULK_CACHE_KIB",
    "CUSTOMER_DIM",
    "DECISIONS",
    "EVENTS",
    "MIGRATIONS",
    "MOVEMENTS",
    "OBJECT_TABLES",
    "OUTBOX",
    "RUNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "_SUMMARY_COLUMNS",
    "JoinedSqlStore",
    "SqlStore",
    "StagedRows",
    "_Checkpoints",
    "_Models",
    "_SqlTx",
    "metadata",
    "migrate",
    "prepare_sqlite",
]
