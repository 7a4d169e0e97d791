"""``Engine.handle`` is one transaction: the event, the order decision, its effects on the
book, its messages in the outbox and the locks checked again after it commit together or
not at all (issue 12). A failure injected at each write after the event was applied (the
store's own transaction raising, as a crash would) leaves the book, the event log, the
audit trail, the decision ledger and the outbox exactly as they were, and records no
refusal (the event was not refused); the same event then succeeds once.

On memory, SQLite and PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from arflow import (
    Contact,
    CreditProfile,
    Customer,
    CustomerRegistered,
    Engine,
    Ledger,
    Money,
    OrderSubmitted,
)
from arflow.rules.loader import load_pack
from arflow.store import Store
from arflow.store.base import dump_book

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
T = datetime(2026, 3, 5, 11, tzinfo=UTC)


class Crash(Exception):
    """What the injected failure raises (not an arflow refusal)."""


class FaultyStore:
    """The store under test, whose transactions raise at the write ``fails`` picks: a
    decision record (``"decision"``, the record) or an outbox row (``"outbox"``, the row).
    Everything else is the store's own."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.fails: Callable[[str, Any], bool] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def transaction(self) -> Iterator[FaultyTx]:
        with self.inner.transaction() as tx:
            yield FaultyTx(tx, self)


class FaultyTx:
    def __init__(self, tx: Any, store: FaultyStore) -> None:
        self.tx, self.store = tx, store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tx, name)

    def _check(self, what: str, record: Any) -> None:
        fails = self.store.fails
        if fails is not None and fails(what, record):
            raise Crash(f"injected failure at {what} {getattr(record, 'key', '')}")

    def add_decision(self, record: Any) -> None:
        self._check("decision", record)
        self.tx.add_decision(record)

    def add_outbox(self, record: Any) -> None:
        self._check("outbox", record)
        self.tx.add_outbox(record)


def everything(store: Store) -> tuple[object, ...]:
    """The book, the event log, the audit trail, the decisions and the outbox."""
    return (
        dump_book(store),
        list(store.event_log()),
        store.audit_count(),
        [(a.event_type, a.subject_id) for a in store.audit_trail("order", "SO-1")],
        [(a.event_type, a.refused) for a in store.audit_trail("customer", "C1")],
        [(d.key, d.status) for d in store.decisions()],
        [(o.key, o.status) for o in store.outbox()],
    )


def submitted() -> OrderSubmitted:
    """An order over the pack's ceiling: rejected at entry; the exposure lock it places
    for a moment is lifted again by the check after the decision."""
    return OrderSubmitted(
        event_id="submit-SO-1",
        occurred_at=T,
        actor="sales",
        order_id="SO-1",
        customer_id="C1",
        amount=Money.of(160_000, "CNY"),
        submitted_on=T.date(),
    )


@pytest.fixture
def setup(store: Store, tmp_path: Path) -> tuple[FaultyStore, Engine]:
    shutil.copytree(RULES, tmp_path / "pack")
    faulty = FaultyStore(store)
    ledger = Ledger(faulty)  # type: ignore[arg-type]
    ledger.apply(
        CustomerRegistered(
            event_id="reg-C1",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="t",
            customer=Customer(
                id="C1",
                name="Customer C1",
                salesperson="li.wei",
                sales_manager="zhang.min",
                contacts=[Contact(name="Wang", email="ap@c1.example")],
                credit=CreditProfile(
                    grade="B", credit_limit=Money.of(100_000, "CNY"), payment_terms_days=30
                ),
            ),
        )
    )
    return faulty, Engine(ledger, load_pack(tmp_path / "pack"))


#: where the failure is injected: the order decision (the event is applied), the first
#: message queued, the lock lifted by the check after the decision (the decision and the
#: lock placed by the event are recorded), the last message queued
FAULTS: dict[str, Callable[[str, Any], bool]] = {
    "order decision": lambda what, r: what == "decision" and r.kind == "approval",
    "first message": lambda what, _r: what == "outbox",
    "lock check after the decision": lambda what, r: what == "decision" and r.kind == "unlock",
    "message of the lift": lambda what, r: what == "outbox" and r.key.startswith("unlock:"),
}


@pytest.mark.parametrize("where", list(FAULTS))
def test_a_failure_after_the_event_leaves_nothing_and_the_retry_succeeds_once(
    setup: tuple[FaultyStore, Engine], where: str
) -> None:
    faulty, engine = setup
    store = faulty.inner
    before = everything(store)
    faulty.fails = FAULTS[where]
    with pytest.raises(Crash):
        engine.handle(submitted())
    assert everything(store) == before  # nor a refusal: the event was not refused
    faulty.fails = None

    applied, ds = engine.handle(submitted())
    assert not applied.duplicate
    assert [(d.kind, d.rule) for d in ds] == [
        ("approval", "order-ceiling"),
        ("lock", "exposure-90"),
        ("unlock", "exposure-90"),
    ]
    assert store.get("order", "SO-1").state == "rejected"
    assert store.get("customer", "C1").locks == ()
    log = [t for t, _body in store.event_log()]
    assert log.count("OrderSubmitted") == 1
    assert log[-4:] == ["OrderSubmitted", "OrderRejected", "OrderLockPlaced", "OrderLockLifted"]
    assert {d.key for d in store.decisions()} == {d.key for d in ds}
    assert len(store.outbox()) == 2  # the lock's notice and the lift's
    after = everything(store)

    again, more = engine.handle(submitted())  # the same event once more: nothing
    assert again.duplicate and more == []
    assert everything(store) == after


def test_planners_read_the_open_transaction(setup: tuple[FaultyStore, Engine]) -> None:
    """The order decided in the transaction is seen by the check after it: the lock the
    order placed for a moment is lifted before anything commits, so no one ever reads
    the customer locked."""
    faulty, engine = setup
    seen: list[object] = []
    faulty.fails = lambda what, r: (
        seen.append(faulty.inner.get("customer", "C1").locks) or False  # type: ignore[func-returns-value]
    )
    engine.handle(submitted())
    assert seen and all(locks == () for locks in seen)  # the committed book, meanwhile
    assert faulty.inner.get("customer", "C1").locks == ()
