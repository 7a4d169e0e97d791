"""The business objects of the receivables book, as immutable pydantic models.

Objects never change in place: the ledger replaces an object with a new version
(``obj.model_copy(update=...)``) inside a transaction, so a refused event cannot leave a
half-changed object behind.
"""

from __future__ import annotations

import calendar as _calendar
import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import DateOutOfRange
from .money import Money, Seq, check_amount, to_decimal

__all__ = [
    "Allocation",
    "AuditRecord",
    "CompanyProfile",
    "Contact",
    "Contract",
    "CreditNote",
    "CreditProfile",
    "Customer",
    "Dispute",
    "Document",
    "DueRule",
    "InvoiceRequest",
    "InvoiceRequestState",
    "Milestone",
    "Money",
    "Order",
    "OrderLock",
    "OrderState",
    "Payment",
    "PaymentNode",
    "Person",
    "PersonAddress",
    "Project",
    "PromiseStatus",
    "PromiseToPay",
    "Receivable",
    "ReceivableState",
]


#: The horizon of business dates arflow accepts (issue, due, payment, signing dates...):
#: a century inside the calendar on either side, so that the longest payment terms (3,650
#: days plus the end of the month) and rule offsets from these dates stay inside it.
FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(9899, 12, 31)
#: Longest identifier (customer id, invoice number...): every store keeps it whole, with
#: the prefix of an imported event's id.
MAX_ID_LENGTH = 100
#: Longest event id.
MAX_EVENT_ID_LENGTH = 200


def check_date(d: date, what: str = "date") -> date:
    """``d`` if it is inside [:data:`FIRST_DATE`, :data:`LAST_DATE`], else
    :class:`~arflow.errors.DateOutOfRange`."""
    if not FIRST_DATE <= d <= LAST_DATE:
        raise DateOutOfRange(
            f"{what} {d.isoformat()} is outside the dates arflow accepts "
            f"({FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()})",
            d,
        )
    return d


def _book_date(d: date, info: ValidationInfo) -> date:
    return check_date(d, info.field_name or "date")


def check_instant(at: datetime) -> datetime:
    """``at`` if its year is inside the horizon, else :class:`DateOutOfRange`."""
    if not FIRST_DATE.year <= at.year <= LAST_DATE.year:
        raise DateOutOfRange(
            f"moment {at.isoformat()} is outside the dates arflow accepts "
            f"({FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()})",
            at,
        )
    return at


def _bad_char(v: str, *, strict: bool = True) -> str | None:
    """The first character that ``v`` may not hold, shown as ``U+XXXX``: controls (NUL,
    line breaks, tabs), line and paragraph separators and lone surrogates; when ``strict``
    (identifiers) also spaces other than U+0020 and invisible format characters."""
    if v.isprintable():
        return None
    for c in v:
        if c.isprintable():
            continue
        if strict or unicodedata.category(c) in _NEVER:
            return f"U+{ord(c):04X}"
    return None


_NEVER = frozenset({"Cc", "Zl", "Zp", "Cs"})


def check_identifier(v: str, what: str = "the identifier", limit: int = MAX_ID_LENGTH) -> str:
    """``v`` if it is a usable identifier: printable, one line, at most ``limit``
    characters; else ``ValueError`` saying why. Every backend stores the same ids."""
    if len(v) > limit:
        raise ValueError(f"{what} is {len(v)} characters long: at most {limit}")
    bad = _bad_char(v)
    if bad is not None:
        raise ValueError(f"{what} holds the character {bad}: only printable text on one line")
    return v


def check_line(v: str, what: str = "the text") -> str:
    """``v`` if it is text on one line (no NUL, no line break, no control character), else
    ``ValueError``: an address or a name that goes into a message header."""
    bad = _bad_char(v, strict=False)
    if bad is not None:
        raise ValueError(f"{what} holds the character {bad}: only printable text on one line")
    return v


_EMAIL = re.compile(r"[^\s@,;:<>()\[\]\\\"]+@[^\s@,;:<>()\[\]\\\"]+")


