"""The layers of docs/architecture.md hold: the import-linter contracts in pyproject.toml
(layers, and no cycles among the modules of any package, imports inside functions
included) pass on the code as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    # In a process of its own: import-linter configures logging (it disables the loggers
    # that exist), which would silence arflow's loggers for the tests that follow.
    code = (
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


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
