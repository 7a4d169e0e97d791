"""``arflow demo`` tells a story (issue 15 item 7): 60 days of a sample book played one by
one, then what was sent to whom and why, the locks set and lifted, an order refused and
one sent for approval, and the HTML report it wrote."""

from __future__ import annotations

import io
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest

from arflow import Ledger
from arflow.cli import main
from arflow.demo import DEFAULT_AS_OF, play, progress_bar, story_events, story_text


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.seen: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        self.ids += [v for k, v in attrs if k == "id" and v]
        if tag not in ("meta", "link", "br", "hr", "img", "input", "col", "wbr", "source"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
        self.open.pop()


def _check_page(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html>")
    page = _Page()
    page.feed(text)
    page.close()
    assert not page.open, page.open  # every element closed, in order
    assert {"html", "head", "body", "title"} <= set(page.seen)
    assert len(page.ids) == len(set(page.ids))
    assert 'id="headline-CNY-total"' in text
    return text


def test_the_story_on_a_sqlite_book(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'book.db'}"
    seen: list[tuple[int, int, date]] = []
    story = play(db, progress=lambda i, n, d: seen.append((i, n, d)))
    assert (story.start, story.as_of) == (date(2026, 9, 25), DEFAULT_AS_OF)
    assert [s[0] for s in seen] == list(range(1, 61)) and seen[-1][2] == DEFAULT_AS_OF
    assert story.applied == len(story_events())  # every event is on or before 2026-11-23
    text = story_text(story)
    lines = text.splitlines()
    assert len(lines) <= 40  # one screen
    # the customers, by name and grade, and what each was sent
    for cid, name, grade in [
        ("C001", "华东精密机械有限公司", "A"),
        ("C002", "Northwind Trading Ltd", "B"),
        ("C003", "西南新能源科技", "C"),
        ("C004", "Pearl River Foods", "B"),
    ]:
        assert f"  {cid} {name} (grade {grade}): " in text
    assert "email to ap@northwind.example" in text and "sms to +8613900000003" in text
    assert "overdue notice" in text and "reminder before due" in text
    # a lock set, then lifted by the payment; another set and still in force
    assert (
        "2026-10-19  C004 Pearl River Foods: orders suspended (overdue-30: overdue_max_days 31"
        in text
    )
    assert "2026-11-06  C004 Pearl River Foods: orders open again (overdue-30:" in text
    assert "2026-11-15  C003 西南新能源科技: orders suspended (overdue-30:" in text
    # an order sent for approval (and approved), one refused
    assert "2026-11-02  SO-501 of C002 Northwind Trading Ltd: sent for approval to zhang.min" in (
        text
    )
    assert "2026-11-03  SO-501 of C002 Northwind Trading Ltd: approved" in text
    assert "2026-11-18  SO-502 of C003 西南新能源科技: refused (lock-overdue-30:" in text
    ledger = Ledger(db)
    assert ledger.get("order", "SO-501").state == "approved"
    assert ledger.get("order", "SO-502").state == "rejected"
    # the messages told are the outbox's, every one delivered
    assert len(story.sent) == ledger.store.outbox_counts().get("sent", 0) > 0
    assert f"({len(story.sent)} messages)" in text
    # the report, next to the database, a whole page
    assert story.report == tmp_path / "book-report.html"
    assert f"Report as of 2026-11-23: {story.report} (open it in a browser)" in text
    _check_page(story.report)


def test_playing_it_again_changes_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'book.db'}"
    first = play(db)
    again = play(db)
    assert (again.applied, again.recorded) == (0, 0)
    assert first.recorded > 0
    assert again.sent == first.sent and again.events == first.events
    # the same story, but for the counts of what was new
    assert story_text(again).splitlines()[2:] == story_text(first).splitlines()[2:]


def test_an_earlier_end_plays_only_the_events_up_to_it() -> None:
    story = play("memory://", date(2026, 11, 1), days=10)
    assert story.start == date(2026, 10, 23)
    text = story_text(story)
    assert "SO-501" not in text and "SO-502" not in text  # submitted later
    assert "C004 Pearl River Foods: orders open again" not in text  # paid later
    assert story.report is not None and story.report.name == "report.html"
    _check_page(story.report)  # in a folder of its own: the store has no file
    with pytest.raises(ValueError, match="days must be at least 1"):
        play("memory://", days=0)


def test_the_command_prints_the_story_and_plain_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--db", db, "-v"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("arflow demo: 4 customers, 60 days played one by one")
    assert "Every message sent:" in captured.out  # -v
    assert (tmp_path / "demo-report.html").is_file()
    # stderr is not a terminal here: a plain line every tenth of the way, no bar
    assert captured.err.splitlines()[-1] == "  day 60/60: 2026-11-23"
    assert "\r" not in captured.err and len(captured.err.splitlines()) == 10


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_on_a_terminal() -> None:
    out = _Terminal()
    show = progress_bar(out)
    for i in range(1, 5):
        show(i, 4, date(2026, 11, 19 + i))
    text = out.getvalue()
    assert text.count("\r") == 4 and text.endswith("2026-11-23\n")
    assert "\r  day   2/4 [###############---------------] 2026-11-21" in text