def check_email(v: str) -> str:
    """``v`` if it is one e-mail address (``name@domain``), not a list or a display name."""
    check_line(v, "e-mail address")
    if not _EMAIL.fullmatch(v):
        several = v.count("@") > 1 or any(c in v for c in ",;")
        hint = ": give one address per contact" if several else ""
        raise ValueError(f"{v!r} is not an e-mail address{hint}")
    return v


#: Identifiers (ids and references to them) and addresses, checked on every backend alike.
Identifier = Annotated[str, Field(min_length=1), AfterValidator(check_identifier)]
Ref = Annotated[str, AfterValidator(check_identifier)]
EventId = Annotated[
    str,
    Field(min_length=1),
    AfterValidator(lambda v: check_identifier(v, "event id", MAX_EVENT_ID_LENGTH)),
]
Line = Annotated[str, AfterValidator(check_line)]
#: A business date and a moment inside the horizon; an amount in the accepted range.
BookDate = Annotated[date, AfterValidator(_book_date)]
Instant = Annotated[datetime, AfterValidator(check_instant)]
Amount = Annotated[Money, AfterValidator(check_amount)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def _percent(v: Any) -> Decimal:
    d = to_decimal(v, "percent")
    if not 0 <= d <= 100:
        raise ValueError(f"percent {d} is outside 0..100")
    return d


Channel = Literal["email", "sms", "phone", "letter"]


class Contact(_Model):
    """A person at the customer who receives reminders."""

    name: Line
    email: str | None = None
    phone: Line | None = None
    #: the channel the contact asked to be reached on first (None: no preference, the
    #: rule's own channel goes first): reorders only the channels a rule's action lists
    preferred_channel: Channel | None = None
    locale: str = "en"
    timezone: str = "UTC"
    role: str | None = None
    email_invalid: bool = False  # the address bounced: not used again until corrected
    phone_invalid: bool = False  # the gateway said the number is invalid
    unsubscribed: bool = False  # asked for no more reminders by e-mail or SMS

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return None if v is None else check_email(v)


#: A credit grade: the rule pack's name for it (A-D by default; AAA or 1-5 for an ERP that
#: grades so). The ledger takes any such name; the engine refuses one its pack does not
#: define (see ``docs/grades.md``).
GradeName = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9+_-]+$")]


class CreditProfile(_Model):
    """What the credit policy grants a customer: grade, limit, terms, blocks."""

    grade: GradeName | None = None
    credit_limit: Amount | None = None
    payment_terms_days: int = Field(default=30, ge=0, le=3650)
    prepayment_percent: Decimal = Decimal(0)
    order_block: bool = False
    dunning_block: bool = False
    dunning_block_reason: str | None = None
    #: when the grade, limit and terms were last reviewed (``CreditReviewed``)
    reviewed_on: date | None = None

    @field_validator("prepayment_percent", mode="before")
    @classmethod
    def _pp(cls, v: Any) -> Decimal:
        return _percent(v)


class CompanyProfile(_Model):
    """What credit scoring knows about the company behind a customer."""

    enterprise_type: Literal["state_owned", "listed", "private", "foreign", "individual"] | None = (
        None
    )
    registered_capital: Amount | None = None
    established_on: date | None = None
    industry: str | None = None
    industry_risk: int | None = Field(default=None, ge=1, le=5, description="1 low .. 5 high")
    third_party_rating: str | None = None
    bank_reference: Literal["good", "fair", "poor"] | None = None


class OrderLock(_Model):
    """A hold on new orders placed by a lock rule: for the whole customer, one contract or
    one order type. It stays until the rule's cause is gone."""

    lock_id: str
    scope: Literal["customer", "contract", "order_type"] = "customer"
    ref: str | None = None
    since: date
    reason: str = ""


class Customer(_Model):
    id: Identifier
    name: str = Field(min_length=1)
    region: str | None = None
    salesperson: Line | None = None
    sales_manager: Line | None = None
    contacts: Seq[Contact] = ()
    credit: CreditProfile = CreditProfile()
    profile: CompanyProfile = CompanyProfile()
    tags: Seq[str] = ()
    locks: Seq[OrderLock] = ()

    @property
    def orders_blocked(self) -> bool:
        """A manual order block or any lock on the whole customer."""
        return self.credit.order_block or any(lk.scope == "customer" for lk in self.locks)


