"""Example tests pinning dispatcher behaviour the mutation run found unpinned.

Each test kills mutants of ``arflow.outbox`` that survived the outbox tests (see
docs/testing.md): the epoch of stored instants, the counters a run returns, rate limits of
zero, the batch size, fallback chains past their second channel, what is logged and
passed to ``on_sent``, and where feedback is recorded. Memory store: the dispatcher's logic.
"""

from __future__ import annotations

import logging
import random
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arflow import (
    Contact,
    Contract,
    ContractSigned,
    CreditProfile,
    Customer,
    CustomerRegistered,
    CustomerUpdated,
    DueRule,
    MemoryAdapter,
    MemoryStore,
    Message,
    Milestone,
    MilestoneCompleted,
    Money,
    OrderApproved,
    OrderSubmitted,
    PaymentNode,
    PermanentFailure,
    Person,
    PersonAdded,
    RetryPolicy,
)
from arflow.actions import TemporaryFailure
from arflow.engine import Engine
from arflow.messages import ledger_feedback
from arflow.outbox import Dispatcher, DispatchStats, deliver_all, instant, micros
from arflow.rules.loader import load_pack
from arflow.store.base import OutboxRecord
from arflow.testing import BookBuilder

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def clock() -> datetime:
    return T0


def put(store: MemoryStore, *messages: Message) -> None:
    with store.transaction() as tx:
        for m in messages:
            tx.add_outbox(
                OutboxRecord(
                    key=m.key, channel=m.channel, customer_id="C1", body=m.model_dump_json()
                )
            )


def msg(key: str, channel: str = "email", **kw: Any) -> Message:
    return Message(key=key, channel=channel, action=channel, customer_id="C1", **kw)  # type: ignore[arg-type]


def test_instants_are_utc_microseconds_since_the_epoch() -> None:
    assert instant(None) is None
    assert instant(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert instant(0).tzinfo is UTC  # type: ignore[union-attr]
    assert instant(micros(T0)) == T0
    assert micros(datetime(1970, 1, 2, 0, 0, 1, 5, tzinfo=UTC)) == 86_401_000_005


def test_stats_add_sums_every_counter() -> None:
    a = DispatchStats(claimed=1, sent=2, retried=3, dead=4, fallbacks=5, lost=6, errors=["x"])
    b = DispatchStats(claimed=10, sent=20, retried=30, dead=40, fallbacks=50, lost=60, errors=["y"])
    a.add(b)
    assert a == DispatchStats(
        claimed=11, sent=22, retried=33, dead=44, fallbacks=55, lost=66, errors=["x", "y"]
    )


def test_the_default_batch_is_fifty() -> None:
    store = MemoryStore()
    put(store, *(msg(f"k{i:03d}", to=("a@b.c",)) for i in range(60)))
    d = Dispatcher(store, MemoryAdapter(), clock=clock)
    assert d.batch == 50
    assert d.run_once().claimed == 50


def test_a_rate_of_zero_means_no_limit() -> None:
    store = MemoryStore()
    put(store, msg("k1", to=("a@b.c",)))
    slept: list[float] = []
    d = Dispatcher(
        store, MemoryAdapter(), clock=clock, rate_limits={"email": 0}, sleep=slept.append
    )
    assert d.run().sent == 1
    assert slept == []


def test_max_batches_counts_batches_and_stop_waits_poll() -> None:
    store = MemoryStore()
    put(store, *(msg(f"k{i}", to=("a@b.c",)) for i in range(5)))
    d = Dispatcher(store, MemoryAdapter(), clock=clock, batch=1)
    assert d.run(max_batches=2).sent == 2
    assert d.run(max_batches=1).sent == 1
    # Not idle-exiting, with a stop event: waits ``poll`` between empty batches, then stops.
    stop = threading.Event()
    waits: list[float | None] = []

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout)
            stop.set()
            return True

        def is_set(self) -> bool:
            return stop.is_set()

    got = d.run(stop=Stop(), idle_exit=False, poll=0.25)
    assert got.sent == 2 and waits == [0.25]
    # Without a stop event the dispatcher sleeps ``poll`` through its own sleep.
    slept: list[float] = []
    d2 = Dispatcher(store, MemoryAdapter(), clock=clock, sleep=slept.append)
    assert d2.run(idle_exit=False, poll=0.5, max_batches=2).claimed == 0
    assert slept == [0.5]


