"""Recording decisions: the decision ledger rows, the book changes a decision implies (as
audited events keyed by the decision), the messages, and a run's record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any

from ..decisions import Decision
from ..domain import MAX_EVENT_ID_LENGTH, PromiseStatus
from ..events import (
    CreditReviewed,
    DunningStepRecorded,
    FactorPoints,
    InvoiceIssued,
    OrderApprovalRequested,
    OrderApproved,
    OrderLockLifted,
    OrderLockPlaced,
    OrderRejected,
    PromiseBroken,
    RiskFlagged,
)
from ..ledger import Batch, Ledger
from ..money import Money
from ..rules.schema import Action
from ..store.base import DecisionRecord, RunRecord, same_as_body
from ._log import log_decision
from ._results import Plan
from ._tasks import queue_with_tasks

ENGINE_ACTOR = "arflow-engine"


def _effect_id(d: Decision, action: int | None = None) -> str:
    """The event id of a decision's effect on the book (of its action ``action``, if given):
    keyed by the decision, so recording it twice is a no-op. A key too long for an event id
    (long rule, step and invoice ids together) is stood for by its digest."""
    eid = f"engine:{d.key}" if action is None else f"engine:{d.key}#{action}"
    if len(eid) <= MAX_EVENT_ID_LENGTH:
        return eid
    return f"engine:{hashlib.sha256(eid.encode()).hexdigest()}"


def _read_ahead(batch: Batch, decisions: list[Decision]) -> None:
    """Read what recording ``decisions`` will look up (whether their events are logged,
    their receivables and customers) in a few queries instead of one each."""
    todo = [d for d in decisions if d.status == "planned"]
    if not todo:
        return
    event_ids = [_effect_id(d) for d in todo]
    event_ids += [_effect_id(d, i) for d in todo for i in range(len(d.actions))]
    receivables = [d.subject_id for d in todo if d.subject_kind == "receivable"]
    batch.tx.prefetch(
        event_ids,
        {"receivable": receivables, "customer": sorted({d.customer_id for d in todo})},
        # a message about a customer lists its open invoices (``Composer._items_of``)
        {"receivable": [d.customer_id for d in todo if d.subject_kind == "customer"]},
    )


def _effects(batch: Batch, d: Decision, at: datetime) -> None:
    """The book changes a decision implies, as audited events keyed by the decision."""
    meta: dict[str, Any] = {
        "occurred_at": at,
        "actor": ENGINE_ACTOR,
        "reason": d.reason or f"rule {d.rule}",
    }
    if d.kind == "dunning" and d.level is not None and d.step is not None:
        batch.apply(
            DunningStepRecorded(
                event_id=_effect_id(d),
                receivable_id=d.subject_id,
                ladder=d.rule,
                step=d.step,
                level=d.level,
                decision_key=d.key,
                sent_on=d.as_of,
                **meta,
            )
        )
    if d.kind == "pattern" and d.subject_kind == "promise" and d.why.get("break_promise"):
        promise = batch.tx.get("promise", d.subject_id)
        if promise is not None and promise.status == PromiseStatus.OPEN:
            batch.apply(
                PromiseBroken(
                    event_id=_effect_id(d),
                    promise_id=d.subject_id,
                    broken_on=d.as_of,
                    **meta,
                )
            )
    if d.kind == "credit_review":
        _credit_review(batch, d, meta)
    if d.kind == "approval" and d.subject_kind == "order":
        _order_effect(batch, d, meta)
    # an alert about a customer or an order has no receivable to flag
    flags_receivable = d.kind != "alert" or d.subject_kind == "receivable"
    for i, a in enumerate(d.actions):
        eid = _effect_id(d, i)
        ref = {"order_type": a.order_type, "contract": d.why.get("ref")}.get(a.scope)
        if a.type == "charge":
            _charge(batch, d, a, eid, meta)
        if a.type == "risk_flag" and a.level is not None and flags_receivable:
            batch.apply(
                RiskFlagged(
                    event_id=eid,
                    receivable_id=d.subject_id,
                    level=a.level,
                    rule=d.rule,
                    flagged_on=d.as_of,
                    **meta,
                )
            )
        elif a.type in ("block_orders", "unblock_orders"):
            lock: dict[str, Any] = {
                "event_id": eid,
                "customer_id": d.customer_id,
                "lock_id": d.rule,
                "scope": a.scope,
                "ref": ref,
                **meta,
                "reason": a.reason or meta["reason"],  # the rule's description
            }
            if a.type == "block_orders":
                batch.apply(OrderLockPlaced(placed_on=d.as_of, **lock))
            else:
                batch.apply(OrderLockLifted(lifted_on=d.as_of, **lock))


def _order_effect(batch: Batch, d: Decision, meta: dict[str, Any]) -> None:
    """What the check of an order at entry does to it (``why["on_order"]``): rejected (the
    reason is the lock's description or the ceiling's), approved by the engine, or sent for
    approval with the roles and their holders recorded; nothing to an order decided
    already, nor for the tasks after a person's approval."""
    order = batch.tx.get("order", d.subject_id)
    if order is None or order.state != "submitted":
        return
    outcome = d.why.get("on_order", "approve")
    if outcome == "reject":
        batch.apply(
            OrderRejected(
                event_id=_effect_id(d), order_id=d.subject_id, approver=ENGINE_ACTOR, **meta
            )
        )
    elif outcome == "auto":
        batch.apply(
            OrderApproved(
                event_id=_effect_id(d), order_id=d.subject_id, approver=ENGINE_ACTOR, **meta
            )
        )
    elif outcome == "approve":
        path = d.why.get("approval") or {}
        batch.apply(
            OrderApprovalRequested(
                event_id=_effect_id(d),
                order_id=d.subject_id,
                roles=tuple(path.get("roles", ())),
                approvers=tuple(path.get("approvers", ())),
                **meta,
            )
        )


