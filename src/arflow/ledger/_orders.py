"""Handlers of orders and what holds them: orders submitted and moved through approval and
shipping (invoicing one is :mod:`._invoices`' work), and the order locks on a customer."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..domain import Contract, Customer, Order, OrderLock, OrderState
from ..errors import (
    CurrencyMismatch,
    DuplicateObject,
    NotAuthorized,
    UnknownObject,
    ValidationError,
)
from ..events import OrderLockLifted, OrderLockPlaced, OrderSubmitted
from ..lifecycle import EXPOSURE_ORDER_STATES, LIVE_STATES, ORDER_MACHINE, move
from . import _processes
from ._checks import positive
from ._context import Ctx

LIVE = [str(s) for s in LIVE_STATES]
OPEN_ORDERS = [str(s) for s in EXPOSURE_ORDER_STATES]


def order_submitted(ctx: Ctx, e: OrderSubmitted) -> None:
    """A new order of a customer (and, if named, one of their contracts), with the payment
    terms it asks for, else the customer's."""
    ctx.absent("order", e.order_id)
    customer: Customer = ctx.get("customer", e.customer_id)
    positive(e.amount, f"order {e.order_id} amount")
    # credit is checked in the limit's currency: an order in another could pass any limit
    limit = customer.credit.credit_limit
    if limit is not None and e.amount.currency != limit.currency:
        raise CurrencyMismatch(
            e.amount.currency,
            limit.currency,
            f"order {e.order_id}: the credit limit of {customer.id} is in {limit.currency}",
        )
    if e.contract_id is not None:
        c: Contract = ctx.get("contract", e.contract_id)
        if c.customer_id != e.customer_id:
            raise ValidationError(f"order {e.order_id}: contract {c.id!r} is another's")
        if c.amount.currency != e.amount.currency:
            raise CurrencyMismatch(
                e.amount.currency, c.amount.currency, f"order {e.order_id} on contract {c.id}"
            )
    if e.discount_amount is not None and e.discount_amount.currency != e.amount.currency:
        raise CurrencyMismatch(
            e.discount_amount.currency, e.amount.currency, f"order {e.order_id} discount"
        )
    o = Order(
        id=e.order_id,
        customer_id=e.customer_id,
        amount=e.amount,
        submitted_on=e.submitted_on,
        order_type=e.order_type,
        contract_id=e.contract_id,
        payment_terms_days=(
            customer.credit.payment_terms_days
            if e.payment_terms_days is None
            else e.payment_terms_days
        ),
        discount_percent=e.discount_percent,
        discount_amount=e.discount_amount,
    )
    whose = " (the customer's)" if e.payment_terms_days is None else ""
    ctx.put(o, None, f"submitted {e.amount}, terms {o.payment_terms_days} days{whose}")


#: Who approves an order that passed every check at entry (``Engine.handle`` decides it;
#: the engine's actor, ``arflow.engine._record.ENGINE_ACTOR``).
ENGINE_APPROVER = "arflow-engine"


def order_move(trigger: str) -> Callable[[Ctx, Any], None]:
    """The handler of an event that moves an order by ``trigger`` (recording its approver,
    or the roles and their holders it was sent to for approval)."""

    def handle(ctx: Ctx, e: Any) -> None:
        o: Order = ctx.get("order", e.order_id)
        # an order whose approval process (its discount, its terms) ended other than
        # approved is rejected, even once approved at entry: it can never ship
        refused = _processes.refused_by(ctx, o.id, o.customer_id) if trigger == "reject" else None
        how = "withdraw" if refused is not None and o.state == OrderState.APPROVED else trigger
        state = OrderState(move(ORDER_MACHINE, "order", o.id, o.state, how))
        update: dict[str, Any] = {"state": state}
        if hasattr(e, "approver"):
            if refused is None:
                authorize(ctx, o, e.approver, trigger)
            update["decided_by"] = e.approver
        if trigger == "request_approval":
            update["approval_roles"] = tuple(e.roles)
            update["approvers"] = tuple(e.approvers)
        said = trigger.replace("_", " ")
        if refused is not None:
            said += f": process {refused.id} ({refused.process}) ended {refused.state}"
        ctx.put(o.model_copy(update=update), o, said)

    return handle


def authorize(ctx: Ctx, o: Order, who: str, trigger: str) -> None:
    """Refuse (:class:`NotAuthorized`) a decision on ``o`` by ``who``.

    An order sent for approval with its approvers recorded is decided by one of them only.
    An order with no approval path recorded may be approved only if nothing holds it: no
    lock of its customer that applies to it, no manual order block, and exposure (the
    order included) within the credit limit. So ``Ledger.apply`` of an order for a locked or
    over-limit customer can never end approved without a holder of the role: such orders go
    through ``Engine.handle``, which sends them to the approval tier the pack names."""
    if o.approvers:
        if who not in o.approvers:
            roles = ", ".join(o.approval_roles) or "the approval"
            raise NotAuthorized(
                o.id, who, f"only a holder of {roles} may ({', '.join(o.approvers)})"
            )
        return
    if trigger != "approve":
        return
    held = holds_on(ctx, o)
    if held:
        raise NotAuthorized(
            o.id,
            who,
            f"{held}; it needs an approval: submit it through Engine.handle, which sends it "
            "to the approval tier of the pack",
        )


def holds_on(ctx: Ctx, o: Order) -> str | None:
    """What holds order ``o`` back from approval without a recorded approver (None: nothing)."""
    c: Customer = ctx.get("customer", o.customer_id)
    if c.credit.order_block:
        return f"orders of {c.id} are blocked"
    for lk in c.locks:
        if (
            lk.scope == "customer"
            or (lk.scope == "order_type" and lk.ref == o.order_type)
            or (lk.scope == "contract" and lk.ref == o.contract_id)
        ):
            return f"orders of {c.id} are locked by {lk.lock_id}: {lk.reason}".rstrip(": ")
    limit = c.credit.credit_limit
    if limit is None or o.amount.currency != limit.currency:
        return None
    used = sum(
        (
            r.open_balance.amount
            for r in ctx.tx.find("receivable", customer_id=c.id, states=LIVE)
            if r.currency == limit.currency
        ),
        Decimal(0),
    )
    used += sum(
        (
            x.amount.amount
            for x in ctx.tx.find("order", customer_id=c.id, states=OPEN_ORDERS)
            if x.amount.currency == limit.currency
        ),
        Decimal(0),
    )
    if used > limit.amount:
        return f"exposure {used} {limit.currency} is over the credit limit {limit}"
    return None


def order_lock_placed(ctx: Ctx, e: OrderLockPlaced) -> None:
    """Lock a customer's orders under a lock id, scope and reference."""
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


def order_lock_lifted(ctx: Ctx, e: OrderLockLifted) -> None:
    """Lift one of a customer's order locks."""
    c: Customer = ctx.get("customer", e.customer_id)
    key = (e.lock_id, e.scope, e.ref)
    kept = tuple(lk for lk in c.locks if (lk.lock_id, lk.scope, lk.ref) != key)
    if len(kept) == len(c.locks):
        raise UnknownObject("order lock", f"{c.id}/{e.lock_id}")
    ctx.put(c.model_copy(update={"locks": kept}), c, f"lock {e.lock_id} lifted")
