"""The benchmark suite's parts: the seeded book generator (``bench/books.py``) is
deterministic and realistic, and the driver (``bench/suite.py``) runs end to end on a tiny
book. No timings are checked here: the figures live in docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from arflow import Ledger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import books  # noqa: E402  (bench/ is no package)


def dumps(events: object) -> list[str]:
    return [e.model_dump_json() for e in events]  # type: ignore[attr-defined]


def test_the_same_seed_makes_the_same_book_and_another_seed_another() -> None:
    one = dumps(books.realistic_events(400, 40, seed=3))
    assert one == dumps(books.realistic_events(400, 40, seed=3))
    assert one != dumps(books.realistic_events(400, 40, seed=4))
    # the customers every bench shares are seeded too, and unchanged by the realistic book
    assert dumps(books.customer_events(30, 7)) == dumps(books.customer_events(30, 7))


def test_the_realistic_book_has_what_a_real_one_has() -> None:
    events = list(books.realistic_events(3_000, 300, seed=7))
    kinds = Counter(type(e).__name__ for e in events)
    assert kinds["CustomerRegistered"] == 300 and kinds["InvoiceIssued"] == 3_000
    assert kinds["PaymentReceived"] > 300 and kinds["DisputeOpened"] > 30
    assert kinds["PromiseMade"] > 30
    invoices = [e for e in events if type(e).__name__ == "InvoiceIssued"]
    assert {i.amount.currency for i in invoices} == {"CNY", "HKD", "EUR", "USD"}
    days = {(i.due_date - books.AS_OF).days for i in invoices}
    assert min(days) == -books.PAST_DAYS and max(days) == books.FUTURE_DAYS
    grades = Counter(e.customer.credit.grade for e in events[:300])  # type: ignore[attr-defined]
    assert set(grades) == {"A", "B", "C", "D"}
    paid = {
        e.payment_id: e.amount.amount / inv.amount.amount
        for e in events
        if type(e).__name__ == "PaymentReceived"
        for inv in [invoices[int(e.payment_id[3:])]]  # type: ignore[attr-defined]
    }
    assert any(share == 1 for share in paid.values())  # paid in full
    assert any(share < 1 for share in paid.values())  # and in part


def test_a_fixed_steps_book_keeps_its_tail_out_of_reach() -> None:
    events = list(books.realistic_events(500, 50, seed=7, core=100))
    invoices = [e for e in events if type(e).__name__ == "InvoiceIssued"]
    tail = invoices[100:]
    assert all(i.due_date >= books.AS_OF + timedelta(books.RETENTION_FROM) for i in tail)
    assert all(i.tags == ("retention",) for i in tail)
    touched = {getattr(e, "receivable_id", None) for e in events[550:]}
    assert not touched & {i.number for i in tail}


def test_a_ledger_takes_the_whole_book() -> None:
    ledger = Ledger("memory://")
    got = books.apply_in_chunks(ledger, books.realistic_events(1_000, 100, seed=7))
    assert got["events"] > 1_100
    states = Counter(str(r.state) for r in ledger.store.all("receivable"))
    assert {"open", "paid", "partially_paid", "disputed", "promised"} <= set(states)


def test_the_suite_runs_end_to_end_on_a_tiny_book(tmp_path: Path) -> None:
    out = tmp_path / "runs.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "suite.py"), "--size", "300", "--repeats", "2",
         "--feed-events", "60", "--feed-customers", "6", "--payments", "5",
         "--cache-dir", str(tmp_path / "cache"), "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    for row in ("spread day, `workers=2`", "spread day, one process", "fixed day",
                "first run of the spread book", "bank feed", "Engine.handle", "Celery"):  # fmt: skip
        assert row in table, row
    assert "python bench/suite.py --size 300 --repeats 2 --only spread" in table
    saved = json.loads(out.read_text())
    runs = saved["results"]
    assert {"spread_day", "spread_workers", "fixed_day", "first", "feed", "handle"} <= set(runs)
    assert all("error" not in r for rs in runs.values() for r in rs), runs
    assert runs["handle"][0]["calls"] == 5
    assert [len(runs[k]) for k in ("spread_day", "fixed_day", "feed_floor")] == [2, 2, 2]
    # the peers decide what each other decides: the same ladder steps, from the same facts
    matched = {runs[k][0]["matched"] for k in ("spread_post", "spread_zen") if k in runs}
    assert len(matched) <= 1
