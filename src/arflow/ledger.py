"""The ledger: applying business events to the book, and reading balances back.

``Ledger.apply(event)`` validates the event against the book and applies it in one
transaction: either every change it implies is written, with an audit record per changed
object and the event appended to the log, or (on any refusal) nothing is. Applying an
``event_id`` that is already in the log is a no-op. Replaying the log into an empty store
rebuilds an identical book, because handlers read nothing but the book and the event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from .domain import (
    Allocation,
    AuditRecord,
    Contract,
    CreditNote,
    Customer,
    Dispute,
    Milestone,
    Order,
    OrderLock,
    OrderState,
    Payment,
    PromiseStatus,
    PromiseToPay,
    Receivable,
    ReceivableState,
)
from .errors import (
    ArflowError,
    ClosedItem,
    CurrencyMismatch,
    DuplicateObject,
    InvalidAmount,
    InvalidDates,
    OverAllocation,
    UnknownObject,
    ValidationError,
)
from .events import (
    BaseEvent,
    ContactFeedback,
    ContractSigned,
    CreditNoteIssued,
    CustomerRegistered,
    CustomerUpdated,
    DisputeOpened,
    DisputeResolved,
    DunningBlockChanged,
    DunningStepRecorded,
    Event,
    InvoiceIssued,
    MilestoneCompleted,
    OrderApprovalRequested,
    OrderApproved,
    OrderLockLifted,
    OrderLockPlaced,
    OrderRejected,
    OrderShipped,
    OrderSubmitted,
    PaymentReceived,
    PaymentReversed,
    PromiseBroken,
    PromiseMade,
    RiskFlagged,
    WrittenOff,
    parse_event,
)
from .lifecycle import ORDER_MACHINE, RECEIVABLE_MACHINE, move
from .money import Money, total
from .rows import PlainInvoice, is_plain, issued_summary, plain_invoice, plain_rows
from .store import Store, StoreTx, open_store
from .store.base import BufferedTx, json_of, kind_of

R = ReceivableState
LIVE_STATES = (R.OPEN, R.PARTIALLY_PAID, R.DISPUTED, R.PROMISED)
#: Orders that count toward exposure: approved or shipped, not yet invoiced.
UNINVOICED_ORDER_STATES = (OrderState.APPROVED, OrderState.SHIPPED)


@dataclass(frozen=True)
class InvoiceRequest:
    """A payment node that became invoiceable: finance should issue this invoice."""

    customer_id: str
    contract_id: str
    payment_node_id: str
    milestone_id: str
    amount: Money


@dataclass(frozen=True)
class Applied:
    """What applying one event did."""

    event_id: str
    duplicate: bool = False
    audit: tuple[AuditRecord, ...] = ()
    invoice_requests: tuple[InvoiceRequest, ...] = ()


_ZEROS: dict[str, Money] = {}
#: Dates by ordinal, for the bulk path (an import's due dates are a few thousand days).
_DAYS: dict[int, date] = {}


def _zero(currency: str) -> Money:
    """``Money.zero(currency)``, made once per currency (Money is immutable)."""
    z = _ZEROS.get(currency)
    if z is None:
        z = _ZEROS[currency] = Money.zero(currency)
    return z


def _positive(m: Money, what: str) -> None:
    if m.amount <= 0:
        raise _not_positive(what, m)


def _not_positive(what: str, amount: object) -> InvalidAmount:
    return InvalidAmount(f"{what} must be positive, got {amount}")


def _same_currency(a: Money, b: Money, where: str) -> None:
    if a.currency != b.currency:
        raise CurrencyMismatch(a.currency, b.currency, where)


class _Ctx:
    """What one event's handler works with: reads, writes and the audit of both."""

    __slots__ = ("audits", "event", "requests", "tx")

    def __init__(self, tx: StoreTx, event: BaseEvent) -> None:
        self.tx = tx
        self.event = event
        self.audits: list[AuditRecord] = []
        self.requests: list[InvoiceRequest] = []

    def get(self, kind: str, object_id: str) -> Any:
        obj = self.tx.get(kind, object_id)
        if obj is None:
            raise UnknownObject(kind, object_id)
        return obj

    def absent(self, kind: str, object_id: str) -> None:
        if self.tx.get(kind, object_id) is not None:
            raise DuplicateObject(kind, object_id)

    def put(self, new: BaseModel, old: BaseModel | None = None, summary: str = "") -> None:
        self.tx.put(new)
        rec = _audit(self.event, new, old, summary)
        self.tx.add_audit(rec)
        self.audits.append(rec)


# ``Model.__pydantic_validator__.validate_python(fields)`` is ``Model(**fields)``, validated
# the same way, without the keyword packing of ``__init__`` (a third of the cost for these).
_new_audit = AuditRecord.__pydantic_validator__.validate_python
_new_receivable = Receivable.__pydantic_validator__.validate_python


def _audit(e: BaseEvent, new: BaseModel, old: BaseModel | None, summary: str) -> AuditRecord:
    """The audit record of ``e`` changing ``old`` (None: creating) into ``new``."""
    rec: AuditRecord = _new_audit(
        {
            "event_id": e.event_id,
            "event_type": type(e).__name__,
            "subject_kind": kind_of(new).name,
            "subject_id": new.id,  # type: ignore[attr-defined]
            "actor": e.actor,
            "occurred_at": e.occurred_at,
            "reason": e.reason,
            "summary": summary,
            "before_state": _state(old),
            "after_state": _state(new),
            "before_balance": _balance(old),
            "after_balance": _balance(new),
        }
    )
    return rec


def _state(obj: BaseModel | None) -> str | None:
    if obj is None:
        return None
    return kind_of(obj).state(obj)


