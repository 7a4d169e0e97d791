"""Business events: the only way the book changes.

Every event carries ``event_id`` (applying the same id twice is a no-op), ``occurred_at``
(timezone-aware: the "when" of the audit trail), ``actor`` (the "who") and an optional
``reason`` (the "why"). :data:`Event` is a discriminated union on ``type``, so a stored
event log parses back into the right classes.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from .domain import (
    CompanyProfile,
    Contact,
    Contract,
    CreditProfile,
    Customer,
    Milestone,
    Money,
    Project,
)
from .money import Seq


class BaseEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1)
    occurred_at: AwareDatetime
    actor: str = Field(min_length=1)
    reason: str | None = None


class CustomerRegistered(BaseEvent):
    type: Literal["CustomerRegistered"] = "CustomerRegistered"
    customer: Customer


class CustomerUpdated(BaseEvent):
    """Changes the fields it sets; fields left out keep their value."""

    type: Literal["CustomerUpdated"] = "CustomerUpdated"
    customer_id: str
    name: str | None = None
    region: str | None = None
    salesperson: str | None = None
    sales_manager: str | None = None
    contacts: Seq[Contact] | None = None
    credit: CreditProfile | None = None
    profile: CompanyProfile | None = None
    tags: Seq[str] | None = None


class ContractSigned(BaseEvent):
    type: Literal["ContractSigned"] = "ContractSigned"
    contract: Contract
    project: Project | None = None
    milestones: Seq[Milestone] = ()


class MilestoneCompleted(BaseEvent):
    """A milestone is done: payment nodes that depend on it can now be invoiced."""

    type: Literal["MilestoneCompleted"] = "MilestoneCompleted"
    milestone_id: str
    completed_on: date


class InvoiceIssued(BaseEvent):
    """A receivable is born. Without ``due_date`` it comes from the contract's payment node
    (``contract_id`` + ``payment_node_id``) or else from the customer's payment terms."""

    type: Literal["InvoiceIssued"] = "InvoiceIssued"
    number: str = Field(min_length=1)
    customer_id: str
    issue_date: date
    due_date: date | None = None
    amount: Money
    contract_id: str | None = None
    payment_node_id: str | None = None
    order_id: str | None = None
    salesperson: str | None = None
    region: str | None = None
    product_line: str | None = None
    tags: Seq[str] = ()


class AllocationRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    receivable_id: str
    amount: Money


class PaymentReceived(BaseEvent):
    """Cash from a customer. With ``allocations`` the money goes where they say; without,
    it goes to the customer's open items oldest due date first (then issue date, then
    number), skipping disputed amounts. What is left is kept as unapplied customer credit.
    """

    type: Literal["PaymentReceived"] = "PaymentReceived"
    payment_id: str = Field(min_length=1)
    customer_id: str
    amount: Money
    received_on: date
    reference: str | None = None
    allocations: Seq[AllocationRequest] | None = None


class PaymentReversed(BaseEvent):
    """A payment bounced or was booked in error: its allocations are undone."""

    type: Literal["PaymentReversed"] = "PaymentReversed"
    payment_id: str
    reversed_on: date


class CreditNoteIssued(BaseEvent):
    type: Literal["CreditNoteIssued"] = "CreditNoteIssued"
    credit_note_id: str = Field(min_length=1)
    customer_id: str
    receivable_id: str | None = None
    amount: Money
    issued_on: date


class DisputeOpened(BaseEvent):
    """The customer contests an invoice, or part of it (``amount``; default the whole
    open balance)."""

    type: Literal["DisputeOpened"] = "DisputeOpened"
    dispute_id: str = Field(min_length=1)
    receivable_id: str
    amount: Money | None = None
    reason_code: str = Field(min_length=1)
    opened_on: date
    note: str = ""


class DisputeResolved(BaseEvent):
    """The dispute is closed. Money consequences (a credit note) are their own event."""

    type: Literal["DisputeResolved"] = "DisputeResolved"
    dispute_id: str
    resolved_on: date
    resolution: str = Field(min_length=1)


