"""The ledger: applying business events to the book, and reading balances back.

``Ledger.apply(event)`` validates the event against the book and applies it in one
transaction: either every change it implies is written, with an audit record per changed
object and the event appended to the log, or (on any refusal) nothing is. Applying an
``event_id`` that is already in the log is a no-op. Replaying the log into an empty store
rebuilds an identical book, because handlers read nothing but the book and the event.

``Ledger`` is the orchestrator: it finds an event's handler (one dict lookup) and runs it
in the event's transaction. The handlers live in one module per event family; allocation
of cash is a pure function (:mod:`._allocation`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from ..actions import Happened, HappenedKind, Subscribers
from ..domain import AuditRecord, Customer, Receivable
from ..errors import ArflowError, DuplicateObject, StoreError, UnknownObject, ValidationError
from ..events import (
    BaseEvent,
    CashApplied,
    ContactFeedback,
    ContractSigned,
    CreditNoteIssued,
    CreditReviewed,
    CustomerRegistered,
    CustomerUpdated,
    DisputeOpened,
    DisputeResolved,
    DocumentAttached,
    DunningBlockChanged,
    DunningStepRecorded,
    Event,
    InvoiceConfirmed,
    InvoiceIssued,
    InvoiceRequestApproved,
    InvoiceRequestCancelled,
    InvoiceRequested,
    InvoiceRequestRejected,
    InvoiceSent,
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
    PersonAdded,
    PersonLeft,
    PersonUpdated,
    ProcessStarted,
    ProcessStepTimedOut,
    PromiseBroken,
    PromiseMade,
    RefundIssued,
    RiskFlagged,
    StepDecided,
    TaskCancelled,
    TaskCompleted,
    TaskCreated,
    TaskOverdue,
    TaskReassigned,
    WrittenOff,
    parse_event,
)
from ..lifecycle import EXPOSURE_ORDER_STATES
from ..money import Money
from ..rows import PlainInvoice, is_plain, plain_invoice, plain_rows
from ..store import Store, StoreTx, open_store
from ..store.base import UNAPPLIED, json_of
from . import (
    _disputes,
    _dunning,
    _invoices,
    _orders,
    _parties,
    _payments,
    _processes,
    _requests,
    _tasks,
)
from ._checks import LIVE_STATES, not_positive, zero
from ._context import Ctx, InvoiceRequest, refusal
from ._invoices import day_of, not_before_issue
from ._prefetch import prefetch as prefetch_chunk


@dataclass(frozen=True)
class Applied:
    """What applying one event did."""

    event_id: str
    duplicate: bool = False
    audit: tuple[AuditRecord, ...] = ()
    invoice_requests: tuple[InvoiceRequest, ...] = ()


class OrderPolicy(Protocol):
    """What decides an order as it is submitted or approved, for a :class:`Ledger` whose
    host calls :meth:`Ledger.apply` (``Engine.attach()`` makes the engine the ledger's
    policy). ``handle`` applies the event, in a transaction of the ledger's own
    (:meth:`Ledger.batch`), with whatever the policy decides on it, and returns what
    applying it did and the decisions; on a refusal it raises and changes nothing."""

    def handle(self, event: Event) -> tuple[Applied, Sequence[object]]: ...


#: The events :meth:`Ledger.apply` hands to the ledger's order policy when it has one.
ORDER_EVENTS = (OrderSubmitted, OrderApproved)

log = logging.getLogger("arflow.ledger")

#: Events ``apply_all`` reads ahead (the importer maps a refusal back to its row for the
#: last 4096 events it handed over).
_READ_AHEAD = 500


class Ledger:
    """Applies events to a store and answers questions about the book."""

    def __init__(
        self,
        store: Store | str | Any = "memory://",
        *,
        apply_unapplied_cash: bool = True,
        finance_role: str = _requests.FINANCE_ROLE,
        order_documents: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``apply_unapplied_cash``: when an invoice is issued, the customer's unapplied cash
        and open credit notes in its currency are applied to it at once, oldest first (what
        AR systems do with prepayments). Off, they stay unapplied until a ``CashApplied``.
        A replay gives the same book only with the same setting.

        ``finance_role``: the role of the people directory whose holders approve invoice
        requests. ``order_documents``: per order type, the documents (``delivery_note``...)
        the invoice request of a shipped order of that type waits for (docs/workflows.md);
        a replay needs the same.

        ``store`` may also be the host's SQLAlchemy ``Connection`` or ORM ``Session``: the
        book is then read and written inside the host's transaction (docs/embedding.md,
        "The host's transaction")."""
        self.store: Store = open_store(store)
        #: the host's callbacks for what this ledger (and an engine on it) decided and did
        self.subscribers = Subscribers()
        #: decides ``OrderSubmitted`` and ``OrderApproved`` given to :meth:`apply` (None:
        #: they are only recorded); set by ``Engine.attach()``
        self.order_policy: OrderPolicy | None = None
        self.apply_unapplied_cash = apply_unapplied_cash
        self.finance_role = finance_role
        self.order_documents: dict[str, tuple[str, ...]] = {
            k: tuple(v) for k, v in (order_documents or {}).items()
        }
        fin = finance_role
        # Plain functions (a subclass may override any of the names below with a method):
        # applying an event is this one lookup and a call.
        self._handlers: dict[type[BaseEvent], Callable[[Ctx, Any], None]] = {
            CustomerRegistered: self._customer_registered,
            CustomerUpdated: self._customer_updated,
            ContractSigned: self._contract_signed,
            MilestoneCompleted: lambda ctx, e: self._milestone_completed(ctx, e, fin),
            InvoiceIssued: (
                self._invoice_issued_applying if apply_unapplied_cash else self._invoice_issued
            ),
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
            OrderShipped: self._order_shipped,
            DunningStepRecorded: self._dunning_step_recorded,
            DunningBlockChanged: self._dunning_block_changed,
            RiskFlagged: self._risk_flagged,
            OrderLockPlaced: self._order_lock_placed,
            OrderLockLifted: self._order_lock_lifted,
            ContactFeedback: self._contact_feedback,
            PersonAdded: self._person_added,
            PersonUpdated: self._person_updated,
            PersonLeft: self._person_left,
            CreditReviewed: self._credit_reviewed,
            CashApplied: self._cash_applied,
            RefundIssued: self._refund_issued,
            TaskCreated: self._task_created,
            TaskCompleted: self._task_completed,
            TaskCancelled: self._task_cancelled,
            TaskReassigned: self._task_reassigned,
            TaskOverdue: self._task_overdue,
            InvoiceRequested: lambda ctx, e: _requests.invoice_requested(ctx, e, fin),
            DocumentAttached: lambda ctx, e: _requests.document_attached(ctx, e, fin),
            InvoiceRequestApproved: lambda ctx, e: _requests.request_approved(ctx, e, fin),
            InvoiceRequestRejected: lambda ctx, e: _requests.request_rejected(ctx, e, fin),
            InvoiceRequestCancelled: _requests.request_cancelled,
            InvoiceSent: _requests.invoice_sent,
            InvoiceConfirmed: _requests.invoice_confirmed,
            ProcessStarted: _processes.process_started,
            StepDecided: _processes.step_decided,
            ProcessStepTimedOut: _processes.step_timed_out,
        }
        self._ship = self._order_move("ship")

    def _order_shipped(self, ctx: Ctx, e: OrderShipped) -> None:
        """The order is shipped (once the processes about it approved it), and asks finance
        for its invoice (an invoice request)."""
        order = ctx.get("order", e.order_id)
        _processes.check_gates(ctx, order.id, order.customer_id)
        self._ship(ctx, e)
        order = ctx.get("order", e.order_id)
        _requests.from_order(ctx, order, e.shipped_on, self.order_documents, self.finance_role)

    # -- callbacks to the host -----------------------------------------------------------------
    def subscribe(
        self, callback: Callable[[Happened], object], *kinds: HappenedKind
    ) -> Callable[[], None]:
        """Call ``callback(happened)`` for what arflow decides and does of ``kinds`` (every
        kind if none is named): once its transaction commits, never for one rolled back.
        Returns the call that unsubscribes. See :class:`~arflow.Happened`."""
        return self.subscribers.subscribe(callback, *kinds)

    def notify_committed(self) -> None:
        """A ledger on the host's ``Connection``: deliver the callbacks of the host's
        transaction that just committed (SQLAlchemy tells a Connection of a commit before
        the database made it, so the host says so after its commit). Nothing to do for a
        Session, a URL or an engine."""
        notify = getattr(self.store, "notify_committed", None)
        if notify is not None:
            notify()

    @contextmanager
    def _transaction(self) -> Iterator[StoreTx]:
        """The store's transaction, whose callbacks are delivered once it commits (the
        host's commit, for a store joined to the host's transaction)."""
        heard: list[Happened] = []
        with self.store.transaction() as tx:
            if self.subscribers:
                tx._arflow_heard = heard  # type: ignore[attr-defined]
            yield tx
        if heard:
            after = getattr(self.store, "after_commit", None)
            deliver = functools.partial(self.subscribers.publish, heard)
            if after is None:
                deliver()
            else:
                after(deliver)

    # -- applying ---------------------------------------------------------------------------
    def apply(self, event: Event) -> Applied:
        """Apply one event atomically; refuse it with an ``ArflowError`` and change nothing.

        With an :attr:`order_policy` (``Engine.attach()``), an ``OrderSubmitted`` or
        ``OrderApproved`` goes to it instead: the order is checked and decided exactly as
        ``Engine.handle`` does, in one transaction (a refused attempt is then audited too).
        Without one, the order is only recorded, under the book's own checks.
        :meth:`apply_all`, :meth:`replay` and :meth:`batch` never consult the policy: the
        log already holds what was decided."""
        policy = self.order_policy
        if policy is not None and isinstance(event, ORDER_EVENTS):
            return policy.handle(event)[0]
        try:
            with self._transaction() as tx:
                return self._apply_in(tx, event)
        except StoreError as exc:
            log.error(
                "event %s not applied, the store failed: %s",
                event.event_id,
                exc,
                extra={"arflow_event": event.event_id},
            )
            raise

    def record_refusal(self, event: Event, error: Exception) -> AuditRecord | None:
        """Record in the audit trail, in a transaction of its own, that ``event`` was
        refused with ``error`` (after the refusal, which changed nothing): the record is on
        the object the event is about, its ``event_type`` ends in ``:refused`` and its
        ``refused`` field names the error's class. The event is not logged, so its id stays
        free for a corrected retry. ``Engine.handle`` calls this on every refusal;
        :meth:`apply` does not (an import's refused row is reported, not audited). Returns
        the record, or None when there is nothing to record it of (not an arflow event, or
        the store failing, which is not a refusal) or it could not be written (logged)."""
        if not isinstance(event, BaseEvent) or isinstance(error, StoreError):
            return None
        try:
            with self._transaction() as tx:
                rec = refusal(tx, event, error)
                tx.add_audit(rec)
                heard = getattr(tx, "_arflow_heard", None)
                if heard is not None:
                    heard.append(
                        Happened(
                            "event_refused",
                            event.event_id,
                            rec.subject_kind,
                            rec.subject_id,
                            _customer_of(tx, rec.subject_kind, rec.subject_id),
                            None,
                            type(error).__name__,
                        )
                    )
        except Exception:  # the caller raises the refusal itself, whatever happens here
            log.exception(
                "could not record the refusal of %s",
                event.event_id,
                extra={"arflow_event": event.event_id},
            )
            return None
        return rec

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """One transaction for several events and whatever else the caller writes with them
        (the engine's decision ledger, the outbox): all of it commits, or none."""
        with self._transaction() as tx:
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
        with self._transaction() as tx:
            tx.bulk()  # a store that can writes a long batch faster (no-op otherwise)
            plain = tx if self._own_invoice_handler() else None
            credit: dict[str, bool] = {}  # customers with credit to apply, see _issue_plain
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
                if len(chunk) > 1:
                    prefetch_chunk(tx.prefetch, chunk, credits=self.apply_unapplied_cash)
                for event in chunk:
                    try:
                        if type(event) is PlainInvoice:
                            if plain is not None:
                                applied += self._issue_plain(plain, event, credit)
                            elif self._apply_event(tx, parse_event(event.body)) is not None:
                                applied += 1
                        elif plain is not None and is_plain(event):
                            applied += self._issue_plain(plain, plain_invoice(event), credit)
                        elif self._apply_event(tx, event) is not None:  # type: ignore[arg-type]
                            applied += 1
                            if credit:  # the event may have changed a customer's credit
                                credit.clear()
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

    def _apply_event(self, tx: StoreTx, event: Event) -> Ctx | None:
        """Apply one event inside ``tx``; None if its id is logged already (a no-op)."""
        if not isinstance(event, BaseEvent):
            raise ValidationError(f"not an arflow event: {type(event).__name__}")
        if tx.has_event(event.event_id):
            return None
        handler = self._handlers[type(event)]
        ctx = Ctx(tx, event)
        tx.begin_event()
        try:
            handler(ctx, event)
            tx.add_event(event.event_id, event.type, json_of(event))
        except BaseException:
            tx.abort_event()
            raise
        tx.commit_event()
        heard = getattr(tx, "_arflow_heard", None)
        if heard is not None:
            told = _HAPPENED.get(type(event))
            if told is not None:
                heard.append(told(tx, event))
        return ctx

    def _issue_plain(
        self, tx: StoreTx, p: PlainInvoice, credit: dict[str, bool] | None = None
    ) -> bool:
        """``_apply_event`` of an InvoiceIssued without contract, payment node or order (the
        bulk of an import), minus the per-event bookkeeping. It reads and checks what
        ``_invoice_issued`` does, in the same order, and stages the same event, receivable
        and audit record as their stored JSON (``arflow.rows``: no models built); every check
        comes before the first write, so a refusal has nothing to undo. False when the event
        id is logged already.

        When the ledger applies unapplied cash and the customer has credit to apply, the
        invoice takes the general path instead. ``credit`` remembers the answer per customer
        (``apply_all`` clears it after any other event); its reads are prefetched per chunk."""
        if tx.has_event(p.event_id):
            return False
        if tx.get("receivable", p.number) is not None:
            raise DuplicateObject("receivable", p.number)
        customer: Customer | None = tx.get("customer", p.customer_id)
        if customer is None:
            raise UnknownObject("customer", p.customer_id)
        if self.apply_unapplied_cash and self._has_credit(tx, p, credit):
            if credit is not None:
                credit.pop(p.customer_id, None)  # the invoice may use the credit up
            return self._apply_event(tx, parse_event(p.body)) is not None
        if not p.positive:
            raise not_positive(f"invoice {p.number} amount", p.money)
        day = day_of(p.issued + customer.credit.payment_terms_days if p.due is None else p.due)
        not_before_issue(p.number, day, day_of(p.issued))
        data, audit = plain_rows(
            p, day, p.salesperson or customer.salesperson, p.region or customer.region
        )
        tx.put_row("receivable", p.number, p.customer_id, "open", day, data, p.summary)
        issued = day_of(p.issued)
        tx.add_movements(
            (
                (
                    p.number, p.customer_id, p.currency, "invoiced", issued, p.minor, 1, issued,
                    day, p.salesperson or customer.salesperson, p.region or customer.region,
                    p.product_line, None, None,
                ),
            )
        )  # fmt: skip
        tx.add_audit_row(("receivable", p.number, p.event_id, audit))
        tx.add_event(p.event_id, "InvoiceIssued", p.body)
        return True

    @staticmethod
    def _has_credit(tx: StoreTx, p: PlainInvoice, known: dict[str, bool] | None) -> bool:
        """Whether ``p``'s customer has unapplied cash or credit notes (``known`` remembers)."""
        got = None if known is None else known.get(p.customer_id)
        if got is None:
            got = _payments.has_open_credit(tx, p.customer_id)
            if known is not None:
                known[p.customer_id] = got
        return got

    def _invoice_issued_applying(self, ctx: Ctx, e: InvoiceIssued) -> None:
        """InvoiceIssued, then the customer's open credit applied to the new invoice."""
        self._invoice_issued(ctx, e)
        _payments.apply_open_credit(ctx, e.number, e.issue_date)

    def _own_invoice_handler(self) -> bool:
        """Whether InvoiceIssued goes to this class's handler (``_issue_plain`` stands in for
        it), not to a subclass's or a replaced one."""
        return type(self)._invoice_issued is Ledger._invoice_issued and self._handlers.get(
            InvoiceIssued
        ) in (self._invoice_issued, self._invoice_issued_applying)

    def replay(self, source: Store) -> int:
        """Apply every event logged in ``source`` to this (empty) book, in order."""
        return self.apply_all(parse_event(body) for _t, body in source.event_log())

    # -- the handlers, by event family --------------------------------------------------------
    _customer_registered = staticmethod(_parties.customer_registered)
    _customer_updated = staticmethod(_parties.customer_updated)
    _contact_feedback = staticmethod(_parties.contact_feedback)
    _contract_signed = staticmethod(_parties.contract_signed)
    _milestone_completed = staticmethod(_parties.milestone_completed)
    _person_added = staticmethod(_parties.person_added)
    _person_updated = staticmethod(_parties.person_updated)
    _person_left = staticmethod(_parties.person_left)
    _credit_reviewed = staticmethod(_parties.credit_reviewed)
    _invoice_issued = staticmethod(_invoices.invoice_issued)
    _credit_note_issued = staticmethod(_invoices.credit_note_issued)
    _written_off = staticmethod(_invoices.written_off)
    _payment_received = staticmethod(_payments.payment_received)
    _payment_reversed = staticmethod(_payments.payment_reversed)
    _cash_applied = staticmethod(_payments.cash_applied)
    _refund_issued = staticmethod(_payments.refund_issued)
    _dispute_opened = staticmethod(_disputes.dispute_opened)
    _dispute_resolved = staticmethod(_disputes.dispute_resolved)
    _promise_made = staticmethod(_disputes.promise_made)
    _promise_broken = staticmethod(_disputes.promise_broken)
    _order_submitted = staticmethod(_orders.order_submitted)
    _order_move = staticmethod(_orders.order_move)
    _order_lock_placed = staticmethod(_orders.order_lock_placed)
    _order_lock_lifted = staticmethod(_orders.order_lock_lifted)
    _dunning_step_recorded = staticmethod(_dunning.dunning_step_recorded)
    _dunning_block_changed = staticmethod(_dunning.dunning_block_changed)
    _risk_flagged = staticmethod(_dunning.risk_flagged)
    _task_created = staticmethod(_tasks.task_created)
    _task_completed = staticmethod(_tasks.task_completed)
    _task_cancelled = staticmethod(_tasks.task_cancelled)
    _task_reassigned = staticmethod(_tasks.task_reassigned)
    _task_overdue = staticmethod(_tasks.task_overdue)

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
        pays = self.store.find("payment", customer_id=customer_id, states=[UNAPPLIED])
        notes = self.store.find("credit_note", customer_id=customer_id, states=[UNAPPLIED])
        return _by_currency(
            [p.unapplied for p in pays if p.unapplied] + [n.unapplied for n in notes if n.unapplied]
        )

    def exposure(self, customer_id: str) -> dict[str, Money]:
        """Open receivables plus orders not refused and not yet invoiced, per currency."""
        orders = self.store.find("order", customer_id=customer_id, states=EXPOSURE_ORDER_STATES)
        return _by_currency(
            [r.open_balance for r in self.open_items(customer_id)] + [o.amount for o in orders]
        )

    def credit_available(self, customer_id: str) -> Money | None:
        """Credit limit minus exposure in the limit's currency (None without a limit)."""
        limit = self.customer(customer_id).credit.credit_limit
        if limit is None:
            return None
        used = self.exposure(customer_id).get(limit.currency, zero(limit.currency))
        return limit - used

    def audit_trail(self, kind: str, object_id: str) -> list[AuditRecord]:
        return self.store.audit_trail(kind, object_id)


