"""Mutation testing of one part of arflow against its own tests, with mutmut 3, in a scratch copy.

The working tree is never touched: the files git knows about (tracked, plus new files not
ignored) are copied to a scratch directory, a ``[tool.mutmut]`` section naming the part's
module and its test files is appended to the copy's ``pyproject.toml``, and ``mutmut run``
runs there under ``nice -n 19`` (mutmut then runs, for each mutant, only the tests that
reach the mutated function). Not part of the test suite or of ``.ci/run``: run on demand.

    pip install 'mutmut>=3.8,<4'
    python bench/mutation.py calendar
    python bench/mutation.py engine --sample 300 --seed 10
    python bench/mutation.py calendar --show-survivors    # diffs of the survivors
    python bench/mutation.py ledger --sample 200 --seed 10 --rerun-survivors --pins-only

``--sample N --seed S`` runs a fixed random sample of N mutants (the same N for the same
source and seed). The summary (counts per status, score, survivors) is printed and written
as JSON to ``<workdir>/summary.json``; the workdir defaults to ``/tmp/arflow-mutation/PART``
and is reused, so ``--show-survivors`` after a run only reads it. See ``docs/testing.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: part -> (module file, or a glob of a package's module files; its own test files, the
#: pins file last)
PARTS: dict[str, tuple[str, list[str]]] = {
    "calendar": (
        "src/arflow/calendar/_offsets.py",
        ["tests/test_calendar.py", "tests/test_calendar_pins.py", "tests/test_calendar_reach.py"],
    ),
    "calendar-days": (
        "src/arflow/calendar/_business.py",
        ["tests/test_calendar.py", "tests/test_calendar_pins.py"],
    ),
    "calendar-windows": (
        "src/arflow/calendar/_windows.py",
        ["tests/test_calendar.py", "tests/test_calendar_pins.py"],
    ),
    "expr": (
        "src/arflow/rules/expr/_parser.py",
        ["tests/test_rules_expr.py", "tests/test_rules_expr_pins.py"],
    ),
    "expr-check": (
        "src/arflow/rules/expr/_check.py",
        ["tests/test_rules_expr.py", "tests/test_rules_expr_pins.py"],
    ),
    "expr-compile": (
        "src/arflow/rules/expr/_compile.py",
        ["tests/test_rules_expr.py", "tests/test_rules_expr_pins.py"],
    ),
    "expr-bounds": (
        "src/arflow/rules/expr/_bounds.py",
        ["tests/test_rules_bounds.py", "tests/test_rules_lint.py"],
    ),
    "outbox": (
        "src/arflow/outbox.py",
        [
            "tests/test_outbox.py",
            "tests/test_outbox_crash.py",
            "tests/test_outbox_lease.py",
            "tests/test_outbox_retries.py",
            "tests/test_outbox_pins.py",
        ],
    ),
    "composer": (
        "src/arflow/messages/_composer.py",
        [
            "tests/test_outbox.py",
            "tests/test_outbox_pins.py",
            "tests/test_messages_grouping.py",
            "tests/test_messages_addresses.py",
        ],
    ),
    "ledger": (
        "src/arflow/ledger/*.py",
        [
            "tests/test_ledger.py",
            "tests/test_properties.py",
            "tests/test_ledger_allocation.py",
            "tests/test_ledger_pins.py",
        ],
    ),
    "engine": (
        "src/arflow/engine/**/*.py",
        [
            "tests/test_engine.py",
            "tests/test_engine_properties.py",
            "tests/test_engine_workers.py",
            "tests/test_engine_alerts.py",
            "tests/test_engine_pins.py",
        ],
    ),
}

#: mutmut exit codes -> the status reported (mutmut's own table, folded)
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped"}
TIMEOUT_CODES = {36, -24, 24, 152, 255}

PYTEST = ["nice", "-n", "19", sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
PYTEST += ["-m", "not postgres"]


def status_of(code: int | None) -> str:
    """The status of one mutant from the exit code mutmut stored for it."""
    if code is None:
        return "not checked"
    if code in TIMEOUT_CODES:
        return "timeout"
    return STATUS.get(code, "suspicious")


def copy_tree(dest: Path) -> None:
    """Copy the files git knows about (committed or new, not ignored) to ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        rel = Path(os.fsdecode(raw))
        src = ROOT / rel
        if not src.is_file():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def configure(dest: Path, module: str, tests: list[str]) -> None:
    """Append the part's ``[tool.mutmut]`` section to the scratch copy's pyproject."""
    for test in tests:
        # A test file still to be written is an empty one, so the selection never changes
        # (mutmut drops every result when it does) and --rerun-survivors can fill it in.
        if not (dest / test).exists():
            (dest / test).write_text('"""Not written yet."""\n', encoding="utf-8")
    section = f"""

[tool.mutmut]
source_paths = ["src/arflow"]
only_mutate = {json.dumps(module_files(dest, module))}
also_copy = ["rules", "examples", "docs", "conftest.py"]
pytest_add_cli_args_test_selection = {json.dumps(tests)}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not postgres"]
use_git_change_detection = false
"""
    with (dest / "pyproject.toml").open("a", encoding="utf-8") as f:
        f.write(section)
    # mutmut's trampolines put three frames on every call: the nesting tests of the
    # condition language (64 levels, each ten calls deep) need more than Python's 1,000.
    (dest / "conftest.py").write_text(
        "import sys\n\nsys.setrecursionlimit(20_000)\n", encoding="utf-8"
    )


