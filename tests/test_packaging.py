"""Packaging: the metadata a release carries, the sdist's file list, and an engine that runs
without durable-rules (the default install on Python 3.13 has none).

The metadata is read twice: from pyproject.toml as written, and from the wheel hatchling
builds out of it (through ``importlib.metadata``), so a dynamic field that resolved wrongly
shows up too.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

import arflow

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT: dict[str, Any] = PYPROJECT["project"]
PYTHONS = ("3.11", "3.12", "3.13")


def _hatchling() -> Any:
    """hatchling (in the ``test`` extra): CI must have it, a laptop may skip."""
    try:
        import hatchling.builders.sdist
        import hatchling.builders.wheel
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so hatchling must be installed: {exc}", pytrace=False)
        pytest.skip("hatchling is not installed (pip install -e '.[test]')")
    return hatchling.builders


def _tracked() -> list[str]:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: the tracked files are unknown")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [p for p in out.split("\0") if p and (ROOT / p).is_file()]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tracked files (as in the work tree) copied out, plus the junk a work tree
    collects: none of it may reach the sdist."""
    copy = tmp_path_factory.mktemp("tree")
    for rel in _tracked():
        target = copy / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    for junk in JUNK:
        (copy / junk).parent.mkdir(parents=True, exist_ok=True)
        (copy / junk).write_text("junk\n", encoding="utf-8")
    return copy


JUNK = (
    "arflow.db",
    "notes.txt",
    "scratch.py",
    ".venv/bin/python3",
    "dist/arflow-0.0.0.tar.gz",
    "bench/out/run.csv",
    "src/arflow/__pycache__/money.cpython-311.pyc",
    "tests/__pycache__/conftest.cpython-311.pyc",
    "docs/ar.db",
)


@pytest.fixture(scope="module")
def wheel_metadata(
    tree: Path, tmp_path_factory: pytest.TempPathFactory
) -> importlib.metadata.Distribution:
    builders = _hatchling()
    out = tmp_path_factory.mktemp("wheel")
    built = list(builders.wheel.WheelBuilder(str(tree)).build(directory=str(out)))
    assert len(built) == 1
    with zipfile.ZipFile(built[0]) as wheel:
        names = wheel.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        wheel.extractall(out / "unpacked")
    assert "arflow/rules/patterns.py" in names
    assert "arflow/_rules/default/patterns.yaml" in names  # the shipped pack
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    return importlib.metadata.PathDistribution(out / "unpacked" / dist_info)


# -- pyproject as written --------------------------------------------------------------------------


def test_the_version_has_one_source() -> None:
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "src/arflow/__init__.py"
    assert arflow.__version__.count(".") >= 2


def test_python_versions_classifiers_license_and_urls() -> None:
    assert PROJECT["requires-python"] == ">=3.11"
    for v in PYTHONS:
        assert f"Programming Language :: Python :: {v}" in PROJECT["classifiers"]
    assert PROJECT["license"] == {"text": "Apache-2.0"}
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "License :: OSI Approved :: Apache Software License" in PROJECT["classifiers"]
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(PROJECT["urls"])


def test_durable_rules_is_an_extra_that_python_3_13_skips() -> None:
    assert not any(d.lower().startswith("durable") for d in PROJECT["dependencies"])
    extras = PROJECT["optional-dependencies"]
    assert extras["durable"] == ['durable-rules>=2.0.28,<2.1; python_version < "3.13"']
    assert sorted(extras["testing"]) == ["hypothesis>=6.100", "pytest>=8"]
    assert any(
        d.startswith("arflow[") and {"durable", "testing"} <= set(d[7:-1].split(","))
        for d in extras["test"]
    )


# -- the built wheel's metadata --------------------------------------------------------------------


def test_the_wheel_carries_the_version_extras_and_marker(
    wheel_metadata: importlib.metadata.Distribution,
) -> None:
    md = wheel_metadata.metadata
    assert md["Version"] == arflow.__version__
    assert md["Requires-Python"] == ">=3.11"
    assert {"durable", "testing", "test", "postgres"} <= set(md.get_all("Provides-Extra") or [])
    requires = wheel_metadata.requires or []
    durable = {r for r in requires if r.startswith("durable-rules")}
    # the durable extra, and the test and bench extras that include it, each with the marker
    assert durable == {
        f"durable-rules<2.1,>=2.0.28; (python_version < '3.13') and extra == '{extra}'"
        for extra in ("durable", "test", "bench")
    }
    assert not [r for r in requires if r.startswith(("pytest", "hypothesis")) and "extra" not in r]
    for v in PYTHONS:
        assert f"Programming Language :: Python :: {v}" in (md.get_all("Classifier") or [])
    assert {u.split(",")[0] for u in md.get_all("Project-URL") or []} >= {"Homepage", "Issues"}