class DueRule(_Model):
    """When a payment falls due.

    ``basis="invoice_date", days=60`` is "net 60"; ``end_of_month=True, days=30`` is "end of
    month + 30"; ``basis="milestone", milestone_id="acceptance", days=30`` is "30 days after
    acceptance".
    """

    basis: Literal["invoice_date", "milestone"] = "invoice_date"
    milestone_id: Ref | None = None
    days: int = Field(default=30, ge=0, le=3650)
    end_of_month: bool = False

    @model_validator(mode="after")
    def _milestone_named(self) -> DueRule:
        if (self.basis == "milestone") != (self.milestone_id is not None):
            raise ValueError("a milestone basis needs milestone_id, and only it")
        return self

    def due_date(self, invoice_date: date, milestone_date: date | None = None) -> date:
        start = invoice_date
        if self.basis == "milestone" and milestone_date is not None:
            start = max(milestone_date, invoice_date)
        if self.end_of_month:
            last = _calendar.monthrange(start.year, start.month)[1]
            start = start.replace(day=last)
        return start + timedelta(days=self.days)


#: A document an invoice request may need before it goes to finance.
DocumentKind = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_]*$")]


class PaymentNode(_Model):
    """One instalment of a contract: a fixed amount or a percentage, and when it is due."""

    id: Identifier
    label: str = ""
    amount: Amount | None = None
    percent: Decimal | None = None
    due: DueRule = DueRule()
    #: documents its invoice request needs before it goes to finance (``delivery_note``,
    #: ``acceptance_certificate``); None: none
    documents: Seq[DocumentKind] | None = None

    @field_validator("percent", mode="before")
    @classmethod
    def _pc(cls, v: Any) -> Decimal | None:
        return None if v is None else _percent(v)

    @model_validator(mode="after")
    def _one_of(self) -> PaymentNode:
        if (self.amount is None) == (self.percent is None):
            raise ValueError(f"payment node {self.id!r} needs exactly one of amount or percent")
        return self


class Contract(_Model):
    id: Identifier
    customer_id: Ref
    title: str = ""
    signed_on: BookDate
    amount: Amount
    project_id: Ref | None = None
    salesperson: Line | None = None
    payment_nodes: Seq[PaymentNode] = ()
    #: the discount granted off the list price (``amount`` is after it): a percentage, an
    #: amount, or both; a discount starts the pack's discount approval process
    discount_percent: Annotated[Decimal, BeforeValidator(_percent)] | None = None
    discount_amount: Amount | None = None

    @model_validator(mode="after")
    def _nodes_fit(self) -> Contract:
        cur = self.amount.currency
        fixed = Decimal(0)
        pct = Decimal(0)
        ids: set[str] = set()
        for n in self.payment_nodes:
            if n.id in ids:
                raise ValueError(f"payment node id {n.id!r} appears twice")
            ids.add(n.id)
            if n.amount is not None:
                if n.amount.currency != cur:
                    raise ValueError(f"payment node {n.id!r} is in {n.amount.currency}, not {cur}")
                fixed += n.amount.amount
            else:
                pct += n.percent or Decimal(0)
        if fixed + self.amount.amount * pct / 100 > self.amount.amount:
            raise ValueError("payment nodes add up to more than the contract amount")
        return self

    @model_validator(mode="after")
    def _discount_currency(self) -> Contract:
        d = self.discount_amount
        if d is not None and d.currency != self.amount.currency:
            raise ValueError(f"discount is in {d.currency}, the contract in {self.amount.currency}")
        return self

    def node(self, node_id: str) -> PaymentNode | None:
        return next((n for n in self.payment_nodes if n.id == node_id), None)

    def node_amount(self, node: PaymentNode) -> Money:
        if node.amount is not None:
            return node.amount
        return self.amount * ((node.percent or Decimal(0)) / 100)


class Project(_Model):
    id: Identifier
    customer_id: Ref
    name: str = ""


