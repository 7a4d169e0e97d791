"""Handlers of declared processes: an instance started, a step decided (approve or
reject, by its owner or an active holder of its role), a step timed out (the daily run).

The instance keeps its state as data; each move runs the definition's one machine
(:func:`arflow.lifecycle.move_process`). Every check comes before the first write, so a
refused decision changes nothing (``Engine.handle`` audits the refused attempt).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from ..domain import (
    OWNER_PATHS,
    ROLE_HOLDERS,
    Contract,
    Customer,
    Person,
    ProcessDefinition,
    ProcessInstance,
    ProcessRecord,
    StepOwner,
)
from ..errors import EngineOnly, StepDecidedAlready, StepNotOwned, StepTimedOut, ValidationError
from ..events import ProcessStarted, ProcessStepTimedOut, StepDecided
from ..lifecycle import move_process
from ._context import Ctx

_DONE = {"approve": "approved", "reject": "rejected", "timeout": "timed out"}
#: who times steps out: the engine's daily run (``arflow.engine._processes.ENGINE_ACTOR``)
ENGINE_ACTOR = "arflow-engine"


def _active(ctx: Ctx, pid: str | None) -> Person | None:
    p: Person | None = None if pid is None else ctx.tx.get("person", pid)
    return p if p is not None and p.active else None


def _one(ctx: Ctx, spec: str, customer: Customer, contract: Contract | None) -> StepOwner | None:
    if spec.startswith(ROLE_HOLDERS):
        return StepOwner(step="-", owner=spec, role=spec[len(ROLE_HOLDERS) :])
    if spec in OWNER_PATHS:
        where, field = spec.split(".")
        holder = customer if where == "customer" else contract
        pid = None if holder is None else getattr(holder, field, None)
        return None if _active(ctx, pid) is None else StepOwner(step="-", owner=str(pid))
    return None if _active(ctx, spec) is None else StepOwner(step="-", owner=spec)


def resolve(
    ctx: Ctx, d: ProcessDefinition, customer: Customer, contract: Contract | None
) -> dict[str, StepOwner]:
    """Each step's owner from the book: its ``owner``, else its ``fallback``; a step whose
    owner and fallback both name nobody is refused (``ValidationError``)."""
    out: dict[str, StepOwner] = {}
    for s in d.steps:
        got = _one(ctx, s.owner, customer, contract)
        if got is None and s.fallback is not None:
            got = _one(ctx, s.fallback, customer, contract)
        if got is None:
            fb = f" nor its fallback {s.fallback!r}" if s.fallback else " (and it has no fallback)"
            raise ValidationError(
                f"process {d.id}: step {s.id!r}: owner {s.owner!r}{fb} names an active person"
            )
        out[s.id] = got.model_copy(update={"step": s.id})
    return out


def process_started(ctx: Ctx, e: ProcessStarted) -> None:
    """A new instance at its definition's start step, about an order, contract or
    customer of ``customer_id``, each step's owner resolved (or given by the engine)."""
    ctx.absent("process", e.process_id)
    customer: Customer = ctx.get("customer", e.customer_id)
    contract: Contract | None = None
    if e.subject_kind == "contract":
        contract = ctx.get("contract", e.subject_id)
        whose = contract.customer_id
    elif e.subject_kind == "order":
        order = ctx.get("order", e.subject_id)
        whose = order.customer_id
        if order.contract_id is not None:
            contract = ctx.tx.get("contract", order.contract_id)
    else:
        whose = ctx.get("customer", e.subject_id).id
    if whose != customer.id:
        raise ValidationError(
            f"process {e.process_id}: {e.subject_kind} {e.subject_id!r} is not of {customer.id}"
        )
    given = {o.step: o for o in e.owners}
    unknown = sorted(set(given) - {s.id for s in e.definition.steps})
    if unknown:
        raise ValidationError(f"process {e.process_id}: owner for unknown step {unknown[0]!r}")
    owners = {**resolve_missing(ctx, e.definition, customer, contract, given), **given}
    d = e.definition
    inst = ProcessInstance(
        id=e.process_id,
        process=d.id,
        definition=d,
        subject_kind=e.subject_kind,
        subject_id=e.subject_id,
        customer_id=customer.id,
        state=d.start,
        started_on=e.started_on,
        step_since=e.started_on,
        discount_percent=e.discount_percent,
        discount_amount=e.discount_amount,
        owners=tuple(owners[s.id] for s in d.steps),
        proposed_limit=e.proposed_limit,
        asked_days=e.asked_days,
        allowed_days=e.allowed_days,
    )
    inst = _owned(inst)
    ctx.put(inst, None, f"{d.id} started on {e.subject_kind} {e.subject_id}: {_at(inst)}")


def resolve_missing(
    ctx: Ctx,
    d: ProcessDefinition,
    customer: Customer,
    contract: Contract | None,
    given: dict[str, StepOwner],
) -> dict[str, StepOwner]:
    if all(s.id in given for s in d.steps):
        return {}
    return {k: v for k, v in resolve(ctx, d, customer, contract).items() if k not in given}


def _owned(inst: ProcessInstance) -> ProcessInstance:
    """``inst`` with the owner and role of its current step (none once it has ended)."""
    o = next((x for x in inst.owners if x.step == inst.state), None)
    return inst.model_copy(
        update={"owner": None if o is None else o.owner, "role": None if o is None else o.role}
    )


