"""A day's run in several processes (``Engine(..., workers=N)``): the engine plans one slice
of the customers, helper processes plan and record the others in transactions they never
commit, and the engine writes what they staged in its own transaction. Whatever the number of workers, a run must
leave the same book, decision ledger, outbox and run records; only the order in which the
day's events are logged may differ (slice by slice)."""

from __future__ import annotations

import json
import select
import shutil
import sqlite3
import sys
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import arflow.engine._parallel as planner
from arflow import AllocationRequest, Ledger, OrderApprovalRequested, PaymentReceived, dump_book
from arflow._child import WorkerFailed
from arflow.engine import Engine, merge_plans
from arflow.ledger import Batch
from arflow.rules.loader import load_pack
from arflow.store.sql import SqlStore
from arflow.testing import BookBuilder

from .conftest import POSTGRES_URL, service_unavailable
from .test_import_reader import fake_python

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"


@pytest.fixture(autouse=True)
def helpers_on_small_days(monkeypatch: pytest.MonkeyPatch) -> None:
    """These books are small: start helpers whatever the size of the day."""
    monkeypatch.setattr(Engine, "helpers_from", 0)


DAYS = [date(2026, 3, 2) + timedelta(days=i) for i in range(4)]


def build(b: BookBuilder, customers: int = 24) -> None:
    """Customers with limits (locks on exposure and overdue items), invoices due around
    the days run (every step of the ladder, alerts), payments, a dispute, promises to pay
    (one left unpaid past its date: a pattern), orders."""
    for c in range(customers):
        cid = f"C{c:03d}"
        b.customer(
            cid,
            limit=40_000 if c % 3 else 400_000,
            grade="ABCD"[c % 4],
            email=f"ap{c}@example.cn",
            salesperson=f"sales{c % 5}",
            sales_manager="manager",
        )
        for i in range(6):
            due = DAYS[0] + timedelta(days=(c * 7 + i * 11) % 120 - 95)
            number = f"INV-{c:03d}-{i}"
            b.invoice(number, cid, 5_000 + 1_000 * i + c, issued=due - timedelta(30), due=due)
        if c % 4 == 1:
            b.pay(f"PAY-{c}", cid, 3_000, on=DAYS[0] - timedelta(3))
        if c % 6 == 2:
            b.dispute(f"D-{c}", f"INV-{c:03d}-1", 1_000, on=DAYS[0] - timedelta(10))
        if c % 5 == 3:
            b.promise(
                f"PR-{c}",
                cid,
                [f"INV-{c:03d}-2"],
                2_000,
                by=DAYS[0] - timedelta(9),
                on=DAYS[0] - timedelta(20),
            )
        if c % 7 == 4:
            b.order(f"O-{c}", cid, 30_000, on=DAYS[0] - timedelta(5))
            # issue 12: an over-limit order is approved by a holder of the role it was sent to
            b.apply(
                OrderApprovalRequested(
                    event_id=f"req-O-{c}",
                    occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                    actor="t",
                    order_id=f"O-{c}",
                    roles=("sales_manager",),
                    approvers=("manager",),
                )
            )
            b.approve(f"O-{c}")


def sqlite_rows(path: Path) -> dict[str, Any]:
    """The book's tables; the event log and audit trail as multisets (their order, and so
    their sequence numbers, follow the slices)."""
    conn = sqlite3.connect(path)
    try:
        out: dict[str, Any] = {}
        tables = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")') if r[1] != "seq"]
            rows = conn.execute(f'SELECT {", ".join(cols)} FROM "{t}"').fetchall()
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        conn.close()


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workers") / "book.db"
    ledger = Ledger(f"sqlite:///{path}")
    build(BookBuilder(ledger))
    ledger.store.close()  # type: ignore[attr-defined]
    return path


def copy(book: Path, folder: Path, name: str) -> Path:
    dst = folder / name
    shutil.copyfile(book, dst)
    return dst


def run_days(path: Path, workers: int, **kw: Any) -> list[tuple[int, int, int]]:
    ledger = Ledger(f"sqlite:///{path}")
    engine = Engine(ledger, RULES, workers=workers)
    out = []
    for day in DAYS:
        r = engine.run(day, **kw)
        out.append((r.recorded, r.skipped, len(r.failures)))
    engine.close()
    ledger.store.close()  # type: ignore[attr-defined]
    return out


