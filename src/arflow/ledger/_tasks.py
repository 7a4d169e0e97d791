"""Handlers of tracked tasks: created, completed (with an outcome), cancelled, reassigned,
and marked overdue (and escalated) by the daily run.

Who may complete or cancel a task: its owner, a holder of its ``role`` in the people
directory (an active person whose ``roles`` name it), the person it was escalated to, or
the engine. Anyone else is refused with :class:`~arflow.errors.NotTaskOwner`; a task done or
cancelled already refuses every move with :class:`~arflow.errors.TaskClosed`. A refusal
changes nothing (``Engine.handle`` records the refused attempt in the audit trail).
"""

from __future__ import annotations

from ..domain import CONTACT_OUTCOMES, Person, Task, TaskStatus
from ..errors import InvalidDates, NotTaskOwner, TaskClosed, ValidationError
from ..events import TaskCancelled, TaskCompleted, TaskCreated, TaskOverdue, TaskReassigned
from ..lifecycle import OPEN_TASK_STATES, TASK_MACHINE, move
from ._context import Ctx

#: The actor of what the engine records (``arflow.engine.ENGINE_ACTOR``).
_ENGINE = "arflow-engine"
#: Task kinds whose completion records a contact outcome (one of ``CONTACT_OUTCOMES``).
CALL_KINDS = frozenset({"call"})


def _open(t: Task, event: str) -> None:
    if t.status not in OPEN_TASK_STATES:
        raise TaskClosed(t.id, str(t.status), event)


def _moved(t: Task, trigger: str) -> TaskStatus:
    return TaskStatus(move(TASK_MACHINE, "task", t.id, str(t.status), trigger))


def may_act(ctx: Ctx, t: Task, who: str) -> bool:
    """Whether ``who`` may complete or cancel ``t`` (see the module's docstring)."""
    if who in (t.owner, t.escalated_to, _ENGINE):
        return True
    if t.role is None:
        return False
    p: Person | None = ctx.tx.get("person", who)
    return p is not None and p.active and t.role in p.roles


def _check_actor(ctx: Ctx, t: Task, who: str) -> None:
    if not may_act(ctx, t, who):
        raise NotTaskOwner(t.id, who, t.owner, t.role)


def task_created(ctx: Ctx, e: TaskCreated) -> None:
    """A new open task, with its one owner."""
    ctx.absent("task", e.task_id)
    if e.deadline is not None and e.deadline < e.created_on:
        raise InvalidDates(
            f"task {e.task_id}: deadline {e.deadline} is before {e.created_on}, its creation"
        )
    t = Task(
        id=e.task_id,
        kind=e.kind,
        subject_kind=e.subject_kind,
        subject_id=e.subject_id,
        customer_id=e.customer_id,
        owner=e.owner,
        role=e.role,
        created_on=e.created_on,
        deadline=e.deadline,
        escalate_on=e.escalate_on,
        rule=e.rule,
        decision_key=e.decision_key,
    )
    due = f", due {e.deadline}" if e.deadline else ""
    ctx.put(t, None, f"{e.kind} for {e.owner}{due}")


def task_completed(ctx: Ctx, e: TaskCompleted) -> None:
    """Done, by its owner or a holder of its role; a call needs a contact outcome."""
    t: Task = ctx.get("task", e.task_id)
    _open(t, "TaskCompleted")
    _check_actor(ctx, t, e.actor)
    if t.kind in CALL_KINDS and e.outcome not in CONTACT_OUTCOMES:
        raise ValidationError(
            f"task {t.id}: a call is completed with a contact outcome, one of "
            f"{', '.join(CONTACT_OUTCOMES)} (got {e.outcome!r})"
        )
    if e.completed_on < t.created_on:
        raise InvalidDates(f"task {t.id}: completed on {e.completed_on}, before {t.created_on}")
    new = t.model_copy(
        update={
            "status": _moved(t, "complete"),
            "outcome": e.outcome,
            "note": e.note,
            "closed_on": e.completed_on,
            "closed_by": e.actor,
        }
    )
    ctx.put(new, t, f"done by {e.actor}" + (f": {e.outcome}" if e.outcome else ""))


def task_cancelled(ctx: Ctx, e: TaskCancelled) -> None:
    """No longer needed; the reason is the event's."""
    t: Task = ctx.get("task", e.task_id)
    _open(t, "TaskCancelled")
    _check_actor(ctx, t, e.actor)
    new = t.model_copy(
        update={
            "status": _moved(t, "cancel"),
            "closed_on": e.cancelled_on,
            "closed_by": e.actor,
        }
    )
    ctx.put(new, t, f"cancelled by {e.actor}" + (f": {e.reason}" if e.reason else ""))


def task_reassigned(ctx: Ctx, e: TaskReassigned) -> None:
    """The task changes hands (the old and the new owner are in the audit record)."""
    t: Task = ctx.get("task", e.task_id)
    _open(t, "TaskReassigned")
    if e.owner == t.owner and e.role in (None, t.role):
        raise ValidationError(f"task {t.id}: {e.owner!r} owns it already")
    new = t.model_copy(
        update={
            "status": _moved(t, "reassign"),
            "owner": e.owner,
            "role": e.role if e.role is not None else t.role,
        }
    )
    ctx.put(new, t, f"reassigned from {t.owner} to {e.owner} by {e.actor}")


def task_overdue(ctx: Ctx, e: TaskOverdue) -> None:
    """Open past its deadline; with ``escalated_to``, escalated to that person too."""
    t: Task = ctx.get("task", e.task_id)
    _open(t, "TaskOverdue")
    if e.escalated_to is None and t.status == TaskStatus.OVERDUE:
        raise ValidationError(f"task {t.id} is overdue already")
    if e.escalated_to is not None and t.escalated_to is not None:
        raise ValidationError(f"task {t.id} was escalated to {t.escalated_to} already")
    update: dict[str, object] = {
        "status": _moved(t, "escalate" if e.escalated_to else "fall_overdue")
    }
    summary = f"overdue on {e.overdue_on}"
    if e.escalated_to is not None:
        update["escalated_to"] = e.escalated_to
        summary += f", escalated to {e.escalated_to}"
    ctx.put(t.model_copy(update=update), t, summary)
