"""The daily task sweep reads only the tasks that can change (issue 17 item 3): their
sweep day in the indexed ``due_date`` column, the tasks changed and the calls whose
receivable changed since the last run's audit mark. Differential: random books of tasks
(deadlines, escalation days, owners with and without managers, paid invoices, tasks
completed or reassigned), run on consecutive, repeated and skipped days, give exactly the
events of the full sweep (every open task read), on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from arflow.domain import Person, Task, TaskStatus
from arflow.engine import Engine
from arflow.engine._processes import sweep as sweep_processes
from arflow.engine._tasks import sweep as sweep_tasks
from arflow.errors import ArflowError
from arflow.events import PersonAdded, TaskCompleted, TaskCreated, TaskReassigned
from arflow.ledger import Batch
from arflow.rules.loader import load_pack
from arflow.store import Store
from arflow.store._records import task_sweep_day
from arflow.testing import BookBuilder
from tests.test_engine import DUE, RULES, register


class FullSweep(Engine):
    """The reference: the sweep reads every open task, every day."""

    def _sweep_tasks(self, batch: Batch, as_of: date, when: datetime) -> int:
        moved = sweep_processes(batch, self.store, self.pack, as_of, when)
        return moved + sweep_tasks(batch, self.store, self.pack, as_of, when, None)


def at(d: date, hour: int = 9) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


OWNERS = ("li.wei", "p.a", "p.b", "nobody@example.com")
INVOICES = ("I1", "I2", "I3")

_create = st.tuples(
    st.just("create"),
    st.sampled_from(OWNERS),
    st.sampled_from((None, *INVOICES)),  # a call about an invoice, or a task about C1
    st.integers(-3, 4),  # deadline, days from today
    st.one_of(st.none(), st.integers(-2, 5)),  # escalation day, days after the deadline
)
_op = st.one_of(
    _create,
    st.tuples(st.just("run"), st.sampled_from((0, 1, 1, 2, 4))),  # days on: 0 runs it again
    st.tuples(st.just("pay"), st.sampled_from(INVOICES)),
    st.tuples(st.just("manager"), st.sampled_from(OWNERS[1:3])),  # a person gets a manager
    st.tuples(st.just("done"), st.integers(0, 30)),
    st.tuples(st.just("reassign"), st.integers(0, 30), st.sampled_from(OWNERS)),
)


def _book(store: Store) -> BookBuilder:
    b = BookBuilder(store)
    register(b)
    b.apply(_person("zhang.min", None))
    b.apply(_person("li.wei", "zhang.min"))
    for n, inv in enumerate(INVOICES):
        b.invoice(inv, "C1", 1_000 * (n + 1), issued="2026-01-31", due=DUE - timedelta(n * 9))
    return b


def _person(pid: str, manager: str | None, n: int = 0) -> PersonAdded:
    return PersonAdded(
        event_id=f"person-{pid}-{n}",
        occurred_at=at(DUE, 8),
        actor="hr",
        person=Person(id=pid, name=pid, manager=manager),
    )


def _play(b: BookBuilder, engine: Engine, ops: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Apply ``ops`` to ``b``'s book, running ``engine``; what each run did."""
    today = DUE
    engine.run(today, first_run=True, at=at(today, 6))
    tasks: list[str] = []
    seen: list[tuple[Any, ...]] = []
    for i, op in enumerate(ops):
        meta: dict[str, Any] = {"event_id": f"op-{i}", "occurred_at": at(today), "actor": "t"}
        try:
            if op[0] == "create":
                _, owner, inv, dl, esc = op
                deadline = today + timedelta(dl)
                b.apply(
                    TaskCreated(
                        **meta,
                        task_id=f"T{i}",
                        kind="call" if inv else "task",
                        subject_kind="receivable" if inv else "customer",
                        subject_id=inv or "C1",
                        customer_id="C1",
                        owner=owner,
                        created_on=min(today, deadline),
                        deadline=deadline,
                        escalate_on=None if esc is None else deadline + timedelta(esc),
                    )
                )
                tasks.append(f"T{i}")
            elif op[0] == "run":
                today += timedelta(op[1])
                res = engine.run(today, at=at(today, 6 + i % 12))
                seen.append((today, res.recorded, res.skipped, len(res.failures)))
            elif op[0] == "pay":
                r = b.ledger.get("receivable", op[1])
                if r is not None and r.open_balance.amount > 0:
                    b.pay(
                        f"PAY{i}",
                        "C1",
                        r.open_balance.amount,
                        on=today,
                        to=[(op[1], r.open_balance.amount)],
                    )
            elif op[0] == "manager":
                b.apply(_person(op[1], "zhang.min", i))
            elif tasks and op[0] == "done":
                tid = tasks[op[1] % len(tasks)]
                t = b.ledger.get("task", tid)
                b.apply(
                    TaskCompleted(
                        **meta,
                        task_id=tid,
                        completed_on=max(today, t.created_on),
                        outcome="reached" if t.kind == "call" else "done",
                    )
                )
            elif tasks and op[0] == "reassign":
                tid = tasks[op[1] % len(tasks)]
                t = b.ledger.get("task", tid)
                b.apply(
                    TaskReassigned(
                        **{**meta, "actor": t.owner},
                        task_id=tid,
                        owner=op[2],
                        reassigned_on=max(today, t.created_on),
                    )
                )
        except ArflowError as exc:  # refused (a closed task, say): the same on both books
            seen.append(("refused", i, type(exc).__name__))
    return seen


