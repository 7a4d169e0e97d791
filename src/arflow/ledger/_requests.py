"""Handlers of invoice requests: asked for (by hand, by a completed milestone, by a shipped
order), waiting for their documents, with finance, approved or rejected, invoiced; and of
an invoice's stage with the customer (sent, confirmed).

Every move goes through ``INVOICE_REQUEST_MACHINE``; every check comes before the first
write, so a refused event changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal

from ..domain import (
    MAX_ID_LENGTH,
    ROLE_HOLDERS,
    TERMINAL_REQUEST_STATES,
    Contract,
    Customer,
    Document,
    InvoiceRequest,
    InvoiceRequestState,
    Milestone,
    Order,
    PaymentNode,
    Person,
    Receivable,
)
from ..errors import (
    DocumentsMissing,
    DuplicateObject,
    MilestoneNotDone,
    OverInvoiced,
    RoleRequired,
    UnknownObject,
    ValidationError,
)
from ..events import (
    DocumentAttached,
    InvoiceConfirmed,
    InvoiceIssued,
    InvoiceRequestApproved,
    InvoiceRequestCancelled,
    InvoiceRequested,
    InvoiceRequestRejected,
    InvoiceSent,
)
from ..lifecycle import INVOICE_REQUEST_MACHINE, STAGE_MACHINE, move
from ..money import Money
from ._checks import positive, same_currency
from ._context import Ctx

IR = InvoiceRequestState
#: Who a new request belongs to when nobody asked for it by hand.
PROJECT_MANAGER = ROLE_HOLDERS + "project_manager"
#: The default role that approves invoice requests (``Ledger(finance_role=...)``).
FINANCE_ROLE = "finance"
#: What the stage of an invoice is called before it is sent.
ISSUED = "issued"


def request_id(*parts: str) -> str:
    """The id of the request a milestone or a shipped order makes: ``IR-`` and its parts,
    or, when that is too long for an id, ``IR-`` and a digest of them."""
    rid = "IR-" + "-".join(parts)
    if len(rid) <= MAX_ID_LENGTH:
        return rid
    return "IR-" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


# -- what is left to invoice ---------------------------------------------------------------------


def _requests_of(ctx: Ctx, customer_id: str) -> list[InvoiceRequest]:
    return list(ctx.tx.find("invoice_request", customer_id=customer_id))


def _invoiced_on_node(ctx: Ctx, contract: Contract, node_id: str) -> Decimal:
    """What the node's invoices ask for, less what was credited on them."""
    return sum(
        (
            r.amount.amount - r.credited.amount
            for r in ctx.tx.find("receivable", customer_id=contract.customer_id)
            if r.contract_id == contract.id and r.payment_node_id == node_id
        ),
        Decimal(0),
    )


def node_left(ctx: Ctx, contract: Contract, node: PaymentNode, besides: str | None = None) -> Money:
    """What is left to invoice on ``node``: its amount less its invoices and less the
    requests for it still open or approved (but ``besides``)."""
    pending = sum(
        (
            q.amount.amount
            for q in _requests_of(ctx, contract.customer_id)
            if q.contract_id == contract.id
            and q.payment_node_id == node.id
            and q.state not in TERMINAL_REQUEST_STATES
            and q.id != besides
        ),
        Decimal(0),
    )
    full = contract.node_amount(node)
    left = full.amount - _invoiced_on_node(ctx, contract, node.id) - pending
    return Money(amount=max(left, Decimal(0)), currency=full.currency)


def _milestone_open(ctx: Ctx, node: PaymentNode) -> str | None:
    """The id of the milestone ``node`` falls due on, when it is not done (else None)."""
    mid = node.due.milestone_id if node.due.basis == "milestone" else None
    if mid is None:
        return None
    ms: Milestone | None = ctx.tx.get("milestone", mid)
    return mid if ms is not None and ms.status != "done" else None


# -- creating -----------------------------------------------------------------------------------


def _create(ctx: Ctx, req: InvoiceRequest, summary: str, finance: str) -> None:
    """Store a new request and send it on: to finance when its documents are all there,
    else to wait for them (each move audited)."""
    ctx.put(req, None, summary)
    _send_on(ctx, req, finance)


