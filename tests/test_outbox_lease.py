"""Claims, leases and their tokens: a batch that takes longer than its lease is not sent
twice, a dispatcher whose claim was taken over neither sends nor settles, a lease holds for
as long as it says (in its own unit), and a book from before claim tokens is upgraded.
Two dispatchers against a real, slow SMTP server on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from arflow import Dispatcher, MemoryAdapter, Message, Store
from arflow.adapters.smtp import SmtpAdapter
from arflow.outbox import micros
from arflow.store.base import OutboxRecord, Settle
from arflow.store.sql import SCHEMA, SqlStore
from tests.conftest import POSTGRES_URL
from tests.smtp_server import Recorder, Server

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand (read from several threads)."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def queue(store: Store, n: int) -> list[Message]:
    messages = [
        Message(
            key=f"notice:C{i % 7}:email:{i:04d}",
            channel="email",
            action="email",
            customer_id=f"C{i % 7}",
            to=(f"ap{i}@example.com",),
            subject=f"Reminder {i}",
            text=f"Invoice {i} is overdue.",
        )
        for i in range(n)
    ]
    with store.transaction() as tx:
        for m in messages:
            tx.add_outbox(
                OutboxRecord(
                    key=m.key, channel="email", customer_id=m.customer_id, body=m.model_dump_json()
                )
            )
    return messages


def twin(store: Store) -> Store:
    """A second handle on the same book, as a second dispatcher process would open it."""
    if not isinstance(store, SqlStore):
        return store
    if store.engine.dialect.name == "sqlite":
        return SqlStore(str(store.engine.url))
    with store.engine.connect() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
    return SqlStore(
        sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    )


@dataclass
class SlowRecorder(Recorder):
    """A mail server that takes ``delay`` seconds to accept each message."""

    delay: float = 0.02

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def test_batches_longer_than_their_lease_are_sent_once_by_two_dispatchers(store: Store) -> None:
    """A batch of 50 at 30 ms a message takes 1.5 s; the lease is 0.8 s. The other
    dispatcher (batches of 10) comes back for due work every 0.3 s: without renewal it took
    over the tail of each long batch and sent it again."""
    n = 240
    messages = queue(store, n)
    server = Server(SlowRecorder(delay=0.03)).start()
    other = twin(store)
    stats: dict[str, Any] = {}
    failures: list[BaseException] = []

    def work(s: Store, name: str, batch: int) -> None:
        adapter = SmtpAdapter("127.0.0.1", server.port, sender="ar@example.com", timeout=10)
        try:
            d = Dispatcher(s, {"email": adapter}, worker=name, batch=batch)
            d.lease = timedelta(seconds=0.8)
            stats[name] = d.run()
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            adapter.close()

    threads = [
        threading.Thread(target=work, args=(store, "long", 50)),
        threading.Thread(target=work, args=(other, "short", 10)),
    ]
    started = time.monotonic()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "the dispatchers did not finish in 60 s"
    finally:
        server.stop()
        if other is not store:
            other.close()
    assert not failures, failures
    assert time.monotonic() - started < 60
    ids = Counter(server.handler.message_ids())
    assert set(ids) == {m.message_id for m in messages}  # nothing lost
    assert [k for k, c in ids.items() if c > 1] == []  # nothing sent twice
    assert store.outbox_counts() == {"pending": 0, "sending": 0, "sent": n, "dead": 0}
    assert stats["long"].sent + stats["short"].sent == n


class Gate:
    """An adapter that holds its first delivery until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()
        self.sent: list[str] = []

    def deliver(self, message: Message) -> str | None:
        self.entered.set()
        assert self.open.wait(30)
        self.sent.append(message.key)
        return None


