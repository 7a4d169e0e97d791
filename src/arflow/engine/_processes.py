"""Declared processes at work: started by the events that need them (an order or a
contract with a discount), each step's owner given a tracked task in the same
transaction, the task closed when the step is decided, and the daily run timing out steps
past their deadline and reminding owners (each once: the events and messages are keyed by
the instance, its step and its visit).

The ledger keeps the instance (:mod:`arflow.ledger._processes`); here the pack is known:
which process a trigger starts, the business calendar of deadlines, the people directory
that names each step's owner.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from ..actions import Message
from ..calendar import BusinessCalendar, Offset
from ..domain import (
    MAX_ID_LENGTH,
    OWNER_PATHS,
    ROLE_HOLDERS,
    Contract,
    Customer,
    Person,
    ProcessDefinition,
    ProcessInstance,
    StepOwner,
    Task,
)
from ..errors import DiscountWithoutTier, RaisePending, ValidationError
from ..events import (
    BaseEvent,
    ContractSigned,
    CreditReviewed,
    CustomerUpdated,
    OrderRejected,
    OrderSubmitted,
    ProcessStarted,
    ProcessStepTimedOut,
    StepDecided,
    TaskCancelled,
    TaskCompleted,
    TaskCreated,
)
from ..ledger import Batch
from ..lifecycle import OPEN_TASK_STATES
from ..money import Money
from ..outbox import micros
from ..store.base import OutboxRecord, Store
from .planners.credit import longer_terms, terms_trigger

ENGINE_ACTOR = "arflow-engine"
E = TypeVar("E")
_CENT = Decimal("0.01")
_OPEN = [str(s) for s in OPEN_TASK_STATES]
#: A decision as the outcome of the step's task.
DONE = {"approve": "approved", "reject": "rejected", "timeout": "timed out"}


def process_id(name: str, subject_id: str) -> str:
    """The id of the instance of process ``name`` about ``subject_id``."""
    pid = f"PR-{name}-{subject_id}"
    if len(pid) <= MAX_ID_LENGTH:
        return pid
    return "PR-" + hashlib.sha256(f"{name}\x00{subject_id}".encode()).hexdigest()[:32]


def discount_figures(
    net: Decimal, percent: Decimal | None, amount: Decimal | None
) -> tuple[Decimal | None, Decimal | None]:
    """A discount as a percentage of the list price and as an amount, the one given
    deriving the other (``net`` is the amount after the discount)."""
    if percent is not None and amount is None and percent < 100:
        amount = (net * percent / (100 - percent)).quantize(_CENT, ROUND_HALF_UP)
    elif amount is not None and percent is None and net + amount > 0:
        percent = (amount * 100 / (net + amount)).quantize(_CENT, ROUND_HALF_UP)
    return percent, amount


def _discount_of(event: BaseEvent) -> tuple[str, str, str, Decimal, Any, Any] | None:
    """(trigger, subject kind, subject id, net amount, percent, amount) of an event that
    carries a discount; None for any other."""
    if isinstance(event, OrderSubmitted):
        pct, amt = event.discount_percent, event.discount_amount
        if pct is None and amt is None:
            return None
        net = event.amount.amount
        return ("order_discount", "order", event.order_id, net, pct, amt and amt.amount)
    if isinstance(event, ContractSigned):
        c = event.contract
        if c.discount_percent is None and c.discount_amount is None:
            return None
        amt = c.discount_amount
        return (
            "contract_discount",
            "contract",
            c.id,
            c.amount.amount,
            c.discount_percent,
            amt and amt.amount,
        )
    return None


def check_discount(pack: Any, event: BaseEvent) -> None:
    """Refuse (:class:`~arflow.errors.DiscountWithoutTier`) a discount no process of the
    pack can approve: no process starts on it, or it is beyond every step's limit."""
    got = _discount_of(event)
    if got is None:
        return
    trigger, kind, sid, net, pct, amt = got
    pct, amt = discount_figures(net, pct, amt)
    shown = " / ".join(x for x in (pct and f"{pct}%", amt and str(amt)) if x)
    proc: ProcessDefinition | None = pack.process_for(trigger)
    if proc is None:
        raise DiscountWithoutTier(
            f"{kind} {sid}", shown, f"the pack declares no process with starts_on: {trigger}"
        )
    if not proc.can_grant(pct, amt):
        limits = [str(s.final_up_to) for s in proc.steps if s.final_up_to is not None]
        raise DiscountWithoutTier(
            f"{kind} {sid}",
            shown,
            f"beyond every step of {proc.id} (limits: {', '.join(limits)})",
        )


