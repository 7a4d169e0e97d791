"""Store-specific behaviour: schema upgrades, URLs, reading while nothing is written."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from arflow import MemoryStore, StoreError, open_store
from arflow.store.sql import _SUMMARY_COLUMNS, SCHEMA, SCHEMA_VERSION, SqlStore, migrate


def test_open_store_by_url(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(open_store("memory://"), MemoryStore)
    s = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    assert isinstance(s, SqlStore)
    assert s.url.endswith("a.db")
    with pytest.raises(StoreError):
        open_store("nosuchdb://x")


def test_schema_is_created_once_and_recorded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'b.db'}"
    s = SqlStore(url)
    assert migrate(s.engine) == SCHEMA_VERSION  # already there: nothing to do
    with s.engine.connect() as conn:
        versions = conn.execute(sa.select(SCHEMA.c.version)).scalars().all()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_a_newer_schema_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = SqlStore(f"sqlite:///{tmp_path / 'c.db'}")
    with s.engine.begin() as conn:
        conn.execute(SCHEMA.insert().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="newer than this arflow"):
        SqlStore(s.engine)


def test_customers_changed_since_a_mark_by_event_type(store) -> None:  # type: ignore[no-untyped-def]
    """The daily run re-checks a lock only for customers changed since the last run; the
    run's own dunning steps must not count as changes, a payment must."""
    from arflow.events import DunningStepRecorded
    from arflow.ledger import Ledger
    from arflow.testing import BookBuilder, d

    b = BookBuilder(Ledger(store))
    b.customer("C1")
    b.customer("C2")
    b.invoice("INV-1", "C1", 100, issued="2026-01-01", due="2026-01-31")
    b.invoice("INV-2", "C2", 100, issued="2026-01-01", due="2026-01-31")
    mark = store.audit_mark()
    assert store.customers_changed_since(mark) == set()
    b.apply(
        DunningStepRecorded(
            **b._meta(d("2026-02-03")),
            receivable_id="INV-1",
            ladder="standard",
            step="sms-3",
            level=2,
            decision_key="k1",
            sent_on=d("2026-02-03"),
        )
    )
    b.pay("PAY-1", "C2", 40, on="2026-02-04")
    assert store.customers_changed_since(mark) == {"C1", "C2"}
    assert store.customers_changed_since(mark, ignore={"DunningStepRecorded"}) == {"C2"}
    assert store.customers_changed_since(store.audit_mark()) == set()


def test_receivable_summaries_are_what_the_models_say(store) -> None:  # type: ignore[no-untyped-def]
    """The daily run reads customers' receivables as summaries straight from the stored
    JSON; they must agree with the models, in every state, and give the same facts."""
    from datetime import date

    from arflow.rules.facts import customer_facts
    from arflow.summary import summary_of

    b = _summary_book(store)
    got = store.receivable_summaries(["C1", "C2", "C-none"])
    models = store.find_for_customers("receivable", ["C1", "C2"])
    assert set(got) == {"C1", "C2"}
    for cid, rs in models.items():
        assert sorted(got[cid]) == sorted(summary_of(r) for r in rs)
    states = {s.id: s.state for s in got["C1"]}
    assert states == {"I1": "paid", "I2": "partially_paid", "I3": "disputed", "I4": "credited"}
    customer = b.ledger.customer("C1")
    as_of = date(2026, 3, 1)
    assert customer_facts(customer, got["C1"], [], [], as_of) == customer_facts(
        customer, models["C1"], [], [], as_of
    )


