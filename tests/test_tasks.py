"""Tracked tasks (issue 14, item 5): the task's life in the ledger, the tasks the engine
creates with its decisions, overdue and escalation in the daily run, the contact facts, the
inbox and the ``arflow tasks`` command; on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arflow import Ledger
from arflow.domain import Person, TaskStatus
from arflow.engine import Engine
from arflow.errors import (
    IllegalTransition,
    NotTaskOwner,
    TaskClosed,
    UnknownObject,
    ValidationError,
)
from arflow.events import (
    PersonAdded,
    TaskCancelled,
    TaskCompleted,
    TaskCreated,
    TaskOverdue,
    TaskReassigned,
)
from arflow.rules.loader import load_pack
from arflow.store import Store
from arflow.testing import BookBuilder
from tests.test_engine import DUE, RULES, register

DAY = date(2026, 3, 2)


def at(d: date, hour: int = 9) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


def person(pid: str, *, roles: tuple[str, ...] = (), manager: str | None = None) -> PersonAdded:
    return PersonAdded(
        event_id=f"person-{pid}",
        occurred_at=at(DAY, 8),
        actor="hr",
        person=Person(id=pid, name=pid, roles=roles, manager=manager),
    )


def created(
    tid: str = "T1", *, kind: str = "call", owner: str = "li.wei", **kw: object
) -> TaskCreated:
    fields: dict[str, object] = {
        "event_id": f"create-{tid}",
        "occurred_at": at(DAY),
        "actor": "t",
        "task_id": tid,
        "kind": kind,
        "subject_kind": "customer",
        "subject_id": "C1",
        "customer_id": "C1",
        "owner": owner,
        "created_on": DAY,
        "deadline": DAY + timedelta(2),
        **kw,
    }
    return TaskCreated(**fields)  # type: ignore[arg-type]


def done(
    tid: str = "T1", actor: str = "li.wei", outcome: str | None = "reached", n: int = 0
) -> TaskCompleted:
    return TaskCompleted(
        event_id=f"done-{tid}-{actor}-{n}",
        occurred_at=at(DAY + timedelta(1)),
        actor=actor,
        task_id=tid,
        completed_on=DAY + timedelta(1),
        outcome=outcome,
    )


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    return load_pack(RULES)


@pytest.fixture
def b(store: Store) -> BookBuilder:
    builder = BookBuilder(store)
    register(builder)
    return builder


# -- the task in the ledger ---------------------------------------------------------------------


def test_a_task_is_created_completed_once_and_audited(b: BookBuilder) -> None:
    b.apply(created())
    t = b.ledger.get("task", "T1")
    assert (t.status, t.owner, t.deadline) == (TaskStatus.OPEN, "li.wei", DAY + timedelta(2))
    b.apply(done())
    t = b.ledger.get("task", "T1")
    assert (t.status, t.outcome, t.closed_by) == (TaskStatus.DONE, "reached", "li.wei")
    with pytest.raises(TaskClosed, match="is closed"):
        b.apply(done(n=1))
    assert b.ledger.get("task", "T1") == t
    trail = b.ledger.audit_trail("task", "T1")
    assert [(a.event_type, a.before_state, a.after_state) for a in trail] == [
        ("TaskCreated", None, "open"),
        ("TaskCompleted", "open", "done"),
    ]


def test_only_the_owner_or_a_holder_of_its_role_completes_it(b: BookBuilder) -> None:
    b.apply(person("P-1", roles=("finance",)))
    b.apply(person("P-2", roles=("warehouse",)))
    b.apply(created("T2", kind="approval", owner="fin@example.com", role="finance"))
    with pytest.raises(NotTaskOwner, match="'P-2' is not its owner"):
        b.apply(done("T2", actor="P-2", outcome="approved"))
    assert b.ledger.get("task", "T2").status == TaskStatus.OPEN
    b.apply(done("T2", actor="P-1", outcome="approved"))
    assert b.ledger.get("task", "T2").closed_by == "P-1"


def test_unknown_task_and_a_call_without_its_outcome_are_refused(b: BookBuilder) -> None:
    with pytest.raises(UnknownObject):
        b.apply(done("nope"))
    b.apply(created())
    with pytest.raises(ValidationError, match="contact outcome"):
        b.apply(done(outcome=None))
    with pytest.raises(ValidationError, match="contact outcome"):
        b.apply(done(outcome="maybe"))
    assert b.ledger.get("task", "T1").status == TaskStatus.OPEN


def test_reassign_and_cancel_are_audited(b: BookBuilder) -> None:
    b.apply(created())
    b.apply(
        TaskReassigned(
            occurred_at=at(DAY),
            actor="zhang.min",
            task_id="T1",
            owner="wang.fang",
            reassigned_on=DAY,
        )
    )
    assert b.ledger.get("task", "T1").owner == "wang.fang"
    with pytest.raises(NotTaskOwner):  # the old owner no longer holds it
        b.apply(done(actor="li.wei"))
    b.apply(
        TaskCancelled(
            occurred_at=at(DAY),
            actor="wang.fang",
            reason="customer paid",
            task_id="T1",
            cancelled_on=DAY,
        )
    )
    t = b.ledger.get("task", "T1")
    assert t.status == TaskStatus.CANCELLED
    with pytest.raises(TaskClosed):
        b.apply(
            TaskReassigned(
                occurred_at=at(DAY), actor="x", task_id="T1", owner="li.wei", reassigned_on=DAY
            )
        )
    summaries = [a.summary for a in b.ledger.audit_trail("task", "T1")]
    assert "reassigned from li.wei to wang.fang by zhang.min" in summaries
    assert "cancelled by wang.fang: customer paid" in summaries


def test_a_refused_completion_through_handle_is_in_the_audit_trail(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    engine = Engine(b.ledger, pack)
    b.apply(created())
    with pytest.raises(NotTaskOwner):
        engine.handle(done(actor="someone", n=2))
    engine.handle(done())
    with pytest.raises(TaskClosed):
        engine.handle(done(n=1))
    refused = [a for a in b.ledger.audit_trail("task", "T1") if a.refused]
    assert [(a.event_type, a.refused, a.before_state, a.after_state) for a in refused] == [
        ("TaskCompleted:refused", "NotTaskOwner", "open", "open"),
        ("TaskCompleted:refused", "TaskClosed", "done", "done"),
    ]


# -- tasks the engine creates -------------------------------------------------------------------


def _task_messages(store: Store) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(r.body) for r in store.outbox() if r.channel == "task"]


def test_a_ladder_call_becomes_a_tracked_task_its_message_carries_the_id(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    b.invoice("I1", "C1", 10_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    engine.run(DUE, first_run=True)
    [msg] = _task_messages(b.ledger.store)
    [task] = b.ledger.store.find("task")
    assert msg["data"]["task_id"] == task.id
    assert (task.kind, task.owner, task.subject_id, task.created_on) == (
        "call",
        "li.wei",
        "I1",
        DUE,
    )
    assert task.deadline == DUE + timedelta(1)  # due_in: 1bd (a Monday, so Tuesday)
    assert task.decision_key == msg["decision_keys"][0]
    engine.run(DUE)  # the same day again creates nothing
    assert len(b.ledger.store.find("task")) == 1
    # the host reports back through the API, and the contact facts see it
    engine.handle(
        TaskCompleted(
            occurred_at=at(DUE + timedelta(1)),
            actor="li.wei",
            task_id=task.id,
            completed_on=DUE + timedelta(1),
            outcome="no_answer",
        )
    )
    from arflow.engine import FactCache

    facts = FactCache(b.ledger.store, pack.settings, DUE + timedelta(2)).get("C1").facts
    assert facts["customer.call_attempts_30d"] == 1
    assert facts["customer.last_contact_outcome"] == "no_answer"
    later = FactCache(b.ledger.store, pack.settings, DUE + timedelta(40)).get("C1").facts
    assert later["customer.call_attempts_30d"] == 0
    assert later["customer.last_contact_outcome"] == "no_answer"


def test_an_order_approved_gives_finance_and_the_warehouse_their_tasks(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    from arflow.events import OrderSubmitted
    from arflow.money import Money

    engine = Engine(b.ledger, pack)
    engine.handle(
        OrderSubmitted(
            occurred_at=at(DAY),
            actor="crm",
            order_id="O1",
            customer_id="C1",
            amount=Money.of(1000, "CNY"),  # type: ignore[arg-type]
            submitted_on=DAY,
        )
    )
    tasks = sorted(b.ledger.store.find("task"), key=lambda t: t.deadline)
    assert [(t.subject_id, t.role, t.deadline) for t in tasks] == [
        ("O1", "finance", DAY + timedelta(1)),
        ("O1", "warehouse", DAY + timedelta(2)),
    ]
    ids = {m["data"]["task_id"] for m in _task_messages(b.ledger.store)}
    assert ids == {t.id for t in tasks}


# -- overdue and escalation ---------------------------------------------------------------------


def test_overdue_tasks_escalate_to_the_manager_once(b: BookBuilder) -> None:
    pack = load_pack(RULES)  # a pack of its own: its settings change
    pack.settings = pack.settings.model_copy(update={"task_escalation": "1bd"})
    b.apply(person("zhang.min", roles=("sales_manager",)))
    b.apply(person("li.wei", roles=("salesperson",), manager="zhang.min"))
    b.invoice("I1", "C1", 10_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    engine.run(DUE, first_run=True)  # the call, due Tuesday, escalated Wednesday
    [task] = b.ledger.store.find("task")
    assert task.escalate_on == DUE + timedelta(2)
    [item] = engine.tasks_for("li.wei", DUE)
    assert item.if_nothing == f"escalated to zhang.min on {DUE + timedelta(2)}"
    engine.run(DUE + timedelta(1))
    assert b.ledger.get("task", task.id).status == TaskStatus.OPEN  # due today
    engine.run(DUE + timedelta(2))
    t = b.ledger.get("task", task.id)
    assert (t.status, t.escalated_to) == (TaskStatus.OVERDUE, "zhang.min")
    esc = [x for x in b.ledger.store.find("task") if x.kind == "escalation"]
    assert [(x.owner, x.subject_kind, x.subject_id) for x in esc] == [
        ("zhang.min", "task", task.id)
    ]
    notice = [m for m in _task_messages(b.ledger.store) if m["action"] == "escalation"]
    assert [(m["to"], m["data"]["task_id"]) for m in notice] == [(["zhang.min"], esc[0].id)]
    outbox_before = len(b.ledger.store.outbox())
    engine.run(DUE + timedelta(2))  # the day again: escalated once
    engine.run(DUE + timedelta(3))
    assert len([x for x in b.ledger.store.find("task") if x.kind == "escalation"]) == 1
    assert len(b.ledger.store.outbox()) >= outbox_before
    assert [m["data"]["task_id"] for m in _task_messages(b.ledger.store)].count(esc[0].id) == 1
    inbox = engine.tasks_for("zhang.min", DUE + timedelta(3))
    assert {i.task.id for i in inbox} == {task.id, esc[0].id}  # escalated to them, and theirs
    # the manager it went to may complete it
    engine.handle(done(task.id, actor="zhang.min", outcome="reached", n=9))
    assert b.ledger.get("task", task.id).status == TaskStatus.DONE


def test_overdue_is_marked_once_by_event(b: BookBuilder) -> None:
    b.apply(created())
    ev = TaskOverdue(occurred_at=at(DAY), actor="e", task_id="T1", overdue_on=DAY + timedelta(3))
    b.apply(ev)
    with pytest.raises(ValidationError, match="overdue already"):
        b.apply(
            TaskOverdue(occurred_at=at(DAY), actor="e", task_id="T1", overdue_on=DAY + timedelta(4))
        )
    assert b.apply(ev).duplicate


# -- the command --------------------------------------------------------------------------------


def test_the_tasks_command_lists_an_inbox_and_completes_a_task(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from arflow.cli import main

    db = f"sqlite:///{tmp_path / 'book.db'}"
    b = BookBuilder(Ledger(db).store)
    register(b)
    b.apply(created())
    assert main(["tasks", "--for", "li.wei", "--db", db, "--as-of", "2026-03-05"]) == 0
    out = capsys.readouterr().out
    assert "1 task(s) waiting for li.wei" in out
    assert "deadline 2026-03-04" in out and "T1" in out
    args = ["tasks", "done", "T1", "--db", db, "--as", "li.wei", "--as-of", "2026-03-03"]
    assert main([*args, "--outcome", "promise"]) == 0
    assert main([*args, "--outcome", "promise"]) == 4  # done already
    assert "is closed" in capsys.readouterr().err
    assert main(["tasks", "done", "T9", "--db", db, "--as", "li.wei"]) == 3  # unknown
    assert main(["tasks", "--db", db]) == 4  # whose inbox?
    assert Ledger(db).get("task", "T1").outcome == "promise"


# -- a property: one owner at any time, at most one terminal state ------------------------------

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["complete", "cancel", "reassign", "overdue", "stranger"]),
        st.sampled_from(["li.wei", "wang.fang", "zhao.lei"]),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_OPS)
def test_a_task_has_one_owner_and_ends_at_most_once(ops: list[tuple[str, str]]) -> None:
    b = BookBuilder(Ledger("memory://").store)
    register(b)
    b.apply(created())
    terminal: list[str] = []
    for i, (op, who) in enumerate(ops):
        before = b.ledger.get("task", "T1")
        day = DAY + timedelta(i)
        meta = {"event_id": f"op-{i}", "occurred_at": at(DAY), "task_id": "T1"}
        event: object
        if op == "complete":
            event = TaskCompleted(actor=before.owner, completed_on=day, outcome="reached", **meta)
        elif op == "cancel":
            event = TaskCancelled(actor=before.owner, cancelled_on=day, **meta)
        elif op == "reassign":
            event = TaskReassigned(actor="boss", owner=who, reassigned_on=day, **meta)
        elif op == "overdue":
            event = TaskOverdue(actor="e", overdue_on=day, **meta)
        else:
            event = TaskCompleted(actor="stranger", completed_on=day, outcome="reached", **meta)
        try:
            b.apply(event)  # type: ignore[arg-type]
        except (TaskClosed, NotTaskOwner, ValidationError, IllegalTransition):
            assert b.ledger.get("task", "T1") == before  # refused: nothing changed
        after = b.ledger.get("task", "T1")
        assert isinstance(after.owner, str) and after.owner  # exactly one owner
        if after.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
            if not terminal:
                terminal.append(str(after.status))
            assert [str(after.status)] == terminal  # never leaves, never changes terminal
        else:
            assert not terminal
        if before.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
            assert after == before
    trail = b.ledger.audit_trail("task", "T1")
    ends = [
        a
        for a in trail
        if a.after_state in ("done", "cancelled") and a.before_state not in ("done", "cancelled")
    ]
    assert len(ends) <= 1


def test_the_docs_blocks_run(capsys) -> None:  # type: ignore[no-untyped-def]
    """Every python block of docs/tasks.md runs, and prints what the prose says."""
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "tasks.md").read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 3
    for code in blocks:
        exec(compile(code, "docs/tasks.md", "exec"), {})
    out = capsys.readouterr().out
    assert "'P-2' is not its owner" in out and "is closed (state 'done')" in out
    assert "TaskCompleted:refused open -> open NotTaskOwner" in out
    assert "approval finance" in out or "task finance" in out
    assert "['done', 'done']" in out
    assert "T-7 open 1 escalated to M-1 on 2026-03-05" in out


def test_an_approval_is_a_task_closed_by_the_decision(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    from arflow.events import OrderApproved, OrderSubmitted
    from arflow.money import Money

    engine = Engine(b.ledger, pack)
    engine.handle(
        OrderSubmitted(
            occurred_at=at(DAY),
            actor="crm",
            order_id="O2",
            customer_id="C1",
            amount=Money.of(120_000, "CNY"),  # type: ignore[arg-type]  # over the limit
            submitted_on=DAY,
        )
    )
    assert b.ledger.get("order", "O2").state == "pending_approval"
    [task] = [t for t in b.ledger.store.find("task") if t.kind == "approval"]
    assert (task.subject_kind, task.subject_id, task.owner) == ("order", "O2", "zhang.min")
    approver = b.ledger.get("order", "O2").approvers[0]
    engine.handle(
        OrderApproved(occurred_at=at(DAY, 11), actor=approver, order_id="O2", approver=approver)
    )
    t = b.ledger.get("task", task.id)
    assert (t.status, t.outcome) == (TaskStatus.DONE, "approved")
    assert f"order O2 approved by {approver}" in [
        a.reason for a in b.ledger.audit_trail("task", task.id)
    ]


def test_a_call_about_an_invoice_paid_since_is_cancelled_by_the_run(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    b.invoice("I1", "C1", 10_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    engine.run(DUE, first_run=True)
    [task] = b.ledger.store.find("task")
    b.pay("P1", "C1", 10_000, on=DUE + timedelta(1))
    engine.run(DUE + timedelta(2))
    t = b.ledger.get("task", task.id)
    assert (t.status, t.closed_by) == (TaskStatus.CANCELLED, "arflow-engine")
    assert b.ledger.audit_trail("task", task.id)[-1].reason == "receivable I1 is paid"


def test_the_docs_draw_the_task_machine_as_declared() -> None:
    from arflow.lifecycle import TASK_TRANSITIONS, mermaid

    text = (Path(__file__).resolve().parent.parent / "docs" / "tasks.md").read_text("utf-8")
    assert "```mermaid\n" + mermaid(TASK_TRANSITIONS, "open") + "```" in text
