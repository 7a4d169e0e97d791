"""Every Python and shell block of README.md and docs/ runs as written (tests/docs_blocks.py
says how), each page against a fresh book in its own directory; a block that cannot run
carries ``<!-- skip: REASON -->`` in the page, and the skips are listed and counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs_blocks import ROOT, Block, blocks, commands, pages, run_page

PAGES = [p for p in pages() if blocks(p)]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_blocks_run(page: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ran, skipped = run_page(page, tmp_path)
    assert len(ran) + len(skipped) == len(blocks(page))
    with capsys.disabled():
        print(f"\n{page.relative_to(ROOT)}: ran {len(ran)}, skipped {len(skipped)}")
        for label in skipped:
            print(f"  skipped {label}")


def test_inventory_of_blocks() -> None:
    """Which pages have blocks, how many run and how many are skipped, and why; most run."""
    every = [b for p in pages() for b in blocks(p)]
    skipped = [b for b in every if b.skip is not None]
    assert all(b.skip for b in skipped), "a skip marker needs a reason"
    assert len(every) - len(skipped) > 2 * len(skipped)
    assert any(b.page == "README.md" and b.shell and b.skip is None for b in every)


def test_a_shell_block_with_a_foreign_command_is_refused() -> None:
    block = Block("x.md", 1, "sh", "arflow lint rules/default\npip install arflow\n", None)
    with pytest.raises(AssertionError, match="pip install arflow"):
        commands(block)


def test_a_skip_marker_is_honoured(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- skip: needs network -->\n\n```sh\npip install nothing\n```\n\n"
        "```python\nx = 1\n```\n\n```python\nassert x == 1\n```\n",
        encoding="utf-8",
    )
    found = blocks(page)
    assert [b.skip for b in found] == ["needs network", None, None]


def test_a_failing_block_fails_its_page(tmp_path: Path) -> None:
    """The runner is not a formality: a Python error, a command that exits non-zero, and a
    name defined on another page all fail the page."""
    (tmp_path / "book").mkdir()
    bad_python = tmp_path / "python.md"
    bad_python.write_text("```python\nraise ValueError('as written')\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="as written"):
        run_page(bad_python, tmp_path / "book")
    bad_shell = tmp_path / "shell.md"
    bad_shell.write_text(
        "```sh\npython -m arflow init\npython -m arflow explain no-such-key\n```\n",
        encoding="utf-8",
    )
    with pytest.raises(AssertionError, match="unknown decision or message 'no-such-key'"):
        run_page(bad_shell, tmp_path / "book")
    other_page = tmp_path / "other.md"
    other_page.write_text("```python\nprint(x)\n```\n", encoding="utf-8")
    with pytest.raises(NameError):
        run_page(other_page, tmp_path / "book")