def test_an_unreadable_message_is_dead_with_the_reason() -> None:
    store = MemoryStore()
    with store.transaction() as tx:
        tx.add_outbox(OutboxRecord(key="bad", channel="email", customer_id="C1", body="{"))
    got = Dispatcher(store, MemoryAdapter(), clock=clock).run()
    assert got.dead == 1
    rec = store.outbox_item("bad")
    assert rec is not None and rec.status == "dead"
    assert (rec.last_error or "").startswith("unreadable message: ")


def test_on_sent_gets_the_record_and_the_message() -> None:
    store = MemoryStore()
    put(store, msg("k1", to=("a@b.c",)))
    seen: list[tuple[Any, Any]] = []
    Dispatcher(store, MemoryAdapter(), clock=clock, on_sent=lambda r, m: seen.append((r, m))).run()
    ((rec, m),) = seen
    assert isinstance(rec, OutboxRecord) and rec.key == "k1"
    assert isinstance(m, Message) and m.key == "k1"


def test_a_chain_of_three_reaches_its_third_channel() -> None:
    third = msg("k1~task", "task", to=("li.wei",))
    second = msg("k1~sms", "sms", to=("+8613800000001",))
    first = msg("k1", to=("bad@c1.example",), fallbacks=(second, third))
    store = MemoryStore()
    put(store, first)
    email = MemoryAdapter(refuse={"bad@c1.example": "bounced"})

    class BadSms:
        def deliver(self, message: Message) -> str | None:
            raise PermanentFailure("sms: invalid number")

    task = MemoryAdapter()
    adapters = {"email": email, "sms": BadSms(), "task": task}
    stats = DispatchStats()
    for _ in range(3):
        stats.add(Dispatcher(store, adapters, clock=clock).run())  # type: ignore[arg-type]
    assert [m.key for m in task.sent] == ["k1~task"]
    assert task.sent[0].fallbacks == ()
    sms = store.outbox_item("k1~sms")
    assert sms is not None and sms.status == "dead"
    assert stats.dead == 2 and stats.fallbacks == 2 and stats.sent == 1
    assert stats.errors == [
        "k1: memory adapter: bad@c1.example refused (bounced)",
        "k1~sms: sms: invalid number",
    ]


def test_an_unexpected_adapter_error_is_retried_then_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    put(store, msg("k1", to=("a@b.c",)))

    class Broken:
        def deliver(self, message: Message) -> str | None:
            raise KeyError("oops")

    now = [T0]
    d = Dispatcher(
        store,
        Broken(),  # type: ignore[arg-type]
        clock=lambda: now[0],
        retry=RetryPolicy(max_attempts=2, base=timedelta(seconds=10), jitter=0),
    )
    with caplog.at_level(logging.INFO, logger="arflow.outbox"):
        first = d.run()
        assert first.retried == 1 and first.dead == 0
        rec = store.outbox_item("k1")
        assert rec is not None and rec.status == "pending"
        assert rec.last_error == "KeyError: 'oops'"
        assert rec.next_at == micros(T0 + timedelta(seconds=10))
        now[0] = T0 + timedelta(seconds=10)
        last = d.run()  # the second attempt is the last one
    assert last.dead == 1
    rec = store.outbox_item("k1")
    assert rec is not None and rec.status == "dead"
    assert rec.last_error == "gave up after 2 attempts: KeyError: 'oops'"
    texts = [r.getMessage() for r in caplog.records]
    assert "retry k1 in 0:00:10: KeyError: 'oops'" in texts
    assert "dead letter k1: gave up after 2 attempts: KeyError: 'oops'" in texts