def test_the_installed_metadata_matches_when_installed_from_this_checkout() -> None:
    """An editable install of this very checkout (the README's second command) reports the
    version of ``__version__``; another install (a shared environment) is not ours to read."""
    try:
        dist = importlib.metadata.distribution("arflow")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("arflow is not installed")
    direct = dist.read_text("direct_url.json")
    where = json.loads(direct)["url"] if direct else ""
    if where.removeprefix("file://") != str(ROOT):
        pytest.skip(f"the installed arflow is not this checkout ({where or 'a wheel'})")
    assert dist.version == arflow.__version__
    assert not any(r.startswith("durable-rules") and "extra" not in r for r in dist.requires or [])


# -- the sdist -------------------------------------------------------------------------------------


def test_the_sdist_holds_tracked_files_only(tree: Path, tmp_path: Path) -> None:
    builders = _hatchling()
    built = list(builders.sdist.SdistBuilder(str(tree)).build(directory=str(tmp_path)))
    with tarfile.open(built[0]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    files = {n for n in names if not any(o.startswith(n + "/") for o in names)}
    tracked = set(_tracked())
    assert not {n for n in files if n != "PKG-INFO"} - tracked
    assert not set(JUNK) & files
    for must in ("LICENSE", "pyproject.toml", "README.md", "src/arflow/__init__.py"):
        assert must in files
    assert "rules/default/patterns.yaml" in files and "tests/conftest.py" in files
    assert not any(n.startswith((".ci/", "bench/")) for n in files)


# -- running without durable-rules -----------------------------------------------------------------

RUN = r"""
import json, sys
if sys.argv[1] == "block":
    sys.modules["durable"] = None  # import durable -> ImportError, as where it is absent
from datetime import date, timedelta
import arflow, arflow.engine, arflow.rules
from arflow import Ledger
from arflow.demo import sample_events
from arflow.engine import Engine
from arflow.rules import default_pack_path, load_pack
def durable_loaded():
    return sorted(m for m, v in sys.modules.items() if v is not None and m.split(".")[0] == "durable")
loaded_at_import = durable_loaded()
ledger = Ledger("memory://")
for e in sample_events():
    ledger.apply(e)
keys = []
with Engine(ledger, load_pack(default_pack_path())) as engine:
    day = date(2026, 10, 1)
    while day <= date(2027, 3, 1):
        keys += sorted(d.key for d in engine.run(day).plan.decisions)
        day += timedelta(days=7)
    matcher = type(engine.matcher).__module__ + "." + type(engine.matcher).__qualname__
print(json.dumps({"keys": keys, "matcher": matcher, "at_import": loaded_at_import,
                  "durable": durable_loaded()}))
"""


def _run(mode: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN, mode], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return out


def test_the_default_pack_runs_on_the_builtin_matcher_without_durable() -> None:
    """durable-rules made unimportable: nothing imports it, the built-in matcher runs the
    default pack's patterns, and where durable-rules is installed the decisions are the
    ones it gives."""
    blocked = _run("block")
    assert blocked["matcher"] == "arflow.rules.patterns.BuiltinPatternMatcher"
    assert blocked["at_import"] == [] and blocked["durable"] == []
    assert any(k.startswith("pattern") for k in blocked["keys"]), blocked["keys"]
    from arflow.rules.patterns import durable_available

    if durable_available():
        free = _run("free")
        assert free["at_import"] == []  # imported when the matcher was built, not before
        assert free["matcher"] == "arflow.rules.durable._patterns.PatternMatcher"
        assert free["keys"] == blocked["keys"]


REFUSE = r"""
import sys
sys.modules["durable"] = None
from arflow.errors import RuleLoadError
from arflow.rules import load_pack
try:
    load_pack(sys.argv[1])
except RuleLoadError as exc:
    print(exc)
    raise SystemExit(3)
"""


def test_a_pack_asking_for_durable_where_it_does_not_import_is_refused(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(
        "settings:\n  company_name: Acme\n  matcher: durable\n", encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", REFUSE, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr[-2000:]
    assert "settings.yaml:3:" in done.stdout and "arflow[durable]" in done.stdout


def test_the_matcher_setting_is_checked(tmp_path: Path) -> None:
    from arflow.errors import RuleLoadError
    from arflow.rules import load_pack

    (tmp_path / "settings.yaml").write_text("settings:\n  matcher: rete\n", encoding="utf-8")
    with pytest.raises(RuleLoadError, match=r"settings.yaml:2:.*'auto', 'builtin' or 'durable'"):
        load_pack(tmp_path)
    (tmp_path / "settings.yaml").write_text("settings:\n  matcher: builtin\n", encoding="utf-8")
    assert load_pack(tmp_path).settings.matcher == "builtin"


def test_the_matchers_page_example_runs() -> None:
    """The python block of docs/matchers.md's section on choosing the matcher, as written
    (it needs no durable-rules)."""
    text = (ROOT / "docs/matchers.md").read_text(encoding="utf-8")
    section = text.split("## Installing durable-rules, and choosing the pattern matcher", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = section.split("```python\n")[1:]
    assert len(blocks) == 1
    exec(compile(blocks[0].split("```", 1)[0], "docs/matchers.md", "exec"), {})