@pytest.fixture(scope="module")
def one_process(
    book: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[tuple[int, int, int]], dict[str, Any]]:
    """The days run in one process (what each several-process run is compared with, made
    once): the runs' counts and the book's rows."""
    one = copy(book, tmp_path_factory.mktemp("one"), "one.db")
    counts = run_days(one, 1)
    return counts, sqlite_rows(one)


@pytest.mark.parametrize("workers", [2, 3])
def test_a_run_in_several_processes_leaves_the_same_book(
    book: Path,
    tmp_path: Path,
    workers: int,
    one_process: tuple[list[tuple[int, int, int]], dict[str, Any]],
) -> None:
    many = copy(book, tmp_path, "many.db")
    counts, expected = one_process
    assert sum(c[0] for c in counts) > 50  # dunning, alerts, locks and patterns fired
    assert run_days(many, workers) == counts
    assert sqlite_rows(many) == expected
    kinds = {row[0].split(":")[0] for row in expected["ar_decision"]}
    assert {"dunning", "alert", "lock", "pattern"} <= kinds


def test_the_merged_plan_is_the_plan_of_one_process(book: Path, tmp_path: Path) -> None:
    """The slices' plans, merged, are one process's plan, decision for decision and in its
    order (the order the day's effects are booked in a one-process run)."""
    ledger = Ledger(f"sqlite:///{copy(book, tmp_path, 'plan.db')}")
    engine = Engine(ledger, RULES)
    whole = engine.plan(DAYS[1], first_run=True)
    parts = []
    for i in range(3):
        engine._slice = (i, 3)
        parts.append(engine.plan(DAYS[1], first_run=True))
    engine._slice = None
    assert all(p.decisions for p in parts)
    merged = merge_plans(parts)
    assert merged.decisions == whole.decisions
    assert merged.skipped == whole.skipped
    assert merged.segments == whole.segments
    assert merged.candidates == whole.candidates