def _admits_none(annotation: Any) -> bool:
    if annotation is type(None):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_admits_none(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _admits_none(typing.get_args(annotation)[0])
    return False


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def test_stored_json_can_leave_out_none_fields() -> None:
    """``json_of`` leaves out fields that are None: that is only lossless if every field
    that can hold None defaults to None, in every stored model and the models inside
    them, and no stored model holds a dict (where a None value would be lost)."""
    import arflow.events as events_module
    from arflow.domain import AuditRecord
    from arflow.store.base import KINDS

    todo: list[type[BaseModel]] = [k.model for k in KINDS.values()] + [AuditRecord]
    todo += [
        c for c in vars(events_module).values() if isinstance(c, type) and issubclass(c, BaseModel)
    ]
    seen: set[type[BaseModel]] = set()
    wrong: list[str] = []
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            if _admits_none(field.annotation) and (
                field.is_required() or field.get_default(call_default_factory=True) is not None
            ):
                wrong.append(f"{model.__name__}.{name}")
            if "dict" in str(field.annotation).lower() or "Any" in str(field.annotation):
                wrong.append(f"{model.__name__}.{name} (a mapping)")
            todo.extend(_models_in(field.annotation))
    assert len(seen) > 40
    assert wrong == []


def test_parse_once_reuses_a_parse_only_for_the_same_stored_text(tmp_path: Any) -> None:
    from arflow import Ledger
    from arflow.testing import BookBuilder

    store = SqlStore(f"sqlite:///{tmp_path / 'p.db'}")
    ledger = Ledger(store)
    b = BookBuilder(ledger)
    b.customer("C1", name="One")
    b.invoice("I1", "C1", "100.00")
    # outside the block: every read parses
    assert store.get("receivable", "I1") is not store.get("receivable", "I1")
    with store.parse_once():
        first = store.get("receivable", "I1")
        assert store.get("receivable", "I1") is first
        assert store.get_many("receivable", ["I1"])["I1"] is first
        with store.transaction() as tx:  # the transaction's reads share it too
            assert tx.get("receivable", "I1") is first
        b.pay("P1", "C1", "40.00")  # a new version of I1 is a new text: parsed anew
        again = store.get("receivable", "I1")
        assert again is not first and again.open_balance.amount == Decimal("60.00")
    assert store._models.memo is None  # dropped when the block ends
    store._models.MEMO_MAX = 1  # bounded: past the bound it starts over, answers unchanged
    with store.parse_once():
        one = store.get("receivable", "I1")
        assert store.get("customer", "C1").id == "C1"
        assert store._models.memo is not None and len(store._models.memo) == 1
        assert store.get("receivable", "I1") == one


def _summary_book(store: Any) -> Any:
    """Receivables in every state: paid late, partially paid, disputed, credited, open."""
    from arflow.ledger import Ledger
    from arflow.testing import BookBuilder

    b = BookBuilder(Ledger(store))
    b.customer("C1", limit=100_000)
    b.customer("C2")
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    b.invoice("I2", "C1", 2_000, issued="2026-01-05", due="2026-02-04")
    b.invoice("I3", "C1", 3_000, issued="2026-01-10", due="2026-02-09")
    b.invoice("I4", "C1", 400, issued="2026-01-10", due="2026-02-09")
    b.invoice("I5", "C2", 500, issued="2026-01-10", due="2026-02-09")
    b.pay("P1", "C1", 1_000, on="2026-02-10", to=[("I1", 1_000)])  # paid late
    b.pay("P2", "C1", 500, on="2026-02-01", to=[("I2", 500)])  # partially paid
    b.dispute("D1", "I3", amount=1_000, on="2026-02-11")
    b.credit("CN1", "C1", 400, invoice="I4", on="2026-02-12")
    return b


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_book_from_before_summaries_gets_them_on_upgrade(store) -> None:  # type: ignore[no-untyped-def]
    """Schema step 4 adds the receivables' summary column and fills it from the JSON; rows
    without one are read from the JSON meanwhile."""
    from arflow.summary import summary_of

    assert isinstance(store, SqlStore)
    _summary_book(store)
    expected = {
        cid: sorted(summary_of(r) for r in rs)
        for cid, rs in store.find_for_customers("receivable", ["C1", "C2"]).items()
    }

    def summaries() -> dict[str, Any]:
        got = store.receivable_summaries(["C1", "C2"])
        return {cid: sorted(rs) for cid, rs in got.items()}

    with store.engine.begin() as conn:  # rows an older arflow wrote: no summary
        conn.execute(sa.text("UPDATE ar_receivable SET summary = NULL"))
    assert summaries() == expected
    with store.engine.begin() as conn:  # and a schema from before step 4
        conn.execute(sa.text("DROP INDEX ix_ar_receivable_customer_summary"))
        conn.execute(sa.text("ALTER TABLE ar_receivable DROP COLUMN summary"))
        conn.execute(
            sa.text(
                "CREATE INDEX ix_ar_receivable_customer_state ON ar_receivable (customer_id, state)"
            )
        )
        conn.execute(SCHEMA.delete().where(SCHEMA.c.version >= 4))
    upgraded = SqlStore(store.engine)
    with store.engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM ar_receivable WHERE summary IS NULL")
            ).scalar()
            == 0
        )
    assert {
        cid: sorted(rs) for cid, rs in upgraded.receivable_summaries(["C1", "C2"]).items()
    } == expected
    indexes = {ix["name"] for ix in sa.inspect(store.engine).get_indexes("ar_receivable")}
    assert "ix_ar_receivable_customer_summary" in indexes  # step 5
    assert "ix_ar_receivable_customer_state" not in indexes