def test_the_backoff_doubles_up_to_its_cap() -> None:
    p = RetryPolicy(base=timedelta(seconds=30), cap=timedelta(minutes=4), jitter=0)
    rng = random.Random(1)
    assert [p.delay(n, rng).total_seconds() for n in range(0, 7)] == [
        30,
        30,
        60,
        120,
        240,
        240,
        240,
    ]
    half = RetryPolicy(base=timedelta(seconds=100), jitter=0.5)
    for _ in range(50):
        assert 50 <= half.delay(1, rng).total_seconds() <= 100


def test_a_settle_lost_to_another_dispatcher_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    put(store, msg("k1", to=("a@b.c",)))
    d = Dispatcher(store, MemoryAdapter(), clock=clock)
    rec = store.outbox_item("k1")
    assert rec is not None
    from arflow.store.base import Settle

    with caplog.at_level(logging.WARNING, logger="arflow.outbox"):
        d._settle(rec, Settle("sent", micros(T0)))  # not claimed by d: refused
    assert [r.getMessage() for r in caplog.records] == [
        "outbox k1: claim lost to another dispatcher, outcome not recorded"
    ]


def test_deliver_all_passes_its_options() -> None:
    store = MemoryStore()
    put(store, *(msg(f"k{i}", to=("a@b.c",)) for i in range(3)))
    adapter = MemoryAdapter()
    got = deliver_all(store, {"email": adapter}, batch=1, clock=clock)
    assert got.sent == 3 and got.claimed == 3
    assert len(adapter.sent) == 3


def test_a_temporary_failure_is_not_dead() -> None:
    store = MemoryStore()
    put(store, msg("k1", to=("a@b.c",)))

    class Flaky:
        def deliver(self, message: Message) -> str | None:
            raise TemporaryFailure("later")

    got = Dispatcher(store, Flaky(), clock=clock).run()  # type: ignore[arg-type]
    assert got.retried == 1 and got.dead == 0


# -- composing: what a message about a customer or a promise lists -------------------------------

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
DUE = date(2026, 3, 2)


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    return load_pack(RULES)


def book(limit: int = 1_000_000, locale: str = "en") -> BookBuilder:
    b = BookBuilder(MemoryStore())
    b.apply(
        CustomerRegistered(
            event_id="reg-C1",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="t",
            customer=Customer(
                id="C1",
                name="Customer C1",
                salesperson="li.wei",
                sales_manager="zhang.min",
                contacts=[Contact(name="Wang", email="ap@c1.example", locale=locale)],
                credit=CreditProfile(
                    grade="B", credit_limit=Money.of(limit, "CNY"), payment_terms_days=30
                ),
            ),
        )
    )
    # issue 12: the customer's salesperson and sales manager are people of the directory,
    # reached at their own address (a bare name is no e-mail address)
    for pid, email in (
        ("li.wei", "li.wei@seller.example"),
        ("zhang.min", "zhang.min@seller.example"),
    ):
        b.apply(
            PersonAdded(
                event_id=f"person-{pid}",
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                actor="t",
                person=Person(id=pid, name=pid, addresses={"email": email}),
            )
        )
    return b


def queued(b: BookBuilder) -> dict[str, Message]:
    return {r.key: Message.model_validate_json(r.body) for r in b.ledger.store.outbox()}


