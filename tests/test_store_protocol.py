"""The bulk capabilities the protocols declare (``Store.parse_once``, ``StoreTx.prefetch``...)
are there on every store, so callers call them without probing."""

from __future__ import annotations

import pytest

from arflow.errors import StoreError
from arflow.store import MemoryStore, Store
from arflow.store.base import StagedRows


def test_every_store_offers_the_bulk_capabilities(store: Store) -> None:
    with store.parse_once():
        store.forget_parsed()
    shared = store.shared_url()
    assert shared is None or isinstance(shared, str)
    with store.transaction() as tx:
        tx.bulk()
        tx.defer_checkpoint()
        tx.prefetch(["e-1"], {"customer": ["C1"]}, {"receivable": ["C1"]})
        tx.forget_reads()
        assert tx.has_event("e-1") is False


def test_the_memory_store_has_no_url_to_share_and_takes_no_staged_rows() -> None:
    store = MemoryStore()
    assert store.shared_url() is None
    with store.transaction() as tx, pytest.raises(StoreError, match="takes no staged rows"):
        tx.write_rows(StagedRows())