def _after(day: date, days: int, calendar: BusinessCalendar | None) -> date:
    return Offset.parse(f"due+{days}bd").resolve({"due": day}, calendar or BusinessCalendar())


def owners_for(
    store: Store, tx: Any, d: ProcessDefinition, customer: Customer, contract: Contract | None
) -> tuple[StepOwner, ...]:
    """Each step's owner, from the people directory: the first active holder of its role
    (by id), the customer's or contract's holder, or the person named; else its
    fallback the same way; a role nobody holds stays the role (``role:NAME``)."""
    people: list[Person] = sorted(store.find("person", states=["active"]), key=lambda p: p.id)

    def one(spec: str) -> StepOwner | None:
        if spec.startswith(ROLE_HOLDERS):
            role = spec[len(ROLE_HOLDERS) :]
            holders = [p.id for p in people if role in p.roles]
            return StepOwner(step="-", owner=holders[0], role=role) if holders else None
        pid: str | None = spec
        if spec in OWNER_PATHS:
            where, field = spec.split(".")
            holder = customer if where == "customer" else contract
            pid = None if holder is None else getattr(holder, field, None)
        p = None if pid is None else tx.get("person", pid)
        return StepOwner(step="-", owner=p.id) if p is not None and p.active else None

    out = []
    for s in d.steps:
        got = one(s.owner) or (one(s.fallback) if s.fallback else None)
        if got is None:
            role = next(
                (x for x in (s.owner, s.fallback or "") if x.startswith(ROLE_HOLDERS)), None
            )
            if role is None:
                raise ValidationError(
                    f"process {d.id}: step {s.id!r}: neither {s.owner!r} nor its fallback "
                    f"{s.fallback!r} names an active person"
                )
            got = StepOwner(step="-", owner=role, role=role[len(ROLE_HOLDERS) :])
        out.append(got.model_copy(update={"step": s.id}))
    return tuple(out)


def start_for(batch: Batch, pack: Any, store: Store, event: BaseEvent, at: datetime) -> None:
    """The processes an event's discount and its terms beyond the grade need, started in
    the event's transaction, each with the task of its first step."""
    _start_discount(batch, pack, store, event, at)
    start_terms(batch, pack, store, event, at)


def _subject_of(
    batch: Batch, event: OrderSubmitted | ContractSigned
) -> tuple[str, str, str, date, Contract | None]:
    """(kind, id, customer id, day, contract) of an order or contract event."""
    if isinstance(event, OrderSubmitted):
        contract = (
            None if event.contract_id is None else batch.tx.get("contract", event.contract_id)
        )
        return "order", event.order_id, event.customer_id, event.submitted_on, contract
    c = event.contract
    return "contract", c.id, c.customer_id, c.signed_on, c


def start_terms(batch: Batch, pack: Any, store: Store, event: BaseEvent, at: datetime) -> None:
    """An order or contract asking longer payment terms than its customer's grade allows,
    in a pack declaring a process on ``order_terms`` / ``contract_terms``: that process,
    which takes over from ``settings.terms_tier``."""
    if not isinstance(event, OrderSubmitted | ContractSigned):
        return
    proc: ProcessDefinition | None = pack.process_for(terms_trigger(event))
    if proc is None:
        return
    kind, sid, customer_id, on, contract = _subject_of(batch, event)
    customer: Customer | None = batch.tx.get("customer", customer_id)
    found = longer_terms(pack.scoring, customer, event)
    if found is None or customer is None:
        return
    _subject, _grade, allowed, parts = found
    start(
        batch,
        pack,
        store,
        proc,
        kind,
        sid,
        customer,
        contract,
        on,
        at,
        asked_days=max(parts.values()),
        allowed_days=allowed,
    )


