"""Tracked tasks: every message the engine queues on the ``task`` channel becomes a
:class:`~arflow.domain.Task` in the same transaction; the daily run marks open tasks past
their deadline overdue and escalates them to the owner's manager; an inbox reads what waits
for a person or a role.

The task's id is in the message (``data["task_id"]``), so a host that delivers tasks
(Celery, RQ, a webhook) reports completion back with ``TaskCompleted(task_id=...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ..actions import Message
from ..calendar import BusinessCalendar, Offset
from ..decisions import Decision, task_id_for
from ..domain import PERSON_ID, ROLE_HOLDERS, Person, Task, TaskStatus
from ..events import (
    BaseEvent,
    OrderApproved,
    OrderRejected,
    TaskCancelled,
    TaskCompleted,
    TaskCreated,
    TaskOverdue,
)
from ..ledger import Batch
from ..lifecycle import LIVE_STATES, OPEN_TASK_STATES
from ..outbox import micros
from ..rules.schema import BUILTIN_ROLES, Action
from ..store.base import OutboxRecord, Store

ENGINE_ACTOR = "arflow-engine"
#: Roles that name the customer's own people (its salesperson), not a directory role.
_BUILTIN = BUILTIN_ROLES


def kind_of_task(d: Decision, a: Action) -> str:
    """What a task is, from the decision and the action that made it."""
    if a.type == "request_invoice":
        return "invoice_request"
    if a.type == "handover":
        return "handover"
    if d.kind == "approval":
        return "approval"
    if d.kind == "dunning":
        return "call"
    return d.kind if d.kind in ("alert", "escalation") else "task"


def _role(a: Action) -> str | None:
    """The directory role a task was given to (``role:finance`` or ``finance``), if any:
    its holders may complete it too. A person id or an address is no role."""
    if not a.to:
        return None
    first = a.to[0]
    if first.startswith(ROLE_HOLDERS):
        return first[len(ROLE_HOLDERS) :]
    if first in _BUILTIN or "@" in first or PERSON_ID.fullmatch(first):
        return None
    return first


def _after(day: date, offset: str, calendar: BusinessCalendar | None) -> date:
    return Offset.parse(f"due+{offset}").resolve({"due": day}, calendar or BusinessCalendar())


def queue_with_tasks(
    batch: Batch, composer: Any, decisions: Sequence[Decision], at: datetime
) -> int:
    """``composer.queue``, and a tracked task for every message queued on the ``task``
    channel, created in the same transaction; returns how many messages were queued."""
    records: list[OutboxRecord] = composer.records(batch.tx, decisions, at)
    track_tasks(batch, composer.pack, records, decisions, at)
    return len(records)


def track_tasks(
    batch: Batch,
    pack: Any,
    records: Sequence[OutboxRecord],
    decisions: Sequence[Decision],
    at: datetime,
) -> None:
    """Queue ``records`` (composed from ``decisions``, edited by a reviewer or not), and
    create a tracked task for every one of them on the ``task`` channel, in the same
    transaction."""
    by_key = {d.key: d for d in decisions}
    for rec in records:
        batch.tx.add_outbox(rec)
        if rec.channel == "task" and rec.status == "pending":
            _create(batch, pack, rec, by_key, at)


def _create(
    batch: Batch, pack: Any, rec: OutboxRecord, by_key: dict[str, Decision], at: datetime
) -> None:
    m = Message.model_validate_json(rec.body)
    tid = m.data.get("task_id")
    d = next((by_key[k] for k in m.decision_keys if k in by_key), None)
    if not tid or d is None or not m.to:
        return
    a = _action_of(d, m)
    after = a.escalate_after or pack.settings.task_escalation
    deadline = m.due if m.due is None or m.due >= d.as_of else d.as_of
    batch.apply(
        TaskCreated(
            event_id=f"engine:task:{tid}",
            occurred_at=at,
            actor=ENGINE_ACTOR,
            reason=d.reason or f"rule {d.rule}",
            task_id=tid,
            kind=kind_of_task(d, a),
            subject_kind=d.subject_kind,
            subject_id=d.subject_id,
            customer_id=m.customer_id,
            owner=m.to[0],
            role=_role(a),
            created_on=d.as_of,
            deadline=deadline,
            escalate_on=None
            if after is None or deadline is None
            else _after(deadline, after, pack.calendar),
            rule=d.rule,
            decision_key=d.key,
        )
    )


def _action_of(d: Decision, m: Message) -> Action:
    """The action of ``d`` that ``m`` renders: by type and template, else by type."""
    same = [x for x in d.actions if x.type == m.action]
    return next((x for x in same if x.template == m.template), same[0] if same else d.actions[0])


def sweep(
    batch: Batch,
    store: Store,
    pack: Any,
    as_of: date,
    at: datetime,
    since_mark: int | None = None,
) -> int:
    """Mark open tasks past their deadline overdue, and escalate those whose escalation
    day has come to their owner's manager (an escalation task of the manager's own, with
    its message); cancel calls about receivables no longer live. Each once: the events
    are keyed by the task, so a day run twice does nothing more. Returns how many tasks
    changed.

    With ``since_mark`` (the audit mark of a run that swept before), only the tasks that
    can change are read (:func:`may_change`); without it, every open task: the same
    events either way."""
    changed = 0
    if since_mark is None:
        found = store.find("task", states=_OPEN)
    else:
        found = may_change(store, as_of, since_mark)
    open_tasks = sorted(found, key=lambda t: str(t.id))
    for i, seen in enumerate(open_tasks):
        if i % _SWEEP_AHEAD == 0:
            _sweep_ahead(batch, open_tasks[i : i + _SWEEP_AHEAD])
        t: Task | None = batch.tx.get("task", seen.id)
        if t is None or t.status not in OPEN_TASK_STATES:
            continue
        meta: dict[str, Any] = {"occurred_at": at, "actor": ENGINE_ACTOR}
        gone = _gone(batch, t)
        if gone is not None:
            batch.apply(
                TaskCancelled(
                    event_id=f"engine:task-gone:{t.id}",
                    task_id=t.id,
                    cancelled_on=max(as_of, t.created_on),
                    reason=gone,
                    **meta,
                )
            )
            changed += 1
            continue
        if t.deadline is not None and t.deadline < as_of and t.status == TaskStatus.OPEN:
            batch.apply(
                TaskOverdue(
                    event_id=f"engine:task-overdue:{t.id}",
                    task_id=t.id,
                    overdue_on=as_of,
                    reason=f"deadline {t.deadline} passed",
                    **meta,
                )
            )
            changed += 1
        if t.escalate_on is None or t.escalate_on > as_of or t.escalated_to is not None:
            continue
        manager = manager_of(batch.tx.get("person", t.owner))
        if manager is None:
            continue
        batch.apply(
            TaskOverdue(
                event_id=f"engine:task-escalated:{t.id}",
                task_id=t.id,
                overdue_on=as_of,
                escalated_to=manager,
                reason=f"open since {t.created_on}, deadline {t.deadline}",
                **meta,
            )
        )
        _escalation(batch, pack, t, manager, as_of, at)
        changed += 1
    return changed


def may_change(store: Store, as_of: date, mark: int) -> list[Task]:
    """The open tasks the sweep of ``as_of`` can change, given that a sweep saw the book
    as of audit position ``mark``: those whose sweep day (``due_date``: the day after the
    deadline while open, the escalation day while not escalated) is at most ``as_of``;
    those changed since ``mark`` (created, reassigned); and the calls about receivables
    changed since ``mark`` (paid, credited, written off). Any other open task was open
    with the same fields, its receivable live, when that sweep left it, and its day has
    not come."""
    by_id: dict[str, Task] = {t.id: t for t in store.find_due_by("task", as_of, _OPEN)}
    changed = store.objects_changed_since(mark, ("task", "receivable"))
    # a task changed since (given, reassigned) has its sweep day in the column; what the
    # column cannot say is that a call is about a receivable closed (before or since)
    touched = changed.get("task", set()) - by_id.keys()
    receivables = changed.get("receivable", set())
    live = [str(s) for s in LIVE_STATES]
    for t in store.calls_on_closed(touched, receivables, live):
        by_id.setdefault(t.id, t)
    return list(by_id.values())


#: Tasks the sweep reads ahead at a time (a first run leaves a task per call step due)
_SWEEP_AHEAD = 2000


def _sweep_ahead(batch: Batch, tasks: Sequence[Task]) -> None:
    """Read what sweeping ``tasks`` looks up (the tasks in the transaction, the
    receivables of calls, whether the sweep's events are logged) in a few queries, not
    one or two per task."""
    batch.tx.prefetch(
        [f"engine:task-{what}:{t.id}" for t in tasks for what in ("gone", "overdue", "escalated")],
        {
            "task": [t.id for t in tasks],
            "receivable": [
                t.subject_id for t in tasks if t.kind == "call" and t.subject_kind == "receivable"
            ],
        },
    )


def _gone(batch: Batch, t: Task) -> str | None:
    """Why a call about a receivable is no longer needed (paid, credited, written off)."""
    if t.kind != "call" or t.subject_kind != "receivable":
        return None
    r = batch.tx.get("receivable", t.subject_id)
    if r is None or r.state in LIVE_STATES:
        return None
    return f"receivable {r.id} is {r.state}"


def manager_of(p: Person | None) -> str | None:
    return None if p is None else p.manager


def _escalation(batch: Batch, pack: Any, t: Task, manager: str, as_of: date, at: datetime) -> None:
    """The manager's own task about ``t``, and its message on the ``task`` channel."""
    key = f"task-escalation:{t.id}"
    tid = task_id_for(key)
    deadline = _after(as_of, "1bd", pack.calendar)
    text = (
        f"Escalated to you: {t.kind} {t.id} of {t.owner} about {t.subject_kind} "
        f"{t.subject_id} (customer {t.customer_id}), open since {t.created_on}, "
        f"deadline {t.deadline}."
    )
    message = Message(
        key=key,
        channel="task",
        action="escalation",
        customer_id=t.customer_id,
        to=(manager,),
        subject=f"Escalation: {t.kind} {t.id}",
        text=text,
        priority="high",
        due=deadline,
        rule=t.rule,
        decision_keys=(t.decision_key,) if t.decision_key else (),
        subject_ids=(t.subject_id,),
        data={"task_id": tid, "escalates": t.id},
    )
    batch.tx.add_outbox(
        OutboxRecord(
            key=key,
            channel="task",
            customer_id=t.customer_id,
            body=message.model_dump_json(),
            created_at=micros(at),
            next_at=micros(at),
        )
    )
    batch.apply(
        TaskCreated(
            event_id=f"engine:task:{tid}",
            occurred_at=at,
            actor=ENGINE_ACTOR,
            reason=f"task {t.id} not done by {t.deadline}",
            task_id=tid,
            kind="escalation",
            subject_kind="task",
            subject_id=t.id,
            customer_id=t.customer_id,
            owner=manager,
            created_on=as_of,
            deadline=deadline,
            rule=t.rule,
        )
    )


def close_decided(batch: Batch, event: BaseEvent) -> int:
    """An order approved or rejected (``Engine.handle``) completes the open approval tasks
    about it, with the decision as their outcome and the approver in the reason, in the
    event's transaction. Returns how many were closed."""
    if not isinstance(event, OrderApproved | OrderRejected):
        return 0
    outcome = "approved" if isinstance(event, OrderApproved) else "rejected"
    order = batch.tx.get("order", event.order_id)
    if order is None:
        return 0
    n = 0
    for t in batch.tx.find("task", customer_id=order.customer_id, states=_OPEN):
        if t.kind != "approval" or t.subject_kind != "order" or t.subject_id != order.id:
            continue
        batch.apply(
            TaskCompleted(
                event_id=f"engine:task-decided:{t.id}",
                occurred_at=event.occurred_at,
                actor=ENGINE_ACTOR,
                reason=f"order {order.id} {outcome} by {event.approver}",
                task_id=t.id,
                completed_on=max(t.created_on, event.occurred_at.astimezone(UTC).date()),
                outcome=outcome,
            )
        )
        n += 1
    return n


_OPEN = [str(s) for s in OPEN_TASK_STATES]


# -- the inbox ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxItem:
    """One task waiting for someone: what, since when, by when, and what happens if
    nothing is done (``if_nothing``)."""

    task: Task
    waiting_days: int
    if_nothing: str


def inbox(store: Store, who: str, as_of: date) -> list[InboxItem]:
    """The open and overdue tasks of ``who``: a person id (theirs, those of the roles they
    hold, and those escalated to them) or a role (``finance`` or ``role:finance``);
    overdue first, then by deadline."""
    name = who[len(ROLE_HOLDERS) :] if who.startswith(ROLE_HOLDERS) else who
    person: Person | None = store.get("person", name)
    roles = set(person.roles) if person is not None else {name}
    mine = [
        t
        for t in store.find("task", states=[str(s) for s in OPEN_TASK_STATES])
        if name in (t.owner, t.escalated_to) or (t.role is not None and t.role in roles)
    ]
    mine.sort(key=lambda t: (t.status != TaskStatus.OVERDUE, t.deadline or date.max, t.id))
    out = []
    for t in mine:
        out.append(InboxItem(t, (as_of - t.created_on).days, _if_nothing(store, t, as_of)))
    return out


def _if_nothing(store: Store, t: Task, as_of: date) -> str:
    if t.escalated_to is not None:
        return f"escalated to {t.escalated_to} already"
    if t.escalate_on is None:
        return "overdue" if t.deadline and t.deadline < as_of else "stays open (no escalation)"
    manager = manager_of(store.get("person", t.owner))
    if manager is None:
        return f"overdue after {t.deadline}; no manager to escalate to"
    return f"escalated to {manager} on {max(t.escalate_on, as_of)}"