def _credit_review(batch: Batch, d: Decision, meta: dict[str, Any]) -> None:
    """A review's score applied to the customer's credit profile, audited with the points
    of each factor; with ``limit_held`` (a raise waiting for approval) the limit stays."""
    if batch.tx.get("customer", d.customer_id) is None:
        return
    w = d.why
    batch.apply(
        CreditReviewed(
            event_id=_effect_id(d),
            customer_id=d.customer_id,
            reviewed_on=d.as_of,
            grade=w["grade"],
            credit_limit=None
            if w["limit_held"]
            else Money(amount=Decimal(w["credit_limit"]), currency=w["currency"]),
            payment_terms_days=w["payment_terms_days"],
            prepayment_percent=Decimal(w["prepayment_percent"]),
            score=Decimal(w["score"]),
            factors=tuple(FactorPoints(fact=k, points=v) for k, v in w["factors"].items()),
            **meta,
        )
    )


def _charge(batch: Batch, d: Decision, a: Action, eid: str, meta: dict[str, Any]) -> None:
    """A dunning fee and/or late interest, booked as a receivable of its own so it is
    audited, dunned and paid like any other; exempt grades and customers tagged
    ``no-dunning-charges`` are never charged."""
    r = batch.tx.get("receivable", d.subject_id)
    customer = batch.tx.get("customer", d.customer_id)
    if r is None or customer is None:
        return
    if customer.credit.grade in a.exempt_grades or "no-dunning-charges" in customer.tags:
        return
    amount = a.fee or Decimal(0)
    if a.interest_rate:
        start = r.due_date
        if a.interest_from == "last_dunning" and r.last_dunned_on is not None:
            start = max(start, r.last_dunned_on)
        days = max(0, (d.as_of - start).days)
        basis = Decimal(360) if a.day_count in ("act/360", "30/360") else Decimal(365)
        amount += r.open_balance.amount * a.interest_rate * days / basis
    money = Money(amount=amount, currency=r.currency)
    if not money.is_positive:
        return
    terms = customer.credit.payment_terms_days
    batch.apply(
        InvoiceIssued(
            event_id=eid,
            number=f"CHG-{r.id}-{d.step}-{d.occurrence.isoformat()}",
            customer_id=r.customer_id,
            issue_date=d.as_of,
            due_date=d.as_of + timedelta(max(terms, 0)),
            amount=money,
            contract_id=r.contract_id,
            tags=("dunning-charge", f"for:{r.id}"),
            salesperson=r.salesperson,
            region=r.region,
            **meta,
        )
    )


def _run_record(plan: Plan, recorded: int, queued: int, skipped: int) -> RunRecord:
    """What the run record of ``plan`` says (``Engine._last_run_says`` reads it)."""
    return RunRecord(
        as_of=plan.as_of,
        body=json.dumps(
            {
                "since": None if plan.since is None else plan.since.isoformat(),
                "candidates": plan.candidates,
                "audit_mark": plan.audit_mark,
                "recorded": recorded,
                "queued": queued,
                "skipped": skipped,
                "failed": len(plan.failures),
                "failures": [f.__dict__ for f in plan.failures],
                **({"slices": plan.slices} if plan.slices > 1 else {}),
                **({"replanned": plan.replanned} if plan.replanned else {}),
            }
        ),
    )


def _record(d: Decision, body: str | None = None) -> DecisionRecord:
    """The decision ledger's row of ``d``: its whole JSON, or the ``body`` given (a stale
    step stored as its differences from the first)."""
    return DecisionRecord(
        key=d.key,
        as_of=d.as_of,
        kind=d.kind,
        customer_id=d.customer_id,
        subject_id=d.subject_id,
        status=d.status,
        body=d.model_dump_json() if body is None else body,
    )