def _at(inst: ProcessInstance) -> str:
    if not inst.is_open:
        return f"ended {inst.state}"
    role = f" (or a holder of {inst.role})" if inst.role else ""
    return f"step {inst.state}, owner {inst.owner}{role}"


def within(inst: ProcessInstance, step: str) -> bool:
    s = inst.definition.step(step)
    lim = None if s is None else s.final_up_to
    return lim is not None and lim.allows(inst.discount_percent, inst.discount_amount)


def _closed(inst: ProcessInstance, step: str, trigger: str) -> None:
    """Refuse a move of ``step`` when it is not the current step: decided already, timed
    out, or never reached."""
    if inst.state == step:
        return
    past = [h for h in inst.history if h.step == step]
    if past and past[-1].decision == "timeout":
        raise StepTimedOut(
            inst.id,
            step,
            inst.state,
            f"timed out on {past[-1].on} and moved on to {past[-1].moved_to}; now {_at(inst)}",
        )
    if past:
        h = past[-1]
        raise StepDecidedAlready(
            inst.id,
            step,
            inst.state,
            f"{_DONE[h.decision]} already by {h.by} on {h.on}; now {_at(inst)}",
        )
    raise StepDecidedAlready(
        inst.id, step, inst.state, f"cannot {trigger}: the process is at {_at(inst)}"
    )


def may_decide(ctx: Ctx, inst: ProcessInstance, who: str) -> str | None:
    """Why ``who`` may not decide the current step (None: they may)."""
    if who == inst.owner:
        return None if _active(ctx, who) is not None or inst.owner is None else "has left"
    if inst.role is not None:
        p = _active(ctx, who)
        if p is not None and inst.role in p.roles:
            return None
        return f"only {inst.owner} or an active holder of {inst.role} may"
    return f"only its owner {inst.owner} may"


def step_decided(ctx: Ctx, e: StepDecided) -> None:
    inst: ProcessInstance = ctx.get("process", e.process_id)
    _closed(inst, e.step, e.decision)
    why = may_decide(ctx, inst, e.actor)
    if why is not None:
        raise StepNotOwned(inst.id, e.step, e.actor, why)
    if e.decided_on < inst.step_since:
        raise ValidationError(
            f"process {inst.id}: decided on {e.decided_on}, before the step began ({inst.step_since})"
        )
    _move(ctx, inst, e.step, e.decision, e.actor, e.decided_on, e.comment)


def step_timed_out(ctx: Ctx, e: ProcessStepTimedOut) -> None:
    inst: ProcessInstance = ctx.get("process", e.process_id)
    if e.actor != ENGINE_ACTOR:
        raise EngineOnly(inst.id, e.step, e.actor, ENGINE_ACTOR)
    _closed(inst, e.step, "timeout")
    _move(ctx, inst, e.step, "timeout", e.actor, e.timed_out_on, e.reason)


def _move(
    ctx: Ctx,
    inst: ProcessInstance,
    step: str,
    decision: Literal["approve", "reject", "timeout"],
    who: str,
    on: date,
    comment: str | None,
) -> None:
    state = move_process(inst.definition, inst.id, inst.state, decision, within(inst, step))
    rec = ProcessRecord(
        step=step, decision=decision, by=who, on=on, comment=comment, moved_to=state
    )
    new = _owned(
        inst.model_copy(
            update={
                "state": state,
                "step_since": on,
                "visits": inst.visits + (0 if inst.definition.is_terminal(state) else 1),
                "history": (*inst.history, rec),
            }
        )
    )
    said = f": {comment}" if comment else ""
    verb = _DONE[decision]
    ctx.put(new, inst, f"step {step} {verb} by {who}{said}; {_at(new)}")


def refused_by(ctx: Ctx, order_id: str, customer_id: str) -> ProcessInstance | None:
    """The process about an order that ended other than approved (its discount or its
    terms refused, or left to expire), if any: the order may no longer ship."""
    found: list[ProcessInstance] = ctx.tx.find("process", customer_id=customer_id)
    for p in sorted(found, key=lambda p: p.id):
        if p.subject_kind != "order" or p.subject_id != order_id or p.is_open:
            continue
        if p.state != p.definition.approved_state:
            return p
    return None


def check_gates(ctx: Ctx, order_id: str, customer_id: str) -> None:
    """Refuse (:class:`~arflow.errors.ApprovalPending`) shipping an order that a process
    about it has not approved: still open, or ended other than approved."""
    from ..errors import ApprovalPending

    gated = False
    for p in sorted(ctx.tx.find("process", customer_id=customer_id), key=lambda p: p.id):
        if p.subject_kind != "order" or p.subject_id != order_id:
            continue
        gated = True
        if p.is_open:
            raise ApprovalPending(order_id, f"process {p.id} ({p.process}) waits at {_at(p)}")
        if p.state != p.definition.approved_state:
            raise ApprovalPending(order_id, f"process {p.id} ({p.process}) ended {p.state}")
    order = ctx.get("order", order_id)
    if not gated and (order.discount_percent is not None or order.discount_amount is not None):
        raise ApprovalPending(
            order_id,
            "its discount was never approved (submit the order through Engine.handle, which "
            "starts the pack's discount approval process)",
        )