def test_a_five_second_lease_is_not_taken_over_within_five_seconds(store: Store) -> None:
    """Dispatcher A (lease 5 s) is delivering; dispatcher B comes 4 s later and must find
    nothing to claim (a lease in the wrong unit, 5 ms, would have run out long before)."""
    queue(store, 3)
    clock = Clock()
    gate = Gate()
    a = Dispatcher(store, gate, worker="A", lease=timedelta(seconds=5), clock=clock)
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(a.run()))
    thread.start()
    try:
        assert gate.entered.wait(30)
        clock.advance(seconds=4)
        b = Dispatcher(store, MemoryAdapter(), worker="B", clock=clock)
        assert b.run_once().claimed == 0
        # claimed (and renewed) at T0, or renewed since at T0 + 4 s: 5 s from then
        leases = {r.lease_until for r in store.outbox(status="sending")}
        assert leases and leases <= {micros(T0) + 5_000_000, micros(T0) + 9_000_000}
    finally:
        gate.open.set()
        thread.join(timeout=30)
    assert got and got[0].sent == 3 and sorted(gate.sent) == sorted(r.key for r in store.outbox())
    assert store.outbox_counts()["sent"] == 3


def test_a_dispatcher_that_lost_its_claims_sends_and_settles_none_of_them(store: Store) -> None:
    """While A hands over its first message, its lease runs out and B takes the whole batch
    over and delivers it. A then records nothing over B's outcome and sends none of the
    rest (only the message already in A's hands when the lease ran out reached the server
    twice: a delivery longer than the whole lease is the limit of any lease)."""
    keys = [m.key for m in queue(store, 3)]
    clock = Clock()
    theirs = MemoryAdapter()
    b = Dispatcher(store, theirs, worker="B", clock=clock)
    mine: list[str] = []

    class Stalling:
        def deliver(self, message: Message) -> str | None:
            mine.append(message.key)
            if len(mine) == 1:
                clock.advance(minutes=6)  # longer than A's lease of 5 minutes
                assert b.run().sent == 3
            return "a"

    stats = Dispatcher(store, Stalling(), worker="A", clock=clock).run_once()
    assert mine == [keys[0]] and stats.lost == 2 and stats.sent == 1
    assert sorted(m.key for m in theirs.sent) == keys
    for r in store.outbox():
        assert (r.status, r.receipt, r.claimed_by) == (
            "sent",
            f"memory:{keys.index(r.key) + 1}",
            "B",
        )


def test_a_late_outcome_is_not_recorded_over_another_dispatchers_claim(store: Store) -> None:
    """A's temporary failure comes back after B re-claimed the message: it must stay B's."""
    queue(store, 1)
    clock = Clock()
    taken: list[OutboxRecord] = []

    class Failing:
        def deliver(self, message: Message) -> str | None:
            clock.advance(minutes=6)
            taken.extend(store.outbox_claim("B", micros(clock()), 10, 60_000_000))
            raise ConnectionResetError("connection reset by peer")

    Dispatcher(store, Failing(), worker="A", clock=clock).run_once()
    [rec] = store.outbox()
    assert len(taken) == 1 and taken[0].claim is not None
    assert (rec.status, rec.claimed_by, rec.claim, rec.last_error) == (
        "sending",
        "B",
        taken[0].claim,
        None,
    )
    # B's own outcome is recorded; a stale token, or none, is refused
    stale = Settle("sent", micros(clock()), claim="not-the-token")
    assert not store.outbox_settle(rec.key, stale)
    assert store.outbox_renew([rec.key], "not-the-token", micros(clock()), 1) == set()
    assert store.outbox_renew([rec.key], taken[0].claim, micros(clock()), 1) == {rec.key}
    assert store.outbox_settle(rec.key, Settle("sent", micros(clock()), claim=taken[0].claim))
    assert store.outbox_item(rec.key).status == "sent"  # type: ignore[union-attr]