def test_review_mode_holds_the_same_decisions(book: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    pack = rules / "pack.yaml"
    pack.write_text(pack.read_text().replace("review: false", "review: true"))
    paths = [copy(book, tmp_path, f"{n}.db") for n in ("one", "two")]
    for path, workers in zip(paths, (1, 2), strict=True):
        ledger = Ledger(f"sqlite:///{path}")
        engine = Engine(ledger, rules, workers=workers)
        assert engine.run(DAYS[0]).recorded > 10
        ledger.store.close()  # type: ignore[attr-defined]
    rows = sqlite_rows(paths[1])
    assert rows == sqlite_rows(paths[0])
    assert rows["ar_decision"] and not rows["ar_outbox"]  # held: nothing leaves


def test_helpers_are_used_only_where_they_see_what_this_engine_sees(
    book: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []
    real = planner.start

    def spy(spec: dict[str, Any]) -> Any:
        started.append(spec["slice"])
        return real(spec)

    monkeypatch.setattr(planner, "start", spy)

    def helpers(engine: Engine) -> int:
        started.clear()
        engine.plan(DAYS[0])  # planning alone never starts helpers
        engine.run(DAYS[0])
        return len(started)

    path = copy(book, tmp_path, "a.db")
    assert helpers(Engine(Ledger(f"sqlite:///{path}"), RULES, workers=2)) == 1
    # a pack given loaded, a store in memory or opened from an engine object: one process
    assert (
        helpers(
            Engine(Ledger(f"sqlite:///{copy(book, tmp_path, 'b.db')}"), load_pack(RULES), workers=2)
        )
        == 0
    )
    assert helpers(Engine(Ledger("memory://"), RULES, workers=2)) == 0
    assert (
        helpers(
            Engine(
                Ledger(SqlStore(sa.create_engine(f"sqlite:///{copy(book, tmp_path, 'c.db')}"))),
                RULES,
                workers=2,
            )
        )
        == 0
    )
    # rules changed after loading: the helpers would load the files, so one process
    changed = Engine(Ledger(f"sqlite:///{copy(book, tmp_path, 'd.db')}"), RULES, workers=2)
    changed.pack.alerts = []
    assert helpers(changed) == 0
    assert helpers(Engine(Ledger(f"sqlite:///{copy(book, tmp_path, 'e.db')}"), RULES)) == 0


def test_rule_files_edited_after_loading_keep_the_run_in_one_process(
    book: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    engine = Engine(Ledger(f"sqlite:///{copy(book, tmp_path, 'a.db')}"), rules, workers=2)
    alerts = rules / "alerts.yaml"
    alerts.write_text(alerts.read_text() + "\n# edited\n")
    monkeypatch.setattr(planner, "start", lambda spec: pytest.fail("a helper was started"))
    assert engine.run(DAYS[0]).recorded > 0


def test_workers_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1"):
        Engine(Ledger("memory://"), RULES, workers=0)


def test_a_helper_that_dies_fails_the_run_and_records_nothing(
    book: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy(book, tmp_path, "a.db")
    before = sqlite_rows(path)
    engine = Engine(Ledger(f"sqlite:///{path}"), RULES, workers=2)
    exe = fake_python(tmp_path, "import sys\nsys.stderr.write('killed')\nsys.exit(9)\n")
    monkeypatch.setattr(sys, "executable", exe)
    with pytest.raises(
        WorkerFailed, match=r"helper process \(1, 2\) stopped \(exit code 9\): killed"
    ):
        engine.run(DAYS[0])
    engine.ledger.store.close()  # type: ignore[attr-defined]
    assert sqlite_rows(path) == before


@pytest.fixture
def pg_urls() -> Iterator[Callable[[], str]]:
    """PostgreSQL URLs whose search path is a fresh schema, so that helper processes
    opening the URL see the same book."""
    schemas: list[str] = []
    try:
        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:
        service_unavailable("PostgreSQL", POSTGRES_URL, exc)

    def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        sep = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"

    yield make
    with admin.connect() as conn:
        for schema in schemas:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def test_several_processes_on_postgresql(
    pg_urls: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []
    real = planner.start
    monkeypatch.setattr(planner, "start", lambda spec: started.append(spec) or real(spec))
    books = []
    for workers in (1, 2):
        ledger = Ledger(pg_urls())
        build(BookBuilder(ledger), customers=12)
        engine = Engine(ledger, RULES, workers=workers)
        for day in DAYS[:2]:
            engine.run(day)
        store = ledger.store
        assert isinstance(store, SqlStore)
        with store.engine.connect() as conn:
            outbox = conn.execute(sa.text("SELECT key, body, next_at FROM ar_outbox")).all()
        books.append(
            (
                dump_book(store),
                sorted((r.key, r.status, r.body) for r in store.decisions()),
                sorted(outbox),
                [r.body for r in store.runs()],
            )
        )
        store.close()
    assert len(started) == 2  # a helper on each day of the two-worker book
    assert books[1] == books[0]
    assert len(books[0][1]) > 20


def test_helpers_start_only_for_days_as_large_as_helpers_from(
    book: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []
    real = planner.start
    monkeypatch.setattr(planner, "start", lambda spec: started.append(spec) or real(spec))
    monkeypatch.setattr(Engine, "helpers_from", 10_000)
    engine = Engine(Ledger(f"sqlite:///{copy(book, tmp_path, 'a.db')}"), RULES, workers=2)
    engine.run(DAYS[0])  # no run before: helpers
    assert len(started) == 1
    engine.run(DAYS[1])  # the last run read a few hundred candidates: one process
    assert len(started) == 1
    monkeypatch.setattr(Engine, "helpers_from", 10)
    engine.run(DAYS[2])
    assert len(started) == 2


def test_a_first_run_at_a_given_instant_is_the_same_in_several_processes(
    book: Path, tmp_path: Path
) -> None:
    """Catch-up on a first run (stale steps recorded as skipped) and an explicit ``at``
    (when the messages are queued) reach the helpers as they are."""
    at = datetime(2026, 3, 3, 7, 30, tzinfo=UTC)
    paths = [copy(book, tmp_path, f"{n}.db") for n in ("one", "two")]
    results = []
    for path, workers in zip(paths, (1, 2), strict=True):
        ledger = Ledger(f"sqlite:///{path}")
        result = Engine(ledger, RULES, workers=workers).run(DAYS[1], first_run=True, at=at)
        results.append((result.recorded, result.skipped))
        ledger.store.close()  # type: ignore[attr-defined]
    assert results[0] == results[1] and results[0][1] > 0  # stale steps skipped
    rows = sqlite_rows(paths[1])
    assert rows == sqlite_rows(paths[0])
    assert rows["ar_outbox"]


def stage_slice(engine: Engine, store: SqlStore, day: date, at: datetime) -> tuple[Any, ...]:
    """What a helper does: plan a slice, record it in a transaction that is never
    committed; (plan, staged rows, counts)."""
    with engine._bulk_reads():
        plan = engine.plan(day)
        with store.staging() as tx:
            counts = engine._record_plan(Batch(engine.ledger, tx), plan, at)
            rows = tx.staged_rows()
    return plan, rows, counts


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_rows_staged_without_a_commit_are_written_by_another_transaction(
    store_factory: Callable[[], Any],
) -> None:
    """A helper records its slice in ``SqlStore.staging()`` and hands the staged rows over;
    written in the run's transaction, they leave the book a run in one process leaves."""
    one, staged = store_factory(), store_factory()
    for s in (one, staged):
        build(BookBuilder(Ledger(s)), customers=8)
    day = DAYS[0]
    at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert Engine(Ledger(one), RULES).run(day).recorded > 10
    before = dump_book(staged)
    plan, rows, counts = stage_slice(Engine(Ledger(staged), RULES), staged, day, at)
    assert counts[0] == len(plan.decisions) > 10 and counts[1] > 0
    assert dump_book(staged) == before and staged.decisions() == []  # nothing committed
    with staged.transaction() as tx:
        tx.write_rows(rows)
    assert dump_book(staged) == dump_book(one)
    assert staged.decisions() == one.decisions()
    assert staged.outbox() == one.outbox()
    assert sorted(staged.event_log()) == sorted(one.event_log())


def test_a_slice_another_run_recorded_meanwhile_is_recorded_once(
    book: Path, tmp_path: Path
) -> None:
    """A helper stages its slice against the committed book; if another run records the
    day before the engine writes the rows, the engine records what is left instead."""
    path = copy(book, tmp_path, "a.db")
    store = SqlStore(f"sqlite:///{path}")
    engine = Engine(Ledger(store), RULES)
    day = DAYS[0]
    at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    engine._slice = (1, 2)
    plan, rows, counts = stage_slice(engine, store, day, at)
    engine._slice = None
    assert counts[0] > 5
    Engine(Ledger(store), RULES).run(day)  # the whole day, this slice's decisions too
    after = sqlite_rows(path)
    with engine.ledger.batch() as batch:
        assert engine._record_helpers(batch, plan, rows, counts, at) == (0, 0)
    assert sqlite_rows(path) == after
    store.close()


# -- runs too large to plan at once: slices one after the other ----------------------------------


def test_a_run_in_slices_leaves_the_same_book(
    book: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run with more than ``Engine.slice_candidates`` candidates (a first run: every step
    ever due) plans and records slices of the customers one after the other: the same
    book, decisions, outbox and counts as a run planned at once."""
    whole, sliced = copy(book, tmp_path, "whole.db"), copy(book, tmp_path, "sliced.db")
    counts = run_days(whole, 1, first_run=True)
    seen: list[int] = []
    real = Engine._run_in_slices

    def spy(self: Engine, *a: Any) -> Any:
        result = real(self, *a)
        seen.append(result.plan.slices)
        assert not result.plan.decisions and not result.plan.skipped  # in the ledger only
        return result

    monkeypatch.setattr(Engine, "_run_in_slices", spy)
    monkeypatch.setattr(Engine, "slice_candidates", 25)
    assert run_days(sliced, 1, first_run=True) == counts
    assert len(seen) == len(DAYS) and min(seen) > 1
    rows, expected = sqlite_rows(sliced), sqlite_rows(whole)
    runs = [(day, json.loads(body)) for day, body in rows.pop("ar_run")]
    assert [(day, {**body, "slices": 0}) for day, body in runs] == [
        (day, {**json.loads(body), "slices": 0}) for day, body in expected.pop("ar_run")
    ]
    assert [body["slices"] for _day, body in runs] == seen  # the run record says so
    assert rows == expected
    assert rows["ar_outbox"] and sum(c[1] for c in counts) > 0  # messages, stale steps


def test_a_run_in_slices_on_the_memory_store(monkeypatch: pytest.MonkeyPatch) -> None:
    books = []
    for limit in (10**9, 20):
        monkeypatch.setattr(Engine, "slice_candidates", limit)
        ledger = Ledger("memory://")
        build(BookBuilder(ledger))
        engine = Engine(ledger, RULES)
        results = [engine.run(day, first_run=day == DAYS[0]) for day in DAYS]
        assert all((r.plan.slices > 1) == (limit == 20) for r in results[:1])
        books.append(
            (
                [(r.recorded, r.skipped) for r in results],
                dump_book(ledger.store),
                sorted((d.key, d.status) for d in ledger.store.decisions()),
                sorted(o.key for o in ledger.store.outbox()),
            )
        )
    assert books[0] == books[1]


def test_the_slices_a_run_needs_follow_its_candidates(book: Path, tmp_path: Path) -> None:
    engine = Engine(Ledger(f"sqlite:///{copy(book, tmp_path, 'a.db')}"), RULES)
    first = len(engine.candidates(DAYS[0], None))
    day = len(engine.candidates(DAYS[0], DAYS[0]))
    assert first > day > 0
    engine.slice_candidates = day
    assert engine._slices_needed(DAYS[0], DAYS[0], False) == 1
    engine.slice_candidates = 4 * day  # a first run's slices hold a quarter of it
    assert engine._slices_needed(DAYS[0], None, True) == -(-first // day) > 1
    engine.slice_candidates = 4 * first
    assert engine._slices_needed(DAYS[0], None, True) == 1


def test_a_payment_committed_while_helpers_plan_is_recorded_on_the_book_as_it_is(
    book: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper stages its slice against the book it read; a payment committed after that
    for one of its customers must not be overwritten by the staged rows, nor fail the run:
    that customer is planned again, and the day ends as if the payment came first."""
    day = DAYS[0]
    probe = Ledger(f"sqlite:///{copy(book, tmp_path, 'probe.db')}")
    planned = Engine(probe, RULES).plan(day)
    theirs = next(
        d
        for d in planned.decisions
        if d.kind == "dunning" and zlib.crc32(d.customer_id.encode()) % 2 == 1
    )
    owed = probe.receivable(theirs.subject_id).open_balance
    probe.store.close()  # type: ignore[attr-defined]

    def pay(ledger: Ledger) -> None:
        BookBuilder(ledger).apply(
            PaymentReceived(
                event_id="bank-feed-1",
                occurred_at=datetime(2026, 3, 2, 8, tzinfo=UTC),
                actor="bank",
                payment_id="P-FEED",
                customer_id=theirs.customer_id,
                amount=owed,
                received_on=day,
                allocations=[AllocationRequest(receivable_id=theirs.subject_id, amount=owed)],
            )
        )

    first, during = copy(book, tmp_path, "first.db"), copy(book, tmp_path, "during.db")
    ledger = Ledger(f"sqlite:///{first}")
    pay(ledger)
    Engine(ledger, RULES).run(day)
    ledger.store.close()  # type: ignore[attr-defined]

    ledger = Ledger(f"sqlite:///{during}")
    engine = Engine(ledger, RULES, workers=2)
    real, start = engine._plan_slice, planner.start
    started: list[Any] = []

    def plan_then_pay(*args: Any) -> Any:
        plan = real(*args)
        if engine._only is not None:  # planning the paying customer again
            return plan
        # once the helper has staged its slice (it is writing its plan back), the bank
        # feed commits: the helper's rows are of the book before the payment
        (helper,) = started
        ready, _w, _x = select.select([helper._proc.stdout], [], [], 60)
        assert ready, "the helper sent nothing within 60 s"
        pay(ledger)
        return plan

    def start_and_keep(spec: dict[str, Any]) -> Any:
        started.append(start(spec))
        return started[-1]

    monkeypatch.setattr(planner, "start", start_and_keep)
    engine._plan_slice = plan_then_pay  # type: ignore[method-assign]
    result = engine.run(day)
    assert result.plan.replanned == 1
    engine.close()
    ledger.store.close()  # type: ignore[attr-defined]
    assert not result.failures
    assert all(d.subject_id != theirs.subject_id for d in result.plan.decisions)
    expected, got = sqlite_rows(first), sqlite_rows(during)
    expected.pop("ar_run"), got.pop("ar_run")  # the audit marks differ
    assert got == expected