def test_a_lock_notice_lists_the_overdue_open_items_and_reaches_both_roles(pack) -> None:  # type: ignore[no-untyped-def]
    b = book()
    b.invoice("I0", "C1", 500, issued="2026-01-01", due=DUE)
    b.pay("P0", "C1", 500, on="2026-03-01")  # closed: never listed
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C1", 2_500, issued="2026-03-20", due=DUE + timedelta(days=60))
    Engine(b.ledger, pack).run(DUE + timedelta(days=31), first_run=True)
    msgs = queued(b)
    (lock,) = [m for k, m in msgs.items() if k.startswith("lock:overdue-30:")]
    assert lock.to == ("li.wei@seller.example", "zhang.min@seller.example")
    assert "I1" in lock.text and "I0" not in lock.text and "I2" not in lock.text
    (esc,) = [m for k, m in msgs.items() if ":escalation:" in k]
    history = esc.data["history"]
    assert history and all(h["subject"] == "receivable:I1" for h in history)
    assert {"at", "actor", "event", "reason"} <= set(history[0])


def test_a_broken_promise_task_lists_the_promised_invoices(pack) -> None:  # type: ignore[no-untyped-def]
    b = book()
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C1", 2_000, issued="2026-01-31", due=DUE)
    b.promise("PR1", "C1", ["I1"], 1_000, by=DUE + timedelta(days=5), on=DUE)
    engine = Engine(b.ledger, pack)
    engine.run(DUE, first_run=True)
    engine.run(DUE + timedelta(days=12))
    (task,) = [m for m in queued(b).values() if m.rule == "promise-broken"]
    assert task.to == ("li.wei",) and task.cc == ("zhang.min",)
    assert "I1" in task.text and "I2" not in task.text


def test_approval_lock_and_milestone_messages_carry_their_records(pack) -> None:  # type: ignore[no-untyped-def]
    b = book(limit=100_000)
    engine = Engine(b.ledger, pack)
    b.invoice("I1", "C1", 60_000, issued="2026-02-01", due="2026-04-01")
    t = datetime(2026, 2, 10, 10, tzinfo=UTC)
    engine.handle(
        OrderSubmitted(
            event_id="o1",
            occurred_at=t,
            actor="sales",
            order_id="SO-1",
            customer_id="C1",
            amount=Money.of(45_000, "CNY"),
            submitted_on=date(2026, 2, 10),
        )
    )
    engine.handle(
        OrderApproved(
            event_id="o1a",
            occurred_at=t,
            actor="cfo",
            order_id="SO-1",
            approver="finance.manager@example.com",  # issue 12: a holder of the role
        )
    )
    engine.handle(
        ContractSigned(
            event_id="k",
            occurred_at=t,
            actor="s",
            contract=Contract(
                id="K1",
                customer_id="C1",
                signed_on=date(2026, 2, 1),
                amount=Money.of(100_000, "CNY"),
                payment_nodes=[
                    PaymentNode(
                        id="acc",
                        percent=Decimal(100),
                        due=DueRule(basis="milestone", milestone_id="M1"),
                    ),
                    PaymentNode(
                        id="zz",
                        percent=Decimal(0),
                        due=DueRule(basis="milestone", milestone_id="M2"),
                    ),
                ],
            ),
            milestones=[Milestone(id="M1", contract_id="K1"), Milestone(id="M2", contract_id="K1")],
        )
    )
    engine.handle(
        MilestoneCompleted(
            event_id="m", occurred_at=t, actor="pm", milestone_id="M1", completed_on=t.date()
        )
    )
    by_rule = {m.rule: m for m in queued(b).values()}
    approval = by_rule["order-over-limit"]
    assert approval.subject == "Approval needed: order SO-1"
    assert "Order SO-1 for Customer C1 (" in approval.text and "45,000" in approval.text
    lock = by_rule["exposure-90"]
    assert lock.subject == "Customer C1 at 105.0% of its credit limit"
    assert lock.action == "notify" and lock.channel == "email"
    (milestone,) = [m for m in by_rule.values() if m.subject and "invoice K1" in m.subject]
    assert milestone.subject == "Please invoice K1 / acc"
    # the milestone and the contract by name (their ids when they have none: issue 14)
    assert 'Milestone "M1" of contract "K1"' in milestone.text
    assert 'payment node "acc".' in milestone.text