class Milestone(_Model):
    id: Identifier
    contract_id: Ref
    project_id: Ref | None = None
    name: str = ""
    planned_date: BookDate | None = None
    actual_date: BookDate | None = None
    status: Literal["planned", "done"] = "planned"


class ReceivableState(StrEnum):
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    DISPUTED = "disputed"
    PROMISED = "promised"
    WRITTEN_OFF = "written_off"
    CREDITED = "credited"


CLOSED_RECEIVABLE_STATES = frozenset(
    {ReceivableState.PAID, ReceivableState.WRITTEN_OFF, ReceivableState.CREDITED}
)


class Receivable(_Model):
    """An invoice, or one instalment of one, and what is still open on it.

    ``open_balance == amount - paid - credited - written_off`` always, and never negative.
    ``disputed_amount`` is the part under dispute: the rest can still be dunned.
    """

    id: str = Field(min_length=1, description="the invoice number")
    customer_id: str
    contract_id: str | None = None
    payment_node_id: str | None = None
    order_id: str | None = None
    issue_date: date
    due_date: date
    amount: Money
    paid: Money
    credited: Money
    written_off: Money
    disputed_amount: Money
    open_balance: Money
    state: ReceivableState = ReceivableState.OPEN
    dunning_level: int = 0
    dunning_block: bool = False
    dunning_block_reason: str | None = None
    salesperson: str | None = None
    region: str | None = None
    product_line: str | None = None
    tags: Seq[str] = ()
    promise_id: str | None = None
    closed_on: date | None = None
    last_dunned_on: date | None = None
    risk_level: Literal["low", "medium", "high"] | None = None
    #: the invoice request it was issued from (None: issued directly)
    invoice_request_id: str | None = None
    #: how far the invoice got with the customer: None (issued), ``sent``, ``confirmed``
    #: (the customer confirmed it); see :data:`RECEIVABLE_STAGES`
    stage: Literal["sent", "confirmed"] | None = None
    sent_on: date | None = None
    confirmed_on: date | None = None

    @property
    def currency(self) -> str:
        return self.amount.currency

    @property
    def is_closed(self) -> bool:
        return self.state in CLOSED_RECEIVABLE_STATES

    @property
    def has_reductions(self) -> bool:
        """Whether anything was paid or credited: decides open vs partially paid."""
        return bool(self.paid) or bool(self.credited)

    @property
    def undisputed_balance(self) -> Money:
        return self.open_balance - self.open_balance.min(self.disputed_amount)


class Allocation(_Model):
    """Part of a payment applied to one receivable."""

    payment_id: str
    receivable_id: str
    amount: Money


class Payment(_Model):
    id: str = Field(min_length=1)
    customer_id: str
    amount: Money
    received_on: date
    reference: str | None = None
    allocations: Seq[Allocation] = ()
    unapplied: Money
    reversed: bool = False
    #: unapplied cash paid back to the customer (RefundIssued); None if none was
    refunded: Money | None = None


class CreditNote(_Model):
    """A credit against one invoice, or (with no invoice) a credit on the customer's account."""

    id: str = Field(min_length=1)
    customer_id: str
    receivable_id: str | None = None
    amount: Money
    issued_on: date
    reason: str = ""
    unapplied: Money
    #: where the customer's credit went later (CashApplied, or applied when an invoice was
    #: issued): ``payment_id`` names this credit note
    applications: Seq[Allocation] = ()


class Dispute(_Model):
    id: str = Field(min_length=1)
    customer_id: str
    receivable_id: str
    amount: Money
    reason_code: str
    opened_on: date
    note: str = ""
    status: Literal["open", "resolved"] = "open"
    resolution: str | None = None
    resolved_on: date | None = None


class PromiseStatus(StrEnum):
    OPEN = "open"
    KEPT = "kept"
    BROKEN = "broken"
    PARTIALLY_KEPT = "partially_kept"


class PromiseToPay(_Model):
    id: str = Field(min_length=1)
    customer_id: str
    receivable_ids: Seq[str]
    amount: Money
    promised_date: date
    promised_by: str
    made_on: date
    status: PromiseStatus = PromiseStatus.OPEN
    received: Money


