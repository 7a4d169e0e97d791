"""Business events: the only way the book changes.

Every event carries ``event_id`` (applying the same id twice is a no-op), ``occurred_at``
(timezone-aware: the "when" of the audit trail), ``actor`` (the "who") and an optional
``reason`` (the "why"). :data:`Event` is a discriminated union on ``type``, so a stored
event log parses back into the right classes.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import pydantic
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from .domain import (
    Addresses,
    Amount,
    BookDate,
    CompanyProfile,
    Contact,
    Contract,
    CreditProfile,
    Customer,
    DocumentKind,
    EventId,
    GradeName,
    Identifier,
    Line,
    Milestone,
    Person,
    ProcessDefinition,
    ProcessSubject,
    Project,
    Ref,
    StepOwner,
    _percent,
    check_instant,
)
from .errors import ValidationError
from .money import Seq, to_decimal


class BaseEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    event_id: EventId = Field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: Annotated[AwareDatetime, AfterValidator(check_instant)]
    actor: str = Field(min_length=1)
    reason: str | None = None


class CustomerRegistered(BaseEvent):
    type: Literal["CustomerRegistered"] = "CustomerRegistered"
    customer: Customer


class CustomerUpdated(BaseEvent):
    """Changes the fields it sets; fields left out keep their value."""

    type: Literal["CustomerUpdated"] = "CustomerUpdated"
    customer_id: Ref
    name: str | None = None
    region: str | None = None
    salesperson: Line | None = None
    sales_manager: Line | None = None
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
    milestone_id: Ref
    completed_on: BookDate


class InvoiceIssued(BaseEvent):
    """A receivable is born. Without ``due_date`` it comes from the contract's payment node
    (``contract_id`` + ``payment_node_id``) or else from the customer's payment terms."""

    type: Literal["InvoiceIssued"] = "InvoiceIssued"
    number: Identifier
    customer_id: Ref
    issue_date: BookDate
    due_date: BookDate | None = None
    amount: Amount
    contract_id: Ref | None = None
    payment_node_id: Ref | None = None
    order_id: Ref | None = None
    salesperson: Line | None = None
    region: str | None = None
    product_line: str | None = None
    tags: Seq[str] = ()
    #: the approved invoice request it is issued from (see docs/workflows.md)
    invoice_request_id: Ref | None = None


class AllocationRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    receivable_id: Ref
    amount: Amount


class PaymentReceived(BaseEvent):
    """Cash from a customer. With ``allocations`` the money goes where they say; without,
    it goes to the customer's open items oldest due date first (then issue date, then
    number), skipping disputed amounts. What is left is kept as unapplied customer credit.
    """

    type: Literal["PaymentReceived"] = "PaymentReceived"
    payment_id: Identifier
    customer_id: Ref
    amount: Amount
    received_on: BookDate
    reference: str | None = None
    allocations: Seq[AllocationRequest] | None = None


class PaymentReversed(BaseEvent):
    """A payment bounced or was booked in error: its allocations are undone."""

    type: Literal["PaymentReversed"] = "PaymentReversed"
    payment_id: Ref
    reversed_on: BookDate


class CreditNoteIssued(BaseEvent):
    type: Literal["CreditNoteIssued"] = "CreditNoteIssued"
    credit_note_id: Identifier
    customer_id: Ref
    receivable_id: Ref | None = None
    amount: Amount
    issued_on: BookDate


class CashApplied(BaseEvent):
    """Unapplied cash of a payment (``payment_id``), or the open remainder of a credit note
    (``credit_note_id``), applied to one of the customer's invoices: exactly one of the two.
    Prepayments are applied this way when the ledger does not apply them itself."""

    type: Literal["CashApplied"] = "CashApplied"
    payment_id: Ref | None = None
    credit_note_id: Ref | None = None
    receivable_id: Ref
    amount: Amount
    applied_on: BookDate