def _send_on(ctx: Ctx, req: InvoiceRequest, finance: str) -> InvoiceRequest:
    missing = req.missing_documents
    if missing:
        if req.state != IR.REQUESTED:
            return req
        state = move(
            INVOICE_REQUEST_MACHINE, "invoice_request", req.id, req.state, "await_documents"
        )
        new = req.model_copy(update={"state": IR(state), "owner": req.requested_by})
        ctx.put(new, req, f"waiting for {', '.join(missing)}")
        return new
    state = move(
        INVOICE_REQUEST_MACHINE,
        "invoice_request",
        req.id,
        req.state,
        "to_finance",
        documents_complete=not missing,
    )
    new = req.model_copy(update={"state": IR(state), "owner": ROLE_HOLDERS + finance})
    ctx.put(new, req, "sent to finance")
    return new


def invoice_requested(ctx: Ctx, e: InvoiceRequested, finance: str) -> None:
    """A request by hand: for a payment node (no more than it has left), an order (no more
    than its amount) or neither."""
    ctx.absent("invoice_request", e.request_id)
    customer: Customer = ctx.get("customer", e.customer_id)
    positive(e.amount, f"invoice request {e.request_id} amount")
    required = list(e.required_documents)
    milestone_id = None
    if e.contract_id is not None:
        contract: Contract = ctx.get("contract", e.contract_id)
        if contract.customer_id != customer.id:
            raise ValidationError(
                f"invoice request {e.request_id}: contract {contract.id!r} belongs to "
                f"customer {contract.customer_id!r}"
            )
        same_currency(contract.amount, e.amount, f"invoice request {e.request_id}")
        if e.payment_node_id is not None:
            node = contract.node(e.payment_node_id)
            if node is None:
                raise UnknownObject("payment node", f"{contract.id}/{e.payment_node_id}")
            left = node_left(ctx, contract, node)
            if e.amount.amount > left.amount:
                raise OverInvoiced(
                    f"invoice request {e.request_id}", e.amount, left, f"{contract.id}/{node.id}"
                )
            required += [d for d in node.documents or () if d not in required]
            milestone_id = node.due.milestone_id
    elif e.payment_node_id is not None:
        raise ValidationError(f"invoice request {e.request_id}: a payment node needs its contract")
    if e.order_id is not None:
        order: Order = ctx.get("order", e.order_id)
        if order.customer_id != customer.id:
            raise ValidationError(
                f"invoice request {e.request_id}: order {order.id!r} belongs to "
                f"{order.customer_id!r}"
            )
        same_currency(order.amount, e.amount, f"invoice request {e.request_id} vs its order")
        if e.amount.amount > order.amount.amount:
            raise OverInvoiced(
                f"invoice request {e.request_id}", e.amount, order.amount, f"order {order.id}"
            )
    who = e.owner or e.actor
    req = InvoiceRequest(
        id=e.request_id,
        customer_id=customer.id,
        amount=e.amount,
        text=e.text,
        contract_id=e.contract_id,
        payment_node_id=e.payment_node_id,
        milestone_id=milestone_id,
        order_id=e.order_id,
        requested_on=e.requested_on,
        requested_by=who,
        owner=who,
        required_documents=tuple(required),
    )
    _create(ctx, req, f"requested {e.amount} by {e.actor}", finance)


def from_milestone(
    ctx: Ctx, m: Milestone, contract: Contract, node: PaymentNode, on: date, finance: str
) -> None:
    """The request a completed milestone makes for ``node`` (none when the node has a
    request already or nothing left to invoice)."""
    rid = request_id(contract.id, node.id)
    if ctx.tx.get("invoice_request", rid) is not None:
        return
    left = node_left(ctx, contract, node)
    if not left.amount:
        return
    m_name = m.name or m.id
    c_name = contract.title or contract.id
    text = (
        f'Invoice {left} for milestone "{m_name}" of contract "{c_name}" ({node.label or node.id})'
    )
    req = InvoiceRequest(
        id=rid,
        customer_id=contract.customer_id,
        amount=left,
        text=text,
        contract_id=contract.id,
        payment_node_id=node.id,
        milestone_id=m.id,
        requested_on=on,
        requested_by=contract.salesperson or PROJECT_MANAGER,
        owner=contract.salesperson or PROJECT_MANAGER,
        required_documents=tuple(node.documents or ()),
    )
    _create(ctx, req, f'milestone "{m_name}" done', finance)