class OrderState(StrEnum):
    SUBMITTED = "submitted"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    SHIPPED = "shipped"
    INVOICED = "invoiced"


class Order(_Model):
    id: str = Field(min_length=1)
    customer_id: str
    amount: Money
    submitted_on: date
    order_type: str | None = None
    contract_id: str | None = None
    state: OrderState = OrderState.SUBMITTED
    decided_by: str | None = None
    receivable_id: str | None = None
    #: the roles the order was sent to for approval, and who holds them (the addresses or
    #: ids the approval request went to): only they may approve or reject it
    approval_roles: Seq[str] = ()
    approvers: Seq[str] = ()
    #: the order's payment terms, in days after its invoice: what it asked for, else the
    #: customer's when it was submitted (None: an order recorded before terms were kept)
    payment_terms_days: int | None = None
    #: the discount the order was granted off its list price (``amount`` is after it),
    #: as a percentage, an amount, or both (docs/workflows.md#processes)
    discount_percent: Annotated[Decimal, BeforeValidator(_percent)] | None = None
    discount_amount: Amount | None = None


class AuditRecord(_Model):
    """One change to one object: who, when, why, and the state and balance before and after."""

    event_id: str
    event_type: str
    subject_kind: str
    subject_id: str
    actor: str
    occurred_at: datetime
    reason: str | None = None
    summary: str = ""
    before_state: str | None = None
    after_state: str | None = None
    before_balance: Money | None = None
    after_balance: Money | None = None
    #: On the record of a refused attempt (``Engine.handle``): the class of the error that
    #: refused it (its message is the ``summary``); nothing was changed, and the event's
    #: type carries the suffix :data:`REFUSED_SUFFIX`. None: a change that was made.
    refused: str | None = None


#: What ends the ``event_type`` of the audit record of a refused attempt
#: (``OrderApproved:refused``): a reader matching event types never takes it for the change.
REFUSED_SUFFIX = ":refused"


# -- people -----------------------------------------------------------------------------------

_PHONE = re.compile(r"\+?[0-9]{6,15}")
_PHONE_SEPARATORS = str.maketrans("", "", " -.()")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,59}")
#: The prefix of a value that names the holders of a role in the directory: ``role:finance``.
ROLE_HOLDERS = "role:"
#: What a person id looks like where a value may be an id or an address (``P-007``,
#: ``EMP_1024``): letters, digits, ``-`` or ``_``, with at least one digit and no ``@``.
PERSON_ID = re.compile(r"(?=[^@]*[0-9])[A-Za-z][A-Za-z0-9_\-]{0,99}")


def check_phone(v: str) -> str:
    """``v`` if it is a phone number in E.164 style (``+8613800138000``; spaces, dashes,
    dots and brackets between the digits are allowed), else ``ValueError``."""
    check_line(v, "phone number")
    if not _PHONE.fullmatch(v.strip().translate(_PHONE_SEPARATORS)):
        raise ValueError(f"{v!r} is not a phone number: give 6 to 15 digits, optionally after +")
    return v


def check_address(channel: str, address: str) -> str:
    """``address`` if it can be an address on ``channel``: an e-mail address for ``email``,
    a phone number for ``phone`` and ``sms``, one line of printable text for a chat id
    (``wecom``, ``dingtalk``...) or a task queue; else ``ValueError`` saying why."""
    if channel == "email":
        return check_email(address)
    if channel in ("phone", "sms"):
        return check_phone(address)
    return check_identifier(address, f"the {channel} address")


def _name(v: str, what: str) -> str:
    if not _NAME.fullmatch(v):
        raise ValueError(f"{what} {v!r} must be lower-case letters, digits and _ (like finance)")
    return v


class PersonAddress(_Model):
    """Where a person is reached on one channel: ``email``, ``phone`` (for SMS), or a chat
    channel's id for the person (``wecom``, ``dingtalk``...)."""

    channel: str
    address: str = Field(min_length=1)

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        return _name(v, "channel")

    @model_validator(mode="after")
    def _fits_channel(self) -> PersonAddress:
        check_address(self.channel, self.address)
        return self