class RefundIssued(BaseEvent):
    """Unapplied cash of a payment paid back to the customer: what is left unapplied is
    reduced by ``amount`` (the why goes in ``reason``)."""

    type: Literal["RefundIssued"] = "RefundIssued"
    payment_id: Ref
    amount: Amount
    refunded_on: BookDate


class DisputeOpened(BaseEvent):
    """The customer contests an invoice, or part of it (``amount``; default the whole
    open balance)."""

    type: Literal["DisputeOpened"] = "DisputeOpened"
    dispute_id: Identifier
    receivable_id: Ref
    amount: Amount | None = None
    reason_code: str = Field(min_length=1)
    opened_on: BookDate
    note: str = ""


class DisputeResolved(BaseEvent):
    """The dispute is closed. Money consequences (a credit note) are their own event."""

    type: Literal["DisputeResolved"] = "DisputeResolved"
    dispute_id: Ref
    resolved_on: BookDate
    resolution: str = Field(min_length=1)


class PromiseMade(BaseEvent):
    type: Literal["PromiseMade"] = "PromiseMade"
    promise_id: Identifier
    customer_id: Ref
    receivable_ids: Seq[Ref] = Field(min_length=1)
    amount: Amount
    promised_date: BookDate
    promised_by: str = Field(min_length=1)
    made_on: BookDate


class PromiseBroken(BaseEvent):
    type: Literal["PromiseBroken"] = "PromiseBroken"
    promise_id: Ref
    broken_on: BookDate


class WrittenOff(BaseEvent):
    """The open balance of a receivable is written off as uncollectable."""

    type: Literal["WrittenOff"] = "WrittenOff"
    receivable_id: Ref
    written_off_on: BookDate


class OrderSubmitted(BaseEvent):
    type: Literal["OrderSubmitted"] = "OrderSubmitted"
    order_id: Identifier
    customer_id: Ref
    amount: Amount
    submitted_on: BookDate
    order_type: str | None = None
    contract_id: Ref | None = None
    #: the payment terms the order asks for, in days after its invoice (None: the
    #: customer's, which ``Engine.handle`` takes from the customer's grade)
    payment_terms_days: int | None = Field(default=None, ge=0, le=3650)
    #: the discount granted off the list price (``amount`` is after it): a percentage
    #: and/or an amount; ``Engine.handle`` starts the pack's discount approval process
    discount_percent: Decimal | None = None
    discount_amount: Amount | None = None

    @field_validator("discount_percent", mode="before")
    @classmethod
    def _pct(cls, v: Any) -> Decimal | None:
        return None if v is None else _percent(v)


class OrderApprovalRequested(BaseEvent):
    type: Literal["OrderApprovalRequested"] = "OrderApprovalRequested"
    order_id: Ref
    #: the roles that may approve, and who holds them (see ``Order.approvers``)
    roles: Seq[str] = ()
    approvers: Seq[str] = ()


class OrderApproved(BaseEvent):
    type: Literal["OrderApproved"] = "OrderApproved"
    order_id: Ref
    approver: str = Field(min_length=1)


class OrderRejected(BaseEvent):
    type: Literal["OrderRejected"] = "OrderRejected"
    order_id: Ref
    approver: str = Field(min_length=1)


class OrderShipped(BaseEvent):
    type: Literal["OrderShipped"] = "OrderShipped"
    order_id: Ref
    shipped_on: BookDate


class DunningStepRecorded(BaseEvent):
    """The engine sent a dunning step for this receivable: its level is raised."""

    type: Literal["DunningStepRecorded"] = "DunningStepRecorded"
    receivable_id: Ref
    ladder: str
    step: str
    level: int = Field(ge=0)
    decision_key: str
    sent_on: BookDate


class DunningBlockChanged(BaseEvent):
    """Dunning for one receivable is blocked (with a reason) or unblocked."""

    type: Literal["DunningBlockChanged"] = "DunningBlockChanged"
    receivable_id: Ref
    blocked: bool


class RiskFlagged(BaseEvent):
    type: Literal["RiskFlagged"] = "RiskFlagged"
    receivable_id: Ref
    level: Literal["low", "medium", "high"]
    rule: str
    flagged_on: BookDate