def _balance(obj: BaseModel | None) -> Money | None:
    if isinstance(obj, Receivable):
        return obj.open_balance
    if isinstance(obj, Payment | CreditNote):
        return obj.unapplied
    return None


def _issued(e: InvoiceIssued, customer: Customer, due: date, salesperson: str | None) -> Receivable:
    """The receivable an InvoiceIssued creates, once its due date and salesperson are known."""
    zero = _zero(e.amount.currency)
    r: Receivable = _new_receivable(
        {
            "id": e.number,
            "customer_id": e.customer_id,
            "contract_id": e.contract_id,
            "payment_node_id": e.payment_node_id,
            "order_id": e.order_id,
            "issue_date": e.issue_date,
            "due_date": due,
            "amount": e.amount,
            "paid": zero,
            "credited": zero,
            "written_off": zero,
            "disputed_amount": zero,
            "open_balance": e.amount,
            "salesperson": salesperson,
            "region": e.region or customer.region,
            "product_line": e.product_line,
            "tags": e.tags,
        }
    )
    return r


def _due_by_terms(e: InvoiceIssued, due: date | None, customer: Customer) -> date:
    """``due``, or else the customer's payment terms from the issue date; never before it."""
    if due is None:
        due = date.fromordinal(e.issue_date.toordinal() + customer.credit.payment_terms_days)
    _not_before_issue(e.number, due, e.issue_date)
    return due


def _not_before_issue(number: str, due: date, issued: date) -> None:
    if due < issued:
        raise InvalidDates(f"invoice {number}: due date {due} is before issue date {issued}")


def _day_of(ordinal: int) -> date:
    """The date of an ordinal, remembered (an import's dates are a few thousand days)."""
    day = _DAYS.get(ordinal)
    if day is None:
        if len(_DAYS) >= 100_000:
            _DAYS.clear()
        day = _DAYS[ordinal] = date.fromordinal(ordinal)
    return day


def _issued_summary(e: InvoiceIssued, due: date) -> str:
    return issued_summary(str(e.amount), due)


def _move_receivable(r: Receivable, trigger: str, **update: Any) -> Receivable:
    """A new version of ``r`` with ``update`` applied and its state moved by ``trigger``."""
    new = r.model_copy(update=update)
    state = move(
        RECEIVABLE_MACHINE, "receivable", r.id, r.state, trigger, has_reductions=new.has_reductions
    )
    return new.model_copy(update={"state": R(state)})


def _live(r: Receivable, event: str) -> None:
    if r.is_closed:
        raise ClosedItem("receivable", r.id, str(r.state), event)


#: Events ``apply_all`` reads ahead (the importer maps a refusal back to its row for the
#: last 4096 events it handed over).
_READ_AHEAD = 500


def _reads(event: BaseEvent, ids: dict[str, list[str]]) -> None:
    """Add the ids (by kind) of the objects the handler of ``event`` will look up first."""
    if isinstance(event, InvoiceIssued):
        ids["receivable"].append(event.number)
        ids["customer"].append(event.customer_id)
        if event.contract_id is not None:
            ids["contract"].append(event.contract_id)
        if event.order_id is not None:
            ids["order"].append(event.order_id)
    elif isinstance(event, CustomerRegistered):
        ids["customer"].append(event.customer.id)
    elif isinstance(event, PaymentReceived):
        ids["payment"].append(event.payment_id)
        ids["customer"].append(event.customer_id)
        ids["receivable"].extend(a.receivable_id for a in event.allocations or ())
    elif isinstance(event, ContractSigned):
        ids["contract"].append(event.contract.id)
        ids["customer"].append(event.contract.customer_id)


def _prefetch(prefetch: Callable[..., None], chunk: list[Event | PlainInvoice]) -> None:
    event_ids: list[str] = []
    ids: dict[str, list[str]] = {
        "receivable": [],
        "customer": [],
        "contract": [],
        "order": [],
        "payment": [],
    }
    numbers, customers = ids["receivable"], ids["customer"]
    for event in chunk:
        if type(event) is PlainInvoice or (
            type(event) is InvoiceIssued and event.contract_id is None and event.order_id is None
        ):
            event_ids.append(event.event_id)
            numbers.append(event.number)
            customers.append(event.customer_id)
        elif isinstance(event, BaseEvent):
            event_ids.append(event.event_id)
            _reads(event, ids)
    prefetch(event_ids, {kind: found for kind, found in ids.items() if found})