def _addresses_in(v: Any) -> Any:
    """Addresses may be given as a mapping ``{channel: address}`` (stored as pairs: stored
    models hold no dicts)."""
    if isinstance(v, dict):
        return tuple({"channel": k, "address": a} for k, a in v.items() if a is not None)
    return v


#: A person's addresses: pairs of channel and address, or a mapping ``{channel: address}``.
Addresses = Annotated[Seq[PersonAddress], BeforeValidator(_addresses_in)]


class Person(_Model):
    """Someone arflow addresses inside the company: a salesperson, a manager, finance, the
    warehouse. Rules name people by id or by role (``role:finance``), and messages reach
    them at their address for the channel, in their locale."""

    id: Identifier
    name: Line = Field(min_length=1)
    roles: Seq[str] = ()
    manager: Ref | None = None
    addresses: Addresses = ()
    locale: str = "en"
    timezone: str = "UTC"
    active: bool = True

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for r in v:
            _name(r, "role")
        if len(set(v)) != len(v):
            raise ValueError("a role is listed twice")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return Contact._tz(v)

    @model_validator(mode="after")
    def _one_per_channel(self) -> Person:
        channels = [a.channel for a in self.addresses]
        twice = sorted({c for c in channels if channels.count(c) > 1})
        if twice:
            raise ValueError(f"person {self.id!r} has two addresses for {', '.join(twice)}")
        if self.manager == self.id:
            raise ValueError(f"person {self.id!r} cannot be their own manager")
        return self

    def address(self, channel: str) -> str | None:
        """The person's address on ``channel`` (``sms`` uses the ``phone``; a ``task`` goes
        to the person's id unless a ``task`` address is given); None when there is none."""
        want = "phone" if channel == "sms" else channel
        found = next((a.address for a in self.addresses if a.channel == want), None)
        if found is None and channel == "task":
            return self.id
        return found


# -- tracked tasks ------------------------------------------------------------------------------


class TaskStatus(StrEnum):
    OPEN = "open"
    OVERDUE = "overdue"
    DONE = "done"
    CANCELLED = "cancelled"


#: What a call's completion records about the contact (``TaskCompleted.outcome``).
CONTACT_OUTCOMES = ("reached", "no_answer", "wrong_contact", "promise", "dispute")


class Task(_Model):
    """Something a person must do, tracked until it is done or cancelled: a dunning call,
    an approval, an invoice request, a hand-over, an escalation. ``owner`` is who holds
    it (a person id, or the address a role resolved to), exactly one at any time;
    ``role`` is the role it was given to, whose holders may complete it too. ``subject``
    is what it is about (``subject_kind`` and ``subject_id``)."""

    id: Identifier
    kind: str = Field(min_length=1)
    subject_kind: str = Field(min_length=1)
    subject_id: str = Field(min_length=1)
    customer_id: str
    owner: str = Field(min_length=1)
    role: str | None = None
    created_on: date
    deadline: date | None = None
    #: the day the task goes to the owner's manager if still open (None: never)
    escalate_on: date | None = None
    status: TaskStatus = TaskStatus.OPEN
    outcome: str | None = None
    note: str | None = None
    closed_on: date | None = None
    closed_by: str | None = None
    escalated_to: str | None = None
    rule: str | None = None
    decision_key: str | None = None


# -- invoice requests -------------------------------------------------------------------------


class InvoiceRequestState(StrEnum):
    REQUESTED = "requested"
    AWAITING_DOCUMENTS = "awaiting_documents"
    WITH_FINANCE = "with_finance"
    APPROVED = "approved"
    INVOICED = "invoiced"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


#: Where an invoice request ends: one of these, and nothing moves it again.
TERMINAL_REQUEST_STATES = frozenset(
    {InvoiceRequestState.INVOICED, InvoiceRequestState.REJECTED, InvoiceRequestState.CANCELLED}
)


class Document(_Model):
    """A document attached to an invoice request: its kind, the host's reference to it, the
    SHA-256 of its content, who attached it and when."""

    kind: DocumentKind
    reference: Line = Field(min_length=1, max_length=500)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    attached_by: str
    attached_at: datetime