class Batch:
    """Events applied inside one open transaction (see :meth:`Ledger.batch`)."""

    def __init__(self, ledger: Ledger, tx: StoreTx) -> None:
        self.ledger, self.tx = ledger, tx

    def apply(self, event: Event) -> Applied:
        return self.ledger._apply_in(self.tx, event)


def _customer_of(tx: StoreTx, kind: str, object_id: str) -> str | None:
    """The customer of an object as the transaction sees it (None: not held, or a kind
    without one)."""
    if kind == "customer":
        return object_id
    try:
        obj = tx.get(kind, object_id)
    except Exception:  # a kind the store does not keep: no customer to tell
        return None
    return None if obj is None else getattr(obj, "customer_id", None)


def _order_told(kind: HappenedKind) -> Callable[[StoreTx, Any], Happened]:
    def told(tx: StoreTx, e: Any) -> Happened:
        cid = _customer_of(tx, "order", e.order_id)
        return Happened(kind, e.event_id, "order", e.order_id, cid, e.occurred_at.date())

    return told


def _lock_told(kind: HappenedKind, day: str) -> Callable[[StoreTx, Any], Happened]:
    def told(tx: StoreTx, e: Any) -> Happened:
        return Happened(
            kind, e.event_id, "customer", e.customer_id, e.customer_id, getattr(e, day), e.lock_id
        )

    return told


