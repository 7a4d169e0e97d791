"""What a delivery learnt about a contact, recorded in the book: the bridge from the
dispatcher's :class:`~arflow.outbox.DeliveryFeedback` to an audited ``ContactFeedback``
event, so the outbox needs to know nothing of the ledger."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from ..actions import Message
from ..decisions import Decision
from ..events import ContactFeedback, TaskCreated
from ..outbox import DeliveryFeedback, FeedbackHandler
from ..store.base import OutboxRecord


class _Applies(Protocol):
    """What records an event: a ``Ledger`` (or a batch of one)."""

    def apply(self, event: ContactFeedback, /) -> object: ...


class _Book(Protocol):
    """A ``Ledger``: it records events and reads its store."""

    @property
    def store(self) -> Any: ...

    def apply(self, event: TaskCreated, /) -> object: ...


#: what a task is, by the action that made it (else by its decision's kind)
_KIND_OF_ACTION = {"request_invoice": "invoice_request", "handover": "handover"}
_KIND_OF_DECISION = {"approval": "approval", "dunning": "call", "alert": "alert"}


def ledger_tasks(ledger: _Book) -> Callable[[OutboxRecord, Message], None]:
    """The ``on_sent`` of a :class:`~arflow.outbox.Dispatcher` that makes a task message
    sent as another channel's fallback (an e-mail that bounced, say, then the task to the
    salesperson) a tracked task, like every task the engine queues itself: its owner is
    the message's first recipient, its deadline the message's due date, its subject that
    of the decision behind it. Created once (its event id is the task's); a task already
    tracked (the engine tracks the task messages it queues) is left as it is."""

    def record(rec: OutboxRecord, message: Message) -> None:
        tid = message.data.get("task_id")
        if message.channel != "task" or not tid or not message.to:
            return
        if ledger.store.get("task", tid) is not None:
            return
        found = next(
            (d for d in (ledger.store.decision(k) for k in message.decision_keys) if d is not None),
            None,
        )
        if found is None:
            return
        d = Decision.model_validate_json(found.body)
        at = datetime.fromtimestamp(rec.created_at / 1e6, UTC)
        deadline = message.due if message.due is None or message.due >= d.as_of else d.as_of
        came = message.data.get("fallback_of") or "another channel"
        ledger.apply(
            TaskCreated(
                event_id=f"engine:task:{tid}",
                occurred_at=at,
                actor="arflow-dispatcher",
                reason=f"sent as the fallback of {came}: {d.reason or f'rule {d.rule}'}",
                task_id=tid,
                kind=_KIND_OF_ACTION.get(message.action) or _KIND_OF_DECISION.get(d.kind, "task"),
                subject_kind=d.subject_kind,
                subject_id=d.subject_id,
                customer_id=message.customer_id,
                owner=message.to[0],
                created_on=max(d.as_of, at.date()),
                deadline=None if deadline is None else max(deadline, d.as_of, at.date()),
                rule=d.rule,
                decision_key=d.key,
            )
        )

    return record


def ledger_feedback(ledger: _Applies) -> FeedbackHandler:
    """The ``on_feedback`` of a :class:`~arflow.outbox.Dispatcher` that marks the contact
    through ``ledger`` (``email_invalid``, ``phone_invalid``, ``unsubscribed``), audited as
    done by ``arflow-dispatcher``. The event id follows from the message and the address,
    so the same feedback reported twice is recorded once."""

    def record(fb: DeliveryFeedback) -> None:
        digest = hashlib.sha256(f"{fb.key}|{fb.address}".encode()).hexdigest()[:24]
        ledger.apply(
            ContactFeedback(
                event_id=f"feedback:{digest}",
                occurred_at=fb.at,
                actor="arflow-dispatcher",
                reason=fb.reason,
                customer_id=fb.customer_id,
                address=fb.address,
                channel=fb.channel,
                feedback=fb.feedback,
            )
        )

    return record
