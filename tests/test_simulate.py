"""``arflow simulate`` on a copy of the whole book (issue 15, item 2): the copy holds the
objects, the log, the audit trail, the decision ledger and its runs, so what the book
decided already is not decided again; hypothetical events from a file enter the copy on
their day; the real book is never touched."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from arflow import Ledger, Money, OrderSubmitted, PaymentReceived, default_pack_path
from arflow.cli import main
from arflow.demo import sample_events
from arflow.engine import Engine
from arflow.errors import ArflowError
from arflow.store import MemoryStore, Store, copy_book, dump_book

Capture = pytest.CaptureFixture[str]


def _book(store: Store) -> Engine:
    """The demo's sample book, two days run, and a refused order (an audit record with no
    event behind it, so the audit trail and the log do not line up one to one)."""
    ledger = Ledger(store)
    ledger.apply_all(sample_events())
    engine = Engine(ledger, default_pack_path())
    engine.run(date(2026, 11, 9), first_run=True)
    with pytest.raises(ArflowError):
        engine.handle(
            OrderSubmitted(
                event_id="shop:bad",
                occurred_at=datetime(2026, 11, 10, 9, tzinfo=UTC),
                actor="shop",
                order_id="SO-X",
                customer_id="C001",
                amount=Money.of("10", "USD"),  # the customer's currency is CNY
                submitted_on=date(2026, 11, 10),
            )
        )
    engine.run(date(2026, 11, 10))
    return engine


def test_a_copy_holds_the_whole_book_and_decides_as_the_book_would(
    store_factory: Callable[[], Store],
) -> None:
    engine = _book(store_factory())
    source = engine.store
    copy = copy_book(source)
    assert isinstance(copy, MemoryStore)
    assert dump_book(copy) == dump_book(source)
    assert list(copy.event_log()) == list(source.event_log())
    assert [r for _s, r in copy.audit_log()] == [r for _s, r in source.audit_log()]
    assert any(r.refused for _s, r in copy.audit_log())
    assert {d.key: d.status for d in copy.decisions()} == {
        d.key: d.status for d in source.decisions()
    }
    assert [r.as_of for r in copy.runs()] == [r.as_of for r in source.runs()]
    assert {r.key for r in copy.outbox()} == {r.key for r in source.outbox()}
    assert list(copy.movements()) == list(source.movements())
    # the next day decides the same on the copy as on the book, locks included
    twin = Engine(Ledger(copy), default_pack_path())
    for day in (date(2026, 11, 11), date(2026, 11, 16)):
        assert [d.key for d in twin.plan(day).decisions] == [
            d.key for d in engine.plan(day).decisions
        ]


def _demo(tmp_path: Path, capsys: Capture) -> str:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--db", db, "--as-of", "2026-11-01"]) == 0
    assert main(["run", "--db", db, "--as-of", "2026-11-16"]) == 0
    capsys.readouterr()
    return db


def _counts(db: str) -> tuple[int, int, int, int]:
    store = Ledger(db).store
    return (
        store.event_count(),
        store.audit_count(),
        len(store.decisions()),
        len(store.outbox()),
    )


def test_simulate_does_not_decide_again_what_the_book_decided(
    tmp_path: Path, capsys: Capture
) -> None:
    db = _demo(tmp_path, capsys)
    before = _counts(db)
    args = ["simulate", "--db", db, "--from", "2026-11-16", "--to", "2026-11-17", "--json"]
    assert main(args) == 0
    days = json.loads(capsys.readouterr().out)
    assert days[0]["as_of"] == "2026-11-16" and days[0]["recorded"] == 0
    assert _counts(db) == before  # the real book is not touched


def _payment_file(tmp_path: Path, day: date, *extra: str) -> Path:
    """A hypothetical payment of everything C001 owes (unallocated: oldest first)."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'demo.db'}")
    owed = ledger.balance("C001")["CNY"]
    event = PaymentReceived(
        event_id="what-if:P1",
        occurred_at=datetime(day.year, day.month, day.day, 8, tzinfo=UTC),
        actor="what-if",
        payment_id="WHATIF-1",
        customer_id="C001",
        amount=owed,
        received_on=day,
    )
    path = tmp_path / "what-if.jsonl"
    path.write_text("# paid in full\n\n" + event.model_dump_json() + "\n" + "".join(extra))
    return path


def _c001_decisions(days: list[dict[str, object]]) -> list[str]:
    return [
        d["key"]  # type: ignore[index]
        for day in days
        for d in day["decisions"]  # type: ignore[attr-defined]
        if d["customer_id"] == "C001"  # type: ignore[index]
    ]


def test_hypothetical_events_enter_the_copy_on_their_day(tmp_path: Path, capsys: Capture) -> None:
    db = _demo(tmp_path, capsys)
    span = ["--db", db, "--from", "2026-11-17", "--to", "2026-12-15", "--json"]
    assert main(["simulate", *span]) == 0
    without = json.loads(capsys.readouterr().out)
    assert _c001_decisions(without), "the demo's C001 is chased in the weeks after"
    before = _counts(db)
    events = _payment_file(tmp_path, date(2026, 11, 17))
    assert main(["simulate", *span, "--events", str(events)]) == 0
    days = json.loads(capsys.readouterr().out)
    assert days[0]["events"] == ["what-if:P1"]
    assert _c001_decisions(days) == []  # paid in full: nothing more to chase
    assert _counts(db) == before
    assert Ledger(db).store.get("payment", "WHATIF-1") is None


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ("{not json\n", "what-if.jsonl:4: "),
        (
            '{"type": "PaymentReceived", "event_id": "late", "occurred_at": '
            '"2027-01-05T09:00:00Z", "actor": "x", "payment_id": "P9", "customer_id": "C001",'
            ' "amount": {"amount": "1.00", "currency": "CNY"}, "received_on": "2027-01-05"}\n',
            "what-if.jsonl:4: event late occurs on 2027-01-05, after --to 2026-12-15",
        ),
        (
            '{"type": "PaymentReceived", "event_id": "who", "occurred_at": '
            '"2026-11-20T09:00:00Z", "actor": "x", "payment_id": "P9", "customer_id": "NOPE",'
            ' "amount": {"amount": "1.00", "currency": "CNY"}, "received_on": "2026-11-20"}\n',
            "what-if.jsonl:4: event who refused: ",
        ),
    ],
)
def test_a_bad_event_file_is_refused_with_its_line(
    tmp_path: Path, capsys: Capture, extra: str, says: str
) -> None:
    db = _demo(tmp_path, capsys)
    before = _counts(db)
    events = _payment_file(tmp_path, date(2026, 11, 17), extra)
    span = ["--db", db, "--from", "2026-11-17", "--to", "2026-12-15"]
    assert main(["simulate", *span, "--events", str(events)]) == 4
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert _counts(db) == before
