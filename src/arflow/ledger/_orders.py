"""Handlers of orders and what holds them: orders submitted and moved through approval and
shipping (invoicing one is :mod:`._invoices`' work), and the order locks on a customer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..domain import Contract, Customer, Order, OrderLock, OrderState
from ..errors import DuplicateObject, UnknownObject, ValidationError
from ..events import OrderLockLifted, OrderLockPlaced, OrderSubmitted
from ..lifecycle import ORDER_MACHINE, move
from ._checks import positive
from ._context import Ctx


def order_submitted(ctx: Ctx, e: OrderSubmitted) -> None:
    """A new order of a customer (and, if named, one of their contracts)."""
    ctx.absent("order", e.order_id)
    ctx.get("customer", e.customer_id)
    positive(e.amount, f"order {e.order_id} amount")
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


def order_move(trigger: str) -> Callable[[Ctx, Any], None]:
    """The handler of an event that moves an order by ``trigger`` (recording its approver)."""

    def handle(ctx: Ctx, e: Any) -> None:
        o: Order = ctx.get("order", e.order_id)
        state = OrderState(move(ORDER_MACHINE, "order", o.id, o.state, trigger))
        update: dict[str, Any] = {"state": state}
        if hasattr(e, "approver"):
            update["decided_by"] = e.approver
        ctx.put(o.model_copy(update=update), o, trigger.replace("_", " "))

    return handle


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
