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


def test_customers_changed_since_a_mark_by_event_type(store) -> None:  # type: ignore[no-untyped-def]
    """The daily run re-checks a lock only for customers changed since the last run; the
    run's own dunning steps must not count as changes, a payment must."""
    from arflow.events import DunningStepRecorded
    from arflow.ledger import Ledger
    from arflow.testing import BookBuilder, d

    b = BookBuilder(Ledger(store))
    b.customer("C1")
    b.customer("C2")
    b.invoice("INV-1", "C1", 100, issued="2026-01-01", due="2026-01-31")
    b.invoice("INV-2", "C2", 100, issued="2026-01-01", due="2026-01-31")
    mark = store.audit_mark()
    assert store.customers_changed_since(mark) == set()
    b.apply(
        DunningStepRecorded(
            **b._meta(d("2026-02-03")),
            receivable_id="INV-1",
            ladder="standard",
            step="sms-3",
            level=2,
            decision_key="k1",
            sent_on=d("2026-02-03"),
        )
    )
    b.pay("PAY-1", "C2", 40, on="2026-02-04")
    assert store.customers_changed_since(mark) == {"C1", "C2"}
    assert store.customers_changed_since(mark, ignore={"DunningStepRecorded"}) == {"C2"}
    assert store.customers_changed_since(store.audit_mark()) == set()
