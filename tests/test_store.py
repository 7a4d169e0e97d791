"""Store-specific behaviour: schema upgrades, URLs, reading while nothing is written."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from arflow import MemoryStore, StoreError, open_store
from arflow.store.sql import SCHEMA, SCHEMA_VERSION, SqlStore, migrate


def test_open_store_by_url(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(open_store("memory://"), MemoryStore)
    s = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    assert isinstance(s, SqlStore)
    assert s.url.endswith("a.db")
    with pytest.raises(StoreError):
        open_store("nosuchdb://x")


def test_schema_is_created_once_and_recorded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'b.db'}"
    s = SqlStore(url)
    assert migrate(s.engine) == SCHEMA_VERSION  # already there: nothing to do
    with s.engine.connect() as conn:
        versions = conn.execute(sa.select(SCHEMA.c.version)).scalars().all()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_a_newer_schema_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = SqlStore(f"sqlite:///{tmp_path / 'c.db'}")
    with s.engine.begin() as conn:
        conn.execute(SCHEMA.insert().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="newer than this arflow"):
        SqlStore(s.engine)