def from_order(
    ctx: Ctx, order: Order, on: date, documents: Mapping[str, Sequence[str]], finance: str
) -> None:
    """The request a shipped order makes (with the documents its order type requires)."""
    rid = request_id(order.id)
    if ctx.tx.get("invoice_request", rid) is not None:
        return
    need = tuple(documents.get(order.order_type or "", ()))
    req = InvoiceRequest(
        id=rid,
        customer_id=order.customer_id,
        amount=order.amount,
        text=f"Invoice {order.amount} for order {order.id} shipped on {on.isoformat()}",
        contract_id=order.contract_id,
        order_id=order.id,
        requested_on=on,
        requested_by=ROLE_HOLDERS + "sales",
        owner=ROLE_HOLDERS + "sales",
        required_documents=need,
    )
    _create(ctx, req, f"order {order.id} shipped", finance)


# -- documents and decisions ---------------------------------------------------------------------


def document_attached(ctx: Ctx, e: DocumentAttached, finance: str) -> None:
    """Attach a document; a request waiting for it goes to finance when none is missing."""
    req: InvoiceRequest = ctx.get("invoice_request", e.request_id)
    move(INVOICE_REQUEST_MACHINE, "invoice_request", req.id, req.state, "attach")
    if any(d.kind == e.kind for d in req.documents):
        raise DuplicateObject("document", f"{req.id}/{e.kind}")
    doc = Document(
        kind=e.kind,
        reference=e.reference,
        sha256=e.sha256,
        attached_by=e.actor,
        attached_at=e.occurred_at,
    )
    new = req.model_copy(update={"documents": (*req.documents, doc)})
    ctx.put(new, req, f"{e.kind} attached: {e.reference} (sha256 {e.sha256[:12]})")
    if new.state == IR.AWAITING_DOCUMENTS and not new.missing_documents:
        _send_on(ctx, new, finance)


def _finance_decision(ctx: Ctx, req: InvoiceRequest, who: str, trigger: str, role: str) -> str:
    """The state ``trigger`` moves ``req`` to, once ``who`` may decide it: refused with
    ``DocumentsMissing`` before the documents are there, ``IllegalTransition`` from any
    other state but with finance, ``RoleRequired`` unless ``who`` is an active person of
    the directory holding ``role``."""
    if req.state in (IR.REQUESTED, IR.AWAITING_DOCUMENTS) and req.missing_documents:
        raise DocumentsMissing(req.id, str(req.state), trigger, req.missing_documents)
    state = move(INVOICE_REQUEST_MACHINE, "invoice_request", req.id, req.state, trigger)
    person: Person | None = ctx.tx.get("person", who)
    if person is None:
        raise RoleRequired(req.id, who, role, "not a person of the directory")
    if not person.active:
        raise RoleRequired(req.id, who, role, f"{person.name} has left")
    if role not in person.roles:
        raise RoleRequired(req.id, who, role, f"{person.name} holds {', '.join(person.roles)}")
    return state


def request_approved(ctx: Ctx, e: InvoiceRequestApproved, finance: str) -> None:
    req: InvoiceRequest = ctx.get("invoice_request", e.request_id)
    state = _finance_decision(ctx, req, e.approver, "approve", finance)
    if req.contract_id is not None and req.payment_node_id is not None and not e.before_milestone:
        contract: Contract = ctx.get("contract", req.contract_id)
        node = contract.node(req.payment_node_id)
        waiting = None if node is None else _milestone_open(ctx, node)
        if waiting is not None:
            raise MilestoneNotDone(f"invoice request {req.id}", waiting)
    new = req.model_copy(
        update={
            "state": IR(state),
            "approved_by": e.approver,
            "before_milestone": e.before_milestone,
            "decided_on": e.approved_on,
            "comment": e.comment,
        }
    )
    early = " before its milestone" if e.before_milestone else ""
    ctx.put(new, req, f"approved by {e.approver}{early}" + (f": {e.comment}" if e.comment else ""))


def request_rejected(ctx: Ctx, e: InvoiceRequestRejected, finance: str) -> None:
    req: InvoiceRequest = ctx.get("invoice_request", e.request_id)
    state = _finance_decision(ctx, req, e.approver, "reject", finance)
    new = req.model_copy(
        update={
            "state": IR(state),
            "approved_by": e.approver,
            "decided_on": e.rejected_on,
            "comment": e.comment,
            "owner": req.requested_by,
        }
    )
    ctx.put(new, req, f"rejected by {e.approver}" + (f": {e.comment}" if e.comment else ""))


def request_cancelled(ctx: Ctx, e: InvoiceRequestCancelled) -> None:
    req: InvoiceRequest = ctx.get("invoice_request", e.request_id)
    state = move(INVOICE_REQUEST_MACHINE, "invoice_request", req.id, req.state, "cancel")
    new = req.model_copy(update={"state": IR(state), "decided_on": e.cancelled_on})
    ctx.put(new, req, f"cancelled by {e.actor}")