class Ledger:
    """Applies events to a store and answers questions about the book."""

    def __init__(self, store: Store | str = "memory://") -> None:
        self.store: Store = open_store(store)
        self._handlers: dict[type[BaseEvent], Callable[[_Ctx, Any], None]] = {
            CustomerRegistered: self._customer_registered,
            CustomerUpdated: self._customer_updated,
            ContractSigned: self._contract_signed,
            MilestoneCompleted: self._milestone_completed,
            InvoiceIssued: self._invoice_issued,
            PaymentReceived: self._payment_received,
            PaymentReversed: self._payment_reversed,
            CreditNoteIssued: self._credit_note_issued,
            DisputeOpened: self._dispute_opened,
            DisputeResolved: self._dispute_resolved,
            PromiseMade: self._promise_made,
            PromiseBroken: self._promise_broken,
            WrittenOff: self._written_off,
            OrderSubmitted: self._order_submitted,
            OrderApprovalRequested: self._order_move("request_approval"),
            OrderApproved: self._order_move("approve"),
            OrderRejected: self._order_move("reject"),
            OrderShipped: self._order_move("ship"),
            DunningStepRecorded: self._dunning_step_recorded,
            DunningBlockChanged: self._dunning_block_changed,
            RiskFlagged: self._risk_flagged,
            OrderLockPlaced: self._order_lock_placed,
            OrderLockLifted: self._order_lock_lifted,
            ContactFeedback: self._contact_feedback,
        }

    # -- applying ---------------------------------------------------------------------------
    def apply(self, event: Event) -> Applied:
        """Apply one event atomically; refuse it with an ``ArflowError`` and change nothing."""
        with self.store.transaction() as tx:
            return self._apply_in(tx, event)

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """One transaction for several events and whatever else the caller writes with them
        (the engine's decision ledger, the outbox): all of it commits, or none."""
        with self.store.transaction() as tx:
            yield Batch(self, tx)

    def apply_all(self, events: Iterable[Event | PlainInvoice], *, flush_every: int = 250) -> int:
        """Apply many events in one transaction: all of them, or (on the first refusal)
        none. Returns how many were applied (duplicates of logged events are skipped).

        Events are read a chunk ahead, so that the store can look up what the chunk needs
        in a few queries; they are still applied one by one, in order. A refusal names the
        refused event in ``exc.event_id``. When ``events`` raises, the events it gave before
        are applied first (a refusal among them wins), then its exception goes on. Plain
        invoices may come as :class:`~arflow.rows.PlainInvoice` (the importer's reader
        process hands them over in that form)."""
        applied = 0
        done = 0
        it = iter(events)
        with self.store.transaction() as tx:
            prefetch = getattr(tx, "prefetch", None)
            bulk = getattr(tx, "bulk", None)
            if bulk is not None:
                bulk()
            plain = tx if isinstance(tx, BufferedTx) and self._own_invoice_handler() else None
            while True:
                chunk: list[Event | PlainInvoice] = []
                failure: Exception | None = None
                try:
                    for event in it:
                        chunk.append(event)
                        if len(chunk) == _READ_AHEAD:
                            break
                except Exception as exc:  # the stream's own failure: raised below
                    failure = exc
                if prefetch is not None and len(chunk) > 1:
                    _prefetch(prefetch, chunk)
                for event in chunk:
                    try:
                        if type(event) is PlainInvoice:
                            if plain is not None:
                                applied += self._issue_plain(plain, event)
                            elif self._apply_event(tx, parse_event(event.body)) is not None:
                                applied += 1
                        elif plain is not None and is_plain(event):
                            applied += self._issue_plain(plain, plain_invoice(event))
                        elif self._apply_event(tx, event) is not None:  # type: ignore[arg-type]
                            applied += 1
                    except ArflowError as exc:
                        if isinstance(event, BaseEvent | PlainInvoice) and not hasattr(
                            exc, "event_id"
                        ):
                            exc.event_id = event.event_id  # type: ignore[attr-defined]
                        raise
                    done += 1
                    if done % flush_every == 0:
                        tx.flush()
                if failure is not None:
                    raise failure
                if len(chunk) < _READ_AHEAD:
                    break
        return applied

    def _apply_in(self, tx: StoreTx, event: Event) -> Applied:
        ctx = self._apply_event(tx, event)
        if ctx is None:
            return Applied(event.event_id, duplicate=True)
        return Applied(event.event_id, False, tuple(ctx.audits), tuple(ctx.requests))

    def _apply_event(self, tx: StoreTx, event: Event) -> _Ctx | None:
        """Apply one event inside ``tx``; None if its id is logged already (a no-op)."""
        if not isinstance(event, BaseEvent):
            raise ValidationError(f"not an arflow event: {type(event).__name__}")
        if tx.has_event(event.event_id):
            return None
        handler = self._handlers[type(event)]
        ctx = _Ctx(tx, event)
        tx.begin_event()
        try:
            handler(ctx, event)
            tx.add_event(event.event_id, event.type, json_of(event))
        except BaseException:
            tx.abort_event()
            raise
        tx.commit_event()
        return ctx

    def _issue_plain(self, tx: BufferedTx, p: PlainInvoice) -> bool:
        """``_apply_event`` of an InvoiceIssued without contract, payment node or order (the
        bulk of an import), minus the per-event bookkeeping. It reads and checks what
        ``_invoice_issued`` does, in the same order, and stages the same event, receivable
        and audit record as their stored JSON (``arflow.rows``: no models built); every check
        comes before the first write, so a refusal has nothing to undo. False when the event
        id is logged already."""
        if tx.has_event(p.event_id):
            return False
        if tx.get("receivable", p.number) is not None:
            raise DuplicateObject("receivable", p.number)
        customer: Customer | None = tx.get("customer", p.customer_id)
        if customer is None:
            raise UnknownObject("customer", p.customer_id)
        if not p.positive:
            raise _not_positive(f"invoice {p.number} amount", p.money)
        day = _day_of(p.issued + customer.credit.payment_terms_days if p.due is None else p.due)
        _not_before_issue(p.number, day, _day_of(p.issued))
        data, audit = plain_rows(
            p, day, p.salesperson or customer.salesperson, p.region or customer.region
        )
        tx.put_row("receivable", p.number, p.customer_id, "open", day, data, p.summary)
        tx.add_audit_row(("receivable", p.number, p.event_id, audit))
        tx.add_event(p.event_id, "InvoiceIssued", p.body)
        return True

    def _own_invoice_handler(self) -> bool:
        """Whether InvoiceIssued goes to this class's handler (``_issue_plain`` stands in for
        it), not to a subclass's or a replaced one."""
        return (
            type(self)._invoice_issued is Ledger._invoice_issued
            and self._handlers.get(InvoiceIssued) == self._invoice_issued
        )

    def replay(self, source: Store) -> int:
        """Apply every event logged in ``source`` to this (empty) book, in order."""
        return self.apply_all(parse_event(body) for _t, body in source.event_log())

    # -- customers, contracts, milestones -----------------------------------------------------
    def _customer_registered(self, ctx: _Ctx, e: CustomerRegistered) -> None:
        ctx.absent("customer", e.customer.id)
        ctx.put(e.customer, None, "registered")

    def _customer_updated(self, ctx: _Ctx, e: CustomerUpdated) -> None:
        old: Customer = ctx.get("customer", e.customer_id)
        changes: dict[str, Any] = {
            f: getattr(e, f)
            for f in (
                "name",
                "region",
                "salesperson",
                "sales_manager",
                "contacts",
                "credit",
                "profile",
                "tags",
            )
            if f in e.model_fields_set
        }
        if changes.get("name", "x") is None:
            raise ValidationError(f"customer {e.customer_id!r}: name cannot be removed")
        new = old.model_copy(update=changes)
        ctx.put(new, old, "updated " + ", ".join(sorted(changes)) if changes else "no change")

    def _contact_feedback(self, ctx: _Ctx, e: ContactFeedback) -> None:
        old: Customer = ctx.get("customer", e.customer_id)
        field = "email" if e.channel == "email" else "phone"
        flag = {"email": "email_invalid", "phone": "phone_invalid"}[field]
        if e.feedback == "unsubscribed":
            flag = "unsubscribed"
        contacts = []
        hit = False
        for c in old.contacts:
            if getattr(c, field) == e.address:
                c = c.model_copy(update={flag: True})
                hit = True
            contacts.append(c)
        if not hit:
            raise ValidationError(
                f"customer {e.customer_id!r} has no contact with {field} {e.address!r}"
            )
        new = old.model_copy(update={"contacts": tuple(contacts)})
        ctx.put(new, old, f"{e.channel} {e.address}: {e.feedback}")

    def _contract_signed(self, ctx: _Ctx, e: ContractSigned) -> None:
        c = e.contract
        ctx.absent("contract", c.id)
        ctx.get("customer", c.customer_id)
        if e.project is not None:
            if e.project.customer_id != c.customer_id:
                raise ValidationError(
                    f"project {e.project.id!r} belongs to customer {e.project.customer_id!r}, "
                    f"not {c.customer_id!r}"
                )
            existing = ctx.tx.get("project", e.project.id)
            if existing is None:
                ctx.put(e.project, None, "created with contract " + c.id)
            elif existing != e.project:
                raise DuplicateObject("project", e.project.id)
        if c.project_id is not None and e.project is None:
            ctx.get("project", c.project_id)
        declared = {m.id for m in e.milestones}
        for m in e.milestones:
            if m.contract_id != c.id:
                raise ValidationError(f"milestone {m.id!r} names contract {m.contract_id!r}")
            ctx.absent("milestone", m.id)
        for node in c.payment_nodes:
            mid = node.due.milestone_id
            if mid is not None and mid not in declared and ctx.tx.get("milestone", mid) is None:
                raise UnknownObject("milestone", mid)
        ctx.put(c, None, f"signed, {len(c.payment_nodes)} payment node(s)")
        for m in e.milestones:
            ctx.put(
                m
                if m.project_id or not c.project_id
                else m.model_copy(update={"project_id": c.project_id}),
                None,
                "planned",
            )

    def _milestone_completed(self, ctx: _Ctx, e: MilestoneCompleted) -> None:
        m: Milestone = ctx.get("milestone", e.milestone_id)
        if m.status == "done":
            raise ClosedItem("milestone", m.id, m.status, "MilestoneCompleted")
        new = m.model_copy(update={"status": "done", "actual_date": e.completed_on})
        ctx.put(new, m, f"completed on {e.completed_on}")
        contract: Contract = ctx.get("contract", m.contract_id)
        for node in contract.payment_nodes:
            if node.due.basis == "milestone" and node.due.milestone_id == m.id:
                ctx.requests.append(
                    InvoiceRequest(
                        contract.customer_id, contract.id, node.id, m.id, contract.node_amount(node)
                    )
                )

    # -- invoices -------------------------------------------------------------------------------
    def _invoice_issued(self, ctx: _Ctx, e: InvoiceIssued) -> None:
        ctx.absent("receivable", e.number)
        customer: Customer = ctx.get("customer", e.customer_id)
        _positive(e.amount, f"invoice {e.number} amount")
        due = e.due_date
        salesperson = e.salesperson or customer.salesperson
        if e.contract_id is not None:
            contract: Contract = ctx.get("contract", e.contract_id)
            if contract.customer_id != e.customer_id:
                raise ValidationError(
                    f"invoice {e.number}: contract {contract.id!r} belongs to customer "
                    f"{contract.customer_id!r}, not {e.customer_id!r}"
                )
            _same_currency(contract.amount, e.amount, f"invoice {e.number} vs its contract")
            salesperson = salesperson or contract.salesperson
            if e.payment_node_id is not None:
                node = contract.node(e.payment_node_id)
                if node is None:
                    raise UnknownObject("payment node", f"{contract.id}/{e.payment_node_id}")
                if due is None:
                    mdate = None
                    if node.due.milestone_id is not None:
                        ms: Milestone = ctx.get("milestone", node.due.milestone_id)
                        mdate = ms.actual_date or ms.planned_date
                    due = node.due.due_date(e.issue_date, mdate)
        elif e.payment_node_id is not None:
            raise ValidationError(f"invoice {e.number}: a payment node needs its contract_id")
        due = _due_by_terms(e, due, customer)
        r = _issued(e, customer, due, salesperson)
        if e.order_id is not None:
            order: Order = ctx.get("order", e.order_id)
            if order.customer_id != e.customer_id:
                raise ValidationError(
                    f"invoice {e.number}: order {order.id!r} belongs to {order.customer_id!r}"
                )
            _same_currency(order.amount, e.amount, f"invoice {e.number} vs its order")
            state = move(ORDER_MACHINE, "order", order.id, order.state, "invoice")
            ctx.put(
                order.model_copy(update={"state": OrderState(state), "receivable_id": e.number}),
                order,
                f"invoiced as {e.number}",
            )
        ctx.put(r, None, _issued_summary(e, due))

    def _reduce(self, ctx: _Ctx, r: Receivable, amount: Money, how: str, on: date) -> Receivable:
        """Take ``amount`` off ``r``'s open balance as paid or credited; move its state."""
        _same_currency(r.amount, amount, f"receivable {r.id}")
        if amount > r.open_balance:
            raise OverAllocation(
                f"receivable {r.id}: {amount} is more than its open balance {r.open_balance}"
            )
        new_open = r.open_balance - amount
        update: dict[str, Any]
        if how == "paid":
            update = {"paid": r.paid + amount, "open_balance": new_open}
            trigger = "settle" if not new_open else "part_pay"
        else:
            update = {"credited": r.credited + amount, "open_balance": new_open}
            trigger = "credit_in_full" if not new_open else "part_pay"
        if not new_open:
            update["closed_on"] = on
        if r.disputed_amount > new_open:  # no more is in dispute than is still owed
            update["disputed_amount"] = new_open
        new = _move_receivable(r, trigger, **update)
        ctx.put(new, r, f"{how} {amount}")
        return new

    # -- cash --------------------------------------------------------------------------------------
    def _payment_received(self, ctx: _Ctx, e: PaymentReceived) -> None:
        ctx.absent("payment", e.payment_id)
        ctx.get("customer", e.customer_id)
        _positive(e.amount, f"payment {e.payment_id} amount")
        cur = e.amount.currency
        plan: list[tuple[Receivable, Money]] = []
        if e.allocations is not None:
            seen: set[str] = set()
            for req in e.allocations:
                if req.receivable_id in seen:
                    raise ValidationError(
                        f"payment {e.payment_id}: receivable {req.receivable_id} allocated twice"
                    )
                seen.add(req.receivable_id)
                r: Receivable = ctx.get("receivable", req.receivable_id)
                if r.customer_id != e.customer_id:
                    raise ValidationError(
                        f"payment {e.payment_id}: receivable {r.id} belongs to customer "
                        f"{r.customer_id!r}, not {e.customer_id!r}"
                    )
                _live(r, "PaymentReceived")
                _same_currency(e.amount, req.amount, f"payment {e.payment_id} allocation")
                _positive(req.amount, f"allocation to {r.id}")
                plan.append((r, req.amount))
            applied = total((a for _r, a in plan), cur)
            if applied > e.amount:
                raise OverAllocation(
                    f"payment {e.payment_id}: allocations {applied} exceed the payment {e.amount}"
                )
        else:
            remaining = e.amount
            for r in ctx.tx.iter_by_due(e.customer_id, LIVE_STATES):
                if not remaining:
                    break
                if r.currency != cur:
                    continue
                take = remaining.min(r.undisputed_balance)
                if take:
                    plan.append((r, take))
                    remaining = remaining - take
        allocations = []
        promises: list[str] = []
        for r, amount in plan:
            self._reduce(ctx, r, amount, "paid", e.received_on)
            allocations.append(
                Allocation(payment_id=e.payment_id, receivable_id=r.id, amount=amount)
            )
            if r.promise_id is not None and r.promise_id not in promises:
                promises.append(r.promise_id)
        unapplied = e.amount - total((a.amount for a in allocations), cur)
        payment = Payment(
            id=e.payment_id,
            customer_id=e.customer_id,
            amount=e.amount,
            received_on=e.received_on,
            reference=e.reference,
            allocations=tuple(allocations),
            unapplied=unapplied,
        )
        ctx.put(
            payment,
            None,
            f"received {e.amount}, applied to {len(allocations)} item(s), unapplied {unapplied}",
        )
        for pid in promises:
            self._track_promise(ctx, pid, plan)

    def _track_promise(
        self, ctx: _Ctx, promise_id: str, plan: list[tuple[Receivable, Money]]
    ) -> None:
        p: PromiseToPay = ctx.get("promise", promise_id)
        if p.status != PromiseStatus.OPEN:
            return
        paid = [a for r, a in plan if r.id in p.receivable_ids and a.currency == p.amount.currency]
        received = p.received + total(paid, p.amount.currency)
        items = [ctx.get("receivable", rid) for rid in p.receivable_ids]
        kept = received >= p.amount or all(r.is_closed for r in items)
        new = p.model_copy(
            update={"received": received, "status": PromiseStatus.KEPT if kept else p.status}
        )
        ctx.put(new, p, f"received {received} of {p.amount}" + (", kept" if kept else ""))
        if kept:
            for r in items:
                if r.state == R.PROMISED and r.promise_id == p.id:
                    ctx.put(_move_receivable(r, "keep_promise"), r, f"promise {p.id} kept")

    def _payment_reversed(self, ctx: _Ctx, e: PaymentReversed) -> None:
        p: Payment = ctx.get("payment", e.payment_id)
        if p.reversed:
            raise ClosedItem("payment", p.id, "reversed", "PaymentReversed")
        for a in p.allocations:
            r: Receivable = ctx.get("receivable", a.receivable_id)
            if r.state in (R.WRITTEN_OFF, R.CREDITED):
                raise ClosedItem("receivable", r.id, str(r.state), "PaymentReversed")
            reopened = r.open_balance + a.amount
            new = _move_receivable(
                r,
                "reopen",
                paid=r.paid - a.amount,
                open_balance=reopened,
                closed_on=None,
                disputed_amount=reopened.min(_in_dispute(ctx, r)),
            )
            if new.disputed_amount and new.state in (R.OPEN, R.PARTIALLY_PAID):
                # the dispute is still open: the reopened invoice is disputed again
                new = _move_receivable(new, "dispute")
            ctx.put(new, r, f"payment {p.id} reversed: {a.amount} reopened")
        self._unkeep_promises(ctx, p, e.reversed_on)
        zero = _zero(p.amount.currency)
        ctx.put(
            p.model_copy(update={"reversed": True, "unapplied": zero}),
            p,
            f"reversed on {e.reversed_on}",
        )

    def _unkeep_promises(self, ctx: _Ctx, p: Payment, on: date) -> None:
        """A reversed payment no longer counts towards the promises it paid into. A promise it
        had kept is open again if its date has not passed (its items go back under it), and
        broken if it has: a bounced payment keeps no promise."""
        by_promise: dict[str, list[Money]] = {}
        for a in p.allocations:
            r: Receivable = ctx.get("receivable", a.receivable_id)
            if r.promise_id is not None:
                by_promise.setdefault(r.promise_id, []).append(a.amount)
        for pid, amounts in by_promise.items():
            promise: PromiseToPay = ctx.get("promise", pid)
            if promise.status not in (PromiseStatus.OPEN, PromiseStatus.KEPT):
                continue
            if p.received_on < promise.made_on:
                continue  # paid before the promise was made: it never counted
            same = [m for m in amounts if m.currency == promise.amount.currency]
            back = promise.received - total(same, promise.amount.currency)
            received = back if back.is_positive else _zero(promise.amount.currency)
            status: PromiseStatus = promise.status
            items = [ctx.get("receivable", rid) for rid in promise.receivable_ids]
            still_kept = received >= promise.amount or all(r.is_closed for r in items)
            if status == PromiseStatus.KEPT and not still_kept:
                if on <= promise.promised_date:
                    status = PromiseStatus.OPEN
                    for r in items:
                        if r.state in (R.OPEN, R.PARTIALLY_PAID) and r.promise_id == pid:
                            ctx.put(
                                _move_receivable(r, "promise", promise_id=pid),
                                r,
                                f"payment {p.id} reversed: back under promise {pid}",
                            )
                else:
                    status = (
                        PromiseStatus.PARTIALLY_KEPT
                        if received.is_positive
                        else PromiseStatus.BROKEN
                    )
            ctx.put(
                promise.model_copy(update={"received": received, "status": status}),
                promise,
                f"payment {p.id} reversed: received {received} of {promise.amount}, {status}",
            )

    def _credit_note_issued(self, ctx: _Ctx, e: CreditNoteIssued) -> None:
        ctx.absent("credit_note", e.credit_note_id)
        ctx.get("customer", e.customer_id)
        _positive(e.amount, f"credit note {e.credit_note_id} amount")
        unapplied = e.amount
        if e.receivable_id is not None:
            r: Receivable = ctx.get("receivable", e.receivable_id)
            if r.customer_id != e.customer_id:
                raise ValidationError(
                    f"credit note {e.credit_note_id}: receivable {r.id} belongs to customer "
                    f"{r.customer_id!r}"
                )
            _live(r, "CreditNoteIssued")
            self._reduce(ctx, r, e.amount, "credited", e.issued_on)
            unapplied = _zero(e.amount.currency)
        note = CreditNote(
            id=e.credit_note_id,
            customer_id=e.customer_id,
            receivable_id=e.receivable_id,
            amount=e.amount,
            issued_on=e.issued_on,
            reason=e.reason or "",
            unapplied=unapplied,
        )
        ctx.put(note, None, f"issued {e.amount}")

    # -- disputes, promises, write-offs ---------------------------------------------------------
    def _dispute_opened(self, ctx: _Ctx, e: DisputeOpened) -> None:
        ctx.absent("dispute", e.dispute_id)
        r: Receivable = ctx.get("receivable", e.receivable_id)
        _live(r, "DisputeOpened")
        undisputed = r.undisputed_balance
        amount = e.amount if e.amount is not None else undisputed
        _same_currency(r.amount, amount, f"dispute {e.dispute_id}")
        _positive(amount, f"disputed amount of {e.dispute_id}")
        if amount > undisputed:
            raise OverAllocation(
                f"dispute {e.dispute_id}: {amount} is more than the undisputed balance "
                f"{undisputed} of {r.id}"
            )
        d = Dispute(
            id=e.dispute_id,
            customer_id=r.customer_id,
            receivable_id=r.id,
            amount=amount,
            reason_code=e.reason_code,
            opened_on=e.opened_on,
            note=e.note,
        )
        new = _move_receivable(r, "dispute", disputed_amount=r.disputed_amount + amount)
        ctx.put(new, r, f"disputed {amount} ({e.reason_code})")
        ctx.put(d, None, f"opened for {amount}: {e.reason_code}")

    def _dispute_resolved(self, ctx: _Ctx, e: DisputeResolved) -> None:
        d: Dispute = ctx.get("dispute", e.dispute_id)
        if d.status != "open":
            raise ClosedItem("dispute", d.id, d.status, "DisputeResolved")
        r: Receivable = ctx.get("receivable", d.receivable_id)
        left = r.open_balance.min(_in_dispute(ctx, r, besides=d.id))
        if r.state == R.DISPUTED and not left:
            new = _move_receivable(r, "resolve_dispute", disputed_amount=left)
        else:
            new = r.model_copy(update={"disputed_amount": left})
        ctx.put(new, r, f"dispute {d.id} resolved: {e.resolution}")
        ctx.put(
            d.model_copy(
                update={
                    "status": "resolved",
                    "resolution": e.resolution,
                    "resolved_on": e.resolved_on,
                }
            ),
            d,
            e.resolution,
        )

    def _promise_made(self, ctx: _Ctx, e: PromiseMade) -> None:
        ctx.absent("promise", e.promise_id)
        ctx.get("customer", e.customer_id)
        _positive(e.amount, f"promise {e.promise_id} amount")
        if e.promised_date < e.made_on:
            raise InvalidDates(
                f"promise {e.promise_id}: promised date {e.promised_date} is before "
                f"{e.made_on}, the day it was made"
            )
        if len(set(e.receivable_ids)) != len(e.receivable_ids):
            raise ValidationError(f"promise {e.promise_id}: a receivable is listed twice")
        items: list[Receivable] = []
        for rid in e.receivable_ids:
            r: Receivable = ctx.get("receivable", rid)
            if r.customer_id != e.customer_id:
                raise ValidationError(
                    f"promise {e.promise_id}: receivable {rid} belongs to {r.customer_id!r}"
                )
            _live(r, "PromiseMade")
            _same_currency(r.amount, e.amount, f"promise {e.promise_id}")
            # By the promise, not the state: a promised item that went through a dispute is
            # "open" again while its promise still runs.
            prior = None if r.promise_id is None else ctx.get("promise", r.promise_id)
            if r.state == R.PROMISED or (prior is not None and prior.status == PromiseStatus.OPEN):
                raise ValidationError(
                    f"promise {e.promise_id}: receivable {rid} is already under promise "
                    f"{r.promise_id}"
                )
            items.append(r)
        for r in items:
            new = _move_receivable(r, "promise", promise_id=e.promise_id)
            ctx.put(new, r, f"promised {e.amount} by {e.promised_date} ({e.promised_by})")
        p = PromiseToPay(
            id=e.promise_id,
            customer_id=e.customer_id,
            receivable_ids=e.receivable_ids,
            amount=e.amount,
            promised_date=e.promised_date,
            promised_by=e.promised_by,
            made_on=e.made_on,
            received=_zero(e.amount.currency),
        )
        ctx.put(p, None, f"{e.amount} by {e.promised_date}")

    def _promise_broken(self, ctx: _Ctx, e: PromiseBroken) -> None:
        p: PromiseToPay = ctx.get("promise", e.promise_id)
        if p.status != PromiseStatus.OPEN:
            raise ClosedItem("promise", p.id, str(p.status), "PromiseBroken")
        status = PromiseStatus.PARTIALLY_KEPT if p.received else PromiseStatus.BROKEN
        for rid in p.receivable_ids:
            r: Receivable = ctx.get("receivable", rid)
            if r.state == R.PROMISED and r.promise_id == p.id:
                ctx.put(_move_receivable(r, "break_promise"), r, f"promise {p.id} broken")
        ctx.put(p.model_copy(update={"status": status}), p, f"{status} on {e.broken_on}")

    def _written_off(self, ctx: _Ctx, e: WrittenOff) -> None:
        r: Receivable = ctx.get("receivable", e.receivable_id)
        _live(r, "WrittenOff")
        zero = _zero(r.currency)
        new = _move_receivable(
            r,
            "write_off",
            written_off=r.written_off + r.open_balance,
            open_balance=zero,
            disputed_amount=zero,
            closed_on=e.written_off_on,
        )
        ctx.put(new, r, f"wrote off {r.open_balance} on {e.written_off_on}")

    # -- orders ------------------------------------------------------------------------------------
    def _order_submitted(self, ctx: _Ctx, e: OrderSubmitted) -> None:
        ctx.absent("order", e.order_id)
        ctx.get("customer", e.customer_id)
        _positive(e.amount, f"order {e.order_id} amount")
        if e.contract_id is not None:
            c: Contract = ctx.get("contract", e.contract_id)
            if c.customer_id != e.customer_id:
                raise ValidationError(f"order {e.order_id}: contract {c.id!r} is another's")
        o = Order(
            id=e.order_id,
            customer_id=e.customer_id,
            amount=e.amount,
            submitted_on=e.submitted_on,
            order_type=e.order_type,
            contract_id=e.contract_id,
        )
        ctx.put(o, None, f"submitted {e.amount}")

    def _order_move(self, trigger: str) -> Callable[[_Ctx, Any], None]:
        def handle(ctx: _Ctx, e: Any) -> None:
            o: Order = ctx.get("order", e.order_id)
            state = OrderState(move(ORDER_MACHINE, "order", o.id, o.state, trigger))
            update: dict[str, Any] = {"state": state}
            if hasattr(e, "approver"):
                update["decided_by"] = e.approver
            ctx.put(o.model_copy(update=update), o, trigger.replace("_", " "))

        return handle

    # -- what the engine records -----------------------------------------------------------------
    def _dunning_step_recorded(self, ctx: _Ctx, e: DunningStepRecorded) -> None:
        r: Receivable = ctx.get("receivable", e.receivable_id)
        _live(r, "DunningStepRecorded")
        new = r.model_copy(
            update={"dunning_level": max(r.dunning_level, e.level), "last_dunned_on": e.sent_on}
        )
        ctx.put(new, r, f"dunning {e.ladder}/{e.step} (level {e.level}) sent on {e.sent_on}")

    def _dunning_block_changed(self, ctx: _Ctx, e: DunningBlockChanged) -> None:
        r: Receivable = ctx.get("receivable", e.receivable_id)
        if e.blocked and not e.reason:
            raise ValidationError(f"receivable {r.id}: a dunning block needs a reason")
        new = r.model_copy(
            update={
                "dunning_block": e.blocked,
                "dunning_block_reason": e.reason if e.blocked else None,
            }
        )
        ctx.put(new, r, ("dunning blocked: " + (e.reason or "")) if e.blocked else "unblocked")

    def _risk_flagged(self, ctx: _Ctx, e: RiskFlagged) -> None:
        r: Receivable = ctx.get("receivable", e.receivable_id)
        ctx.put(
            r.model_copy(update={"risk_level": e.level}),
            r,
            f"risk {e.level} by {e.rule} on {e.flagged_on}",
        )

    def _order_lock_placed(self, ctx: _Ctx, e: OrderLockPlaced) -> None:
        c: Customer = ctx.get("customer", e.customer_id)
        key = (e.lock_id, e.scope, e.ref)
        if any((lk.lock_id, lk.scope, lk.ref) == key for lk in c.locks):
            raise DuplicateObject("order lock", f"{c.id}/{e.lock_id}")
        lock = OrderLock(
            lock_id=e.lock_id, scope=e.scope, ref=e.ref, since=e.placed_on, reason=e.reason or ""
        )
        ctx.put(
            c.model_copy(update={"locks": (*c.locks, lock)}),
            c,
            f"orders locked by {e.lock_id} ({e.scope}{' ' + e.ref if e.ref else ''})",
        )

    def _order_lock_lifted(self, ctx: _Ctx, e: OrderLockLifted) -> None:
        c: Customer = ctx.get("customer", e.customer_id)
        key = (e.lock_id, e.scope, e.ref)
        kept = tuple(lk for lk in c.locks if (lk.lock_id, lk.scope, lk.ref) != key)
        if len(kept) == len(c.locks):
            raise UnknownObject("order lock", f"{c.id}/{e.lock_id}")
        ctx.put(c.model_copy(update={"locks": kept}), c, f"lock {e.lock_id} lifted")

    # -- reading the book -------------------------------------------------------------------------
    def get(self, kind: str, object_id: str) -> Any:
        obj = self.store.get(kind, object_id)
        if obj is None:
            raise UnknownObject(kind, object_id)
        return obj

    def customer(self, customer_id: str) -> Customer:
        c: Customer = self.get("customer", customer_id)
        return c

    def receivable(self, number: str) -> Receivable:
        r: Receivable = self.get("receivable", number)
        return r

    def open_items(self, customer_id: str) -> list[Receivable]:
        """The customer's receivables with money still open, oldest due first."""
        self.customer(customer_id)
        items = self.store.find("receivable", customer_id=customer_id, states=LIVE_STATES)
        return sorted(items, key=lambda r: (r.due_date, r.issue_date, r.id))

    def balance(self, customer_id: str) -> dict[str, Money]:
        """Open balance per currency."""
        return _by_currency(r.open_balance for r in self.open_items(customer_id))

    def unapplied_credit(self, customer_id: str) -> dict[str, Money]:
        """Cash and credit notes not applied to any invoice, per currency."""
        self.customer(customer_id)
        pays = self.store.find("payment", customer_id=customer_id, states=["applied"])
        notes = self.store.find("credit_note", customer_id=customer_id)
        return _by_currency(
            [p.unapplied for p in pays if p.unapplied] + [n.unapplied for n in notes if n.unapplied]
        )

    def exposure(self, customer_id: str) -> dict[str, Money]:
        """Open receivables plus approved-but-uninvoiced orders, per currency."""
        orders = self.store.find("order", customer_id=customer_id, states=UNINVOICED_ORDER_STATES)
        return _by_currency(
            [r.open_balance for r in self.open_items(customer_id)] + [o.amount for o in orders]
        )

    def credit_available(self, customer_id: str) -> Money | None:
        """Credit limit minus exposure in the limit's currency (None without a limit)."""
        limit = self.customer(customer_id).credit.credit_limit
        if limit is None:
            return None
        used = self.exposure(customer_id).get(limit.currency, _zero(limit.currency))
        return limit - used

    def audit_trail(self, kind: str, object_id: str) -> list[AuditRecord]:
        return self.store.audit_trail(kind, object_id)


class Batch:
    """Events applied inside one open transaction (see :meth:`Ledger.batch`)."""

    def __init__(self, ledger: Ledger, tx: StoreTx) -> None:
        self.ledger, self.tx = ledger, tx

    def apply(self, event: Event) -> Applied:
        return self.ledger._apply_in(self.tx, event)


def _in_dispute(ctx: _Ctx, r: Receivable, besides: str | None = None) -> Money:
    """What the open disputes on ``r`` (but ``besides``) claim, together: the receivable's
    ``disputed_amount`` is that, or its open balance where that is less."""
    claimed = [
        d.amount
        for d in ctx.tx.find("dispute", customer_id=r.customer_id)
        if d.receivable_id == r.id and d.status == "open" and d.id != besides
    ]
    return total(claimed, r.currency)


def _by_currency(amounts: Iterable[Money]) -> dict[str, Money]:
    out: dict[str, Decimal] = {}
    for m in amounts:
        out[m.currency] = out.get(m.currency, Decimal(0)) + m.amount
    return {c: Money(amount=a, currency=c) for c, a in sorted(out.items())}


__all__ = ["Applied", "Batch", "InvoiceRequest", "Ledger"]