class InvoiceRequest(_Model):
    """A request that finance issue an invoice: for a contract's payment node (its milestone
    done), for a shipped order, or by hand. It waits for the documents it requires, goes to
    finance, is approved (or rejected, or cancelled) and ends invoiced, linked to its invoice.
    """

    id: Identifier
    customer_id: Ref
    amount: Amount
    text: str = ""
    contract_id: Ref | None = None
    payment_node_id: Ref | None = None
    milestone_id: Ref | None = None
    order_id: Ref | None = None
    requested_on: date
    requested_by: str
    #: who should act on it now (a person id or ``role:NAME``; None once it is over)
    owner: str | None = None
    state: InvoiceRequestState = InvoiceRequestState.REQUESTED
    required_documents: Seq[DocumentKind] = ()
    documents: Seq[Document] = ()
    #: set when finance approves: who, and whether before the node's milestone was done
    approved_by: str | None = None
    before_milestone: bool = False
    decided_on: date | None = None
    comment: str | None = None
    receivable_id: str | None = None

    @property
    def missing_documents(self) -> tuple[str, ...]:
        """The required documents not attached yet, in the order they are required."""
        have = {d.kind for d in self.documents}
        return tuple(k for k in self.required_documents if k not in have)


# -- processes ----------------------------------------------------------------------------------

#: What a process instance is about.
ProcessSubject = Literal["order", "contract", "customer"]
#: What starts a process by itself (None: started by hand, ``ProcessStarted``).
ProcessTrigger = Literal[
    "order_discount", "contract_discount", "order_terms", "contract_terms", "credit_limit_raise"
]
#: A step's decisions: a person approves or rejects; the daily run times a step out.
STEP_DECISIONS = ("approve", "reject", "timeout")


def _limit_decimal(v: Any) -> Any:
    return None if v is None else to_decimal(v, "limit")