class OrderLockPlaced(BaseEvent):
    type: Literal["OrderLockPlaced"] = "OrderLockPlaced"
    customer_id: Ref
    lock_id: str
    scope: Literal["customer", "contract", "order_type"] = "customer"
    ref: str | None = None
    placed_on: BookDate


class OrderLockLifted(BaseEvent):
    type: Literal["OrderLockLifted"] = "OrderLockLifted"
    customer_id: Ref
    lock_id: str
    scope: Literal["customer", "contract", "order_type"] = "customer"
    ref: str | None = None
    lifted_on: BookDate


class FactorPoints(BaseModel):
    """The points one scoring factor gave in a credit review (weight applied)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    fact: str = Field(min_length=1)
    points: Decimal

    @field_validator("points", mode="before")
    @classmethod
    def _d(cls, v: Any) -> Decimal:
        return to_decimal(v, "points")


class CreditReviewed(BaseEvent):
    """A customer's credit was reviewed: its grade, limit, terms and prepayment become
    these, from a score (``score`` and the points of each ``factors``) or from a person's
    decision (``reviewer``, ``comment``). A field left out keeps its value; the grade is
    the pack's name for it (the engine refuses one its pack does not define)."""

    type: Literal["CreditReviewed"] = "CreditReviewed"
    customer_id: Ref
    reviewed_on: BookDate
    grade: GradeName
    credit_limit: Amount | None = None
    payment_terms_days: int | None = Field(default=None, ge=0, le=3650)
    prepayment_percent: Decimal | None = None
    score: Decimal | None = None
    factors: Seq[FactorPoints] = ()
    reviewer: str | None = Field(default=None, min_length=1)
    comment: str | None = None

    @field_validator("prepayment_percent", "score", mode="before")
    @classmethod
    def _d(cls, v: Any) -> Decimal | None:
        return None if v is None else to_decimal(v, "number")

    @field_validator("factors", mode="before")
    @classmethod
    def _f(cls, v: Any) -> Any:
        """A mapping of fact: points is taken too (in its order)."""
        if isinstance(v, dict):
            return tuple(FactorPoints(fact=str(k), points=x) for k, x in v.items())
        return v

    @model_validator(mode="after")
    def _why(self) -> CreditReviewed:
        if self.score is None and self.reviewer is None:
            raise ValueError("a credit review comes from a score or from a reviewer")
        if self.prepayment_percent is not None and not 0 <= self.prepayment_percent <= 100:
            raise ValueError(f"prepayment_percent {self.prepayment_percent} is outside 0..100")
        return self


class ContactFeedback(BaseEvent):
    """What a channel said about a contact's address: a hard bounce, an invalid number, an
    unsubscribe. The contact is marked so later steps use another channel."""

    type: Literal["ContactFeedback"] = "ContactFeedback"
    customer_id: Ref
    address: Line = Field(min_length=1)
    channel: Literal["email", "sms"]
    feedback: Literal["bounced", "invalid", "unsubscribed"]


class PersonAdded(BaseEvent):
    """Someone arflow addresses joins the directory (an ERP syncing its staff)."""

    type: Literal["PersonAdded"] = "PersonAdded"
    person: Person


class PersonUpdated(BaseEvent):
    """Changes the fields it sets; fields left out keep their value. ``addresses``
    replaces all of the person's addresses."""

    type: Literal["PersonUpdated"] = "PersonUpdated"
    person_id: Ref
    name: Line | None = None
    roles: Seq[str] | None = None
    manager: Ref | None = None
    addresses: Addresses | None = None
    locale: str | None = None
    timezone: str | None = None
    active: bool | None = None


class PersonLeft(BaseEvent):
    """The person left: kept in the directory (the audit trail names them) but inactive,
    so no rule reaches them any more."""

    type: Literal["PersonLeft"] = "PersonLeft"
    person_id: Ref
    left_on: BookDate


