"""What every handler of the ledger works with: the context of one event (reads, writes and
their audit records) and the receivable changes several event families make."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date
from typing import Any

from pydantic import BaseModel

from ..domain import REFUSED_SUFFIX, AuditRecord, CreditNote, Payment, Receivable
from ..errors import DuplicateObject, UnknownObject
from ..events import BaseEvent
from ..lifecycle import RECEIVABLE_MACHINE, move
from ..money import Money, total
from ..store import StoreTx
from ..store.base import BUSINESS_DATE, KINDS, kind_of, movements_of
from ._allocation import check_reduction
from ._checks import R


@dataclass(frozen=True)
class InvoiceRequest:
    """A payment node that became invoiceable: finance should issue this invoice."""

    customer_id: str
    contract_id: str
    payment_node_id: str
    milestone_id: str
    amount: Money


class Ctx:
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

    def _project(self, r: Receivable) -> str | None:
        if r.contract_id is None:
            return None
        c = self.tx.get("contract", r.contract_id)
        project: str | None = None if c is None else c.project_id
        return project

    def absent(self, kind: str, object_id: str) -> None:
        if self.tx.get(kind, object_id) is not None:
            raise DuplicateObject(kind, object_id)

    def put(self, new: BaseModel, old: BaseModel | None = None, summary: str = "") -> None:
        self.tx.put(new)
        if isinstance(new, Receivable) and (old is None or isinstance(old, Receivable)):
            self.tx.add_movements(
                movements_of(new, old, business_day(self.event), self._project(new))
            )
        rec = audit(self.event, new, old, summary)
        self.tx.add_audit(rec)
        self.audits.append(rec)


def business_day(e: BaseEvent) -> date:
    """The day an event happened in the book (a payment's ``received_on``; see
    ``BUSINESS_DATE``), else the day of its ``occurred_at`` in UTC."""
    field = BUSINESS_DATE.get(type(e).__name__)
    if field is not None:
        on = getattr(e, field, None)
        if isinstance(on, date):
            return on
    return e.occurred_at.astimezone(UTC).date()


# ``Model.__pydantic_validator__.validate_python(fields)`` is ``Model(**fields)``, validated
# the same way, without the keyword packing of ``__init__`` (a third of the cost for these).
_new_audit = AuditRecord.__pydantic_validator__.validate_python


def audit(e: BaseEvent, new: BaseModel, old: BaseModel | None, summary: str) -> AuditRecord:
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


#: The fields that name the object an event is about, most specific first (an invoice's
#: number before its order, a payment before the receivable it is applied to).
_TARGETS = (
    ("process_id", "process"),
    ("task_id", "task"),
    ("number", "receivable"),
    ("order_id", "order"),
    ("payment_id", "payment"),
    ("credit_note_id", "credit_note"),
    ("dispute_id", "dispute"),
    ("promise_id", "promise"),
    ("milestone_id", "milestone"),
    ("request_id", "invoice_request"),
    ("person_id", "person"),
    ("receivable_id", "receivable"),
    ("customer_id", "customer"),
)
#: Events that carry their object whole, by the field it is in.
_CARRIED = (("customer", "customer"), ("contract", "contract"), ("person", "person"))


def target_of(e: BaseEvent) -> tuple[str, str]:
    """(kind, id) of the object ``e`` is about: the one it creates or changes first."""
    for name, kind in _CARRIED:
        obj = getattr(e, name, None)
        if isinstance(obj, BaseModel):
            return kind, str(obj.id)  # type: ignore[attr-defined]
    for name, kind in _TARGETS:
        oid = getattr(e, name, None)
        if isinstance(oid, str):
            return kind, oid
    return "event", e.event_id


def refusal(tx: StoreTx, e: BaseEvent, error: Exception) -> AuditRecord:
    """The audit record of ``e``'s refused attempt on the object it is about: who tried,
    when, the error's class and message; the object's state, if it exists, before and
    after alike (nothing changed)."""
    kind, oid = target_of(e)
    obj = tx.get(kind, oid) if kind in KINDS else None
    state = _state(obj)
    return AuditRecord(
        event_id=e.event_id,
        event_type=type(e).__name__ + REFUSED_SUFFIX,
        subject_kind=kind,
        subject_id=oid,
        actor=e.actor,
        occurred_at=e.occurred_at,
        reason=e.reason,
        summary=str(error),
        before_state=state,
        after_state=state,
        refused=type(error).__name__,
    )


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


def move_receivable(r: Receivable, trigger: str, **update: Any) -> Receivable:
    """A new version of ``r`` with ``update`` applied and its state moved by ``trigger``."""
    new = r.model_copy(update=update)
    state = move(
        RECEIVABLE_MACHINE, "receivable", r.id, r.state, trigger, has_reductions=new.has_reductions
    )
    return new.model_copy(update={"state": R(state)})


def reduce(ctx: Ctx, r: Receivable, amount: Money, how: str, on: date) -> Receivable:
    """Take ``amount`` off ``r``'s open balance as paid or credited; move its state."""
    check_reduction(r, amount)
    return reduced(ctx, r, amount, how, on)


def reduced(ctx: Ctx, r: Receivable, amount: Money, how: str, on: date) -> Receivable:
    """:func:`reduce` of an amount :func:`~._allocation.check_reduction` let through."""
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
    new = move_receivable(r, trigger, **update)
    ctx.put(new, r, f"{how} {amount}")
    return new


def in_dispute(ctx: Ctx, r: Receivable, besides: str | None = None) -> Money:
    """What the open disputes on ``r`` (but ``besides``) claim, together: the receivable's
    ``disputed_amount`` is that, or its open balance where that is less."""
    claimed = [
        d.amount
        for d in ctx.tx.find("dispute", customer_id=r.customer_id)
        if d.receivable_id == r.id and d.status == "open" and d.id != besides
    ]
    return total(claimed, r.currency)