def _start_discount(batch: Batch, pack: Any, store: Store, event: BaseEvent, at: datetime) -> None:
    got = _discount_of(event)
    if got is None:
        return
    trigger, kind, sid, net, pct, amt = got
    proc: ProcessDefinition | None = pack.process_for(trigger)
    if proc is None:
        return
    pct, amt = discount_figures(net, pct, amt)
    if kind == "order":
        assert isinstance(event, OrderSubmitted)
        customer_id = event.customer_id
        on = event.submitted_on
        contract = (
            None if event.contract_id is None else batch.tx.get("contract", event.contract_id)
        )
    else:
        assert isinstance(event, ContractSigned)
        customer_id, on, contract = (
            event.contract.customer_id,
            event.contract.signed_on,
            event.contract,
        )
    customer: Customer | None = batch.tx.get("customer", customer_id)
    if customer is None:
        return
    start(batch, pack, store, proc, kind, sid, customer, contract, on, at, pct, amt)


def start(
    batch: Batch,
    pack: Any,
    store: Store,
    proc: ProcessDefinition,
    kind: str,
    subject_id: str,
    customer: Customer,
    contract: Contract | None,
    on: date,
    at: datetime,
    percent: Decimal | None = None,
    amount: Decimal | None = None,
    *,
    pid: str | None = None,
    proposed_limit: Money | None = None,
    asked_days: int | None = None,
    allowed_days: int | None = None,
) -> ProcessInstance:
    """Start ``proc`` about ``subject_id`` (as ``pid``, else the subject's one instance of
    it), and give its first step's owner a task."""
    pid = pid or process_id(proc.id, subject_id)
    batch.apply(
        ProcessStarted(
            event_id=f"engine:process:{pid}",
            occurred_at=at,
            actor=ENGINE_ACTOR,
            reason=proc.description or None,
            process_id=pid,
            definition=proc,
            subject_kind=kind,  # type: ignore[arg-type]
            subject_id=subject_id,
            customer_id=customer.id,
            started_on=on,
            discount_percent=percent,
            discount_amount=amount,
            owners=owners_for(store, batch.tx, proc, customer, contract),
            proposed_limit=proposed_limit,
            asked_days=asked_days,
            allowed_days=allowed_days,
        )
    )
    inst: ProcessInstance | None = batch.tx.get("process", pid)
    assert inst is not None  # just started
    step_task(batch, pack, inst, at)
    return inst


def task_of(inst: ProcessInstance) -> str:
    """The id of the task of the instance's current step (its visit)."""
    return "T-" + hashlib.sha256(f"{inst.id}\x00{inst.visits}".encode()).hexdigest()[:20]


def deadline_of(inst: ProcessInstance, pack: Any) -> date | None:
    step = inst.definition.step(inst.state)
    return None if step is None else _after(inst.step_since, step.deadline_days, pack.calendar)


def step_task(batch: Batch, pack: Any, inst: ProcessInstance, at: datetime) -> None:
    """The tracked task of the instance's current step, for its owner (none once ended)."""
    step = inst.definition.step(inst.state)
    if step is None or inst.owner is None:
        return
    deadline = deadline_of(inst, pack)
    assert deadline is not None
    escalate = (
        None
        if step.escalate_after_days is None
        else _after(inst.step_since, step.escalate_after_days, pack.calendar)
    )
    batch.apply(
        TaskCreated(
            event_id=f"engine:task:{task_of(inst)}",
            occurred_at=at,
            actor=ENGINE_ACTOR,
            reason=f"{inst.process}: step {step.id} of {inst.subject_kind} {inst.subject_id}",
            task_id=task_of(inst),
            kind="approval",
            subject_kind="process",
            subject_id=inst.id,
            customer_id=inst.customer_id,
            owner=inst.owner,
            role=inst.role,
            created_on=inst.step_since,
            deadline=deadline,
            escalate_on=escalate,
            rule=inst.process,
        )
    )