class DiscountLimit(BaseModel):
    """The largest discount a step may grant on its own: ``percent`` of the list price
    and/or an ``amount`` (in the subject's currency); a discount within every bound given
    is within the limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    percent: Annotated[Decimal, BeforeValidator(_percent)] | None = None
    amount: Annotated[Decimal, BeforeValidator(_limit_decimal)] | None = None

    @model_validator(mode="after")
    def _some(self) -> DiscountLimit:
        if self.percent is None and self.amount is None:
            raise ValueError("a limit gives a percent, an amount, or both")
        if self.amount is not None and self.amount < 0:
            raise ValueError(f"limit amount {self.amount} is negative")
        return self

    def allows(self, percent: Decimal | None, amount: Decimal | None) -> bool:
        if self.percent is not None and percent is not None and percent > self.percent:
            return False
        return not (self.amount is not None and amount is not None and amount > self.amount)

    def __str__(self) -> str:
        parts = ([f"{self.percent}%"] if self.percent is not None else []) + (
            [str(self.amount)] if self.amount is not None else []
        )
        return " and ".join(parts)


#: Who owns a step: ``role:NAME`` (the first active holder; every holder may decide),
#: ``customer.salesperson`` / ``customer.sales_manager`` / ``contract.salesperson`` (the
#: holder of that role for this customer or contract), or a person's id.
OWNER_PATHS = ("customer.salesperson", "customer.sales_manager", "contract.salesperson")


class ProcessStepDef(BaseModel):
    """One step of a process: who owns it, by when, and where approve, reject and timeout
    lead (another step's id or a terminal state)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")]
    description: str = ""
    owner: str = Field(min_length=1, max_length=200)
    #: who owns the step when ``owner`` names nobody (no holder, no salesperson, left)
    fallback: str | None = Field(default=None, min_length=1, max_length=200)
    #: business days the owner has, from the day the step is reached
    deadline_days: int = Field(default=2, ge=0, le=250, strict=True)
    #: business days after the step is reached on which its owner is reminded
    remind_days: Seq[Annotated[int, Field(ge=0, le=250, strict=True)]] = ()
    #: business days after the step is reached that its task goes to its owner's manager
    #: (the escalation of tracked tasks), if still open
    escalate_after_days: int | None = Field(default=None, ge=0, le=250, strict=True)
    on_approve: str = Field(min_length=1)
    on_reject: str = Field(min_length=1)
    on_timeout: str = Field(min_length=1)
    #: an approval of a discount within this limit ends the process at ``approved_state``
    #: instead of going on to ``on_approve`` (a multi-level chain: each level in turn)
    final_up_to: DiscountLimit | None = None

    def targets(self) -> dict[str, str]:
        return {"approve": self.on_approve, "reject": self.on_reject, "timeout": self.on_timeout}


class ProcessDefinition(BaseModel):
    """A process as a rule pack declares it (``processes:``): its steps, where it starts,
    its terminal states, and what it is about."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")]
    description: str = ""
    subject: ProcessSubject = "order"
    starts_on: ProcessTrigger | None = None
    start: str = Field(min_length=1)
    terminals: Seq[str] = Field(min_length=1)
    #: the terminal state that means "approved" (what an order waits for to ship)
    approved_state: str = "approved"
    steps: Seq[ProcessStepDef] = Field(min_length=1)

    @model_validator(mode="after")
    def _connected(self) -> ProcessDefinition:
        ids = [s.id for s in self.steps]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"step {twice[0]!r} is defined twice")
        both = sorted(set(ids) & set(self.terminals))
        if both:
            raise ValueError(f"{both[0]!r} is both a step and a terminal state")
        known = set(ids) | set(self.terminals)
        if self.start not in ids:
            raise ValueError(f"start {self.start!r} is not a step (steps: {', '.join(ids)})")
        if self.approved_state not in self.terminals:
            raise ValueError(f"approved_state {self.approved_state!r} is not a terminal state")
        for s in self.steps:
            for what, dest in s.targets().items():
                if dest not in known:
                    raise ValueError(
                        f"step {s.id!r}: on_{what} leads to {dest!r}, neither a step nor a "
                        f"terminal state ({', '.join(sorted(known))})"
                    )
        return self

    def step(self, step_id: str) -> ProcessStepDef | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def is_terminal(self, state: str) -> bool:
        return state in self.terminals

    def can_grant(self, percent: Decimal | None, amount: Decimal | None) -> bool:
        """Whether some step may end the process approved for this discount: a step
        whose approval ends it with no ``final_up_to``, or a ``final_up_to`` allowing it."""
        for s in self.steps:
            if s.final_up_to is not None:
                if s.final_up_to.allows(percent, amount):
                    return True
            elif s.on_approve == self.approved_state:
                return True
        return False


class StepOwner(_Model):
    """Who owns one step of an instance: a person id (or ``role:NAME`` when the role has
    no holder to name), and the role whose active holders may decide the step too."""

    step: str
    owner: str = Field(min_length=1)
    role: str | None = None


class ProcessRecord(_Model):
    """One move of a process instance: the step, what happened, who, when, why, and the
    state it moved to (its audit trail, kept on the instance too)."""

    step: str
    decision: Literal["approve", "reject", "timeout"]
    by: str
    on: date
    comment: str | None = None
    moved_to: str


class ProcessInstance(_Model):
    """One running (or ended) process: which definition, about what, where it stands, who
    owns its step now and since when. The state is data: no machine is kept per instance."""

    id: Identifier
    process: str
    definition: ProcessDefinition
    subject_kind: ProcessSubject
    subject_id: Ref
    customer_id: Ref
    state: str
    started_on: date
    step_since: date
    #: the step's owner (a person id) and the role whose active holders may decide too
    owner: str | None = None
    role: str | None = None
    #: how many steps were reached so far (the step's visit number, for idempotent keys)
    visits: int = 1
    #: each step's owner, resolved when the instance started
    owners: Seq[StepOwner] = ()
    discount_percent: Decimal | None = None
    discount_amount: Decimal | None = None
    history: Seq[ProcessRecord] = ()
    #: a raise of the credit limit: the limit asked for, applied when the process ends
    #: approved (the limit stays as it was otherwise)
    proposed_limit: Money | None = None
    #: payment terms beyond the grade: the days asked for and the days the grade allows
    asked_days: int | None = None
    allowed_days: int | None = None

    @property
    def is_open(self) -> bool:
        return not self.definition.is_terminal(self.state)