def _what(store: Store) -> tuple[Any, ...]:
    """Everything the runs wrote: the audit trail in order, the tasks, the outbox."""
    audit = [
        (r.event_id, r.event_type, r.subject_kind, r.subject_id, r.after_state, r.reason)
        for _, r in store.audit_log()
    ]
    tasks = sorted(t.model_dump_json() for t in store.find("task"))
    outbox = sorted((m.key, m.channel, m.body) for m in store.outbox())
    decisions = sorted((d.key, d.status, d.body) for d in store.decisions())
    return audit, tasks, outbox, decisions


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    p = load_pack(RULES)
    p.settings = p.settings.model_copy(update={"task_escalation": "1bd"})
    return p


@settings(
    max_examples=int(os.environ.get("ARFLOW_SWEEP_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(_op, min_size=1, max_size=25))
# a call about an invoice paid after a quiet run (its receivable changed since the mark)
@example(
    ops=[("create", "li.wei", "I1", 3, None), ("run", 1), ("run", 1), ("pay", "I1"), ("run", 1)]
)
# a call given after its invoice was paid and a run went by (the task changed since the mark)
@example(ops=[("pay", "I2"), ("run", 1), ("create", "p.a", "I2", 4, None), ("run", 1)])
# an escalation held for want of a manager, until the owner gets one
@example(
    ops=[("create", "p.a", None, -1, 0), ("run", 1), ("run", 2), ("manager", "p.a"), ("run", 0)]
)
def test_the_sweep_of_what_can_change_is_the_full_sweep(
    store_factory: Callable[[], Store],
    pack: Any,
    ops: list[tuple[Any, ...]],
) -> None:
    full, fast = _book(store_factory()), _book(store_factory())
    try:
        seen_full = _play(full, FullSweep(full.ledger, pack), ops)
        seen_fast = _play(fast, Engine(fast.ledger, pack), ops)
        assert seen_fast == seen_full
        assert _what(fast.ledger.store) == _what(full.ledger.store)
    finally:  # PostgreSQL: one example's connections go before the next one's come
        full.ledger.store.close()
        fast.ledger.store.close()


def test_a_task_sweep_day_is_the_day_the_calendar_changes_it() -> None:
    d = date(2026, 3, 4)
    base: dict[str, Any] = {
        "id": "T1",
        "kind": "call",
        "subject_kind": "customer",
        "subject_id": "C1",
        "customer_id": "C1",
        "owner": "li.wei",
        "created_on": d,
        "deadline": d,
    }
    assert task_sweep_day(Task(**base)) == d + timedelta(1)
    assert task_sweep_day(Task(**base, escalate_on=d - timedelta(1))) == d - timedelta(1)
    overdue = Task(**base, escalate_on=d + timedelta(3), status=TaskStatus.OVERDUE)
    assert task_sweep_day(overdue) == d + timedelta(3)
    assert task_sweep_day(overdue.model_copy(update={"escalated_to": "m"})) is None
    assert task_sweep_day(Task(**base, status=TaskStatus.DONE)) is None
    assert task_sweep_day(Task(**{**base, "deadline": None})) is None
