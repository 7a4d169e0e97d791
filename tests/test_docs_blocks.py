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
