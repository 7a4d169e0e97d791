"""Stores: where the book lives. Pick one by URL with :func:`open_store`, or pass an object
that follows the :class:`Store` protocol."""

from __future__ import annotations

from ._copy import copy_book
from .base import KINDS, Kind, Store, StoreTx, dump_book
from .memory import MemoryStore

__all__ = [
    "KINDS",
    "Kind",
    "MemoryStore",
    "Store",
    "StoreTx",
    "copy_book",
    "dump_book",
    "open_store",
]


def open_store(url: str | Store = "sqlite:///arflow.db") -> Store:
    """``memory://``, ``sqlite:///path.db`` or ``postgresql+psycopg://user@host/db``."""
    if not isinstance(url, str):
        return url
    if url.startswith("memory:"):
        return MemoryStore()
    from .sql import SqlStore

    return SqlStore(url)