def test_each_claim_has_a_token_of_its_own(store: Store) -> None:
    queue(store, 2)
    now = micros(T0)
    first = store.outbox_claim("A", now, 1, 1_000)
    second = store.outbox_claim("B", now, 1, 1_000)
    again = store.outbox_claim("C", now + 5_000, 10, 1_000)  # both leases ran out
    assert len(first) == len(second) == 1  # no more than asked for (PostgreSQL took two)
    tokens = [r.claim for r in (*first, *second)]
    assert None not in tokens and len(set(tokens)) == 2
    assert {r.key for r in again} == {r.key for r in (*first, *second)}
    assert not {r.claim for r in again} & set(tokens)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_book_from_before_claim_tokens_gets_them_on_upgrade(store: Store) -> None:
    """Schema step 6 adds the outbox's ``claim`` column; a claim made before the upgrade
    (no token) is taken over when its lease runs out, then delivered."""
    assert isinstance(store, SqlStore)
    keys = [m.key for m in queue(store, 2)]
    with store.engine.begin() as conn:  # an outbox as step 3 made it, one message claimed
        conn.execute(sa.text("ALTER TABLE ar_outbox DROP COLUMN claim"))
        conn.execute(SCHEMA.delete().where(SCHEMA.c.version >= 6))
        conn.execute(
            sa.text(
                "UPDATE ar_outbox SET status = 'sending', claimed_by = 'old', "
                "lease_until = :until, attempts = 1 WHERE key = :key"
            ),
            {"until": micros(T0) + 1_000_000, "key": keys[0]},
        )
    upgraded = SqlStore(store.engine)
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("ar_outbox")}
    assert "claim" in columns
    with store.engine.connect() as conn:
        assert 6 in conn.execute(sa.select(SCHEMA.c.version)).scalars().all()
    old = upgraded.outbox_item(keys[0])
    assert old is not None and (old.status, old.claim) == ("sending", None)
    sink = MemoryAdapter()
    clock = Clock()
    assert Dispatcher(upgraded, sink, clock=clock).run().sent == 1  # the old claim holds
    clock.advance(seconds=2)
    assert Dispatcher(upgraded, sink, clock=clock).run().sent == 1
    assert sorted(m.key for m in sink.sent) == keys


def test_a_store_that_hands_out_claims_without_tokens_is_refused() -> None:
    """A store of one's own that does not stamp claims cannot be fenced: refused, not
    quietly sending nothing (or everything twice)."""
    from dataclasses import replace

    from arflow import MemoryStore, StoreError

    class Tokenless(MemoryStore):
        def outbox_claim(self, *args: Any, **kw: Any) -> list[OutboxRecord]:
            return [replace(r, claim=None) for r in super().outbox_claim(*args, **kw)]

    store = Tokenless()
    queue(store, 1)
    sink = MemoryAdapter()
    with pytest.raises(StoreError, match="no claim token"):
        Dispatcher(store, sink, clock=Clock()).run_once()
    assert sink.sent == []


def test_the_rest_of_a_long_batch_is_renewed_every_third_of_a_lease(store: Store) -> None:
    """A batch of four at 25 s a message under a 60 s lease takes 100 s: another dispatcher
    looking after each message finds nothing to take over, and none of the four is lost."""
    keys = [m.key for m in queue(store, 4)]
    clock = Clock()
    other = Dispatcher(store, MemoryAdapter(), worker="B", clock=clock)
    taken: list[int] = []
    sent: list[str] = []

    class Slow:
        def deliver(self, message: Message) -> str | None:
            clock.advance(seconds=25)
            taken.append(other.run_once().claimed)
            sent.append(message.key)
            return None

    stats = Dispatcher(
        store, Slow(), worker="A", lease=timedelta(seconds=60), clock=clock
    ).run_once()
    assert taken == [0, 0, 0, 0]
    assert (stats.sent, stats.lost) == (4, 0) and sent == keys


def test_a_hand_over_longer_than_the_lease_keeps_its_claim(store: Store) -> None:
    """The adapter takes 3 s over one message under a 1.5 s lease (real time): the heartbeat
    renews the claim meanwhile, so another dispatcher polling all along takes nothing over
    and the message goes out once."""
    queue(store, 1)
    gate = Gate()
    a = Dispatcher(store, gate, worker="A", lease=timedelta(seconds=1.5))
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(a.run_once()))
    thread.start()
    theirs = MemoryAdapter()
    b = Dispatcher(store, theirs, worker="B")
    try:
        assert gate.entered.wait(30)
        until = time.monotonic() + 3
        while time.monotonic() < until:
            assert b.run_once().claimed == 0
            time.sleep(0.1)
    finally:
        gate.open.set()
        thread.join(timeout=30)
    assert got and (got[0].sent, got[0].lost) == (1, 0)
    assert len(gate.sent) == 1 and theirs.sent == []
    assert store.outbox_counts()["sent"] == 1
