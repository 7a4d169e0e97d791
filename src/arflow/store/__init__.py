"""Stores: where the book lives. Pick one by URL with :func:`open_store`, or pass an object
that follows the :class:`Store` protocol."""

from __future__ import annotations

from typing import Any

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


def open_store(url: str | Store | Any = "sqlite:///arflow.db") -> Store:
    """``memory://``, ``sqlite:///path.db`` or ``postgresql+psycopg://user@host/db``; or the
    host's SQLAlchemy ``Connection`` or ORM ``Session``, whose transaction the book then
    joins (:class:`~arflow.store.sql.JoinedSqlStore`)."""
    if not isinstance(url, str):
        if type(url).__module__.startswith("sqlalchemy."):
            from .sql import JoinedSqlStore, SqlStore

            if isinstance(url, SqlStore):  # pragma: no cover - not SQLAlchemy's
                return url
            return JoinedSqlStore.of(url)
        return url
    if url.startswith("memory:"):
        return MemoryStore()
    from .sql import SqlStore

    return SqlStore(url)
