"""The outbox: decisions queue rendered messages in their own transaction; dispatchers deliver
them once, retry with backoff, give up into dead letters, fall back to the next channel, mark
bounced contacts, respect rate limits and take over the claims of a dispatcher that died.
On memory, SQLite and PostgreSQL; two dispatchers at once on PostgreSQL."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from arflow import (
    Contact,
    CreditProfile,
    Customer,
    CustomerRegistered,
    Dispatcher,
    Ledger,
    MemoryAdapter,
    Message,
    Money,
    PermanentFailure,
    RetryPolicy,
    Store,
)
from arflow.engine import Engine
from arflow.messages import ledger_feedback
from arflow.outbox import micros
from arflow.rules.loader import load_pack
from arflow.store.base import OutboxRecord
from arflow.testing import BookBuilder

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
DUE = date(2026, 3, 2)


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    return load_pack(RULES)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def register(b: BookBuilder, cid: str, *, email: str | None, phone: str | None = None) -> None:
    b.apply(
        CustomerRegistered(
            event_id=f"reg-{cid}",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="t",
            customer=Customer(
                id=cid,
                name=f"客户 {cid}",
                salesperson="li.wei",
                sales_manager="zhang.min",
                contacts=[
                    Contact(
                        name="王芳",
                        email=email,
                        phone=phone,
                        locale="zh_CN",
                        timezone="Asia/Shanghai",
                    )
                ],
                credit=CreditProfile(
                    grade="B", credit_limit=Money.of(1_000_000, "CNY"), payment_terms_days=30
                ),
            ),
        )
    )


@pytest.fixture
def b(store: Store) -> BookBuilder:
    builder = BookBuilder(store)
    register(builder, "C1", email="ap@c1.example", phone="+8613800000001")
    return builder


def run_due_day(b: BookBuilder, pack) -> Engine:  # type: ignore[no-untyped-def]
    """Two invoices of C1 due on DUE; the engine runs DUE (the due-day e-mail and a task)."""
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C1", 2_500, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    engine.run(DUE, first_run=True)
    return engine


def test_a_run_queues_one_rendered_notice_per_customer_in_its_transaction(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    engine = run_due_day(b, pack)
    store = b.ledger.store
    items = store.outbox()
    emails = [r for r in items if r.channel == "email"]
    assert len(emails) == 1, [r.key for r in items]
    m = Message.model_validate_json(emails[0].body)
    assert m.to == ("ap@c1.example",) and m.locale == "zh_CN"
    assert set(m.subject_ids) == {"I1", "I2"}
    assert "I1" in m.text and "I2" in m.text and "¥2,500.00" in m.text
    assert m.html is not None and m.html.startswith("<!DOCTYPE html>")
    assert len(m.decision_keys) == 2 and m.rule == "standard"
    # the send window (weekdays 09:00-18:00 Asia/Shanghai) sets when it may go out
    assert emails[0].next_at == micros(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    # a second run of the day queues nothing more
    assert engine.run(DUE).recorded == 0
    assert [r.key for r in store.outbox()] == [r.key for r in items]


def test_the_dispatcher_delivers_each_message_once(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    run_due_day(b, pack)
    store = b.ledger.store
    sink = MemoryAdapter()
    clock = Clock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    stats = Dispatcher(store, sink, clock=clock).run()
    queued = store.outbox()
    assert stats.sent == len(queued) == len(sink.sent) >= 2
    assert {r.status for r in store.outbox()} == {"sent"}
    assert Dispatcher(store, sink, clock=clock).run().claimed == 0
    assert len({m.key for m in sink.sent}) == len(sink.sent)


def test_nothing_goes_out_before_its_send_window(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    run_due_day(b, pack)
    sink = MemoryAdapter()
    early = Clock(datetime(2026, 3, 2, 0, 30, tzinfo=UTC))  # 08:30 in Shanghai
    d = Dispatcher(b.ledger.store, {"email": sink}, clock=early, channels=["email"])
    assert d.run().claimed == 0
    early.advance(minutes=31)
    assert d.run().sent == 1


def queue(store: Store, n: int, *, channel: str = "email", prefix: str = "k") -> list[str]:
    keys = [f"{prefix}{i:05d}" for i in range(n)]
    with store.transaction() as tx:
        for k in keys:
            m = Message(key=k, channel=channel, action=channel, customer_id="C1", to=("x@y.z",))  # type: ignore[arg-type]
            tx.add_outbox(
                OutboxRecord(key=k, channel=channel, customer_id="C1", body=m.model_dump_json())
            )
    return keys


def test_temporary_failures_back_off_then_deliver(store: Store) -> None:
    queue(store, 1)
    sink = MemoryAdapter(fail_first=3)
    clock = Clock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    policy = RetryPolicy(max_attempts=5, base=timedelta(seconds=10), jitter=0.5)
    d = Dispatcher(store, sink, clock=clock, retry=policy, rng=random.Random(7))
    waits = []
    for _ in range(3):
        assert d.run_once().retried == 1
        rec = store.outbox_item("k00000")
        assert (
            rec is not None
            and rec.status == "pending"
            and "fails on purpose" in (rec.last_error or "")
        )
        waits.append(rec.next_at - micros(clock()))
        assert d.run_once().claimed == 0  # not yet due
        clock.now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=rec.next_at)
    # exponential: 10 s, 20 s, 40 s, each less up to half of it (jitter)
    for n, w in enumerate(waits):
        full = 10_000_000 * 2**n
        assert full // 2 <= w <= full
    assert d.run_once().sent == 1
    rec = store.outbox_item("k00000")
    assert rec is not None and (rec.status, rec.attempts) == ("sent", 4)
    assert len(sink.sent) == 1


def test_after_the_last_attempt_a_dead_letter_that_an_operator_can_retry(store: Store) -> None:
    queue(store, 1)
    sink = MemoryAdapter(fail_first=10)
    clock = Clock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    d = Dispatcher(store, sink, clock=clock, retry=RetryPolicy(max_attempts=3))
    for _ in range(3):
        d.run_once()
        clock.advance(hours=7)
    rec = store.outbox_item("k00000")
    assert rec is not None and rec.status == "dead" and rec.attempts == 3
    assert (rec.last_error or "").startswith("gave up after 3 attempts")
    assert store.outbox_counts()["dead"] == 1
    assert store.outbox_retry(None, micros(clock())) == 1
    sink.fail_first = 0
    assert d.run_once().sent == 1


def test_a_bounce_marks_the_contact_and_the_fallback_goes_out(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    custom = tmp_path / "pack"
    import shutil

    shutil.copytree(RULES, custom)
    text = (custom / "dunning.yaml").read_text(encoding="utf-8")
    assert "template: reminder_due" in text
    (custom / "dunning.yaml").write_text(
        text.replace("template: reminder_due", "template: reminder_due, fallback: [sms, task]", 1),
        encoding="utf-8",
    )
    engine = Engine(b.ledger, load_pack(custom))
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    engine.run(DUE, first_run=True)
    store = b.ledger.store
    [email] = [r for r in store.outbox() if r.channel == "email"]
    m = Message.model_validate_json(email.body)
    assert [f.channel for f in m.fallbacks] == ["sms", "task"]
    assert m.fallbacks[0].to == ("+8613800000001",) and m.fallbacks[1].to == ("li.wei",)
    sink = MemoryAdapter(refuse={"ap@c1.example": "bounced"})
    clock = Clock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    d = Dispatcher(
        store,
        {"email": sink, "sms": sink, "task": sink},
        on_feedback=ledger_feedback(b.ledger),
        clock=clock,
    )
    stats = d.run()
    assert stats.fallbacks == 1 and stats.dead == 1
    dead = store.outbox_item(email.key)
    assert dead is not None and dead.status == "dead" and "bounced" in (dead.last_error or "")
    sent = {x.key: x for x in sink.sent}
    assert f"{email.key}~sms" in sent and sent[f"{email.key}~sms"].to == ("+8613800000001",)
    contact = b.ledger.customer("C1").contacts[0]
    assert contact.email_invalid and not contact.phone_invalid
    trail = b.ledger.audit_trail("customer", "C1")
    assert trail[-1].event_type == "ContactFeedback" and trail[-1].actor == "arflow-dispatcher"
    # the next step does not try the dead address: its first channel is the SMS
    b.invoice("I2", "C1", 1_000, issued="2026-02-01", due=DUE + timedelta(1))
    engine.run(DUE + timedelta(1))
    newest = [
        Message.model_validate_json(r.body)
        for r in store.outbox(status="pending")
        if "I2" in Message.model_validate_json(r.body).subject_ids
    ]
    assert newest and all(x.channel != "email" or "customer" not in x.action for x in newest)
    assert all("ap@c1.example" not in x.to for x in newest)


def test_a_task_sent_as_a_fallback_is_tracked_once(
    b: BookBuilder,
    tmp_path: Path,
) -> None:
    """docs/tasks.md: every task message is a tracked task, the fallback of a bounced
    e-mail included, created when the dispatcher sends it (``ledger_tasks``)."""
    import shutil

    from arflow.messages import ledger_tasks

    custom = tmp_path / "pack"
    shutil.copytree(RULES, custom)
    text = (custom / "dunning.yaml").read_text(encoding="utf-8")
    (custom / "dunning.yaml").write_text(
        text.replace("template: reminder_due", "template: reminder_due, fallback: [task]", 1),
        encoding="utf-8",
    )
    engine = Engine(b.ledger, load_pack(custom))
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    engine.run(DUE, first_run=True)
    store = b.ledger.store
    [email] = [r for r in store.outbox() if r.channel == "email"]
    (fallback,) = Message.model_validate_json(email.body).fallbacks
    tid = fallback.data["task_id"]
    assert fallback.channel == "task" and store.get("task", tid) is None  # not sent yet
    sink = MemoryAdapter(refuse={"ap@c1.example": "bounced"})
    clock = Clock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    d = Dispatcher(
        store, {"email": sink, "task": sink}, on_sent=ledger_tasks(b.ledger), clock=clock
    )
    assert d.run().fallbacks == 1
    task = store.get("task", tid)
    assert (task.owner, task.kind, task.subject_kind, task.subject_id, task.status) == (
        "li.wei",
        "call",
        "receivable",
        "I1",
        "open",
    )
    assert task.decision_key in Message.model_validate_json(email.body).decision_keys
    (created,) = b.ledger.audit_trail("task", tid)
    assert created.actor == "arflow-dispatcher" and "fallback of email" in (created.reason or "")
    assert tid in [i.task.id for i in engine.tasks_for("li.wei", DUE)]
    # sent again (a redelivery): still one task
    ledger_tasks(b.ledger)(store.outbox_item(f"{email.key}~task"), sink.sent[-1])  # type: ignore[arg-type]
    assert len(b.ledger.audit_trail("task", tid)) == 1


def test_a_rendering_error_is_a_dead_letter_not_a_silent_loss(
    b: BookBuilder,
    tmp_path: Path,
) -> None:
    import shutil

    custom = tmp_path / "pack"
    shutil.copytree(RULES, custom)
    broken = custom / "templates" / "reminder_due.zh_CN.j2"
    broken.write_text("{% block subject %}{{ 1 / 0 }}{% endblock %}{% block body %}x{% endblock %}")
    engine = Engine(b.ledger, load_pack(custom))
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    result = engine.run(DUE, first_run=True)
    assert result.recorded >= 1
    dead = b.ledger.store.outbox(status="dead")
    assert len(dead) == 1 and "could not be rendered" in (dead[0].last_error or "")


def test_rate_limits_space_deliveries_per_channel(store: Store) -> None:
    queue(store, 5, channel="sms")
    sink = MemoryAdapter()
    slept: list[float] = []
    d = Dispatcher(
        store,
        sink,
        rate_limits={"sms": 2.0},
        sleep=slept.append,
        clock=lambda: datetime(2026, 3, 2, 12, tzinfo=UTC),
    )
    assert d.run().sent == 5
    # 2 per second: the four after the first wait 0.5, 1.0, 1.5, 2.0 s (less time spent)
    assert len(slept) == 4 and sum(slept) > 4.5


def test_a_dead_dispatchers_claims_are_taken_over_after_the_lease(store: Store) -> None:
    queue(store, 3)
    clock = Clock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    lease = 5 * 60 * 1_000_000
    crashed = store.outbox_claim("crashed-worker", micros(clock()), 10, lease)
    assert len(crashed) == 3  # claimed, never settled: the process died
    sink = MemoryAdapter()
    d = Dispatcher(store, sink, clock=clock)
    assert d.run().claimed == 0  # the lease still holds
    clock.advance(minutes=6)
    assert d.run().sent == 3
    assert {r.attempts for r in store.outbox()} == {2}


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    from arflow import adapter_from_url

    a = adapter_from_url("smtp://ar:S3cr3t-pw@127.0.0.1:1?from=ar@example.com&timeout=2")
    assert "S3cr3t-pw" not in repr(a)
    with pytest.raises(Exception) as info:
        a.deliver(Message(key="k", channel="email", action="email", customer_id="C", to=("a@b.c",)))
    assert "S3cr3t-pw" not in str(info.value)
    from arflow.actions import redact

    assert redact("webhook+https://h/p?secret=abc&x=1") == "webhook+https://h/p?secret=***&x=1"


@pytest.mark.parametrize("backend", ["postgres"])
def test_two_dispatchers_on_postgresql_deliver_10000_actions_exactly_once(backend: str) -> None:
    import sqlalchemy as sa

    from arflow.store.sql import SqlStore
    from tests.conftest import POSTGRES_URL, _drop_schema, _postgres_engine

    schema = f"t_{uuid.uuid4().hex[:12]}"
    first = SqlStore(_postgres_engine(schema))
    second = SqlStore(
        sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    )
    try:
        keys = queue(first, 10_000)
        sink = MemoryAdapter()
        by_worker: dict[str, int] = {}
        now = datetime(2026, 3, 2, 12, tzinfo=UTC)

        def work(store: Store, name: str) -> None:
            stats = Dispatcher(store, sink, worker=name, batch=100, clock=lambda: now).run()
            by_worker[name] = stats.sent

        threads = [
            threading.Thread(target=work, args=(s, n)) for s, n in ((first, "one"), (second, "two"))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        sent = [m.key for m in sink.sent]
        assert len(sent) == 10_000 and sorted(sent) == keys  # each once, none lost
        assert sum(by_worker.values()) == 10_000 and min(by_worker.values()) > 0
        assert first.outbox_counts()["sent"] == 10_000
    finally:
        first.close()
        second.close()
        _drop_schema(schema)


def test_a_permanent_failure_without_fallback_is_dead_at_once(store: Store) -> None:
    queue(store, 1)

    class Refusing:
        def deliver(self, message: Message) -> str | None:
            raise PermanentFailure("422 unprocessable")

    d = Dispatcher(store, Refusing(), clock=lambda: datetime(2026, 3, 2, tzinfo=UTC))
    assert d.run().dead == 1
    rec = store.outbox_item("k00000")
    assert rec is not None and (rec.status, rec.attempts, rec.last_error) == (
        "dead",
        1,
        "422 unprocessable",
    )


def test_ledger_refuses_feedback_for_an_unknown_address(b: BookBuilder) -> None:
    from arflow import ContactFeedback, ValidationError

    with pytest.raises(ValidationError, match="no contact with email"):
        b.ledger.apply(
            ContactFeedback(
                event_id="fb",
                occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
                actor="t",
                customer_id="C1",
                address="nobody@c1.example",
                channel="email",
                feedback="bounced",
            )
        )
    assert not Ledger(b.ledger.store).customer("C1").contacts[0].email_invalid


def test_customer_supplied_text_is_never_evaluated_and_is_escaped_in_html(
    store: Store,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    b = BookBuilder(store)
    hostile = "{{ 7*7 }}{% for x in ().__class__.__mro__ %}x{% endfor %}<script>alert(1)</script>"
    b.apply(
        CustomerRegistered(
            event_id="reg-H",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="t",
            customer=Customer(
                id="H",
                name=hostile,
                contacts=[Contact(name=hostile, email="ap@h.example", locale="en")],
                credit=CreditProfile(grade="B", credit_limit=Money.of(10_000, "CNY")),
            ),
        )
    )
    b.invoice("I1", "H", 1_000, issued="2026-01-31", due=DUE)
    Engine(b.ledger, pack).run(DUE, first_run=True)
    [email] = [r for r in store.outbox() if r.channel == "email"]
    m = Message.model_validate_json(email.body)
    assert "{{ 7*7 }}" in m.text and "49" not in m.text  # printed, not evaluated
    assert m.html is not None and "<script>" not in m.html and "&lt;script&gt;" in m.html


def test_a_risk_alert_task_carries_each_invoices_history(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    """The risk alert (over 30 days overdue) attaches the full audit trail of its invoices:
    read for all of a run's notices at once, it must be each invoice's own, in order."""
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    b.invoice("I2", "C1", 2_000, issued="2026-01-02", due="2026-01-31")
    b.pay("P1", "C1", 500, on="2026-02-20", to=[("I2", 500)])
    Engine(b.ledger, pack).run(date(2026, 3, 5), first_run=True)
    tasks = [
        Message.model_validate_json(r.body)
        for r in b.ledger.store.outbox()
        if r.channel == "task" and "risk" in r.key
    ]
    assert tasks, [r.key for r in b.ledger.store.outbox()]
    for m in tasks:
        history = m.data["history"]
        subjects = {h["subject"] for h in history}
        assert subjects == {f"receivable:{i}" for i in m.subject_ids}
        for sid in m.subject_ids:
            mine = [h["event"] for h in history if h["subject"] == f"receivable:{sid}"]
            trail = b.ledger.store.audit_trail("receivable", sid)
            assert mine == [rec.event_type for rec in trail][: len(mine)]
            assert mine[0] == "InvoiceIssued"
    i2 = next(m for m in tasks if "I2" in m.subject_ids)
    assert "PaymentReceived" in [h["event"] for h in i2.data["history"]]
