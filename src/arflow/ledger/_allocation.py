"""Allocation: which open receivables a payment or credit goes to, and how much to each.

Pure functions over plain values (receivables, amounts, the requested allocations): they read
no store and write nothing, so they can be tested alone. The handlers read the receivables
first, call these, then write what the plan says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from ..domain import Receivable
from ..errors import OverAllocation, UnknownObject, ValidationError
from ..events import AllocationRequest
from ..money import Money, total
from ._checks import live, positive, same_currency

K = TypeVar("K")

#: What to take off which receivable, in the order it is taken.
Plan = list[tuple[Receivable, Money]]


def allocate_explicit(
    payment_id: str,
    customer_id: str,
    amount: Money,
    requests: Sequence[AllocationRequest],
    receivables: Mapping[str, Receivable],
) -> Plan:
    """The plan of a payment of ``amount`` whose allocations are given, after every check.

    ``receivables`` holds the requested receivables that exist, by id; a request for one it
    lacks is refused with :class:`UnknownObject`. Refused, in this order per request: a
    receivable named twice, unknown, another customer's, closed, in another currency than
    the payment, a zero or negative amount; then allocations adding up to more than
    ``amount``; then (per request) one in another currency than its receivable, or more than
    its open balance (:class:`OverAllocation`).
    """
    plan: Plan = []
    seen: set[str] = set()
    for req in requests:
        rid = req.receivable_id
        if rid in seen:
            raise ValidationError(f"payment {payment_id}: receivable {rid} allocated twice")
        seen.add(rid)
        r = receivables.get(rid)
        if r is None:
            raise UnknownObject("receivable", rid)
        if r.customer_id != customer_id:
            raise ValidationError(
                f"payment {payment_id}: receivable {r.id} belongs to customer "
                f"{r.customer_id!r}, not {customer_id!r}"
            )
        live(r, "PaymentReceived")
        same_currency(amount, req.amount, f"payment {payment_id} allocation")
        positive(req.amount, f"allocation to {r.id}")
        plan.append((r, req.amount))
    applied = total((a for _r, a in plan), amount.currency)
    if applied > amount:
        raise OverAllocation(
            f"payment {payment_id}: allocations {applied} exceed the payment {amount}"
        )
    for r, a in plan:
        check_reduction(r, a)
    return plan


def allocate_oldest_first(amount: Money, open_items: Iterable[Receivable]) -> Plan:
    """The plan of a payment of ``amount`` without allocations: ``open_items`` (live, in the
    order to pay them: oldest due first) each take what is left of the payment, up to their
    undisputed balance; items in another currency are skipped. ``open_items`` is read only
    as far as the payment reaches."""
    cur = amount.currency
    plan: Plan = []
    remaining = amount
    for r in open_items:
        if not remaining:
            break
        if r.currency != cur:
            continue
        take = remaining.min(r.undisputed_balance)
        if take:
            plan.append((r, take))
            remaining = remaining - take
    return plan


def unapplied(amount: Money, plan: Plan) -> Money:
    """What is left of ``amount`` once ``plan`` is applied: kept as the customer's credit."""
    return amount - total((a for _r, a in plan), amount.currency)


def apply_credit_oldest_first(
    balance: Money, credits: Iterable[tuple[K, Money]]
) -> list[tuple[K, Money]]:
    """What each of the customer's credits (``(id, unapplied)``, oldest first: prepayments
    and credit notes) gives to an invoice whose undisputed balance is ``balance``: each takes
    what is left of the balance, up to its unapplied amount; credits in another currency are
    skipped. What is applied never exceeds ``balance`` nor any credit's unapplied amount."""
    cur = balance.currency
    plan: list[tuple[K, Money]] = []
    remaining = balance
    for key, left in credits:
        if not remaining.is_positive:
            break
        if left.currency != cur or not left.is_positive:
            continue
        take = remaining.min(left)
        plan.append((key, take))
        remaining = remaining - take
    return plan


def check_application(what: str, unapplied: Money, r: Receivable, amount: Money) -> None:
    """Refuse applying ``amount`` of a credit (``what``: "payment P1") with ``unapplied``
    left to ``r``: another currency (:class:`CurrencyMismatch`), a zero or negative amount,
    more than is unapplied or more than ``r`` has open (:class:`OverAllocation`)."""
    same_currency(unapplied, amount, f"{what} applied to {r.id}")
    positive(amount, f"{what} applied to {r.id}")
    if amount > unapplied:
        raise OverAllocation(f"{what}: {amount} is more than its unapplied {unapplied}")
    check_reduction(r, amount)


def check_refund(what: str, unapplied: Money, amount: Money) -> None:
    """Refuse refunding ``amount`` of a credit with ``unapplied`` left: another currency, a
    zero or negative amount, or more than is unapplied (:class:`OverAllocation`)."""
    same_currency(unapplied, amount, f"{what} refund")
    positive(amount, f"{what} refund")
    if amount > unapplied:
        raise OverAllocation(f"{what}: refund {amount} is more than its unapplied {unapplied}")


def check_reduction(r: Receivable, amount: Money) -> None:
    """Refuse taking ``amount`` off ``r``: another currency, or more than its open balance."""
    same_currency(r.amount, amount, f"receivable {r.id}")
    if amount > r.open_balance:
        raise OverAllocation(
            f"receivable {r.id}: {amount} is more than its open balance {r.open_balance}"
        )


__all__ = [
    "Plan",
    "allocate_explicit",
    "allocate_oldest_first",
    "apply_credit_oldest_first",
    "check_application",
    "check_reduction",
    "check_refund",
    "unapplied",
]
