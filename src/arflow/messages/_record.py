"""The records a template sees (customer, contact, invoice...): plain mappings that know
what they describe, so an error names the record, never a dict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# -- the sandbox ---------------------------------------------------------------------------------


class _Record(dict[str, Any]):
    """A context record (customer, contact, invoice...) that knows what it describes, so a
    typo reads "'contact' has no attribute 'nmae'", not "'dict object' has ...".

    A dict subclass, so the immutable sandbox refuses ``update``/``pop`` on it."""

    __slots__ = ("_kind",)

    def __init__(self, kind: str, fields: Mapping[str, Any]) -> None:
        super().__init__(fields)
        self._kind = kind  # private: a template cannot read it


def _kind(value: Any) -> str:
    if isinstance(value, _Record):
        return repr(value._kind)
    return type(value).__name__
