"""Handlers of what a customer says about what they owe: disputes opened and resolved,
promises to pay made and broken (a promise is kept by payments: see :mod:`._payments`)."""

from __future__ import annotations

from ..domain import Dispute, PromiseStatus, PromiseToPay, Receivable
from ..errors import ClosedItem, InvalidDates, OverAllocation, ValidationError
from ..events import DisputeOpened, DisputeResolved, PromiseBroken, PromiseMade
from ._checks import R, live, positive, same_currency, zero
from ._context import Ctx, in_dispute, move_receivable


def dispute_opened(ctx: Ctx, e: DisputeOpened) -> None:
    """Put part (by default all) of a receivable's undisputed balance in dispute."""
    ctx.absent("dispute", e.dispute_id)
    r: Receivable = ctx.get("receivable", e.receivable_id)
    live(r, "DisputeOpened")
    undisputed = r.undisputed_balance
    amount = e.amount if e.amount is not None else undisputed
    same_currency(r.amount, amount, f"dispute {e.dispute_id}")
    positive(amount, f"disputed amount of {e.dispute_id}")
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
    new = move_receivable(r, "dispute", disputed_amount=r.disputed_amount + amount)
    ctx.put(new, r, f"disputed {amount} ({e.reason_code})")
    ctx.put(d, None, f"opened for {amount}: {e.reason_code}")


def dispute_resolved(ctx: Ctx, e: DisputeResolved) -> None:
    """Close a dispute; the receivable keeps what its other open disputes claim."""
    d: Dispute = ctx.get("dispute", e.dispute_id)
    if d.status != "open":
        raise ClosedItem("dispute", d.id, d.status, "DisputeResolved")
    r: Receivable = ctx.get("receivable", d.receivable_id)
    left = r.open_balance.min(in_dispute(ctx, r, besides=d.id))
    if r.state == R.DISPUTED and not left:
        new = move_receivable(r, "resolve_dispute", disputed_amount=left)
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


def promise_made(ctx: Ctx, e: PromiseMade) -> None:
    """A promise to pay live receivables of the customer, none already under promise."""
    ctx.absent("promise", e.promise_id)
    ctx.get("customer", e.customer_id)
    positive(e.amount, f"promise {e.promise_id} amount")
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
        live(r, "PromiseMade")
        same_currency(r.amount, e.amount, f"promise {e.promise_id}")
        # By the promise, not the state: a promised item that went through a dispute is
        # "open" again while its promise still runs.
        prior = None if r.promise_id is None else ctx.get("promise", r.promise_id)
        if r.state == R.PROMISED or (prior is not None and prior.status == PromiseStatus.OPEN):
            raise ValidationError(
                f"promise {e.promise_id}: receivable {rid} is already under promise {r.promise_id}"
            )
        items.append(r)
    for r in items:
        new = move_receivable(r, "promise", promise_id=e.promise_id)
        ctx.put(new, r, f"promised {e.amount} by {e.promised_date} ({e.promised_by})")
    p = PromiseToPay(
        id=e.promise_id,
        customer_id=e.customer_id,
        receivable_ids=e.receivable_ids,
        amount=e.amount,
        promised_date=e.promised_date,
        promised_by=e.promised_by,
        made_on=e.made_on,
        received=zero(e.amount.currency),
    )
    ctx.put(p, None, f"{e.amount} by {e.promised_date}")


def promise_broken(ctx: Ctx, e: PromiseBroken) -> None:
    """Mark an open promise broken (partly kept if money came in)."""
    p: PromiseToPay = ctx.get("promise", e.promise_id)
    if p.status != PromiseStatus.OPEN:
        raise ClosedItem("promise", p.id, str(p.status), "PromiseBroken")
    status = PromiseStatus.PARTIALLY_KEPT if p.received else PromiseStatus.BROKEN
    for rid in p.receivable_ids:
        r: Receivable = ctx.get("receivable", rid)
        if r.state == R.PROMISED and r.promise_id == p.id:
            ctx.put(move_receivable(r, "break_promise"), r, f"promise {p.id} broken")
    ctx.put(p.model_copy(update={"status": status}), p, f"{status} on {e.broken_on}")