def _close_tasks(
    batch: Batch, inst: ProcessInstance, outcome: str, on: date, at: datetime, why: str
) -> None:
    for t in batch.tx.find("task", customer_id=inst.customer_id, states=_OPEN):
        if t.subject_kind != "process" or t.subject_id != inst.id:
            continue
        meta: dict[str, Any] = {"occurred_at": at, "actor": ENGINE_ACTOR, "reason": why}
        if outcome == "timeout":
            batch.apply(
                TaskCancelled(
                    event_id=f"engine:task-timeout:{t.id}",
                    task_id=t.id,
                    cancelled_on=max(on, t.created_on),
                    **meta,
                )
            )
        else:
            batch.apply(
                TaskCompleted(
                    event_id=f"engine:task-decided:{t.id}",
                    task_id=t.id,
                    completed_on=max(on, t.created_on),
                    outcome=outcome,
                    **meta,
                )
            )


def with_owners(store: Store, event: E) -> E:
    """A process started by hand (``Engine.handle(ProcessStarted)``) naming no owners:
    the event with each step's owner resolved from the people directory."""
    if not isinstance(event, ProcessStarted) or event.owners:
        return event
    customer: Customer | None = store.get("customer", event.customer_id)
    if customer is None:
        return event  # refused as unknown when applied
    contract: Contract | None = None
    if event.subject_kind == "contract":
        contract = store.get("contract", event.subject_id)
    elif event.subject_kind == "order":
        order = store.get("order", event.subject_id)
        if order is not None and order.contract_id is not None:
            contract = store.get("contract", order.contract_id)
    owners = owners_for(store, store, event.definition, customer, contract)
    started: E = event.model_copy(update={"owners": owners})
    return started


def follow(batch: Batch, pack: Any, event: BaseEvent) -> list[str]:
    """After a process is started by hand or a step is decided (``Engine.handle``): the
    decided step's task is done, the current step's owner has theirs, and a process that
    ended does what its end means (:func:`ended`). Returns the customers whose credit or
    orders that end changed (their locks are judged again)."""
    if isinstance(event, ProcessStarted):
        started: ProcessInstance | None = batch.tx.get("process", event.process_id)
        if started is not None:
            step_task(batch, pack, started, event.occurred_at)
        return []
    if not isinstance(event, StepDecided):
        return []
    inst: ProcessInstance | None = batch.tx.get("process", event.process_id)
    if inst is None:
        return []
    outcome = DONE[event.decision]
    why = f"step {event.step} {outcome} by {event.actor}"
    _close_tasks(batch, inst, outcome, event.decided_on, event.occurred_at, why)
    step_task(batch, pack, inst, event.occurred_at)
    return [inst.customer_id] if ended(batch, inst, event.decided_on, event.occurred_at) else []


def sweep(batch: Batch, store: Store, pack: Any, as_of: date, at: datetime) -> int:
    """The daily run's part: every open instance whose step is past its deadline times
    out (its task cancelled, the next step's owner given theirs); the others' owners are
    reminded on their step's ``remind_days``. Keyed by instance, step and visit: a day
    run twice does nothing more. Returns how many instances moved."""
    moved = 0
    for seen in sorted(store.find("process", states=["open"]), key=lambda p: p.id):
        inst: ProcessInstance | None = batch.tx.get("process", seen.id)
        if inst is None or not inst.is_open:
            continue
        deadline = deadline_of(inst, pack)
        if deadline is not None and deadline < as_of:
            batch.apply(
                ProcessStepTimedOut(
                    event_id=f"engine:process-timeout:{inst.id}:{inst.visits}",
                    occurred_at=at,
                    actor=ENGINE_ACTOR,
                    reason=f"deadline {deadline} passed",
                    process_id=inst.id,
                    step=inst.state,
                    timed_out_on=as_of,
                )
            )
            _close_tasks(batch, inst, "timeout", as_of, at, f"step {inst.state} timed out")
            new: ProcessInstance | None = batch.tx.get("process", inst.id)
            if new is not None:
                step_task(batch, pack, new, at)
                ended(batch, new, as_of, at)
            moved += 1
            continue
        _remind(batch, store, pack, inst, as_of, at)
    return moved


