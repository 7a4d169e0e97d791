"""Handlers of cash: payments received (allocated by :mod:`._allocation`, then written, with
the promises they pay into), payments reversed (their allocations and promises undone), and
the customer's credit (unapplied cash, open credit notes) applied to later invoices or
refunded."""

from __future__ import annotations

from datetime import date

from ..domain import Allocation, CreditNote, Payment, PromiseStatus, PromiseToPay, Receivable
from ..errors import ClosedItem, ValidationError
from ..events import CashApplied, PaymentReceived, PaymentReversed, RefundIssued
from ..money import Money, total
from ..store import StoreTx
from ..store.base import UNAPPLIED
from ._allocation import (
    Plan,
    allocate_explicit,
    allocate_oldest_first,
    apply_credit_oldest_first,
    check_application,
    check_refund,
    unapplied,
)
from ._checks import LIVE_STATES, R, live, positive, zero
from ._context import Ctx, in_dispute, move_receivable, reduced


def payment_received(ctx: Ctx, e: PaymentReceived) -> None:
    """A payment: allocated (explicitly, or oldest first), written, promises tracked."""
    ctx.absent("payment", e.payment_id)
    ctx.get("customer", e.customer_id)
    positive(e.amount, f"payment {e.payment_id} amount")
    plan: Plan
    if e.allocations is not None:
        get = ctx.tx.get
        found: dict[str, Receivable] = {}
        for req in e.allocations:
            r = get("receivable", req.receivable_id)
            if r is not None:
                found[req.receivable_id] = r
        plan = allocate_explicit(e.payment_id, e.customer_id, e.amount, e.allocations, found)
    else:
        plan = allocate_oldest_first(e.amount, ctx.tx.iter_by_due(e.customer_id, LIVE_STATES))
    allocations = []
    promises: list[str] = []
    for r, amount in plan:
        reduced(ctx, r, amount, "paid", e.received_on)
        allocations.append(Allocation(payment_id=e.payment_id, receivable_id=r.id, amount=amount))
        if r.promise_id is not None and r.promise_id not in promises:
            promises.append(r.promise_id)
    left = unapplied(e.amount, plan)
    payment = Payment(
        id=e.payment_id,
        customer_id=e.customer_id,
        amount=e.amount,
        received_on=e.received_on,
        reference=e.reference,
        allocations=tuple(allocations),
        unapplied=left,
    )
    ctx.put(
        payment,
        None,
        f"received {e.amount}, applied to {len(allocations)} item(s), unapplied {left}",
    )
    for pid in promises:
        track_promise(ctx, pid, plan)


def track_promise(ctx: Ctx, promise_id: str, plan: Plan) -> None:
    """Count what ``plan`` paid into the items of an open promise; keep it once it is paid."""
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
                ctx.put(move_receivable(r, "keep_promise"), r, f"promise {p.id} kept")


def payment_reversed(ctx: Ctx, e: PaymentReversed) -> None:
    """Undo a payment's allocations, reopening its receivables and promises."""
    p: Payment = ctx.get("payment", e.payment_id)
    if p.reversed:
        raise ClosedItem("payment", p.id, "reversed", "PaymentReversed")
    for a in p.allocations:
        r: Receivable = ctx.get("receivable", a.receivable_id)
        if r.state in (R.WRITTEN_OFF, R.CREDITED):
            raise ClosedItem("receivable", r.id, str(r.state), "PaymentReversed")
        reopened = r.open_balance + a.amount
        new = move_receivable(
            r,
            "reopen",
            paid=r.paid - a.amount,
            open_balance=reopened,
            closed_on=None,
            disputed_amount=reopened.min(in_dispute(ctx, r)),
        )
        if new.disputed_amount and new.state in (R.OPEN, R.PARTIALLY_PAID):
            # the dispute is still open: the reopened invoice is disputed again
            new = move_receivable(new, "dispute")
        ctx.put(new, r, f"payment {p.id} reversed: {a.amount} reopened")
    unkeep_promises(ctx, p, e.reversed_on)
    ctx.put(
        p.model_copy(update={"reversed": True, "unapplied": zero(p.amount.currency)}),
        p,
        f"reversed on {e.reversed_on}",
    )


def unkeep_promises(ctx: Ctx, p: Payment, on: date) -> None:
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
        received = back if back.is_positive else zero(promise.amount.currency)
        status: PromiseStatus = promise.status
        items = [ctx.get("receivable", rid) for rid in promise.receivable_ids]
        still_kept = received >= promise.amount or all(r.is_closed for r in items)
        if status == PromiseStatus.KEPT and not still_kept:
            if on <= promise.promised_date:
                status = PromiseStatus.OPEN
                for r in items:
                    if r.state in (R.OPEN, R.PARTIALLY_PAID) and r.promise_id == pid:
                        ctx.put(
                            move_receivable(r, "promise", promise_id=pid),
                            r,
                            f"payment {p.id} reversed: back under promise {pid}",
                        )
            else:
                status = (
                    PromiseStatus.PARTIALLY_KEPT if received.is_positive else PromiseStatus.BROKEN
                )
        ctx.put(
            promise.model_copy(update={"received": received, "status": status}),
            promise,
            f"payment {p.id} reversed: received {received} of {promise.amount}, {status}",
        )