class TaskCreated(BaseEvent):
    """A tracked task is given to its owner (the engine creates one for every task it
    sends: dunning calls, approvals, invoice requests, hand-overs, escalations)."""

    type: Literal["TaskCreated"] = "TaskCreated"
    task_id: Identifier
    kind: str = Field(min_length=1)
    subject_kind: str = Field(min_length=1)
    subject_id: Ref = Field(min_length=1)
    customer_id: Ref
    owner: Line = Field(min_length=1)
    role: str | None = None
    created_on: BookDate
    deadline: BookDate | None = None
    escalate_on: BookDate | None = None
    rule: str | None = None
    decision_key: str | None = None


class TaskCompleted(BaseEvent):
    """The owner (or a holder of the task's role) did it; ``outcome`` says how it went
    (a call's is one of ``arflow.domain.CONTACT_OUTCOMES``)."""

    type: Literal["TaskCompleted"] = "TaskCompleted"
    task_id: Ref
    completed_on: BookDate
    outcome: str | None = Field(default=None, min_length=1)
    note: str | None = None


class TaskCancelled(BaseEvent):
    """The task is no longer needed (the ``reason`` says why)."""

    type: Literal["TaskCancelled"] = "TaskCancelled"
    task_id: Ref
    cancelled_on: BookDate


class TaskReassigned(BaseEvent):
    """The task changes hands: ``owner`` holds it from now on (and ``role``, if given)."""

    type: Literal["TaskReassigned"] = "TaskReassigned"
    task_id: Ref
    owner: Line = Field(min_length=1)
    role: str | None = None
    reassigned_on: BookDate


class TaskOverdue(BaseEvent):
    """The daily run found the task open past its deadline; with ``escalated_to`` it also
    went to that person (the owner's manager), who gets an escalation task of their own."""

    type: Literal["TaskOverdue"] = "TaskOverdue"
    task_id: Ref
    overdue_on: BookDate
    escalated_to: Ref | None = None


class InvoiceRequested(BaseEvent):
    """Someone (a project manager, by hand) asks finance to invoice: for a contract's
    payment node, an order, or neither. A completed milestone and a shipped order make
    their request themselves. ``required_documents`` are needed before it goes to finance
    (a payment node's own ``documents`` are added)."""

    type: Literal["InvoiceRequested"] = "InvoiceRequested"
    request_id: Identifier
    customer_id: Ref
    amount: Amount
    requested_on: BookDate
    text: str = ""
    contract_id: Ref | None = None
    payment_node_id: Ref | None = None
    order_id: Ref | None = None
    required_documents: Seq[DocumentKind] = ()
    owner: str | None = Field(default=None, min_length=1)


class DocumentAttached(BaseEvent):
    """A document (a delivery note, an acceptance certificate) attached to an invoice
    request: the request goes to finance once every document it requires is attached."""

    type: Literal["DocumentAttached"] = "DocumentAttached"
    request_id: Ref
    kind: DocumentKind
    reference: Line = Field(min_length=1, max_length=500)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class InvoiceRequestApproved(BaseEvent):
    """Finance approves an invoice request (``approver``: an active holder of the finance
    role); ``before_milestone`` lets the invoice go out before the node's milestone."""

    type: Literal["InvoiceRequestApproved"] = "InvoiceRequestApproved"
    request_id: Ref
    approver: str = Field(min_length=1)
    approved_on: BookDate
    before_milestone: bool = False
    comment: str | None = None


class InvoiceRequestRejected(BaseEvent):
    """Finance rejects an invoice request (the why in ``comment``)."""

    type: Literal["InvoiceRequestRejected"] = "InvoiceRequestRejected"
    request_id: Ref
    approver: str = Field(min_length=1)
    rejected_on: BookDate
    comment: str | None = None


class InvoiceRequestCancelled(BaseEvent):
    """The request is withdrawn before it is invoiced."""

    type: Literal["InvoiceRequestCancelled"] = "InvoiceRequestCancelled"
    request_id: Ref
    cancelled_on: BookDate


