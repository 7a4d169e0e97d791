"""The types a condition's values and facts have."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Type"]


class Type(StrEnum):
    NUMBER = "number"
    STRING = "string"
    BOOL = "bool"
    DATE = "date"
    STRING_LIST = "list of strings"
    NULL = "null"
    ANY_LIST = "list"
