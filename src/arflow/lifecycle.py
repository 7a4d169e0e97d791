"""The lifecycles of a receivable and an order, declared once as data.

Each lifecycle is one class-level ``transitions.Machine`` with no models attached (a
machine per object costs 71 s and 685 MB for 100k objects). State stays a plain field on
the immutable domain object; :func:`move` runs the machine on a throw-away subject and
returns the new state, or raises :class:`~arflow.errors.IllegalTransition`.
The same declaration draws the diagrams in ``docs/concepts.md`` (:func:`mermaid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from transitions import Machine, MachineError

from .domain import (
    InvoiceRequestState,
    OrderState,
    ProcessDefinition,
    ReceivableState,
    TaskStatus,
)
from .errors import IllegalTransition

#: Receivables that are still owed: open, partly paid, disputed or under a promise.
LIVE_STATES = (
    ReceivableState.OPEN,
    ReceivableState.PARTIALLY_PAID,
    ReceivableState.DISPUTED,
    ReceivableState.PROMISED,
)
#: Orders that count toward exposure: approved or shipped, not yet invoiced.
UNINVOICED_ORDER_STATES = (OrderState.APPROVED, OrderState.SHIPPED)
#: Orders that count toward a customer's exposure: every order not refused and not yet
#: invoiced (submitted, waiting for approval, approved, shipped), so that an order is
#: judged with itself and every other order still open.
EXPOSURE_ORDER_STATES = (
    OrderState.SUBMITTED,
    OrderState.PENDING_APPROVAL,
    OrderState.APPROVED,
    OrderState.SHIPPED,
)

R = ReceivableState
OS = OrderState

_LIVE = [R.OPEN, R.PARTIALLY_PAID, R.DISPUTED, R.PROMISED]

#: Receivable transitions. ``dest=None`` is an internal move (state kept, move allowed);
#: ``conditions="has_reductions"`` picks partially_paid over open when something was paid.
RECEIVABLE_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "part_pay", "source": [R.OPEN, R.PARTIALLY_PAID], "dest": R.PARTIALLY_PAID},
    {"trigger": "part_pay", "source": [R.DISPUTED, R.PROMISED], "dest": None},
    {"trigger": "settle", "source": _LIVE, "dest": R.PAID},
    {"trigger": "credit_in_full", "source": _LIVE, "dest": R.CREDITED},
    {"trigger": "dispute", "source": [R.OPEN, R.PARTIALLY_PAID, R.PROMISED], "dest": R.DISPUTED},
    {"trigger": "dispute", "source": R.DISPUTED, "dest": None},
    {
        "trigger": "resolve_dispute",
        "source": R.DISPUTED,
        "dest": R.PARTIALLY_PAID,
        "conditions": "has_reductions",
    },
    {"trigger": "resolve_dispute", "source": R.DISPUTED, "dest": R.OPEN},
    {"trigger": "promise", "source": [R.OPEN, R.PARTIALLY_PAID], "dest": R.PROMISED},
    *(
        t
        for trig in ("break_promise", "keep_promise")
        for t in (
            {
                "trigger": trig,
                "source": R.PROMISED,
                "dest": R.PARTIALLY_PAID,
                "conditions": "has_reductions",
            },
            {"trigger": trig, "source": R.PROMISED, "dest": R.OPEN},
        )
    ),
    {
        "trigger": "reopen",
        "source": [R.PAID, R.PARTIALLY_PAID, R.OPEN],
        "dest": R.PARTIALLY_PAID,
        "conditions": "has_reductions",
    },
    {"trigger": "reopen", "source": [R.PAID, R.PARTIALLY_PAID, R.OPEN], "dest": R.OPEN},
    {"trigger": "reopen", "source": [R.DISPUTED, R.PROMISED], "dest": None},
    {"trigger": "write_off", "source": _LIVE, "dest": R.WRITTEN_OFF},
]

ORDER_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "request_approval", "source": OS.SUBMITTED, "dest": OS.PENDING_APPROVAL},
    {"trigger": "approve", "source": [OS.SUBMITTED, OS.PENDING_APPROVAL], "dest": OS.APPROVED},
    {"trigger": "reject", "source": [OS.SUBMITTED, OS.PENDING_APPROVAL], "dest": OS.REJECTED},
    {"trigger": "ship", "source": OS.APPROVED, "dest": OS.SHIPPED},
    # an approved order whose approval process (discount, terms) then ended other than
    # approved: it can never ship, and is rejected (docs/workflows.md#processes)
    {"trigger": "withdraw", "source": OS.APPROVED, "dest": OS.REJECTED},
    {"trigger": "invoice", "source": [OS.APPROVED, OS.SHIPPED], "dest": OS.INVOICED},
]


IR = InvoiceRequestState
_REQUEST_OPEN = [IR.REQUESTED, IR.AWAITING_DOCUMENTS, IR.WITH_FINANCE]

#: Invoice request transitions. ``to_finance`` needs every required document attached
#: (``conditions="documents_complete"``): the ledger raises ``DocumentsMissing`` before
#: trying it otherwise. ``supersede`` is an invoice issued directly, without the request.
INVOICE_REQUEST_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "await_documents", "source": IR.REQUESTED, "dest": IR.AWAITING_DOCUMENTS},
    {
        "trigger": "to_finance",
        "source": [IR.REQUESTED, IR.AWAITING_DOCUMENTS],
        "dest": IR.WITH_FINANCE,
        "conditions": "documents_complete",
    },
    {"trigger": "attach", "source": _REQUEST_OPEN, "dest": None},
    {"trigger": "approve", "source": IR.WITH_FINANCE, "dest": IR.APPROVED},
    {"trigger": "reject", "source": IR.WITH_FINANCE, "dest": IR.REJECTED},
    {"trigger": "cancel", "source": [*_REQUEST_OPEN, IR.APPROVED], "dest": IR.CANCELLED},
    {"trigger": "invoice", "source": IR.APPROVED, "dest": IR.INVOICED},
    {"trigger": "supersede", "source": _REQUEST_OPEN, "dest": IR.CANCELLED},
]

#: How far an invoice got with the customer (``Receivable.stage``; ``issued`` is None).
RECEIVABLE_STAGES = ("issued", "sent", "confirmed")
STAGE_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "send", "source": "issued", "dest": "sent"},
    {"trigger": "confirm", "source": "sent", "dest": "confirmed"},
]


def _machine(states: list[str], initial: str, transitions: list[dict[str, Any]]) -> Machine:
    def name(s: Any) -> Any:
        # transitions names Enum states by member name; we want the stored values.
        if isinstance(s, list):
            return [str(x) for x in s]
        return None if s is None else str(s)

    plain = [{**t, "source": name(t["source"]), "dest": name(t["dest"])} for t in transitions]
    return Machine(
        model=None,
        states=states,
        initial=initial,
        transitions=plain,
        auto_transitions=False,
        send_event=False,
    )


TS = TaskStatus
#: Tasks still waiting for their owner.
OPEN_TASK_STATES = (TS.OPEN, TS.OVERDUE)
#: Task transitions: ``reassign`` keeps the state (the owner changes, audited).
TASK_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "complete", "source": [TS.OPEN, TS.OVERDUE], "dest": TS.DONE},
    {"trigger": "cancel", "source": [TS.OPEN, TS.OVERDUE], "dest": TS.CANCELLED},
    {"trigger": "fall_overdue", "source": TS.OPEN, "dest": TS.OVERDUE},
    {"trigger": "reassign", "source": [TS.OPEN, TS.OVERDUE], "dest": None},
    {"trigger": "escalate", "source": [TS.OPEN, TS.OVERDUE], "dest": TS.OVERDUE},
]

RECEIVABLE_MACHINE = _machine([s.value for s in R], R.OPEN.value, RECEIVABLE_TRANSITIONS)
ORDER_MACHINE = _machine([s.value for s in OS], OS.SUBMITTED.value, ORDER_TRANSITIONS)
TASK_MACHINE = _machine([s.value for s in TS], TS.OPEN.value, TASK_TRANSITIONS)
INVOICE_REQUEST_MACHINE = _machine(
    [s.value for s in IR], IR.REQUESTED.value, INVOICE_REQUEST_TRANSITIONS
)
STAGE_MACHINE = _machine(list(RECEIVABLE_STAGES), "issued", STAGE_TRANSITIONS)


@dataclass
class _Subject:
    state: str
    has_reductions: bool = False
    documents_complete: bool = True


def move(
    machine: Machine,
    kind: str,
    object_id: str,
    state: str,
    trigger: str,
    *,
    has_reductions: bool = False,
    documents_complete: bool = True,
) -> str:
    """Apply ``trigger`` to an object in ``state``; return the state it ends in."""
    event = machine.events.get(trigger)
    if event is None:
        raise IllegalTransition(kind, object_id, str(state), trigger)
    subject = _Subject(str(state), has_reductions, documents_complete)
    try:
        ok = event.trigger(subject)
    except MachineError:
        raise IllegalTransition(kind, object_id, str(state), trigger) from None
    if not ok:
        raise IllegalTransition(kind, object_id, str(state), trigger)
    return subject.state


def allowed_triggers(machine: Machine, state: str) -> list[str]:
    """Triggers that have at least one transition out of ``state``."""
    return sorted(name for name, ev in machine.events.items() if str(state) in ev.transitions)


_CONDITION_LABELS = {"has_reductions": "paid before", "documents_complete": "documents attached"}


def mermaid(transitions: list[dict[str, Any]], initial: str) -> str:
    """A mermaid ``stateDiagram-v2`` drawn from a transition declaration."""
    lines = ["stateDiagram-v2", f"    [*] --> {initial}"]
    seen: set[tuple[str, str, str]] = set()
    for t in transitions:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        for src in sources:
            dest = src if t["dest"] is None else t["dest"]
            cond = t.get("conditions")
            label = t["trigger"] + (f" [{_CONDITION_LABELS.get(cond, cond)}]" if cond else "")
            key = (str(src), str(dest), label)
            if key not in seen:
                seen.add(key)
                lines.append(f"    {src} --> {dest}: {label}")
    return "\n".join(lines) + "\n"


# -- processes declared in rule packs ----------------------------------------------------------


def process_transitions(d: ProcessDefinition) -> list[dict[str, Any]]:
    """The transitions of a declared process: from each step, ``approve`` (to
    ``approved_state`` when the discount is within the step's ``final_up_to``, else to
    ``on_approve``), ``reject`` and ``timeout``."""
    out: list[dict[str, Any]] = []
    for s in d.steps:
        if s.final_up_to is not None and s.on_approve != d.approved_state:
            out.append(
                {
                    "trigger": "approve",
                    "source": s.id,
                    "dest": d.approved_state,
                    "conditions": "within_limit",
                    "label": f"within {s.final_up_to}",
                }
            )
        out.append({"trigger": "approve", "source": s.id, "dest": s.on_approve})
        out.append({"trigger": "reject", "source": s.id, "dest": s.on_reject})
        out.append({"trigger": "timeout", "source": s.id, "dest": s.on_timeout})
    return out


@lru_cache(maxsize=256)
def process_machine(d: ProcessDefinition) -> Machine:
    """The one machine of a definition, built once (instances keep their state as data)."""
    plain = [{k: v for k, v in t.items() if k != "label"} for t in process_transitions(d)]
    states = [s.id for s in d.steps] + list(d.terminals)
    return Machine(
        model=None,
        states=states,
        initial=d.start,
        transitions=plain,
        auto_transitions=False,
        send_event=False,
    )


@dataclass
class _StepSubject:
    state: str
    within: bool

    def within_limit(self) -> bool:
        return self.within


def move_process(
    d: ProcessDefinition, process_id: str, state: str, trigger: str, within: bool
) -> str:
    """Run ``trigger`` on an instance of ``d`` in ``state``; the state it ends in, or
    :class:`~arflow.errors.IllegalTransition`."""
    machine = process_machine(d)
    event = machine.events.get(trigger)
    if event is None:
        raise IllegalTransition("process", process_id, state, trigger)
    subject = _StepSubject(state, within)
    try:
        ok = event.trigger(subject)
    except MachineError:
        raise IllegalTransition("process", process_id, state, trigger) from None
    if not ok:
        raise IllegalTransition("process", process_id, state, trigger)
    return subject.state


def process_mermaid(d: ProcessDefinition) -> str:
    """A mermaid ``stateDiagram-v2`` of a declared process, drawn from its definition."""
    lines = ["stateDiagram-v2", f"    [*] --> {d.start}"]
    for t in process_transitions(d):
        label = t["trigger"] + (f" [{t['label']}]" if "label" in t else "")
        lines.append(f"    {t['source']} --> {t['dest']}: {label}")
    lines.extend(f"    {term} --> [*]" for term in d.terminals)
    return "\n".join(lines) + "\n"
