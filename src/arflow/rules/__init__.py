"""Rules in files: the condition language, the facts it reads, rule-file schema and loading."""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_pack_path"]


def default_pack_path(name: str = "default") -> Path:
    """Where the shipped pack ``name`` lives: inside the installed package (``arflow/_rules``)
    or, in a source checkout, in the repository's ``rules/`` folder."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_rules" / name, here.parent.parent / "rules" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no shipped rule pack named {name!r}")