class PromiseMade(BaseEvent):
    type: Literal["PromiseMade"] = "PromiseMade"
    promise_id: str = Field(min_length=1)
    customer_id: str
    receivable_ids: Seq[str] = Field(min_length=1)
    amount: Money
    promised_date: date
    promised_by: str = Field(min_length=1)
    made_on: date


class PromiseBroken(BaseEvent):
    type: Literal["PromiseBroken"] = "PromiseBroken"
    promise_id: str
    broken_on: date


class WrittenOff(BaseEvent):
    """The open balance of a receivable is written off as uncollectable."""

    type: Literal["WrittenOff"] = "WrittenOff"
    receivable_id: str
    written_off_on: date


class OrderSubmitted(BaseEvent):
    type: Literal["OrderSubmitted"] = "OrderSubmitted"
    order_id: str = Field(min_length=1)
    customer_id: str
    amount: Money
    submitted_on: date
    order_type: str | None = None
    contract_id: str | None = None


class OrderApprovalRequested(BaseEvent):
    type: Literal["OrderApprovalRequested"] = "OrderApprovalRequested"
    order_id: str


class OrderApproved(BaseEvent):
    type: Literal["OrderApproved"] = "OrderApproved"
    order_id: str
    approver: str = Field(min_length=1)


class OrderRejected(BaseEvent):
    type: Literal["OrderRejected"] = "OrderRejected"
    order_id: str
    approver: str = Field(min_length=1)


class OrderShipped(BaseEvent):
    type: Literal["OrderShipped"] = "OrderShipped"
    order_id: str
    shipped_on: date


class DunningStepRecorded(BaseEvent):
    """The engine sent a dunning step for this receivable: its level is raised."""

    type: Literal["DunningStepRecorded"] = "DunningStepRecorded"
    receivable_id: str
    ladder: str
    step: str
    level: int = Field(ge=0)
    decision_key: str
    sent_on: date


class DunningBlockChanged(BaseEvent):
    """Dunning for one receivable is blocked (with a reason) or unblocked."""

    type: Literal["DunningBlockChanged"] = "DunningBlockChanged"
    receivable_id: str
    blocked: bool


class RiskFlagged(BaseEvent):
    type: Literal["RiskFlagged"] = "RiskFlagged"
    receivable_id: str
    level: Literal["low", "medium", "high"]
    rule: str
    flagged_on: date


class OrderLockPlaced(BaseEvent):
    type: Literal["OrderLockPlaced"] = "OrderLockPlaced"
    customer_id: str
    lock_id: str
    scope: Literal["customer", "contract", "order_type"] = "customer"
    ref: str | None = None
    placed_on: date


class OrderLockLifted(BaseEvent):
    type: Literal["OrderLockLifted"] = "OrderLockLifted"
    customer_id: str
    lock_id: str
    scope: Literal["customer", "contract", "order_type"] = "customer"
    ref: str | None = None
    lifted_on: date


class ContactFeedback(BaseEvent):
    """What a channel said about a contact's address: a hard bounce, an invalid number, an
    unsubscribe. The contact is marked so later steps use another channel."""

    type: Literal["ContactFeedback"] = "ContactFeedback"
    customer_id: str
    address: str = Field(min_length=1)
    channel: Literal["email", "sms"]
    feedback: Literal["bounced", "invalid", "unsubscribed"]


Event = Annotated[
    CustomerRegistered
    | CustomerUpdated
    | ContractSigned
    | MilestoneCompleted
    | InvoiceIssued
    | PaymentReceived
    | PaymentReversed
    | CreditNoteIssued
    | DisputeOpened
    | DisputeResolved
    | PromiseMade
    | PromiseBroken
    | WrittenOff
    | OrderSubmitted
    | OrderApprovalRequested
    | OrderApproved
    | OrderRejected
    | OrderShipped
    | DunningStepRecorded
    | DunningBlockChanged
    | RiskFlagged
    | OrderLockPlaced
    | OrderLockLifted
    | ContactFeedback,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes) -> Event:
    """Parse one event from its JSON form (as stored in the event log)."""
    return EVENT_ADAPTER.validate_json(data)
