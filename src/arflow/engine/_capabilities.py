"""Store capabilities the engine uses when a store has them (parsing each object once,
counting due receivables, a URL another process can open, deferred checkpoints, forgetting
reads, writing staged rows, reading ahead), found by name until the store protocol
declares them (issue 11): every such probe of the engine goes through :func:`capability`.
"""

from __future__ import annotations

from typing import Any


def capability(obj: object, name: str) -> Any | None:
    """``obj``'s optional method ``name`` (None: this store or transaction has none)."""
    # capability probe (issue 11)
    return getattr(obj, name, None)
