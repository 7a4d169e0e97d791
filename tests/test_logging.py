"""Logging (issue 15 item 5): stdlib loggers, one per part, under ``arflow``; a
``NullHandler`` and nothing else configured by the library; every record about a run, a
decision, a message or an import says which, in its text and in an ``extra`` field."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from arflow import Ledger, MemoryAdapter
from arflow.demo import sample_events
from arflow.engine import Engine
from arflow.importer import import_files
from arflow.messages import ledger_feedback
from arflow.outbox import Dispatcher, RetryPolicy
from arflow.rules import default_pack_path

AS_OF = date(2026, 11, 23)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


def _ours(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


def _demo_book() -> tuple[Ledger, Engine]:
    ledger = Ledger("memory://")
    ledger.apply_all(sample_events())
    return ledger, Engine(ledger, [str(default_pack_path())])


def test_a_run_names_itself_and_each_decision(caplog: pytest.LogCaptureFixture) -> None:
    _ledger, engine = _demo_book()
    with caplog.at_level(logging.DEBUG, logger="arflow"):
        result = engine.run(AS_OF, first_run=True)
    assert result.recorded > 0
    records = _ours(caplog, "arflow.engine")
    runs = {getattr(r, "arflow_run", None) for r in records}
    assert len(runs) == 1, runs  # one run, and every record of it says which
    (run,) = runs
    assert run is not None and run.startswith("2026-11-23/")
    infos = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert infos[0].startswith(f"run {run} started (pack default, first run)")
    assert infos[-1] == (
        f"run {run} done: {result.recorded} decision(s) recorded, {result.skipped} skipped, "
        "0 failure(s)"
    )
    decided = [r for r in records if r.levelno == logging.DEBUG]
    keys = {d.key for d in result.plan.decisions if d.status == "planned"}
    assert keys and keys <= {getattr(r, "arflow_decision", None) for r in decided}
    for r in decided:
        assert r.arflow_decision in r.getMessage() and run in r.getMessage()
    # a second run records nothing new: no decision records, a run of its own
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="arflow"):
        engine.run(AS_OF)
    again = _ours(caplog, "arflow.engine")
    assert not [r for r in again if hasattr(r, "arflow_decision")]
    assert {r.arflow_run for r in again} != {run}


def test_a_dispatch_with_a_failing_adapter(caplog: pytest.LogCaptureFixture) -> None:
    ledger, engine = _demo_book()
    engine.run(AS_OF, first_run=True)
    keys = {r.key for r in ledger.store.outbox()}
    assert keys
    clock = datetime(2026, 11, 23, 23, 59, tzinfo=UTC)
    failing = MemoryAdapter(fail_first=1_000)  # every attempt fails for now
    with caplog.at_level(logging.INFO, logger="arflow"):
        stats = Dispatcher(
            ledger.store,
            failing,
            on_feedback=ledger_feedback(ledger),
            clock=lambda: clock,
            retry=RetryPolicy(max_attempts=1),
        ).run()
    assert stats.dead == len(keys) and stats.sent == 0
    records = _ours(caplog, "arflow.outbox")
    claims = [r for r in records if "claimed" in r.getMessage()]
    assert claims and all(r.levelno == logging.INFO for r in claims)
    dead = [r for r in records if r.getMessage().startswith("dead letter ")]
    assert {r.arflow_message for r in dead} == keys
    for r in dead:
        assert r.levelno == logging.WARNING
        assert r.arflow_message in r.getMessage() and "fails on purpose" in r.getMessage()


def test_a_send_names_its_message(caplog: pytest.LogCaptureFixture) -> None:
    ledger, engine = _demo_book()
    engine.run(AS_OF, first_run=True)
    sink = MemoryAdapter()
    clock = datetime(2026, 11, 23, 23, 59, tzinfo=UTC)
    with caplog.at_level(logging.INFO, logger="arflow.outbox"):
        Dispatcher(ledger.store, sink, clock=lambda: clock).run()
    sent = [r for r in _ours(caplog, "arflow.outbox") if "sent by" in r.getMessage()]
    assert sorted(r.arflow_message for r in sent) == sorted(m.key for m in sink.sent)
    assert all(r.getMessage().startswith(f"outbox {r.arflow_message}: ") for r in sent)


def test_an_import_reports_its_progress(caplog: pytest.LogCaptureFixture) -> None:
    ledger = Ledger("memory://")
    files = sorted(EXAMPLES.iterdir())
    with caplog.at_level(logging.INFO, logger="arflow"):
        report = import_files(ledger, files, now=datetime(2026, 1, 1, tzinfo=UTC))
    records = _ours(caplog, "arflow.importer")
    ids = {getattr(r, "arflow_import", None) for r in records}
    assert len(ids) == 1 and next(iter(ids)).startswith("import/")  # type: ignore[union-attr]
    texts = [r.getMessage() for r in records]
    assert texts[0].endswith(f"started: {len(files)} file(s)")
    assert sum("reading " in t for t in texts) == len(files)
    assert f"done: {report.applied} event(s) applied (" in texts[-1]
    assert all(r.getMessage().startswith(r.arflow_import) for r in records)


def test_importing_arflow_only_adds_a_null_handler() -> None:
    code = (
        "import logging\n"
        "root = logging.getLogger()\n"
        "before = (list(root.handlers), root.level, logging.getLogger('arflow').level)\n"
        "import arflow, arflow.engine, arflow.outbox, arflow.importer, arflow.analytics\n"
        "log = logging.getLogger('arflow')\n"
        "assert (list(root.handlers), root.level) == before[:2], root.handlers\n"
        "assert log.level == logging.NOTSET and log.propagate\n"
        "assert [type(h).__name__ for h in log.handlers] == ['NullHandler'], log.handlers\n"
        "for name, lg in logging.root.manager.loggerDict.items():\n"
        "    if name.startswith('arflow.') and isinstance(lg, logging.Logger):\n"
        "        assert lg.level == logging.NOTSET and not lg.handlers, name\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
