"""The layers of docs/architecture.md hold: the import-linter contracts in pyproject.toml
(layers, and no cycles among the modules of any package, imports inside functions
included) pass on the code as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 kept, 0 broken" in out


def test_the_layers_name_every_part() -> None:
    """A new top-level module or package must take its place in the layers."""
    import tomllib

    import arflow

    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    (layers,) = [
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    ]
    named = {part.strip() for layer in layers for part in layer.split("|")}
    package = Path(arflow.__file__).parent
    parts = {p.stem for p in package.glob("*.py")} | {
        p.name for p in package.iterdir() if (p / "__init__.py").exists()
    }
    assert parts - {"__init__", "__main__"} == named
