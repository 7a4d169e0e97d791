"""The ``arflow`` command: demo, show."""

from __future__ import annotations

from pathlib import Path

import pytest

from arflow import errors as errors_mod
from arflow.cli import main


def test_demo_builds_the_sample_book_once(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """The demo plays its 60 days once: a second run on the same book applies and records
    nothing new and tells the same story (tests/test_demo.py checks the story itself)."""
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--db", db]) == 0
    first = capsys.readouterr().out
    assert "60 days played one by one, 2026-09-25 to 2026-11-23" in first
    assert "(24 new events applied, 38 new decisions recorded)" in first
    assert "华东精密机械有限公司" in first and "Locks set and lifted:" in first
    assert (tmp_path / "demo-report.html").is_file()
    assert main(["demo", "--db", db]) == 0
    again = capsys.readouterr().out
    assert "(0 new events applied, 0 new decisions recorded)" in again
    story = first.split("\n", 2)[2]
    assert again.split("\n", 2)[2] == story


def test_show_customer_receivable_and_unknown(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    main(["demo", "--db", db])
    capsys.readouterr()
    assert main(["show", "--db", db, "customer", "C003"]) == 0
    out = capsys.readouterr().out
    assert "INV-3001" in out and "promised" in out
    assert main(["show", "--db", db, "receivable", "INV-2002"]) == 0
    out = capsys.readouterr().out
    assert "audit trail:" in out
    assert "partially_paid -> disputed" in out
    assert main(["show", "--db", db, "customer", "NOPE"]) == 3  # docs/cli.md
    assert "unknown customer 'NOPE'" in capsys.readouterr().err


def test_lint_plan_run_explain_simulate(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import json

    db = f"sqlite:///{tmp_path / 'demo.db'}"
    main(["demo", "--db", db, "--as-of", "2026-11-01"])
    capsys.readouterr()
    assert main(["lint"]) == 0
    assert "default: 1 ladder(s), 7 step(s), 2 lock(s), 1 alert(s)" in capsys.readouterr().out

    assert main(["plan", "--db", db, "--as-of", "2026-11-09", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["since"] == "2026-11-02"
    keys = [d["key"] for d in plan["decisions"]]
    assert "dunning:standard:formal-notice:INV-1002:2026-11-09" in keys

    assert main(["run", "--db", db, "--as-of", "2026-11-09"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"run 2026-11-09: {len(keys)} recorded")
    assert main(["explain", "--db", db, "dunning:standard:formal-notice:INV-1002:2026-11-09"]) == 0
    why = json.loads(capsys.readouterr().out)
    assert why["why"]["occurrence"] == "2026-11-09"
    assert why["why"]["facts"]["days_past_due"] == "1"

    assert main(["simulate", "--db", db, "--from", "2026-11-10", "--to", "2026-11-20"]) == 0
    sim = capsys.readouterr().out
    assert "2026-11-16 (Mon)" in sim and "formal-notice" in sim
    assert main(["plan", "--db", db, "--as-of", "2026-11-10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["since"] == "2026-11-10"  # the copy, not the book
    assert main(["plan", "--db", db, "--as-of", "2026-11-10", "--json"]) == 0
    expected = len(json.loads(capsys.readouterr().out)["decisions"])
    assert main(["run", "--db", db, "--as-of", "2026-11-10", "--workers", "2"]) == 0
    assert capsys.readouterr().out.startswith(f"run 2026-11-10: {expected} recorded")


def test_lint_reports_errors_with_file_and_line(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "ladders:\n  - id: x\n    steps:\n      - id: s\n        at: due-7x\n"
        "        level: 0\n        actions: [{type: risk_flag, level: high}]\n"
    )
    assert main(["lint", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"error: {bad}:5: [x/s] bad 'at' 'due-7x'" in out


def test_lint_checks_every_template_a_rule_names(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from arflow.rules import default_pack_path

    pack = tmp_path / "pack"
    shutil.copytree(default_pack_path(), pack)
    bad = pack / "templates" / "formal_notice.zh_CN.j2"
    bad.write_text(
        bad.read_text(encoding="utf-8").replace("contact.name", "contact.nmae"), encoding="utf-8"
    )
    (pack / "templates" / "overdue_sms.en.j2").unlink()
    assert main(["lint", str(pack)]) == 1
    out = capsys.readouterr().out
    assert "formal_notice" in out and "nmae" in out
    assert "overdue_sms" in out and "en" in out


def test_exit_codes_match_the_documented_table() -> None:
    """docs/cli.md lists each error class with its exit code; the CLI uses the same."""
    import re

    from arflow import errors
    from arflow.cli import EXIT_CODES

    doc = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text("utf-8")
    documented: dict[str, int] = {}
    for code, classes in re.findall(r"^\| (\d+) \|[^|]*\|([^|]*)\|$", doc, re.M):
        for name in re.findall(r"`(\w+)`", classes):
            documented[name] = int(code)
    assert documented == {cls.__name__: code for cls, code in EXIT_CODES.items()}
    for name in documented:
        assert issubclass(getattr(errors, name), errors.ArflowError)


def test_every_error_class_has_an_exit_code_and_a_line_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from arflow.cli import exit_code

    assert exit_code(errors_mod.RuleLoadError([])) == 1
    assert exit_code(errors_mod.ScheduleError("x", 0, "a day")) == 1
    assert exit_code(errors_mod.UnknownObject("customer", "C")) == 3
    assert exit_code(errors_mod.AmountOutOfRange("too big")) == 4
    assert exit_code(errors_mod.StoreError("down")) == 5
    assert exit_code(errors_mod.ReaderFailed("killed")) == 6
    assert exit_code(errors_mod.ArflowError("other")) == 7
    bad = tmp_path / "bad.yaml"
    bad.write_text("ladders: [\n", encoding="utf-8")
    assert main(["lint", str(bad)]) == 1
    err = capsys.readouterr()
    assert "Traceback" not in err.out + err.err