def _remind(
    batch: Batch, store: Store, pack: Any, inst: ProcessInstance, as_of: date, at: datetime
) -> None:
    step = inst.definition.step(inst.state)
    if step is None or inst.owner is None:
        return
    due = [d for d in step.remind_days if _after(inst.step_since, d, pack.calendar) <= as_of]
    if not due:
        return
    key = f"process-remind:{inst.id}:{inst.visits}:{max(due)}"
    if store.outbox_item(key) is not None:
        return
    message = Message(
        key=key,
        channel="task",
        action="reminder",
        customer_id=inst.customer_id,
        to=(inst.owner,),
        subject=f"Reminder: {inst.process} waits for you",
        text=(
            f"{inst.process}: step {inst.state} of {inst.subject_kind} {inst.subject_id} waits "
            f"for your decision since {inst.step_since}, deadline {deadline_of(inst, pack)}."
        ),
        priority="high",
        due=deadline_of(inst, pack),
        rule=inst.process,
        subject_ids=(inst.subject_id,),
        data={"task_id": task_of(inst), "process_id": inst.id},
    )
    batch.tx.add_outbox(
        OutboxRecord(
            key=key,
            channel="task",
            customer_id=inst.customer_id,
            body=message.model_dump_json(),
            created_at=micros(at),
            next_at=micros(at),
        )
    )


def open_task(store: Store, inst: ProcessInstance) -> Task | None:
    """The open task of the instance's current step (None once it ended)."""
    t: Task | None = store.get("task", task_of(inst))
    return t if t is not None and str(t.status) in _OPEN else None


# -- what a process's end does -------------------------------------------------------------------


def ended(batch: Batch, inst: ProcessInstance, on: date, at: datetime) -> bool:
    """What an instance that just ended does to its subject: a raise approved takes effect
    (the customer's limit becomes the one asked for; refused or expired, it stays); an
    order whose process ended other than approved is rejected (it could never ship),
    audited with the process that refused it. Keyed by the instance: once. Returns
    whether it changed the customer's credit or orders."""
    if inst.is_open:
        return False
    approved = inst.state == inst.definition.approved_state
    meta: dict[str, Any] = {
        "event_id": f"engine:process-end:{inst.id}",
        "occurred_at": at,
        "actor": ENGINE_ACTOR,
        "reason": f"process {inst.id} ({inst.process}) ended {inst.state}",
    }
    if inst.proposed_limit is not None and approved:
        customer: Customer | None = batch.tx.get("customer", inst.customer_id)
        if customer is None:
            return False
        by = inst.history[-1].by if inst.history else ENGINE_ACTOR
        credit = customer.credit
        if credit.grade is not None:
            batch.apply(
                CreditReviewed(
                    customer_id=customer.id,
                    reviewed_on=max(on, credit.reviewed_on or on),
                    grade=credit.grade,
                    credit_limit=inst.proposed_limit,
                    reviewer=by,
                    comment=f"raise approved by {inst.process} ({inst.id})",
                    **meta,
                )
            )
        else:
            batch.apply(
                CustomerUpdated(
                    customer_id=customer.id,
                    credit=credit.model_copy(update={"credit_limit": inst.proposed_limit}),
                    **meta,
                )
            )
        return True
    if inst.subject_kind == "order" and not approved:
        order = batch.tx.get("order", inst.subject_id)
        if order is not None and str(order.state) in _REJECTABLE:
            batch.apply(
                OrderRejected(order_id=order.id, approver=ENGINE_ACTOR, **meta),
            )
            return True
    return False


#: orders a process's refusal rejects: not decided yet, or approved but not shipped
_REJECTABLE = ("submitted", "pending_approval", "approved")


# -- credit limit raises -----------------------------------------------------------------------


def _raise_asked(tx: Any, event: BaseEvent) -> tuple[Customer, Money] | None:
    """(customer, limit asked) of an event that raises a customer's credit limit above
    the one it has (a customer with no limit yet has none to raise); None otherwise."""
    if isinstance(event, CreditReviewed):
        cid, asked = event.customer_id, event.credit_limit
    elif isinstance(event, CustomerUpdated) and event.credit is not None:
        cid, asked = event.customer_id, event.credit.credit_limit
    else:
        return None
    customer: Customer | None = tx.get("customer", cid)
    if asked is None or customer is None:
        return None
    now = customer.credit.credit_limit
    if now is None or (now.currency == asked.currency and asked.amount <= now.amount):
        return None
    return customer, asked