class InvoiceSent(BaseEvent):
    """The invoice went out to the customer."""

    type: Literal["InvoiceSent"] = "InvoiceSent"
    receivable_id: Ref
    sent_on: BookDate


class InvoiceConfirmed(BaseEvent):
    """The customer confirmed the invoice they were sent."""

    type: Literal["InvoiceConfirmed"] = "InvoiceConfirmed"
    receivable_id: Ref
    confirmed_on: BookDate


class ProcessStarted(BaseEvent):
    """A process instance starts at its definition's ``start`` step (the engine starts the
    pack's discount process for an order or contract with a discount; a host may start
    any process by hand). The definition travels with the event, so a replay of the log
    rebuilds the instance with no pack."""

    type: Literal["ProcessStarted"] = "ProcessStarted"
    process_id: Identifier
    definition: ProcessDefinition
    subject_kind: ProcessSubject
    subject_id: Ref
    customer_id: Ref
    started_on: BookDate
    discount_percent: Decimal | None = None
    discount_amount: Decimal | None = None
    #: each step's owner as the engine resolved it (the holder of the step's role for this
    #: customer or contract, else its fallback); steps left out are resolved by the ledger
    #: from the directory (a person id, the customer's or contract's salesperson, a role)
    owners: Seq[StepOwner] = ()
    #: a raise of the credit limit (``starts_on: credit_limit_raise``): the limit asked for
    proposed_limit: Amount | None = None
    #: payment terms beyond the grade (``order_terms``, ``contract_terms``): the longest
    #: days asked for and what the customer's grade allows
    asked_days: int | None = Field(default=None, ge=0, le=3650)
    allowed_days: int | None = Field(default=None, ge=0, le=3650)

    @field_validator("discount_percent", "discount_amount", mode="before")
    @classmethod
    def _d(cls, v: Any) -> Decimal | None:
        return None if v is None else to_decimal(v, "discount")


class StepDecided(BaseEvent):
    """The owner of a process step (or an active holder of its role), the event's
    ``actor``, approves or rejects it, with a comment."""

    type: Literal["StepDecided"] = "StepDecided"
    process_id: Ref
    step: str = Field(min_length=1)
    decision: Literal["approve", "reject"]
    decided_on: BookDate
    comment: str | None = None


class ProcessStepTimedOut(BaseEvent):
    """The daily run found a process step past its deadline: the process moves on as the
    step's ``on_timeout`` says. Only the engine (``arflow-engine``) sends it: anyone else
    is refused with :class:`~arflow.errors.EngineOnly`."""

    type: Literal["ProcessStepTimedOut"] = "ProcessStepTimedOut"
    process_id: Ref
    step: str = Field(min_length=1)
    timed_out_on: BookDate


Event = Annotated[
    CustomerRegistered
    | CustomerUpdated
    | ContractSigned
    | MilestoneCompleted
    | InvoiceIssued
    | PaymentReceived
    | PaymentReversed
    | CreditNoteIssued
    | CashApplied
    | RefundIssued
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
    | ContactFeedback
    | PersonAdded
    | PersonUpdated
    | PersonLeft
    | CreditReviewed
    | TaskCreated
    | TaskCompleted
    | TaskCancelled
    | TaskReassigned
    | TaskOverdue
    | InvoiceRequested
    | DocumentAttached
    | InvoiceRequestApproved
    | InvoiceRequestRejected
    | InvoiceRequestCancelled
    | InvoiceSent
    | InvoiceConfirmed
    | ProcessStarted
    | StepDecided
    | ProcessStepTimedOut,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes) -> Event:
    """Parse one event from its JSON form (as stored in the event log).

    Raises:
        arflow.errors.ValidationError: the text is not JSON or not a valid event; the
            message names each bad field by its path (pydantic's error is the cause).
    """
    try:
        return EVENT_ADAPTER.validate_json(data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(event)'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)[:20]
        )
        raise ValidationError(f"not a valid event: {problems}") from exc