#: The fields a decision recorded as a difference (:func:`_record_as_difference`) shares
#: with the one it refers to (typed fields: ``==`` compares them exactly)
_shared_fields = attrgetter(
    "kind",
    "rule",
    "subject_kind",
    "subject_id",
    "customer_id",
    "currency",
    "as_of",
    "status",
    "reason",
    "actions",
    "recipients",
    "send_at",
)


def _same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` are the same JSON-like value, types included (``1`` is not
    ``True``, nor ``1.0``)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _record_as_difference(d: Decision, base: Decision) -> DecisionRecord | None:
    """The decision record of ``d`` as its difference from ``base`` (recorded whole in
    the same transaction: a receivable's other skipped step), or None when they differ
    in more than the step (key, step, level, occurrence and the entries of ``why``). The
    key is not repeated in the body: the record's key column holds it.

    A first run records millions of stale steps; a receivable's steps share their
    subject, reason and facts, so each after the first is stored as a few fields. The
    store gives the whole decision back (``Store.decision``, ``Engine.explain``)."""
    why, base_why = d.why, base.why
    if why.keys() != base_why.keys() or _shared_fields(d) != _shared_fields(base):
        return None
    diff: dict[str, Any] = {}  # the key is the record's own
    if d.step != base.step:
        diff["step"] = d.step
    if d.level != base.level:
        diff["level"] = d.level
    if d.occurrence != base.occurrence:
        diff["occurrence"] = d.occurrence
    changed = {k: v for k, v in why.items() if not _same(v, base_why[k])}
    if changed:
        diff["why"] = changed
    body = same_as_body(base.key, diff)
    return None if body is None else _record(d, body)


def record_plan(batch: Batch, plan: Plan, when: datetime, composer: Any) -> tuple[int, int]:
    """Record ``plan``'s decisions not recorded yet, their messages and their effects;
    (decisions recorded, messages queued)."""
    known = batch.tx.known_decisions([d.key for d in plan.decisions + plan.skipped])
    _read_ahead(batch, [d for d in plan.decisions if d.key not in known])
    carried = [d for d in plan.decisions if d.key not in known and d.status == "planned"]
    # rendered before the effects are booked: from the book the rules decided on
    queued: int = queue_with_tasks(batch, composer, carried, when)
    recorded = 0
    bases: dict[tuple[str, str], Decision] = {}  # a subject's skipped step recorded whole
    for d in plan.decisions + plan.skipped:
        if d.key in known:
            continue
        rec = None
        if d.status == "skipped":
            base = bases.setdefault((d.subject_id, d.rule), d)
            if base is not d:
                rec = _record_as_difference(d, base)
        batch.tx.add_decision(rec if rec is not None else _record(d))
        if d.status == "planned":
            _effects(batch, d, when)
        if d.status in ("planned", "held"):
            recorded += 1
        log_decision("recorded", d.key, d.status)
    return recorded, queued


def record_helpers(
    batch: Batch,
    plan: Plan,
    rows: Any,
    counts: tuple[int, int],
    when: datetime,
    composer: Any,
) -> tuple[int, int]:
    """Write what a helper recorded of its slice (``rows``, staged against the
    committed book) after this process's own; if another run recorded some of the
    slice's decisions meanwhile, record the slice here instead, like this process's."""
    keys = [d.key for d in plan.decisions + plan.skipped]
    if batch.tx.known_decisions(keys):
        return record_plan(batch, plan, when, composer)
    batch.tx.write_rows(rows)  # helpers run only on a store other processes open: SQL
    return counts


def record(ledger: Ledger, decisions: Iterable[Decision], at: datetime, composer: Any) -> int:
    """Record decisions (a released review's) in one transaction of their own."""
    with ledger.batch() as batch:
        return record_in(batch, decisions, at, composer)


def record_in(batch: Batch, decisions: Iterable[Decision], at: datetime, composer: Any) -> int:
    """Record decisions not recorded yet, their messages and their effects, in ``batch``'s
    open transaction (``Engine.handle`` records an event's decisions in the event's)."""
    n = 0
    ds = list(decisions)
    known = batch.tx.known_decisions([d.key for d in ds])
    # rendered before the effects are booked, as in run()
    new = [d for d in ds if d.key not in known and d.status == "planned"]
    queue_with_tasks(batch, composer, new, at)
    for d in ds:
        if d.key not in known:
            batch.tx.add_decision(_record(d))
            if d.status == "planned":
                _effects(batch, d, at)
            n += 1
            log_decision("recorded", d.key, d.status)
    return n