# -- invoices from requests ----------------------------------------------------------------------


def check_invoice(ctx: Ctx, e: InvoiceIssued, contract: Contract | None) -> InvoiceRequest | None:
    """Refuse an invoice that its request, payment node or milestone does not allow; return
    the request it is issued from (None: issued directly). Reads only."""
    req: InvoiceRequest | None = None
    if e.invoice_request_id is not None:
        req = ctx.get("invoice_request", e.invoice_request_id)
        if (req.customer_id, req.contract_id, req.payment_node_id, req.order_id) != (
            e.customer_id,
            e.contract_id,
            e.payment_node_id,
            e.order_id,
        ):
            raise ValidationError(
                f"invoice {e.number}: request {req.id} is for customer {req.customer_id!r}, "
                f"contract {req.contract_id!r}, node {req.payment_node_id!r}, order "
                f"{req.order_id!r}: the invoice must name the same"
            )
        same_currency(req.amount, e.amount, f"invoice {e.number} vs its request")
        if req.state != IR.APPROVED and req.missing_documents:
            raise DocumentsMissing(req.id, str(req.state), "invoice", req.missing_documents)
        move(INVOICE_REQUEST_MACHINE, "invoice_request", req.id, req.state, "invoice")
        if e.amount.amount > req.amount.amount:
            raise OverInvoiced(f"invoice {e.number}", e.amount, req.amount, f"request {req.id}")
    if contract is not None and e.payment_node_id is not None:
        node = contract.node(e.payment_node_id)
        if node is None:
            return req
        waiting = _milestone_open(ctx, node)
        if waiting is not None and not (req is not None and req.before_milestone):
            raise MilestoneNotDone(f"invoice {e.number}", waiting)
        full = contract.node_amount(node)
        left = full.amount - _invoiced_on_node(ctx, contract, node.id)
        if e.amount.amount > left:
            raise OverInvoiced(
                f"invoice {e.number}",
                e.amount,
                Money(amount=max(left, Decimal(0)), currency=full.currency),
                f"{contract.id}/{node.id}",
            )
    return req


def link_invoice(ctx: Ctx, e: InvoiceIssued, req: InvoiceRequest | None) -> None:
    """After the invoice is written: its request is invoiced; issued directly, the open
    requests for the same payment node or order are superseded (cancelled, saying so)."""
    if req is not None:
        new = req.model_copy(
            update={"state": IR.INVOICED, "receivable_id": e.number, "owner": None}
        )
        ctx.put(new, req, f"invoiced as {e.number}")
        return
    if e.payment_node_id is None and e.order_id is None:
        return
    for q in _open_for(ctx, e):
        state = move(INVOICE_REQUEST_MACHINE, "invoice_request", q.id, q.state, "supersede")
        new = q.model_copy(update={"state": IR(state), "receivable_id": e.number})
        ctx.put(new, q, f"superseded: invoiced directly as {e.number}")


def _open_for(ctx: Ctx, e: InvoiceIssued) -> Iterable[InvoiceRequest]:
    for q in sorted(_requests_of(ctx, e.customer_id), key=lambda q: q.id):
        if q.state not in (IR.REQUESTED, IR.AWAITING_DOCUMENTS, IR.WITH_FINANCE):
            continue
        same_node = e.payment_node_id is not None and (q.contract_id, q.payment_node_id) == (
            e.contract_id,
            e.payment_node_id,
        )
        if same_node or (e.order_id is not None and q.order_id == e.order_id):
            yield q


# -- an invoice's stage with the customer --------------------------------------------------------


def _stage(ctx: Ctx, receivable_id: str, trigger: str, on: date, field: str) -> None:
    r: Receivable = ctx.get("receivable", receivable_id)
    stage = move(STAGE_MACHINE, "receivable stage", r.id, r.stage or ISSUED, trigger)
    new = r.model_copy(update={"stage": stage, field: on})
    ctx.put(new, r, f"{stage} on {on.isoformat()}")


def invoice_sent(ctx: Ctx, e: InvoiceSent) -> None:
    _stage(ctx, e.receivable_id, "send", e.sent_on, "sent_on")


def invoice_confirmed(ctx: Ctx, e: InvoiceConfirmed) -> None:
    _stage(ctx, e.receivable_id, "confirm", e.confirmed_on, "confirmed_on")
