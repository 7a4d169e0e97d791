"""The host's Alembic environment. Its models are the host's own; arflow's tables live in
the same database, and ``alembic_include_object`` keeps autogenerate (``alembic revision
--autogenerate``, ``alembic check``) from proposing to drop them. arflow upgrades its own
tables (``arflow.store.sql.upgrade``, run by ``host.deploy``), never through these
migrations."""

from __future__ import annotations

import os
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from host.models import Base

from arflow.store.sql import alembic_include_object

config = context.config
if config.config_file_name is not None and not config.attributes.get("quiet_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    given = context.get_x_argument(as_dictionary=True).get("db") or os.environ.get("HOST_DB_URL")
    return given or config.get_main_option("sqlalchemy.url") or ""


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        include_object=alembic_include_object,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = sa.create_engine(database_url(), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=alembic_include_object,  # arflow's tables are not the host's
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