# -- the customer's credit: applied to later invoices, refunded -------------------------------

#: A customer's credit: a payment with cash left unapplied, or a credit note with a remainder.
Credit = Payment | CreditNote


def open_credits(tx: StoreTx, customer_id: str, currency: str | None = None) -> list[Credit]:
    """The customer's credits with something left to apply (in ``currency`` if given),
    oldest first: by the day received or issued, then payments before credit notes, then id."""
    pays = tx.find("payment", customer_id=customer_id, states=[UNAPPLIED])
    notes = tx.find("credit_note", customer_id=customer_id, states=[UNAPPLIED])
    found: list[tuple[date, int, str, Credit]] = [
        (p.received_on, 0, p.id, p) for p in pays if p.unapplied.is_positive and not p.reversed
    ]
    found += [(n.issued_on, 1, n.id, n) for n in notes if n.unapplied.is_positive]
    return [
        c for _d, _k, _i, c in sorted(found) if currency is None or c.unapplied.currency == currency
    ]


def has_open_credit(tx: StoreTx, customer_id: str) -> bool:
    """Whether the customer has any credit left to apply (the plain-invoice path asks)."""
    return bool(open_credits(tx, customer_id))


def apply_open_credit(ctx: Ctx, receivable_id: str, on: date) -> None:
    """Apply the customer's open credits, oldest first, to a receivable just issued: what
    the ledger does when it applies unapplied cash automatically."""
    r: Receivable = ctx.get("receivable", receivable_id)
    credits = open_credits(ctx.tx, r.customer_id, r.currency)
    if not credits:
        return
    by_id = {(type(c).__name__, c.id): c for c in credits}
    plan = apply_credit_oldest_first(
        r.undisputed_balance, [((type(c).__name__, c.id), c.unapplied) for c in credits]
    )
    for key, amount in plan:
        r = _apply(ctx, by_id[key], r, amount, on)


def _apply(ctx: Ctx, credit: Credit, r: Receivable, amount: Money, on: date) -> Receivable:
    """Write ``amount`` of ``credit`` applied to ``r`` (checked before): the receivable paid
    (cash) or credited (a credit note), the credit's remainder and its allocations, promises."""
    is_cash = isinstance(credit, Payment)
    new_r = reduced(ctx, r, amount, "paid" if is_cash else "credited", on)
    alloc = Allocation(payment_id=credit.id, receivable_id=r.id, amount=amount)
    left = credit.unapplied - amount
    new_credit: Credit
    if isinstance(credit, Payment):
        new_credit = credit.model_copy(
            update={"allocations": (*credit.allocations, alloc), "unapplied": left}
        )
    else:
        new_credit = credit.model_copy(
            update={"applications": (*credit.applications, alloc), "unapplied": left}
        )
    ctx.put(new_credit, credit, f"applied {amount} to {r.id}, unapplied {left}")
    if is_cash and r.promise_id is not None:
        track_promise(ctx, r.promise_id, [(r, amount)])
    return new_r


def cash_applied(ctx: Ctx, e: CashApplied) -> None:
    """Apply a payment's unapplied cash, or a credit note's remainder, to one invoice of
    the same customer; refused (nothing changed) beyond what is unapplied or open."""
    if (e.payment_id is None) == (e.credit_note_id is None):
        raise ValidationError("CashApplied names exactly one of payment_id and credit_note_id")
    credit: Credit
    if e.payment_id is not None:
        p: Payment = ctx.get("payment", e.payment_id)
        if p.reversed:
            raise ClosedItem("payment", p.id, "reversed", "CashApplied")
        credit, what = p, f"payment {p.id}"
    else:
        credit = ctx.get("credit_note", str(e.credit_note_id))
        what = f"credit note {credit.id}"
    r: Receivable = ctx.get("receivable", e.receivable_id)
    if r.customer_id != credit.customer_id:
        raise ValidationError(
            f"{what}: receivable {r.id} belongs to customer {r.customer_id!r}, "
            f"not {credit.customer_id!r}"
        )
    live(r, "CashApplied")
    check_application(what, credit.unapplied, r, e.amount)
    _apply(ctx, credit, r, e.amount, e.applied_on)


def refund_issued(ctx: Ctx, e: RefundIssued) -> None:
    """Pay back unapplied cash: the payment's unapplied amount goes down, its refunded up."""
    p: Payment = ctx.get("payment", e.payment_id)
    if p.reversed:
        raise ClosedItem("payment", p.id, "reversed", "RefundIssued")
    check_refund(f"payment {p.id}", p.unapplied, e.amount)
    before = p.refunded if p.refunded is not None else zero(p.amount.currency)
    left = p.unapplied - e.amount
    ctx.put(
        p.model_copy(update={"unapplied": left, "refunded": before + e.amount}),
        p,
        f"refunded {e.amount} on {e.refunded_on}, unapplied {left}",
    )
