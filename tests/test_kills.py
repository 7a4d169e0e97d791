"""Reliability with real processes: a day's run and an import killed with SIGKILL at random
points, and two runs of the same day at once.

A killed run or import leaves the book as it was, or wholly done: never a part of it. Run
again, it finishes the day exactly as one uninterrupted run would have. Two runs of one day
at once record the day once: the same decisions and the same outbox as one run. Every
process here is bounded in time, and the kills are few and seeded."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from arflow import Ledger
from arflow.importer import import_files
from arflow.store.sql import SqlStore

from .test_engine_workers import sqlite_rows

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 3, 2)
LIMIT = 120  # seconds any one process may take
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def write_export(folder: Path, customers: int, invoices: int) -> list[Path]:
    """An ERP export whose invoices fall due over the four months before ``DAY``: a first
    run there brings each to its stage (thousands of decisions and messages)."""
    folder.mkdir(parents=True, exist_ok=True)
    cust = folder / "customers.csv"
    with cust.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["id", "name", "salesperson", "credit_limit", "currency", "grade", "contact_email"]
        )
        for c in range(customers):
            w.writerow(
                [f"C{c:04d}", f"客户{c:04d}", f"S{c % 7}", "80000", "CNY", "B", f"ap{c}@x.cn"]
            )
    inv = folder / "invoices.csv"
    with inv.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["number", "customer_id", "issue_date", "due_date", "amount", "currency"])
        for i in range(invoices):
            due = DAY - timedelta(days=(i * 37) % 125 - 5)
            w.writerow(
                [
                    f"INV-{i:06d}",
                    f"C{i % customers:04d}",
                    (due - timedelta(30)).isoformat(),
                    due.isoformat(),
                    f"{1_000 + (i * 7_919) % 90_000}.{i % 100:02d}",
                    "CNY",
                ]
            )
    return [cust, inv]


def arflow(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "arflow", *args],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes]) -> None:
    _out, err = proc.communicate(timeout=LIMIT)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]


def timed(args: list[str]) -> float:
    start = time.monotonic()
    finish(arflow(*args))
    return time.monotonic() - start


def kill_when(proc: subprocess.Popen[bytes], ready: Any) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()`` says so, unless it ended first (or
    ``LIMIT`` passed); whether it was killed."""
    deadline = time.monotonic() + LIMIT
    try:
        while proc.poll() is None and not ready() and time.monotonic() < deadline:
            time.sleep(0.002)
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=LIMIT)
        return True
    finally:
        if proc.stderr is not None:
            proc.stderr.close()


def wal_past(path: Path, size: int) -> Any:
    """Whether the book's write-ahead log holds more than ``size`` bytes: the run (or the
    import) is writing its transaction, not yet committed."""
    wal = Path(f"{path}-wal")
    return lambda: wal.exists() and wal.stat().st_size > size


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {
            t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            for t in ("ar_receivable", "ar_decision", "ar_outbox", "ar_run", "ar_event")
        }
    finally:
        conn.close()


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An imported book of 150 customers and 1,000 invoices, closed (its WAL checkpointed):
    its first run writes thousands of decisions and messages (megabytes) in one transaction."""
    folder = tmp_path_factory.mktemp("kills")
    path = folder / "book.db"
    ledger = Ledger(f"sqlite:///{path}")
    import_files(ledger, write_export(folder / "export", 150, 1_000))
    ledger.store.close()  # type: ignore[attr-defined]
    return path


def copy(book: Path, dst: Path) -> Path:
    shutil.copyfile(book, dst)
    return dst


def _without_runs(rows: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rows.items() if k != "ar_run"}


def run_args(path: Path) -> list[str]:
    return ["run", "--db", f"sqlite:///{path}", "--as-of", DAY.isoformat(), "--first-run", "--yes"]


def test_a_run_killed_at_random_points_leaves_nothing_half_and_finishes_the_day_alike(
    book: Path, tmp_path: Path
) -> None:
    done = copy(book, tmp_path / "done.db")
    finish(arflow(*run_args(done)))
    expected = _without_runs(sqlite_rows(done))
    assert counts(done)["ar_decision"] > 1_000 and counts(done)["ar_outbox"] > 300
    written = done.stat().st_size - book.stat().st_size  # what the day's transaction adds
    before = counts(book)
    rng = random.Random(20261207)
    halfway = 0
    for i in range(4):
        path = copy(book, tmp_path / f"killed-{i}.db")
        # inside the transaction, at a random point of what it writes
        killed = kill_when(
            arflow(*run_args(path)), wal_past(path, int(rng.uniform(0.05, 0.8) * written))
        )
        now = counts(path)
        if now["ar_run"] == 0:  # killed before its commit: nothing of the day is there
            assert now == before, i
            halfway += killed
        else:  # killed after it: all of it
            assert _without_runs(sqlite_rows(path)) == expected, i
        assert killed or now["ar_run"] == 1, i
        finish(arflow(*run_args(path)))  # the day again, to the end
        assert _without_runs(sqlite_rows(path)) == expected, i
        # one run recorded the day; a second, if any, found it recorded
        recorded = [json.loads(body)["recorded"] for _d, body in sqlite_rows(path)["ar_run"]]
        assert sorted(recorded, reverse=True)[1:] in ([], [0]), (i, recorded)
    assert halfway >= 2  # most kills fell inside the run's transaction


#: invoices of the killed import: its one transaction writes megabytes, far past SQLite's page
#: cache, so the write-ahead log grows all through it and a kill lands mid-transaction
IMPORTED = 12_000


def test_an_import_killed_at_random_points_imports_all_or_nothing(tmp_path: Path) -> None:
    files = write_export(tmp_path / "export", 500, IMPORTED)
    done = tmp_path / "done.db"
    SqlStore(f"sqlite:///{done}").close()  # an empty book, schema made
    empty = done.stat().st_size
    args = ["import", *map(str, files)]
    finish(arflow(*args, "--db", f"sqlite:///{done}"))
    assert counts(done)["ar_receivable"] == IMPORTED
    written = done.stat().st_size - empty
    expected = sqlite_rows(done)
    rng = random.Random(20261208)
    for i in range(3):
        path = tmp_path / f"killed-{i}.db"
        SqlStore(f"sqlite:///{path}").close()
        ready = wal_past(path, int(rng.uniform(0.05, 0.8) * written))
        killed = kill_when(arflow(*args, "--db", f"sqlite:///{path}"), ready)
        assert counts(path)["ar_receivable"] == (0 if killed else IMPORTED), i
        finish(arflow(*args, "--db", f"sqlite:///{path}"))
        assert counts(path)["ar_receivable"] == IMPORTED, i
        got = sqlite_rows(path)
        # the import's audit and events carry the instant they were made at
        for table in ("ar_event", "ar_audit"):
            got.pop(table), expected.pop(table, None)
        assert got == {k: v for k, v in expected.items() if k in got}, i


def test_two_runs_of_one_day_at_once_record_it_once(book: Path, tmp_path: Path) -> None:
    one = copy(book, tmp_path / "one.db")
    finish(arflow(*run_args(one)))
    finish(arflow(*run_args(one)))  # the same day again: adds nothing
    expected = _without_runs(sqlite_rows(one))
    both = copy(book, tmp_path / "both.db")
    procs = [arflow(*run_args(both)) for _ in range(2)]
    for proc in procs:
        finish(proc)
    assert _without_runs(sqlite_rows(both)) == expected
    assert counts(both)["ar_run"] == 2
