"""``arflow report`` end to end, on the demo book: the command builds the report with
``arflow.analytics.build_report`` and prints or writes it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from arflow import Ledger
from arflow.analytics import build_report
from arflow.cli import main
from arflow.report import CSV_HEADERS, report_dict
from arflow.rules import default_pack_path
from arflow.rules.loader import load_pack


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--db", url]) == 0
    capsys.readouterr()
    return url


def test_report_prints_the_headline_table(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", db, "--as-of", "2026-11-23"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Accounts receivable report · as of 2026-11-23")
    assert "Total AR" in out and "CNY" in out
    assert main(["report", "--db", db, "--as-of", "2026-11-23", "--locale", "zh_CN"]) == 0
    assert "应收总额" in capsys.readouterr().out


def test_report_json_is_the_api_s_report(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", db, "--as-of", "2026-11-23", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ledger = Ledger(db)
    expected = build_report(
        ledger.store, date(2026, 11, 23), pack=load_pack([str(default_pack_path())])
    )
    assert data == report_dict(expected)
    assert data["headline"], "the demo book has open receivables"


def test_report_csv_and_html_files(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--db", db, "--as-of", "2026-11-23", "--csv", str(tmp_path / "bi")]) == 0
    assert sorted(p.name for p in (tmp_path / "bi").iterdir()) == sorted(
        f"{n}.csv" for n in CSV_HEADERS
    )
    page = tmp_path / "report.html"
    assert main(["report", "--db", db, "--as-of", "2026-11-23", "--html", str(page)]) == 0
    assert str(page) in capsys.readouterr().out
    assert 'id="headline-CNY-total"' in page.read_text(encoding="utf-8")


def test_report_usage_and_refusals(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["report", "--db", db, "--as-of", "2026-13-01"])
    assert usage.value.code == 2
    with pytest.raises(SystemExit) as both:
        main(["report", "--db", db, "--as-of", "2026-11-23", "--json", "--csv", "x"])
    assert both.value.code == 2
    capsys.readouterr()
    missing = str(tmp_path / "no" / "r.html")
    assert main(["report", "--db", db, "--as-of", "2026-11-23", "--html", missing]) == 4
    assert "does not exist" in capsys.readouterr().err


def test_the_python_block_of_docs_report_md_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    doc = Path(__file__).resolve().parent.parent / "docs" / "report.md"
    (block,) = re.findall(r"^```python\n(.*?)^```", doc.read_text(encoding="utf-8"), re.S | re.M)
    exec(compile(block, str(doc), "exec"), {})
    out = capsys.readouterr().out
    assert "Total AR" in out and "150,000.00" in out  # 120,000 + 80,000 - 50,000 open
