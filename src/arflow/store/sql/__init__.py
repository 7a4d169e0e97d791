"""SQLite and PostgreSQL stores through SQLAlchemy 2 Core (see :class:`SqlStore`).

The package's modules: ``_schema`` (tables and migrations), ``_sqlite`` (SQLite's pragmas
and WAL checkpoints), ``_driver`` (statements built once, the driver's own cursor),
``_tx`` (the transaction), ``_outbox`` (the dispatchers' statements) and ``_store`` (the
store); ``_naming`` (arflow's PostgreSQL schema), ``_upgrade`` (the schema steps run from a
host's deployment) and ``_alembic`` (the host's autogenerate beside arflow's tables).

For a host: :data:`metadata` (arflow's tables), :func:`upgrade` and
:func:`schema_version`, :func:`alembic_include_object` (docs/storage.md#migrations-side-by-side).
"""

from __future__ import annotations

from ..base import StagedRows
from ._alembic import TABLE_NAMES, alembic_include_object
from ._driver import _SUMMARY_COLUMNS, _Models
from ._joined import JoinedSqlStore
from ._naming import SCHEMA_OPTION, qualified
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
from ._shards import Claim, add_shard, claim_day, shard_recorded, shard_rows
from ._sqlite import BULK_CACHE_KIB, _Checkpoints, prepare_sqlite
from ._store import SqlStore
from ._tx import _SqlTx
from ._upgrade import schema_version, upgrade

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
    "SCHEMA_OPTION",
    "SCHEMA_VERSION",
    "TABLE_NAMES",
    "_SUMMARY_COLUMNS",
    "Claim",
    "JoinedSqlStore",
    "SqlStore",
    "StagedRows",
    "_Checkpoints",
    "_Models",
    "_SqlTx",
    "add_shard",
    "alembic_include_object",
    "claim_day",
    "metadata",
    "migrate",
    "prepare_sqlite",
    "qualified",
    "schema_version",
    "shard_recorded",
    "shard_rows",
    "upgrade",
]
