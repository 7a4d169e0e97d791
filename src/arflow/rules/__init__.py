"""Rules in files: the condition language, the facts it reads, rule-file schema and loading.

The public module for rule authors: ``load_pack`` and ``lint`` for packs, ``condition`` and
``fact_types`` for the condition language, the built-in pattern matcher, and the two
matchers of the durable-rules extra (``arflow[durable]``). The names are imported on first
use, so ``import arflow.rules`` loads neither YAML nor durable-rules.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .durable import DurableMatcher, PatternMatcher
    from .expr import Condition, condition
    from .facts import fact_types
    from .lint import lint
    from .loader import RulePack, load_pack
    from .patterns import BuiltinPatternMatcher, LatePayments, Payment, Promise, UnpaidPromise

__all__ = [
    "BuiltinPatternMatcher",
    "Condition",
    "DurableMatcher",
    "LatePayments",
    "PatternMatcher",
    "Payment",
    "Promise",
    "RulePack",
    "UnpaidPromise",
    "condition",
    "default_pack_path",
    "fact_types",
    "lint",
    "load_pack",
]

_LAZY = {
    "BuiltinPatternMatcher": "patterns",
    "Condition": "expr",
    "DurableMatcher": "durable",
    "LatePayments": "patterns",
    "PatternMatcher": "durable",
    "Payment": "patterns",
    "Promise": "patterns",
    "RulePack": "loader",
    "UnpaidPromise": "patterns",
    "condition": "expr",
    "fact_types": "facts",
    "lint": "lint",
    "load_pack": "loader",
}


def __getattr__(name: str) -> Any:
    """Import a public name the first time it is asked for (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'arflow.rules' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def default_pack_path(name: str = "default") -> Path:
    """Where the shipped pack ``name`` lives: inside the installed package (``arflow/_rules``)
    or, in a source checkout, in the repository's ``rules/`` folder."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_rules" / name, here.parent.parent / "rules" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no shipped rule pack named {name!r}")