def test_a_customer_reminder_greets_the_contact_in_the_contacts_locale(pack) -> None:  # type: ignore[no-untyped-def]
    b = book(locale="zh_CN")
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    Engine(b.ledger, pack).run(DUE, first_run=True)
    msgs = queued(b)
    (email,) = [m for m in msgs.values() if m.channel == "email" and m.to == ("ap@c1.example",)]
    assert email.locale == "zh_CN"
    assert "Wang" in email.text
    (task,) = [m for m in msgs.values() if m.channel == "task"]
    assert task.locale == pack.settings.locales[0] == "en"
    assert task.action == "task" and task.template == "call_on_due_day"
    # a tracked task: its id, for the host to report completion back (issue 14)
    assert task.data == {"invoices": ["I1"], "task_id": b.ledger.store.find("task")[0].id}


def test_deliver_all_passes_options_that_change_what_it_claims() -> None:
    store = MemoryStore()
    put(store, msg("k1", to=("a@b.c",)))
    adapter = MemoryAdapter()
    assert deliver_all(store, adapter, channels=["sms"], clock=clock).claimed == 0
    assert adapter.sent == []


def test_two_dead_letters_in_one_batch_count_two() -> None:
    store = MemoryStore()
    put(store, msg("k1", to=("bad@x.y",)), msg("k2", to=("bad@x.y",)))
    got = Dispatcher(store, MemoryAdapter(refuse={"bad@x.y": "bounced"}), clock=clock).run_once()
    assert got.dead == 2 and got.claimed == 2


def test_sms_feedback_marks_the_phone_and_unknown_addresses_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    b = book()
    b.ledger.apply(
        CustomerUpdated(
            event_id="u",
            occurred_at=T0,
            actor="t",
            customer_id="C1",
            contacts=[Contact(name="Wang", email="ap@c1.example", phone="+8613800000001")],
        )
    )
    store = b.ledger.store
    put(
        store,  # type: ignore[arg-type]
        msg("s1", "sms", to=("+8613800000001",)),
        msg("s2", "sms", to=("+8613800000002",)),
    )
    adapter = MemoryAdapter(refuse={"+8613800000001": "invalid", "+8613800000002": "invalid"})
    with caplog.at_level(logging.INFO, logger="arflow.outbox"):
        Dispatcher(
            store,  # type: ignore[arg-type]
            {"sms": adapter},
            on_feedback=ledger_feedback(b.ledger),
            clock=clock,
        ).run()
    (contact,) = b.ledger.customer("C1").contacts
    assert contact.phone_invalid and not contact.email_invalid
    texts = [r.getMessage() for r in caplog.records]
    assert any(t.startswith("feedback for +8613800000002 not recorded: ") for t in texts), texts


def test_a_step_falls_back_past_channels_without_an_address(pack) -> None:  # type: ignore[no-untyped-def]
    # sms-3 is an SMS with fallback [email, task]: without a phone the e-mail is the message
    # (its action is "email"); with neither, the task goes to the salesperson.
    # Without any contact the task still goes to the salesperson.
    for contacts, channel, to in [
        ([Contact(name="Wang", email="ap@c1.example")], "email", ("ap@c1.example",)),
        ([Contact(name="Wang")], "task", ("li.wei",)),
        ([], "task", ("li.wei",)),
    ]:
        b = book()
        b.ledger.apply(
            CustomerUpdated(
                event_id="u", occurred_at=T0, actor="t", customer_id="C1", contacts=contacts
            )
        )
        b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
        Engine(b.ledger, pack).run(DUE + timedelta(days=3), first_run=True)
        recs = [r for r in b.ledger.store.outbox() if "sms" in r.key or r.channel == channel]
        (m,) = [
            Message.model_validate_json(r.body)
            for r in recs
            if Message.model_validate_json(r.body).template == "overdue_sms"
        ]
        assert (m.channel, m.action, m.to) == (channel, channel, to)
        (rec,) = [r for r in recs if r.key == m.key]
        assert rec.created_at > 0 and rec.next_at >= rec.created_at
