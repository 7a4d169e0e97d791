"""What a store keeps: the kinds of object in the book, and the records beside them (the
decision ledger, run records, the outbox) with the outbox's claim arithmetic.

Plain data shared by every backend and by the buffered unit of work (``_buffered``); the
protocols a backend follows are in :mod:`arflow.store.base`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel

from ..domain import (
    Contract,
    CreditNote,
    Customer,
    Dispute,
    InvoiceRequest,
    Milestone,
    Order,
    Payment,
    Person,
    Project,
    PromiseToPay,
    Receivable,
    Task,
)


@dataclass(frozen=True)
class Kind:
    """One kind of object in the book and the columns a backend indexes it by."""

    name: str
    model: type[BaseModel]
    customer_id: Callable[[Any], str | None]
    state: Callable[[Any], str | None] = lambda _m: None
    due_date: Callable[[Any], date | None] = lambda _m: None


def _cust(m: Any) -> str | None:
    return m.customer_id  # type: ignore[no-any-return]


#: The state of a payment or credit note with money left to apply: the column the day's
#: customer facts (``customer.unapplied_credit``) and the ledger's credit application read
#: by, so that they skip the (many) fully applied ones. Schema step 8 fills it in for the
#: rows stored before.
UNAPPLIED = "unapplied"


def _payment_state(m: Payment) -> str:
    """``reversed``; ``unapplied`` while cash is left to apply; ``applied`` otherwise
    (allocated to invoices, refunded, or both)."""
    if m.reversed:
        return "reversed"
    return UNAPPLIED if m.unapplied.amount > 0 else "applied"


def _credit_note_state(m: CreditNote) -> str:
    """``unapplied`` while some of the credit is left to apply; ``applied`` otherwise."""
    return UNAPPLIED if m.unapplied.amount > 0 else "applied"


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("customer", Customer, lambda m: m.id, lambda m: "locked" if m.locks else "active"),
        Kind("contract", Contract, _cust),
        Kind("project", Project, _cust),
        Kind("milestone", Milestone, lambda _m: None),
        Kind("receivable", Receivable, _cust, lambda m: str(m.state), lambda m: m.due_date),
        Kind("payment", Payment, _cust, _payment_state),
        Kind("credit_note", CreditNote, _cust, _credit_note_state),
        Kind("dispute", Dispute, _cust, lambda m: m.status),
        Kind("promise", PromiseToPay, _cust, lambda m: str(m.status)),
        Kind("order", Order, _cust, lambda m: str(m.state)),
        Kind("person", Person, lambda _m: None, lambda m: "active" if m.active else "inactive"),
        Kind("task", Task, _cust, lambda m: str(m.status), lambda m: m.deadline),
        Kind("invoice_request", InvoiceRequest, _cust, lambda m: str(m.state)),
    )
}
KIND_OF: dict[type[BaseModel], Kind] = {k.model: k for k in KINDS.values()}

M = TypeVar("M", bound=BaseModel)


def kind_of(obj: BaseModel) -> Kind:
    return KIND_OF[type(obj)]


def json_of(obj: BaseModel) -> str:
    """How objects, events and audit records are stored: ``obj.model_dump_json()`` leaving
    out the fields that are None. Every field that can be None defaults to None (checked
    by ``tests/test_store.py``), so parsing gives the same object back; an invoice's three
    documents are a quarter smaller, which an import of a million of them feels."""
    return obj.__pydantic_serializer__.to_json(obj, exclude_none=True).decode()


@dataclass(frozen=True)
class DecisionRecord:
    """One decided action in the decision ledger; ``key`` is unique in the store."""

    key: str
    as_of: date
    kind: str
    customer_id: str
    subject_id: str
    status: str  # planned, released, skipped, held
    body: str  # the decision as JSON


@dataclass(frozen=True)
class RunRecord:
    """What one ``Engine.run`` did: counts, failures and why."""

    as_of: date
    body: str  # JSON


@dataclass(frozen=True)
class OutboxRecord:
    """One action waiting for, or done with, delivery.

    ``key`` is the action's idempotency key (unique in the store). Instants are UTC
    microseconds since the epoch. ``status``: ``pending`` (due at ``next_at``), ``sending``
    (claimed by ``claimed_by`` until ``lease_until``), ``sent``, ``dead``. ``claim`` is the
    token of the claim being delivered: a new one with every claim, so a dispatcher whose
    lease ran out (and was taken over) can neither renew nor settle what it no longer holds."""

    key: str
    channel: str
    customer_id: str
    body: str  # the message as JSON
    status: str = "pending"
    attempts: int = 0
    next_at: int = 0
    created_at: int = 0
    claimed_by: str | None = None
    lease_until: int | None = None
    sent_at: int | None = None
    last_error: str | None = None
    receipt: str | None = None
    claim: str | None = None


OUTBOX_STATUSES = ("pending", "sending", "sent", "dead")


@dataclass(frozen=True)
class Settle:
    """The outcome of one delivery attempt, recorded by the dispatcher that claimed it.

    ``status``: ``sent``, ``pending`` (retry at ``next_at``) or ``dead``. ``follow_up`` is
    queued in the same transaction (the next channel of a fallback chain). ``claim`` is the
    token of the claim the attempt was made under: the outcome is recorded only while the
    action still holds it."""

    status: str
    now: int
    next_at: int | None = None
    error: str | None = None
    receipt: str | None = None
    follow_up: OutboxRecord | None = None
    claim: str | None = None


def new_claim() -> str:
    """A fresh claim token: random, so no two claims (of any dispatcher) share one."""
    return secrets.token_hex(16)


def claimable(r: OutboxRecord, now: int) -> bool:
    """Due and pending, or claimed by a dispatcher whose lease ran out (it crashed)."""
    if r.status == "pending":
        return r.next_at <= now
    return r.status == "sending" and r.lease_until is not None and r.lease_until < now


def claimed(r: OutboxRecord, worker: str, now: int, lease: int, claim: str) -> OutboxRecord:
    return replace(
        r,
        status="sending",
        claimed_by=worker,
        lease_until=now + lease,
        attempts=r.attempts + 1,
        claim=claim,
    )


def holds(r: OutboxRecord, claim: str | None) -> bool:
    """Whether ``r`` is being sent under the claim ``claim`` (any claim when None)."""
    return r.status == "sending" and (claim is None or r.claim == claim)


def settled(r: OutboxRecord, s: Settle) -> OutboxRecord:
    return replace(
        r,
        status=s.status,
        next_at=s.next_at if s.next_at is not None else r.next_at,
        lease_until=None,
        claim=None,
        sent_at=s.now if s.status == "sent" else r.sent_at,
        last_error=s.error if s.error is not None else r.last_error,
        receipt=s.receipt if s.receipt is not None else r.receipt,
    )


def retried(r: OutboxRecord, now: int) -> OutboxRecord:
    """A dead letter given a fresh start by an operator (``arflow outbox retry``)."""
    return replace(
        r, status="pending", attempts=0, next_at=now, claimed_by=None, lease_until=None, claim=None
    )


#: A new object as stored: (customer, state, due date, JSON, receivable summary text).
ObjectRow = tuple[str | None, str, date | None, str, str | None]
#: An audit record as stored: (subject kind, subject id, event id, JSON of the record).
AuditRow = tuple[str, str, str, str]


@dataclass
class StagedRows:
    """A transaction's staged writes as plain rows (see ``_SqlTx.staged_rows``): INSERTs
    by table, upserts (and the outbox's insert-if-absent) by kind, run records."""

    inserts: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    upserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