def _task_told(tx: StoreTx, e: TaskCreated) -> Happened:
    return Happened(
        "task_created", e.event_id, "task", e.task_id, e.customer_id, e.created_on, e.kind
    )


def _process_told(day: str) -> Callable[[StoreTx, Any], Happened]:
    def told(tx: StoreTx, e: Any) -> Happened:
        step = getattr(e, "step", None)
        if isinstance(e, StepDecided):
            step = f"{e.step}:{e.decision}"
        elif isinstance(e, ProcessStepTimedOut):
            step = f"{e.step}:timed_out"
        elif step is None:
            step = "started"
        cid = _customer_of(tx, "process", e.process_id)
        return Happened(
            "process_step", e.event_id, "process", e.process_id, cid, getattr(e, day), step
        )

    return told


#: The events whose application the host's subscribers are told of, and how.
_HAPPENED: dict[type[BaseEvent], Callable[[StoreTx, Any], Happened]] = {
    OrderRejected: _order_told("order_refused"),
    OrderApproved: _order_told("order_approved"),
    OrderApprovalRequested: _order_told("approval_requested"),
    OrderLockPlaced: _lock_told("lock_placed", "placed_on"),
    OrderLockLifted: _lock_told("lock_lifted", "lifted_on"),
    TaskCreated: _task_told,
    ProcessStarted: _process_told("started_on"),
    StepDecided: _process_told("decided_on"),
    ProcessStepTimedOut: _process_told("timed_out_on"),
}


def _by_currency(amounts: Iterable[Money]) -> dict[str, Money]:
    out: dict[str, Decimal] = {}
    for m in amounts:
        out[m.currency] = out.get(m.currency, Decimal(0)) + m.amount
    return {c: Money(amount=a, currency=c) for c, a in sorted(out.items())}


__all__ = ["ORDER_EVENTS", "Applied", "Batch", "Ledger", "OrderPolicy"]
