"""The public API: what ``arflow`` lists in ``__all__`` resolves, ``import arflow`` stays
light, and the docs and examples import only public names."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import arflow

ROOT = Path(__file__).resolve().parent.parent

#: Modules users import on purpose, besides ``arflow`` itself.
PUBLIC_MODULES = frozenset(
    {
        "arflow",
        "arflow.analytics",
        "arflow.testing",
        "arflow.strategies",
        "arflow.adapters",
        "arflow.adapters.http",
        "arflow.adapters.smtp",
        "arflow.adapters.queues",
        "arflow.adapters.chat",
        "arflow.adapters.ratelimit",
        "arflow.celery_dispatch",
        "arflow.rules",
        "arflow.report",
        "arflow.store.sql",
        "arflow.engine.distributed",
    }
)

#: What a user needs from the top level (issue 11): these must stay in ``__all__``.
CENTRAL = (
    "Engine",
    "Plan",
    "RunResult",
    "Decision",
    "load_pack",
    "default_pack_path",
    "import_files",
    "open_store",
    "SqlStore",
    "TemplateSet",
    "BusinessCalendar",
    "Offset",
    "Schedule",
    "SendWindow",
    "RuleHarness",
    "Ledger",
    "Money",
    "Dispatcher",
    "ArflowError",
)


def test_all_is_sorted_unique_and_resolves() -> None:
    names = list(arflow.__all__)
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(arflow, name) is not None, name
    assert set(names) <= set(dir(arflow))


def test_central_names_are_public() -> None:
    missing = [n for n in CENTRAL if n not in arflow.__all__]
    assert not missing


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = arflow.Nope  # type: ignore[attr-defined]


def test_every_public_error_is_an_arflow_error() -> None:
    for name in arflow.__all__:
        value = getattr(arflow, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, arflow.ArflowError), name


def test_import_arflow_stays_light() -> None:
    code = (
        "import sys, arflow\n"
        "heavy = [m for m in ('sqlalchemy', 'yaml', 'jinja2', 'holidays') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


# -- the docs and examples import only public names ----------------------------------------------

_FENCE = re.compile(r"^```(?:python|py)\s*$(.*?)^```", re.S | re.M)


def _sources() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for i, block in enumerate(_FENCE.findall(md.read_text(encoding="utf-8"))):
            out.append((f"{md.relative_to(ROOT)}#{i + 1}", block))
    for py in sorted((ROOT / "examples").rglob("*.py")):
        out.append((str(py.relative_to(ROOT)), py.read_text(encoding="utf-8")))
    return out


def _imports(source: str) -> list[tuple[str, str | None]]:
    """(module, name) for each arflow import in ``source``; name None for ``import m``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a shell or partial block: not Python to check
        return []
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("arflow"):
            found.extend((node.module, a.name) for a in node.names)
        elif isinstance(node, ast.Import):
            found.extend((a.name, None) for a in node.names if a.name.startswith("arflow"))
    return found


def _exported(module: str) -> list[str] | None:
    """The module's ``__all__``: imported, or read from its source when it needs an extra
    this interpreter lacks (``arflow.engine.distributed`` without Celery refuses to load)."""
    from arflow.errors import ArflowError

    try:
        return getattr(importlib.import_module(module), "__all__", None)
    except ArflowError:
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None, module
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                return list(ast.literal_eval(node.value))
        return None


def test_docs_and_examples_import_public_names_only() -> None:
    bad: list[str] = []
    sources = _sources()
    assert len(sources) > 10  # the docs were found
    for where, source in sources:
        for module, name in _imports(source):
            if module not in PUBLIC_MODULES:
                bad.append(f"{where}: {module} is not a public module")
                continue
            if name is None:
                continue
            exported = _exported(module)
            if exported is None or name not in exported:
                bad.append(f"{where}: {module}.{name} is not in {module}.__all__")
    assert not bad, "\n".join(bad)