def module_files(root: Path, module: str) -> list[str]:
    """The module files of a part: ``module`` itself, or the files its glob names."""
    if not any(c in module for c in "*?["):
        return [module]
    return sorted(str(f.relative_to(root)) for f in root.glob(module))


def meta_path(work: Path, module: str) -> Path:
    return work / "mutants" / (module + ".meta")


def exit_codes(work: Path, module: str) -> dict[str, int | None]:
    """mutmut's exit code per mutant of the part, over its module files (a file without
    mutants has no meta file)."""
    codes: dict[str, int | None] = {}
    for name in module_files(work, module):
        meta = meta_path(work, name)
        if meta.exists():
            codes |= json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return codes


def mutant_names(work: Path, module: str) -> list[str]:
    """All mutant names mutmut generated for the module (generating them if needed)."""
    if not any(meta_path(work, name).exists() for name in module_files(work, module)):
        # Generation alone: mutmut's own function, in a child so its state stays there.
        code = "import sys; from mutmut.__main__ import create_mutants; create_mutants(1)"
        subprocess.run(["nice", "-n", "19", sys.executable, "-c", code], cwd=work, check=True)
    return sorted(exit_codes(work, module))


def pins_only(work: Path, tests: list[str], survivors: list[str], env: dict[str, str]) -> None:
    """Check each survivor against the part's pins file alone (seconds, not minutes: for the
    parts whose own tests take a minute a mutant). A failing run kills the mutant; the kills
    are kept in ``pins_kills.json`` beside mutmut's own results."""
    path = work / "pins_kills.json"
    kills: dict[str, str] = json.loads(path.read_text("utf-8")) if path.exists() else {}
    pins = tests[-1]
    for name in survivors:
        if name in kills:
            continue
        try:
            done = subprocess.run(
                [*PYTEST, pins],
                cwd=work / "mutants",
                env=env | {"MUTANT_UNDER_TEST": name},
                capture_output=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            kills[name] = "timeout"
            continue
        if done.returncode == 1:
            kills[name] = "killed"
        print(f"{name}: {kills.get(name, 'survived')}", flush=True)
    path.write_text(json.dumps(kills, indent=1) + "\n", encoding="utf-8")


def summarise(work: Path, module: str, names: list[str] | None) -> dict[str, object]:
    """Counts per status, the score (killed and timed out over all checked) and survivors."""
    codes = exit_codes(work, module)
    if names is not None:
        codes = {n: codes[n] for n in names}
    statuses = {n: status_of(c) for n, c in codes.items()}
    kills_path = work / "pins_kills.json"
    if kills_path.exists():
        for name, status in json.loads(kills_path.read_text("utf-8")).items():
            if name in statuses and statuses[name] in ("survived", "no tests"):
                statuses[name] = status
    counts = Counter(statuses.values())
    checked = sum(v for k, v in counts.items() if k not in ("not checked", "skipped"))
    caught = counts["killed"] + counts["timeout"]
    return {
        "module": module,
        "mutants": len(codes),
        "counts": dict(sorted(counts.items())),
        "score": round(100 * caught / checked, 1) if checked else None,
        "survivors": sorted(n for n, s in statuses.items() if s in ("survived", "no tests")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=sorted(PARTS))
    parser.add_argument(
        "--workdir", type=Path, help="scratch copy (default /tmp/arflow-mutation/PART)"
    )
    parser.add_argument("--sample", type=int, help="run only N mutants drawn at random")
    parser.add_argument("--seed", type=int, default=10, help="seed of the sample (default 10)")
    parser.add_argument("--max-children", type=int, default=1, help="mutmut workers (default 1)")
    parser.add_argument("--fresh", action="store_true", help="discard an earlier scratch copy")
    parser.add_argument(
        "--rerun-survivors",
        action="store_true",
        help="copy the part's test files again and check only the earlier survivors",
    )
    parser.add_argument(
        "--pins-only",
        action="store_true",
        help="with --rerun-survivors: check them against the part's pins file alone",
    )
    parser.add_argument(
        "--show-survivors", action="store_true", help="print the diff of every survivor and stop"
    )
    args = parser.parse_args()

    module, tests = PARTS[args.part]
    work: Path = args.workdir or Path("/tmp/arflow-mutation") / args.part
    if work.resolve() == ROOT or ROOT in work.resolve().parents:
        parser.error("the workdir must be outside the repository")
    if args.show_survivors:
        summary = json.loads((work / "summary.json").read_text("utf-8"))
        for name in summary["survivors"]:
            subprocess.run(["mutmut", "show", name], cwd=work, check=False)
        return 0
    if args.fresh and work.exists():
        shutil.rmtree(work)
    if not work.exists():
        work.mkdir(parents=True)
        copy_tree(work)
        configure(work, module, tests)

    everything = mutant_names(work, module)  # generates mutants/ before mutmut starts
    names: list[str] | None = None
    if args.sample:
        names = sorted(
            random.Random(args.seed).sample(everything, min(args.sample, len(everything)))
        )
    codes = exit_codes(work, module)
    if args.rerun_survivors:
        # After adding tests: refresh the test files in the copy, check the survivors again.
        for test in tests:
            if (ROOT / test).exists():
                for where in (work, work / "mutants"):
                    (where / test).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / test, where / test)
        to_run = [
            n for n in (names or everything) if status_of(codes[n]) in ("survived", "no tests")
        ]
    elif names is not None:
        # mutmut checks named mutants again even if it has a result: name only the new ones.
        to_run = [n for n in names if codes[n] is None]
    else:
        to_run = []
    # The mutated package comes first for mutmut and for the processes tests start (workers,
    # the CLI). mutants/src must exist before the interpreter starts: a PYTHONPATH entry that
    # is missing at start-up is cached as missing, and the installed arflow would be tested.
    env = os.environ | {"PYTHONPATH": str(work / "mutants" / "src")}
    command = ["nice", "-n", "19", "mutmut", "run", "--max-children", str(args.max_children)]
    started = datetime.now(UTC)
    if args.pins_only:
        pins_only(work, tests, to_run, env)
    elif to_run or (names is None and not args.rerun_survivors):
        subprocess.run([*command, *to_run], cwd=work, env=env, check=False)

    summary = summarise(work, module, names)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    summary |= {
        "part": args.part,
        "tests": tests,
        "sample": {"size": args.sample, "seed": args.seed} if args.sample else None,
        "commit": commit,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "survivors"}, indent=1))
    print(
        f"{len(summary['survivors'])} survivors: python bench/mutation.py {args.part} --show-survivors"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
