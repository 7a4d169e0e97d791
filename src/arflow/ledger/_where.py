"""Order to cash as one chain: where an invoice, an order, an invoice request or a contract
is, since when, who owns it and what it waits for (``arflow where``).

Reads the book only. The chain, each step the last one an object reached:

    submitted → credit_check → approval → shipped → invoice_request → invoice_issued →
    sent → confirmed → due → dunning → paid

(an order is followed into its invoice request and its invoice, a contract into each of
its payment nodes). ``since`` comes from the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ..domain import (
    ROLE_HOLDERS,
    Contract,
    InvoiceRequest,
    InvoiceRequestState,
    Milestone,
    Order,
    OrderState,
    PaymentNode,
    Receivable,
    ReceivableState,
)
from ..errors import UnknownObject, ValidationError
from ..store import Store

#: The steps of order to cash, in order; ``where`` answers with the last one reached.
CHAIN = (
    "submitted",
    "credit_check",
    "approval",
    "shipped",
    "invoice_request",
    "invoice_issued",
    "sent",
    "confirmed",
    "due",
    "dunning",
    "paid",
)
#: Where an object can end off the chain (and ``milestone``: a contract's payment node whose
#: milestone is not done yet).
OFF_CHAIN = ("milestone", "rejected", "cancelled", "credited", "written_off")

_KINDS = {
    "invoice": "receivable",
    "receivable": "receivable",
    "order": "order",
    "contract": "contract",
    "invoice_request": "invoice_request",
    "request": "invoice_request",
}
_FINANCE = ROLE_HOLDERS + "finance"


@dataclass(frozen=True)
class Where:
    """Where one object of order to cash is: the ``stage`` it reached (one of
    :data:`CHAIN` or :data:`OFF_CHAIN`), ``since`` when (from the audit trail), who
    ``owner`` it is now (a person id or ``role:NAME``; None when it is over), and what it
    is ``waiting`` for. ``subject_kind``/``subject_id`` name the object the stage is on (an
    order's invoice, say); ``done`` when nothing more is expected; ``parts`` are a
    contract's payment nodes, each its own answer."""

    kind: str
    id: str
    stage: str
    since: datetime | None
    owner: str | None
    waiting: tuple[str, ...]
    subject_kind: str
    subject_id: str
    done: bool = False
    parts: tuple[Where, ...] = ()

    def describe(self) -> str:
        """One paragraph: where, since when, who, waiting for what."""
        since = f" since {self.since:%Y-%m-%d %H:%M}" if self.since else ""
        on = "" if self.subject_id == self.id else f" ({self.subject_kind} {self.subject_id})"
        lines = [f"{self.kind} {self.id}: {self.stage}{since}{on}"]
        if self.owner:
            lines.append(f"  owner: {self.owner}")
        lines += [f"  waiting for: {w}" for w in self.waiting]
        if self.done:
            lines.append("  done")
        for p in self.parts:
            lines += ["  " + line for line in p.describe().splitlines()]
        return "\n".join(lines)


def where(store: Store, kind: str, object_id: str, as_of: date) -> Where:
    """Where ``object_id`` of ``kind`` (``invoice``, ``order``, ``invoice_request`` or
    ``contract``) is on ``as_of``.

    Raises:
        ValidationError: a kind ``where`` does not follow.
        UnknownObject: no such object in the book.
    """
    k = _KINDS.get(kind)
    if k is None:
        raise ValidationError(f"where: {kind!r} is not one of {', '.join(sorted(_KINDS))}")
    obj = store.get(k, object_id)
    if obj is None:
        raise UnknownObject(k, object_id)
    answer = _Reader(store, as_of).of(obj)
    return _as_asked(answer, kind, object_id)


def _as_asked(w: Where, kind: str, object_id: str) -> Where:
    return Where(
        kind,
        object_id,
        w.stage,
        w.since,
        w.owner,
        w.waiting,
        w.subject_kind,
        w.subject_id,
        w.done,
        w.parts,
    )


class _Reader:
    def __init__(self, store: Store, as_of: date) -> None:
        self.store, self.as_of = store, as_of

    def since(self, kind: str, oid: str) -> datetime | None:
        """When the object last changed (its last audit record that was not a refusal)."""
        trail = [a for a in self.store.audit_trail(kind, oid) if a.refused is None]
        return trail[-1].occurred_at if trail else None

    def of(self, obj: Any) -> Where:
        if isinstance(obj, Receivable):
            return self.receivable(obj)
        if isinstance(obj, Order):
            return self.order(obj)
        if isinstance(obj, InvoiceRequest):
            return self.request(obj)
        assert isinstance(obj, Contract)
        return self.contract(obj)

    def _at(self, obj: Any, kind: str, stage: str, owner: str | None, *waiting: str) -> Where:
        return Where(kind, obj.id, stage, self.since(kind, obj.id), owner, waiting, kind, obj.id)

    # -- an invoice ------------------------------------------------------------------------------
    def receivable(self, r: Receivable) -> Where:
        kind = "receivable"
        owner = r.salesperson
        if r.state == ReceivableState.PAID:
            return self._done(r, kind, "paid")
        if r.state in (ReceivableState.CREDITED, ReceivableState.WRITTEN_OFF):
            return self._done(r, kind, str(r.state))
        waiting: list[str] = []
        if r.state == ReceivableState.DISPUTED:
            waiting.append(f"the dispute over {r.disputed_amount} to be resolved")
        if r.state == ReceivableState.PROMISED and r.promise_id:
            p = self.store.get("promise", r.promise_id)
            if p is not None:
                waiting.append(f"the promise to pay {p.amount} by {p.promised_date.isoformat()}")
        overdue = self.as_of > r.due_date
        if not overdue:
            if r.stage is None:
                return self._at(
                    r, kind, "invoice_issued", owner or _FINANCE, "the invoice to be sent", *waiting
                )
            if r.stage == "sent":
                return self._at(
                    r, kind, "sent", owner, "the customer to confirm the invoice", *waiting
                )
            return self._at(
                r,
                kind,
                "confirmed",
                owner,
                f"payment of {r.open_balance} due {r.due_date.isoformat()}",
                *waiting,
            )
        if r.stage is None:
            waiting.append("the invoice to be recorded as sent (no InvoiceSent)")
        elif r.stage == "sent":
            waiting.append("the customer to confirm the invoice")
        pay = f"payment of {r.open_balance}, due {r.due_date.isoformat()}"
        if r.dunning_level > 0:
            since = self.since(kind, r.id)
            last = f" (level {r.dunning_level})"
            return Where(kind, r.id, "dunning", since, owner, (pay + last, *waiting), kind, r.id)
        overdue_since = datetime.combine(r.due_date + timedelta(days=1), time(), UTC)
        return Where(kind, r.id, "due", overdue_since, owner, (pay, *waiting), kind, r.id)

    def _done(self, obj: Any, kind: str, stage: str) -> Where:
        return Where(
            kind, obj.id, stage, self.since(kind, obj.id), None, (), kind, obj.id, done=True
        )

    # -- an invoice request ------------------------------------------------------------------------
    def request(self, q: InvoiceRequest) -> Where:
        kind = "invoice_request"
        S = InvoiceRequestState
        if q.state == S.INVOICED or (q.state == S.CANCELLED and q.receivable_id):
            r = self.store.get("receivable", q.receivable_id) if q.receivable_id else None
            if r is not None:
                return self.receivable(r)
        if q.state in (S.REJECTED, S.CANCELLED):
            w = self._done(q, kind, str(q.state))
            return replace(w, waiting=(q.comment,) if q.comment else ())
        if q.state == S.APPROVED:
            return self._at(
                q,
                kind,
                "invoice_request",
                q.owner or _FINANCE,
                f"the invoice of {q.amount} to be issued (approved by {q.approved_by})",
            )
        if q.state == S.WITH_FINANCE:
            return self._at(q, kind, "invoice_request", q.owner, "approval by finance")
        missing = [f"document: {d}" for d in q.missing_documents]
        return self._at(q, kind, "invoice_request", q.owner, *missing)

    # -- an order ----------------------------------------------------------------------------------
    def order(self, o: Order) -> Where:
        kind = "order"
        if o.state == OrderState.SUBMITTED:
            return self._at(o, kind, "submitted", None, "the credit check at entry")
        if o.state == OrderState.PENDING_APPROVAL:
            who = ", ".join(o.approvers) or ", ".join(o.approval_roles) or None
            roles = ", ".join(o.approval_roles) or "an approver"
            return self._at(o, kind, "credit_check", who, f"approval by {roles}")
        if o.state == OrderState.REJECTED:
            gate = self._discount_gate(o)  # rejected by a process that refused it: which
            if gate is not None and gate.stage == "rejected":
                return gate
            return self._done(o, kind, "rejected")
        if o.state == OrderState.APPROVED:
            gate = self._discount_gate(o)
            if gate is not None:
                return gate
            return self._at(
                o, kind, "approval", ROLE_HOLDERS + "warehouse", "the warehouse to ship it"
            )
        if o.state == OrderState.INVOICED and o.receivable_id:
            r = self.store.get("receivable", o.receivable_id)
            if r is not None:
                return self.receivable(r)
        reqs = [
            q
            for q in self.store.find("invoice_request", customer_id=o.customer_id)
            if q.order_id == o.id
        ]
        live = [q for q in reqs if q.state not in (InvoiceRequestState.REJECTED,)]
        if live:
            return self.request(sorted(live, key=lambda q: q.requested_on)[-1])
        return self._at(o, kind, "shipped", o.decided_by, "an invoice request")

    def _discount_gate(self, o: Order) -> Where | None:
        """An approved order still held by a process about it (its discount's approval):
        at which step, whose, since when (None: nothing holds it)."""
        for p in self.store.find("process", customer_id=o.customer_id):
            if p.subject_kind != "order" or p.subject_id != o.id:
                continue
            if p.is_open:
                return Where(
                    "order",
                    o.id,
                    "approval",
                    self.since("process", p.id),
                    p.owner,
                    (f"{p.process}: step {p.state}",),
                    "process",
                    p.id,
                )
            if p.state != p.definition.approved_state:
                return Where(
                    "order",
                    o.id,
                    "rejected",
                    self.since("process", p.id),
                    None,
                    (),
                    "process",
                    p.id,
                    True,
                )
        return None

    # -- a contract ----------------------------------------------------------------------------------
    def contract(self, c: Contract) -> Where:
        parts = tuple(self.node(c, n) for n in c.payment_nodes)
        stuck = next((p for p in parts if not p.done), None)
        if stuck is None:
            since = max((p.since for p in parts if p.since), default=self.since("contract", c.id))
            return Where("contract", c.id, "paid", since, None, (), "contract", c.id, True, parts)
        return Where(
            "contract",
            c.id,
            stuck.stage,
            stuck.since,
            stuck.owner,
            stuck.waiting,
            stuck.subject_kind,
            stuck.subject_id,
            False,
            parts,
        )

    def node(self, c: Contract, n: PaymentNode) -> Where:
        label = f"{c.id}/{n.id}"
        items = sorted(
            (
                r
                for r in self.store.find("receivable", customer_id=c.customer_id)
                if r.contract_id == c.id and r.payment_node_id == n.id
            ),
            key=lambda r: (r.issue_date, r.id),
        )
        live = [r for r in items if not r.is_closed]
        if live:
            return _as_asked(self.receivable(live[0]), "payment_node", label)
        reqs = [
            q
            for q in self.store.find("invoice_request", customer_id=c.customer_id)
            if q.contract_id == c.id and q.payment_node_id == n.id
        ]
        open_reqs = [q for q in reqs if q.state not in ("invoiced", "rejected", "cancelled")]
        if open_reqs:
            return _as_asked(self.request(open_reqs[0]), "payment_node", label)
        if items:
            return _as_asked(self.receivable(items[-1]), "payment_node", label)
        mid = n.due.milestone_id if n.due.basis == "milestone" else None
        owner = c.salesperson or ROLE_HOLDERS + "project_manager"
        if mid is not None:
            ms: Milestone | None = self.store.get("milestone", mid)
            if ms is not None and ms.status != "done":
                return Where(
                    "payment_node",
                    label,
                    "milestone",
                    self.since("milestone", mid),
                    owner,
                    (f'milestone "{ms.name or ms.id}" to be done',),
                    "milestone",
                    mid,
                )
        return Where(
            "payment_node",
            label,
            "invoice_request",
            self.since("contract", c.id),
            owner,
            (f"an invoice request for {c.node_amount(n)} ({n.label or n.id})",),
            "contract",
            c.id,
        )
