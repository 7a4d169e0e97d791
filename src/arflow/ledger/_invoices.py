"""Handlers of the events that make or end what a customer owes: invoices issued (with the
due date from their contract's payment node, or the customer's terms), credit notes and
write-offs."""

from __future__ import annotations

from datetime import date

from ..domain import Contract, CreditNote, Customer, Milestone, Order, OrderState, Receivable
from ..errors import InvalidDates, UnknownObject, ValidationError
from ..events import CreditNoteIssued, InvoiceIssued, WrittenOff
from ..lifecycle import ORDER_MACHINE, move
from ..rows import issued_summary
from ._checks import live, positive, same_currency, zero
from ._context import Ctx, move_receivable, reduce
from ._requests import check_invoice, link_invoice

#: Dates by ordinal, for the bulk path (an import's due dates are a few thousand days).
_DAYS: dict[int, date] = {}

_new_receivable = Receivable.__pydantic_validator__.validate_python


def invoice_issued(ctx: Ctx, e: InvoiceIssued) -> None:
    """A new receivable, due by its payment node, its own date, its order's terms or the
    customer's terms."""
    ctx.absent("receivable", e.number)
    customer: Customer = ctx.get("customer", e.customer_id)
    positive(e.amount, f"invoice {e.number} amount")
    due = e.due_date
    salesperson = e.salesperson or customer.salesperson
    contract: Contract | None = None
    if e.contract_id is not None:
        contract = ctx.get("contract", e.contract_id)
        if contract.customer_id != e.customer_id:
            raise ValidationError(
                f"invoice {e.number}: contract {contract.id!r} belongs to customer "
                f"{contract.customer_id!r}, not {e.customer_id!r}"
            )
        same_currency(contract.amount, e.amount, f"invoice {e.number} vs its contract")
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
    order: Order | None = None
    if e.order_id is not None:
        order = ctx.get("order", e.order_id)
        if due is None and order.payment_terms_days is not None:
            due = date.fromordinal(e.issue_date.toordinal() + order.payment_terms_days)
    due = due_by_terms(e, due, customer)
    r = issued(e, customer, due, salesperson)
    request = check_invoice(ctx, e, contract)
    if order is not None:
        if order.customer_id != e.customer_id:
            raise ValidationError(
                f"invoice {e.number}: order {order.id!r} belongs to {order.customer_id!r}"
            )
        same_currency(order.amount, e.amount, f"invoice {e.number} vs its order")
        state = move(ORDER_MACHINE, "order", order.id, order.state, "invoice")
        ctx.put(
            order.model_copy(update={"state": OrderState(state), "receivable_id": e.number}),
            order,
            f"invoiced as {e.number}",
        )
    ctx.put(r, None, invoice_summary(e, due))
    link_invoice(ctx, e, request)


def issued(e: InvoiceIssued, customer: Customer, due: date, salesperson: str | None) -> Receivable:
    """The receivable an InvoiceIssued creates, once its due date and salesperson are known."""
    z = zero(e.amount.currency)
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
            "paid": z,
            "credited": z,
            "written_off": z,
            "disputed_amount": z,
            "open_balance": e.amount,
            "salesperson": salesperson,
            "region": e.region or customer.region,
            "product_line": e.product_line,
            "tags": e.tags,
            "invoice_request_id": e.invoice_request_id,
        }
    )
    return r


def due_by_terms(e: InvoiceIssued, due: date | None, customer: Customer) -> date:
    """``due``, or else the customer's payment terms from the issue date; never before it."""
    if due is None:
        due = date.fromordinal(e.issue_date.toordinal() + customer.credit.payment_terms_days)
    not_before_issue(e.number, due, e.issue_date)
    return due


def not_before_issue(number: str, due: date, issued: date) -> None:
    """Refuse an invoice due before it was issued."""
    if due < issued:
        raise InvalidDates(f"invoice {number}: due date {due} is before issue date {issued}")


def day_of(ordinal: int) -> date:
    """The date of an ordinal, remembered (an import's dates are a few thousand days)."""
    day = _DAYS.get(ordinal)
    if day is None:
        if len(_DAYS) >= 100_000:
            _DAYS.clear()
        day = _DAYS[ordinal] = date.fromordinal(ordinal)
    return day


def invoice_summary(e: InvoiceIssued, due: date) -> str:
    """The audit summary of issuing ``e`` (the plain-invoice path writes the same)."""
    return issued_summary(str(e.amount), due)


def credit_note_issued(ctx: Ctx, e: CreditNoteIssued) -> None:
    """A credit note: taken off its receivable, or kept as the customer's credit."""
    ctx.absent("credit_note", e.credit_note_id)
    ctx.get("customer", e.customer_id)
    positive(e.amount, f"credit note {e.credit_note_id} amount")
    unapplied = e.amount
    if e.receivable_id is not None:
        r: Receivable = ctx.get("receivable", e.receivable_id)
        if r.customer_id != e.customer_id:
            raise ValidationError(
                f"credit note {e.credit_note_id}: receivable {r.id} belongs to customer "
                f"{r.customer_id!r}"
            )
        live(r, "CreditNoteIssued")
        reduce(ctx, r, e.amount, "credited", e.issued_on)
        unapplied = zero(e.amount.currency)
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


def written_off(ctx: Ctx, e: WrittenOff) -> None:
    """Write off what is still open on a receivable, closing it."""
    r: Receivable = ctx.get("receivable", e.receivable_id)
    live(r, "WrittenOff")
    z = zero(r.currency)
    new = move_receivable(
        r,
        "write_off",
        written_off=r.written_off + r.open_balance,
        open_balance=z,
        disputed_amount=z,
        closed_on=e.written_off_on,
    )
    ctx.put(new, r, f"wrote off {r.open_balance} on {e.written_off_on}")
