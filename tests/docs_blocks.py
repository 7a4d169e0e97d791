"""The runner behind tests/test_docs_blocks.py: the Python and shell blocks of README.md and
docs/*.md, extracted and run as a reader would run them.

A page's blocks run in order in one fresh directory (the page's "book": the files and
databases its blocks write stay there for its later blocks), with ``rules`` and ``examples``
of the checkout linked into it, as if the reader had cloned the repository:

- a ```` ```python ```` block runs in one namespace shared by the page's Python blocks;
- a ```` ```sh ```` (or ``bash``, ``shell``, ``console``) block runs in ``bash -e -o
  pipefail``; each of its commands must start with ``arflow`` or ``python -m arflow``
  (``python3`` too), and ``arflow`` is this checkout's command line;
- a block preceded by ``<!-- skip: REASON -->`` (blank lines between allowed) is not run
  and is counted as skipped, with its reason; a block that cannot run must say so this way.

Other fences (``text``, ``yaml``, ``csv``, ``mermaid``...) are not code to run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELLS = ("sh", "bash", "shell", "console")
RUNS = ("python", "py", *SHELLS)

_FENCE = re.compile(
    r"(?P<skip><!--\s*skip:\s*(?P<reason>.*?)\s*-->\s*\n(?:[ \t]*\n)*)?"
    r"^```(?P<lang>[A-Za-z0-9_+-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$",
    re.S | re.M,
)
_COMMAND = re.compile(r"^(arflow|python3? -m arflow)(\s|$)")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    body: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def shell(self) -> bool:
        return self.lang in SHELLS


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """The runnable blocks of one page, in order (skipped ones included, marked)."""
    text = path.read_text(encoding="utf-8")
    page = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
    found: list[Block] = []
    for m in _FENCE.finditer(text):
        lang = m["lang"].lower()
        if lang not in RUNS:
            continue
        line = text.count("\n", 0, m.start("lang")) + 1
        found.append(Block(page, line, "python" if lang == "py" else lang, m["body"], m["reason"]))
    return found


def commands(block: Block) -> list[str]:
    """The commands of a shell block (continuations joined, comments dropped); refuses a
    command the runner cannot run, naming it, so the page marks the block skipped."""
    joined = re.sub(r"\\\n\s*", " ", block.body)
    out: list[str] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if not _COMMAND.match(line):
            raise AssertionError(
                f"{block.where}: {line!r} is not an arflow command; run it or mark the block "
                "with <!-- skip: REASON -->"
            )
        out.append(line)
    return out


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARFLOW_DB")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    return env


def run_shell(block: Block, cwd: Path) -> str:
    cmds = commands(block)
    prelude = (
        f'arflow() {{ {shlex.quote(sys.executable)} -m arflow "$@"; }}\n'
        f'python() {{ {shlex.quote(sys.executable)} "$@"; }}\n'
        f'python3() {{ {shlex.quote(sys.executable)} "$@"; }}\n'
    )
    script = prelude + "\n".join(cmds) + "\n"
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{block.where}: exit {done.returncode}\n{script}\n--- stdout\n{done.stdout[-3000:]}"
            f"\n--- stderr\n{done.stderr[-3000:]}"
        )
    return done.stdout


def run_page(path: Path, cwd: Path) -> tuple[list[str], list[str]]:
    """Run one page's blocks in ``cwd``; returns (ran, skipped) as ``page:line`` labels."""
    for name in ("rules", "examples"):
        link = cwd / name
        if not link.exists():
            link.symlink_to(ROOT / name, target_is_directory=True)
    ran: list[str] = []
    skipped: list[str] = []
    namespace: dict[str, object] = {"__name__": "__docs__"}
    old = Path.cwd()
    os.chdir(cwd)
    try:
        for block in blocks(path):
            if block.skip is not None:
                skipped.append(f"{block.where} ({block.skip})")
                continue
            if block.shell:
                run_shell(block, cwd)
            else:
                code = "\n" * (block.line) + block.body
                exec(compile(code, block.page, "exec"), namespace)
            ran.append(block.where)
    finally:
        os.chdir(old)
    return ran, skipped
