"""The deployment step, run before the application starts (and before every upgrade of
the host or of arflow): arflow's own schema steps, then the host's Alembic migrations.
Both are outside any business transaction; each refuses a database newer than its code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from arflow.store.sql import upgrade

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(url: str) -> Config:
    """The host's Alembic configuration, on ``url``."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["quiet_logging"] = True
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def deploy(url: str, arflow_schema: str | None = None) -> tuple[int, int]:
    """arflow's tables to this arflow's schema version, in PostgreSQL schema
    ``arflow_schema`` if given (``arflow db upgrade --db URL [--db-schema S]`` does the
    same), then the host's to its head revision. Returns arflow's versions before and
    after."""
    versions = upgrade(url, schema=arflow_schema)
    command.upgrade(alembic_config(url), "head")
    return versions