def test_summaries_are_read_from_the_index_alone(tmp_path: Path) -> None:
    """Schema step 5: the customer index of receivables covers the summaries' columns, so
    SQLite answers ``receivable_summaries`` without visiting the rows and their JSON."""
    store = SqlStore(f"sqlite:///{tmp_path / 'book.db'}")
    sql = f"SELECT {_SUMMARY_COLUMNS} FROM ar_receivable WHERE customer_id IN (?, ?)"
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ("C1", "C2")).all()
    assert "COVERING INDEX ix_ar_receivable_customer_summary" in str(plan)


def test_shared_url_is_what_another_process_can_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    assert SqlStore(url).shared_url() == url
    assert SqlStore("sqlite://").shared_url() is None  # in memory: this process only
    assert SqlStore("sqlite:///:memory:").shared_url() is None
    built = SqlStore(sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}"))
    assert built.shared_url() is None  # its connect arguments cannot be repeated


def test_finds_read_ahead_answer_as_finds_read_one_by_one(store) -> None:  # type: ignore[no-untyped-def]
    """``prefetch(..., customers=...)`` reads what ``find`` will answer for several customers
    in a few queries; the answers stay those of a plain ``find`` while the transaction
    stages changes and after it writes them to the backend."""
    from arflow.ledger import Ledger
    from arflow.testing import BookBuilder

    ledger = Ledger(store)
    b = BookBuilder(ledger)
    for c in ("C1", "C2", "C3"):
        b.customer(c)
        for i in range(3):
            b.invoice(f"{c}-{i}", c, 100 + i, issued="2026-01-01", due="2026-02-01")
    b.pay("P0", "C2", 101, on="2026-01-10", to=[("C2-1", 101)])
    live = ("open", "partially_paid", "overdue")

    def answers(tx: Any) -> list[Any]:
        return [
            sorted((r.id, str(r.state)) for r in tx.find("receivable", customer_id=c, states=s))
            for c in ("C1", "C2", "C3", "C4")
            for s in (None, live)
        ]

    def in_batch(read_ahead: bool) -> list[list[Any]]:
        """The answers before, during and after staged changes; rolled back after."""
        seen: list[list[Any]] = []
        with pytest.raises(_RolledBack), ledger.batch() as batch:
            if read_ahead:
                batch.tx.prefetch([], {}, {"receivable": ["C1", "C2", "C4"]})  # type: ignore[attr-defined]
            seen.append(answers(batch.tx))
            staged = BookBuilder(ledger)
            staged.apply = batch.apply  # type: ignore[method-assign]
            staged._seq = 100
            staged.pay("P1", "C1", 100, on="2026-01-11", to=[("C1-0", 100)])
            staged.invoice("C1-9", "C1", 50, issued="2026-01-11", due="2026-03-01")
            seen.append(answers(batch.tx))
            batch.tx.flush()
            seen.append(answers(batch.tx))
            raise _RolledBack
        return seen

    plain = in_batch(read_ahead=False)
    assert plain[0] != plain[1] == plain[2]  # the staged changes show
    assert {"C1-9"} <= {i for i, _ in plain[1][0]}
    assert in_batch(read_ahead=True) == plain


class _RolledBack(Exception):
    pass


# -- the checkpoint thread of an SQLite file ------------------------------------------------------


def _write_a_lot(store: SqlStore, n: int, defer: bool, prefix: str = "e") -> None:
    with store.transaction() as tx:
        if defer:
            tx.defer_checkpoint()
        for i in range(n):
            tx.add_event(f"{prefix}-{i}", "Note", "x" * 2000)


