"""Retries and fallbacks, pinned where a small change would break them unseen: the
backoff's cap, a fallback chain whose middle channel is dead, an adapter's unexpected
exception (retried, not dead-lettered)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from arflow import Dispatcher, MemoryAdapter, Message, PermanentFailure, RetryPolicy, Store
from arflow.outbox import micros
from arflow.store.base import OutboxRecord

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_backoff_doubles_up_to_its_cap_and_jitter_only_shortens() -> None:
    plain = RetryPolicy(base=timedelta(seconds=30), cap=timedelta(hours=6), jitter=0)
    rng = random.Random(1)
    assert [plain.delay(n, rng) for n in (0, 1, 2, 3)] == [
        timedelta(seconds=30),
        timedelta(seconds=30),
        timedelta(seconds=60),
        timedelta(seconds=120),
    ]
    # 30 s * 2**9 = 4 h 16 min is under the cap; 2**10 is over it
    assert plain.delay(10, rng) == timedelta(seconds=30 * 2**9)
    assert plain.delay(11, rng) == timedelta(hours=6)
    assert plain.delay(60, rng) == timedelta(hours=6)
    jittered = RetryPolicy(cap=timedelta(hours=6), jitter=0.5)
    for n in range(12, 40):
        wait = jittered.delay(n, rng)
        assert timedelta(hours=3) <= wait <= timedelta(hours=6)


def test_a_retry_is_never_scheduled_later_than_the_cap(store: Store) -> None:
    m = Message(key="k", channel="email", action="email", customer_id="C1", to=("a@b.c",))
    with store.transaction() as tx:
        tx.add_outbox(
            OutboxRecord(
                key="k", channel="email", customer_id="C1", body=m.model_dump_json(), attempts=30
            )
        )
    clock = Clock()
    policy = RetryPolicy(max_attempts=100, cap=timedelta(minutes=10), jitter=0)
    d = Dispatcher(store, MemoryAdapter(fail_first=1), clock=clock, retry=policy)
    assert d.run_once().retried == 1
    rec = store.outbox_item("k")
    assert rec is not None and rec.next_at == micros(T0) + 10 * 60 * 1_000_000


class Refusing:
    """An adapter that refuses everything for good."""

    def __init__(self) -> None:
        self.tried: list[str] = []

    def deliver(self, message: Message) -> str | None:
        self.tried.append(message.key)
        raise PermanentFailure(f"{message.channel}: gateway refuses {message.key}")


def chain(store: Store) -> None:
    def part(channel: str, key: str, to: str) -> Message:
        return Message(key=key, channel=channel, action=channel, customer_id="C1", to=(to,))  # type: ignore[arg-type]

    head = part("email", "n1", "ap@c1.example").model_copy(
        update={
            "fallbacks": (
                part("sms", "n1~sms", "+8613800000001"),
                part("task", "n1~task", "li.wei"),
            )
        }
    )
    with store.transaction() as tx:
        tx.add_outbox(
            OutboxRecord(key="n1", channel="email", customer_id="C1", body=head.model_dump_json())
        )


@pytest.mark.parametrize("second", ["no adapter", "refused"])
def test_a_dead_middle_channel_still_queues_and_delivers_the_third(
    store: Store, second: str
) -> None:
    chain(store)
    tasks = MemoryAdapter()
    adapters = {"email": Refusing(), "task": tasks}
    if second == "refused":
        adapters["sms"] = Refusing()
    stats = Dispatcher(store, adapters, clock=Clock()).run()
    assert (stats.dead, stats.fallbacks, stats.sent) == (2, 2, 1)
    assert [m.key for m in tasks.sent] == ["n1~task"] and tasks.sent[0].to == ("li.wei",)
    states = {r.key: r.status for r in store.outbox()}
    assert states == {"n1": "dead", "n1~sms": "dead", "n1~task": "sent"}
    sms = store.outbox_item("n1~sms")
    assert sms is not None
    expected = "no adapter for channel 'sms'" if second == "no adapter" else "gateway refuses"
    assert expected in (sms.last_error or "")


def test_an_unexpected_exception_from_an_adapter_is_retried_not_dead(store: Store) -> None:
    """An adapter's bug or an error it did not classify counts as temporary."""
    m = Message(key="k", channel="email", action="email", customer_id="C1", to=("a@b.c",))
    with store.transaction() as tx:
        tx.add_outbox(
            OutboxRecord(key="k", channel="email", customer_id="C1", body=m.model_dump_json())
        )

    class Buggy:
        calls = 0

        def deliver(self, message: Message) -> str | None:
            Buggy.calls += 1
            if Buggy.calls == 1:
                raise KeyError("profile")
            return "ok"

    clock = Clock()
    policy = RetryPolicy(base=timedelta(seconds=10), jitter=0)
    d = Dispatcher(store, Buggy(), clock=clock, retry=policy)
    stats = d.run_once()
    assert (stats.retried, stats.dead) == (1, 0)
    rec = store.outbox_item("k")
    assert rec is not None and (rec.status, rec.attempts) == ("pending", 1)
    assert rec.last_error == "KeyError: 'profile'"
    assert rec.next_at == micros(T0) + 10_000_000
    clock.now += timedelta(seconds=10)
    assert d.run_once().sent == 1
    assert store.outbox_item("k").status == "sent"  # type: ignore[union-attr]