def open_raise(tx: Any, proc: ProcessDefinition, customer_id: str) -> ProcessInstance | None:
    """The customer's raise process still open, if any."""
    return next(
        (
            p
            for p in sorted(tx.find("process", customer_id=customer_id), key=lambda p: p.id)
            if p.process == proc.id and p.is_open
        ),
        None,
    )


def hold_raise(pack: Any, tx: Any, event: E) -> tuple[E, Money | None]:
    """In a pack declaring a process on ``credit_limit_raise``: an event raising a
    customer's limit (``CreditReviewed``, ``CustomerUpdated``), with the limit kept as it
    is, and the limit asked for (the process decides it); refused
    (:class:`~arflow.errors.RaisePending`) while another raise of the customer is open.
    Any other event as it is, with None."""
    proc: ProcessDefinition | None = pack.process_for("credit_limit_raise")
    if proc is None or not isinstance(event, BaseEvent):
        return event, None
    got = _raise_asked(tx, event)
    if got is None:
        return event, None
    customer, asked = got
    pending = open_raise(tx, proc, customer.id)
    if pending is not None:
        raise RaisePending(
            customer.id,
            pending.id,
            f"process {pending.id} asks {pending.proposed_limit} (at step {pending.state}); "
            f"decide it before asking {asked}",
        )
    kept = customer.credit.credit_limit
    if isinstance(event, CreditReviewed):
        held: E = event.model_copy(update={"credit_limit": None})
    else:
        assert isinstance(event, CustomerUpdated) and event.credit is not None
        credit = event.credit.model_copy(update={"credit_limit": kept})
        held = event.model_copy(update={"credit": credit})
    return held, asked


def raise_id(tx: Any, proc: ProcessDefinition, customer_id: str, on: date) -> str:
    """The id of a raise of ``customer_id`` asked on ``on`` (``-2``... for a later one of
    the same day)."""
    base = f"{customer_id}-{on:%Y%m%d}"
    taken = {p.id for p in tx.find("process", customer_id=customer_id)}
    n, pid = 1, process_id(proc.id, base)
    while pid in taken:
        n += 1
        pid = process_id(proc.id, f"{base}-{n}")
    return pid


def start_raise(
    batch: Batch,
    pack: Any,
    store: Store,
    customer_id: str,
    asked: Money,
    on: date,
    at: datetime,
) -> ProcessInstance | None:
    """The pack's raise process for ``customer_id``, asking ``asked``, with its first
    step's task (None: the pack declares none, or the customer is unknown)."""
    proc: ProcessDefinition | None = pack.process_for("credit_limit_raise")
    customer: Customer | None = batch.tx.get("customer", customer_id)
    if proc is None or customer is None:
        return None
    pid = raise_id(batch.tx, proc, customer_id, on)
    return start(
        batch,
        pack,
        store,
        proc,
        "customer",
        customer_id,
        customer,
        None,
        on,
        at,
        pid=pid,
        proposed_limit=asked,
    )


def start_raises(batch: Batch, pack: Any, store: Store, decisions: list[Any], at: datetime) -> None:
    """The daily reviews' raises held for approval (``credit-limit-raise`` decisions), in
    a pack declaring a raise process: each one's process, unless the customer has a raise
    open already or one started that day (a day run twice starts nothing more)."""
    proc: ProcessDefinition | None = pack.process_for("credit_limit_raise")
    if proc is None:
        return
    for d in decisions:
        if d.kind != "approval" or d.rule != "credit-limit-raise" or "proposed_amount" not in d.why:
            continue
        mine = [
            p for p in batch.tx.find("process", customer_id=d.customer_id) if p.process == proc.id
        ]
        if any(p.is_open or p.started_on == d.as_of for p in mine):
            continue
        asked = Money(amount=Decimal(d.why["proposed_amount"]), currency=d.currency)
        start_raise(batch, pack, store, d.customer_id, asked, d.as_of, at)