def test_a_large_commit_leaves_its_checkpoint_to_the_store_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``defer_checkpoint``: the commit returns with its pages in the WAL only; the store's
    thread copies them into the database file; the connection checkpoints by itself again
    afterwards (SQLite's 1,000 pages)."""
    path = tmp_path / "book.db"
    store = SqlStore(f"sqlite:///{path}")
    checkpoints = store._checkpoints
    assert checkpoints is not None
    requested: list[int] = []
    monkeypatch.setattr(checkpoints, "request", lambda: requested.append(1))
    _write_a_lot(store, 5_000, defer=True)  # about 10 MB
    assert requested == [1]
    assert path.stat().st_size < 2_000_000  # the pages are in the WAL only
    assert Path(f"{path}-wal").stat().st_size > 10_000_000
    monkeypatch.undo()
    checkpoints.request()
    store.wait_for_checkpoint()
    assert checkpoints.done == 1
    assert path.stat().st_size > 10_000_000  # copied into the database file
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        assert conn.exec_driver_sql("SELECT count(*) FROM ar_event").scalar() == 5_000
    store.close()
    assert checkpoints._thread is None  # stopped with the store
    _write_a_lot(store, 10, defer=True, prefix="f")  # used again: commits checkpoint alone
    assert checkpoints.done == 1


def test_without_defer_the_commit_checkpoints_itself(tmp_path: Path) -> None:
    path = tmp_path / "book.db"
    store = SqlStore(f"sqlite:///{path}")
    _write_a_lot(store, 5_000, defer=False)
    assert path.stat().st_size > 10_000_000
    store.wait_for_checkpoint()
    assert store._checkpoints is not None and store._checkpoints.done == 0
    store.close()


def test_checkpoint_threads_only_for_sqlite_files(tmp_path: Path) -> None:
    assert SqlStore("sqlite://")._checkpoints is None
    assert SqlStore("sqlite:///:memory:")._checkpoints is None
    uri = f"sqlite:///file:{tmp_path / 'u.db'}?uri=true"
    assert SqlStore(uri)._checkpoints is None
    store = SqlStore("sqlite://")
    with store.transaction() as tx:
        tx.defer_checkpoint()  # nothing to defer: a no-op
    store.wait_for_checkpoint()


def test_a_checkpoint_thread_that_cannot_open_the_file_creates_nothing(tmp_path: Path) -> None:
    from arflow.store.sql import _Checkpoints

    gone = tmp_path / "gone.db"
    checkpoints = _Checkpoints(str(gone))
    checkpoints.request()
    checkpoints.wait()
    checkpoints.stop()
    assert checkpoints.done == 0 and not gone.exists()


_EXIT_AFTER_COMMIT = """
import os, sys
from arflow.store.sql import SqlStore
store = SqlStore(sys.argv[1])
with store.transaction() as tx:
    tx.defer_checkpoint()
    for i in range(5000):
        tx.add_event(f"e-{i}", "Note", "x" * 2000)
os._exit(0)  # right after the commit: the checkpoint thread has not finished, or started
"""


def test_what_a_deferred_commit_wrote_survives_an_exit_before_its_checkpoint(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'book.db'}"
    run = subprocess.run([sys.executable, "-c", _EXIT_AFTER_COMMIT, url], capture_output=True)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    store = SqlStore(url)
    assert store.event_count() == 5_000
    store.close()


def test_find_due_and_count_due_by_window_state_and_customers(store) -> None:  # type: ignore[no-untyped-def]
    """The daily sweep's index: receivables by due-date window and state, optionally for
    some customers only (a slice of a run), and their count without reading them."""
    from datetime import date, timedelta

    from arflow.ledger import LIVE_STATES, Ledger
    from arflow.testing import BookBuilder

    b = BookBuilder(Ledger(store))
    base = date(2026, 1, 31)
    for c in range(4):
        b.customer(f"C{c}")
        for i in range(6):
            due = base + timedelta(days=10 * i)
            b.invoice(f"I{c}-{i}", f"C{c}", 100, issued="2026-01-01", due=due)
    b.pay("P", "C1", 100, on="2026-02-01", to=[("I1-1", 100)])  # paid: not live
    lo, hi = base + timedelta(days=10), base + timedelta(days=30)
    everything = [r for r in store.all("receivable")]

    def expected(pick: Any = None) -> list[str]:
        return sorted(
            r.id
            for r in everything
            if lo <= r.due_date <= hi
            and str(r.state) in LIVE_STATES
            and (pick is None or pick(r.customer_id))
        )

    got = store.find_due(lo, hi, LIVE_STATES)
    assert sorted(r.id for r in got) == expected() and len(got) == 11
    assert store.count_due(lo, hi, LIVE_STATES) == 11
    odd = {"C1", "C3"}.__contains__
    assert sorted(r.id for r in store.find_due(lo, hi, LIVE_STATES, customers=odd)) == expected(odd)
    nobody = store.find_due(lo, hi, LIVE_STATES, customers=lambda c: False)
    assert nobody == []
    assert store.count_due(hi + timedelta(days=1), hi + timedelta(days=5), LIVE_STATES) == 0


def test_a_staging_transaction_is_never_written(tmp_path: Path) -> None:
    """What a staging transaction stages leaves by ``staged_rows`` only: flushed into a
    transaction that is rolled back, it would be lost without a word."""
    store = SqlStore(f"sqlite:///{tmp_path / 'book.db'}")
    with store.staging() as tx:
        tx.add_event("e-1", "Note", "{}")
        with pytest.raises(StoreError, match="never written"):
            tx.flush()
        rows = tx.staged_rows()
    assert store.event_count() == 0
    with store.transaction() as tx:
        tx.write_rows(rows)
    assert store.event_count() == 1
    store.close()
