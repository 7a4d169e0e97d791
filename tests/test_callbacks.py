"""Callbacks to the host (issue 16, item 3): ``Ledger.subscribe`` callbacks hear what arflow
decided and did (an order refused, a lock placed or lifted, a task created, a process step,
a dead letter) once its transaction committed, and never for one rolled back; inside the
host's transaction, only after the host's commit. A callback that raises is reported, the
others still run and arflow's committed work stands.

On an SQLite file and on PostgreSQL (its own schema per test), with the book's own
transactions and inside the host's (Session and Connection)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from arflow import Dispatcher, Engine, Happened, Ledger, MemoryAdapter, Money
from arflow.errors import UnknownObject, ValidationError
from arflow.events import OrderLockPlaced
from arflow.rules.loader import load_pack

from .test_host_transaction import (
    HOST_INVOICE,
    RULES,
    issued,
    make_host,
    reader,
    registered,
    setup_customer,
    submitted,
)

ORDER_STORY = [("order_refused", "SO-1"), ("lock_placed", "C1"), ("lock_lifted", "C1")]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    engine, done = make_host(str(request.param), tmp_path)
    yield engine
    done()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def host_prepared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """The host's engine, ``prepare_sqlite``d on SQLite (the host's own savepoints)."""
    engine, done = make_host(str(request.param), tmp_path, prepared=True)
    yield engine
    done()


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    return load_pack(RULES)


def told(heard: list[Happened]) -> list[tuple[str, str]]:
    return [(h.kind, h.subject_id) for h in heard]


def test_the_books_own_transaction_tells_after_its_commit(host: sa.Engine, pack) -> None:  # type: ignore[no-untyped-def]
    setup_customer(host)
    with reader(host) as store:
        book = Ledger(store)
        seen_committed: list[str | None] = []

        def check(h: Happened) -> None:  # another connection already sees the order
            with reader(host) as other:
                order = other.get("order", "SO-1")
            seen_committed.append(None if order is None else order.state)

        heard: list[Happened] = []
        book.subscribe(heard.append)
        book.subscribe(check, "order_refused")
        Engine(book, pack).handle(submitted())
        assert told(heard) == ORDER_STORY
        assert heard[0].customer_id == "C1" and heard[1].detail == "exposure-90"
        assert seen_committed == ["rejected"]

        heard.clear()  # a refused event: its refusal is told, once it is recorded
        bad = submitted().model_copy(
            update={"event_id": "submit-SO-2", "order_id": "SO-2", "customer_id": "NOBODY"}
        )
        with pytest.raises(UnknownObject):
            Engine(book, pack).handle(bad)
        assert [(h.kind, h.subject_id, h.detail) for h in heard] == [
            ("event_refused", "SO-2", "UnknownObject")
        ]


def test_inside_a_session_only_after_the_hosts_commit(host: sa.Engine, pack) -> None:  # type: ignore[no-untyped-def]
    setup_customer(host)
    heard: list[Happened] = []
    with Session(host) as session:
        book = Ledger(session)
        book.subscribe(heard.append)
        engine = Engine(book, pack)
        engine.handle(submitted())
        assert heard == []  # not yet: the host has not committed
        session.rollback()
        assert heard == []
        engine.handle(submitted())
        session.commit()
        assert told(heard) == ORDER_STORY
        heard.clear()
        session.commit()  # nothing more to tell
        assert heard == []


def test_a_hosts_savepoint_rolled_back_takes_its_callbacks(
    host_prepared: sa.Engine,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    host = host_prepared
    setup_customer(host)
    heard: list[Happened] = []
    with Session(host) as session:
        book = Ledger(session)
        book.subscribe(heard.append)
        engine = Engine(book, pack)
        with session.begin_nested() as savepoint:
            engine.handle(submitted())
            savepoint.rollback()
        with session.begin_nested():
            engine.handle(submitted().model_copy(update={"event_id": "again", "order_id": "SO-3"}))
        assert heard == []
        session.commit()
    assert told(heard) == [("order_refused", "SO-3"), ("lock_placed", "C1"), ("lock_lifted", "C1")]
    with reader(host) as store:
        assert store.get("order", "SO-1") is None
        assert store.get("order", "SO-3").state == "rejected"


def test_inside_a_connection_after_the_host_says_it_committed(host: sa.Engine, pack) -> None:  # type: ignore[no-untyped-def]
    setup_customer(host)
    heard: list[Happened] = []
    with host.connect() as conn:
        book = Ledger(conn)
        book.subscribe(heard.append)
        engine = Engine(book, pack)
        with conn.begin() as tx:
            engine.handle(submitted())
            tx.rollback()
        book.notify_committed()
        assert heard == []
        with conn.begin():
            engine.handle(submitted())
        assert heard == []  # SQLAlchemy tells a Connection of a commit before it is made
        book.notify_committed()
        assert told(heard) == ORDER_STORY
        heard.clear()
        book.notify_committed()  # told once
        assert heard == []


def test_a_callback_that_raises(
    host: sa.Engine,
    pack,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    setup_customer(host)
    heard: list[Happened] = []

    def broken(h: Happened) -> None:
        raise RuntimeError(f"the host's screen failed on {h.kind}")

    with Session(host) as session:
        book = Ledger(session)
        book.subscribe(broken)
        book.subscribe(heard.append)
        with caplog.at_level(logging.ERROR, logger="arflow.callbacks"):
            Engine(book, pack).handle(submitted())
            session.commit()
        assert told(heard) == ORDER_STORY  # the others still heard everything
        assert [type(e).__name__ for _h, e in book.subscribers.errors] == ["RuntimeError"] * 3
        assert "the host's screen failed on order_refused" in caplog.text
    with reader(host) as store:  # arflow's committed work stands
        assert store.get("order", "SO-1").state == "rejected"


def test_kinds_unsubscribe_and_unknown_kinds(host: sa.Engine, pack) -> None:  # type: ignore[no-untyped-def]
    setup_customer(host)
    locks: list[Happened] = []
    every: list[Happened] = []
    with Session(host) as session:
        book = Ledger(session)
        book.subscribe(locks.append, "lock_placed", "lock_lifted")
        stop = book.subscribe(every.append)
        stop()
        with pytest.raises(ValidationError, match="lock_dropped"):
            book.subscribe(every.append, "lock_dropped")  # type: ignore[arg-type]
        Engine(book, pack).handle(submitted())
        session.commit()
    assert told(locks) == ORDER_STORY[1:] and every == []


def test_no_callbacks_for_events_nobody_listens_to(host: sa.Engine) -> None:
    """Events of kinds told to nobody (an invoice) tell nothing; an apply_all tells after
    its one commit."""
    setup_customer(host)
    heard: list[Happened] = []
    with Session(host) as session:
        book = Ledger(session)
        book.subscribe(heard.append)
        session.execute(HOST_INVOICE.insert().values(number="INV-1", amount=1))
        book.apply_all([issued("INV-1"), registered("C2")])
        session.commit()
    assert heard == []


def test_a_dead_letter_is_told_once_recorded(host: sa.Engine, pack) -> None:  # type: ignore[no-untyped-def]
    setup_customer(host)
    with reader(host) as store:
        book = Ledger(store)
        engine = Engine(book, pack)
        engine.handle(
            submitted().model_copy(
                update={"event_id": "s2", "order_id": "SO-2", "amount": Money.of(60_000, "CNY")}
            )
        )
        heard: list[Happened] = []
        book.subscribe(heard.append, "dead_letter")
        sink = MemoryAdapter()  # no adapter for the task channel: its messages are dead
        stats = Dispatcher(store, {"email": sink}, subscribers=book.subscribers).run()
        dead = {r.key for r in store.outbox(status="dead")}
        assert stats.dead == len(dead) > 0
        assert {h.key for h in heard} == dead
        assert all(h.detail and h.detail.startswith("task: no adapter") for h in heard)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_callbacks_tell_exactly_the_committed_work(kind: str, tmp_path: Path) -> None:
    """Random host transactions (committed, rolled back, crashed; some of their work in a
    savepoint of the host's that is rolled back): the callbacks heard, in order, exactly the
    locks of the work that committed, and the book holds exactly those locks."""
    engine, done = make_host(kind, tmp_path, prepared=True)
    setup_customer(engine)
    counter = iter(range(10**6))
    work = st.tuples(st.integers(1, 2), st.booleans())  # locks, in a savepoint rolled back?

    @settings(
        max_examples=15 if kind == "sqlite" else 8,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        st.lists(
            st.tuples(st.lists(work, min_size=1, max_size=3), st.sampled_from(ENDS)),
            min_size=1,
            max_size=4,
        )
    )
    def check(txs: list[tuple[list[tuple[int, bool]], str]]) -> None:
        with reader(engine) as store:
            before = [lk.lock_id for lk in store.get("customer", "C1").locks]
        heard: list[Happened] = []
        expected: list[str] = []
        with Session(engine) as session:
            book = Ledger(session)
            stop = book.subscribe(heard.append)
            for parts, end in txs:
                kept: list[str] = []
                try:
                    with session.begin():
                        for n, undone in parts:
                            ids = [f"L{next(counter)}" for _ in range(n)]
                            with session.begin_nested() as savepoint:
                                for lock_id in ids:
                                    book.apply(placed(lock_id))
                                if undone:
                                    savepoint.rollback()
                                else:
                                    kept += ids
                        if end == "crash":
                            raise KeyError(end)
                        if end == "rollback":
                            session.rollback()
                except KeyError:
                    pass
                if end == "commit":
                    expected += kept
            stop()
        assert [h.detail for h in heard] == expected
        assert {h.kind for h in heard} <= {"lock_placed"}
        with reader(engine) as store:
            assert [lk.lock_id for lk in store.get("customer", "C1").locks] == before + expected

    try:
        check()
    finally:
        done()


ENDS = ["commit", "rollback", "crash"]


def placed(lock_id: str) -> OrderLockPlaced:
    return OrderLockPlaced(
        event_id=f"lock-{lock_id}",
        occurred_at=datetime(2026, 3, 5, tzinfo=UTC),
        actor="host",
        customer_id="C1",
        lock_id=lock_id,
        placed_on=date(2026, 3, 5),
    )


def test_a_dispatcher_inside_the_hosts_transaction(host: sa.Engine, pack) -> None:  # type: ignore[no-untyped-def]
    """A dispatcher on a joined book settles in the host's transaction: its dead letters
    are told at the host's commit."""
    setup_customer(host)
    order = submitted().model_copy(
        update={"event_id": "s2", "order_id": "SO-2", "amount": Money.of(60_000, "CNY")}
    )
    with Session(host) as session:
        book = Ledger(session)
        Engine(book, pack).handle(order)
        heard: list[Happened] = []
        book.subscribe(heard.append, "dead_letter")
        dispatcher = Dispatcher(
            book.store, {"email": MemoryAdapter()}, subscribers=book.subscribers
        )
        assert dispatcher.run().dead > 0
        assert heard == []
        session.commit()
    with reader(host) as store:
        assert {h.key for h in heard} == {r.key for r in store.outbox(status="dead")}
