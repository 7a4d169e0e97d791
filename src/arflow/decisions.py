"""What the engine decides, as data: decisions, the notices messages are grouped into, and
the one function that makes every decision's key.

These types sit below both the engine (which makes decisions) and the messages (which turn
them into notices and render them), so neither has to import the other.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .rules.schema import Action

DecisionKind = Literal[
    "dunning", "lock", "unlock", "alert", "milestone", "approval", "pattern", "credit_review"
]
Status = Literal["planned", "held", "skipped", "dropped"]


def task_id_for(message_key: str) -> str:
    """The id of the tracked task an outbox message on the ``task`` channel stands for:
    derived from the message's key, so the composer (which puts it in the message) and the
    recorder (which creates the task) agree, and recording twice creates it once."""
    import hashlib

    return "T-" + hashlib.sha256(message_key.encode()).hexdigest()[:20]


def decision_key(kind: str, rule: str, *parts: str | date | None) -> str:
    """The idempotency key of a decision: its kind, its rule and what makes it unique
    (subject ids, the occurrence date), joined by ``:``; ``None`` parts are left out.

    A decision with a key already in the decision ledger is never recorded again, so a
    key must not change between versions: keys of recorded decisions are stored.

    >>> decision_key("dunning", "standard", "first", "INV-1", date(2026, 3, 1))
    'dunning:standard:first:INV-1:2026-03-01'
    """
    out = [kind, rule]
    for p in parts:
        if p is None:
            continue
        out.append(p.isoformat() if isinstance(p, date) else p)
    return ":".join(out)


class Decision(BaseModel):
    """One thing the rules decided, why, and what to do about it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    kind: DecisionKind
    rule: str
    step: str | None = None
    level: int | None = None
    subject_kind: str
    subject_id: str
    customer_id: str
    currency: str | None = None
    occurrence: date
    as_of: date
    status: Status = "planned"
    reason: str | None = None
    actions: tuple[Action, ...] = ()
    recipients: dict[str, str | None] = {}
    send_at: datetime | None = None
    why: dict[str, Any] = {}


class Notice(BaseModel):
    """Decisions of one customer merged into one message: one e-mail listing every invoice
    instead of one e-mail per invoice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    customer_id: str
    action: Action
    level: int | None
    currency: str | None
    decision_keys: tuple[str, ...]
    subject_ids: tuple[str, ...]
