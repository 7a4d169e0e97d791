"""Invoice requests (issue 14, item 3): made by a completed milestone, a shipped order or by
hand; held until their documents are attached; approved by finance only; invoiced once,
linked to their request; every bad input refused with its own error and nothing changed.
On memory, SQLite and PostgreSQL; the property test on memory."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arflow import (
    ArflowError,
    Contract,
    ContractSigned,
    CustomerRegistered,
    DocumentAttached,
    DocumentsMissing,
    DueRule,
    DuplicateObject,
    IllegalTransition,
    InvoiceConfirmed,
    InvoiceIssued,
    InvoiceRequestApproved,
    InvoiceRequestCancelled,
    InvoiceRequested,
    InvoiceRequestRejected,
    InvoiceSent,
    Ledger,
    MemoryStore,
    Milestone,
    MilestoneCompleted,
    MilestoneNotDone,
    Money,
    NotAuthorized,
    OrderApproved,
    OrderShipped,
    OrderSubmitted,
    OverInvoiced,
    PaymentNode,
    PersonAdded,
    PersonLeft,
    RoleRequired,
    Store,
    dump_book,
)
from arflow.domain import Customer, InvoiceRequest, Person
from arflow.events import BaseEvent

_ids = count()


def cny(x: int | str) -> Money:
    return Money.of(x, "CNY")


def meta(day: date = date(2026, 3, 1), actor: str = "pm.zhang") -> dict[str, Any]:
    return {
        "event_id": f"e{next(_ids)}",
        "occurred_at": datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
        "actor": actor,
    }


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def book(ledger: Ledger) -> None:
    """Customer C1; finance F1, sales S1, finance F2 who left; contract K1 (30% on signing,
    40% on installation with a delivery note, 30% 30 days after acceptance with an
    acceptance certificate)."""
    ap = ledger.apply
    ap(CustomerRegistered(**meta(), customer=Customer(id="C1", name="华东精密")))
    for pid, roles in (("F1", ("finance",)), ("S1", ("sales",)), ("F2", ("finance",))):
        ap(PersonAdded(**meta(), person=Person(id=pid, name=f"Person {pid}", roles=roles)))
    ap(PersonLeft(**meta(), person_id="F2", left_on=date(2026, 2, 1)))
    contract = Contract(
        id="K1",
        customer_id="C1",
        title="Line 3 automation",
        signed_on=date(2026, 1, 10),
        amount=cny(1_000_000),
        salesperson="S1",
        payment_nodes=(
            PaymentNode(id="sign", label="on signing", percent=Decimal(30)),
            PaymentNode(
                id="install",
                label="installation",
                percent=Decimal(40),
                due=DueRule(basis="milestone", milestone_id="M-inst", days=0),
                documents=("delivery_note",),
            ),
            PaymentNode(
                id="accept",
                label="acceptance + 30 days",
                percent=Decimal(30),
                due=DueRule(basis="milestone", milestone_id="M-acc", days=30),
                documents=("acceptance_certificate",),
            ),
        ),
    )
    ap(
        ContractSigned(
            **meta(),
            contract=contract,
            milestones=(
                Milestone(id="M-inst", contract_id="K1", name="Installation and commissioning"),
                Milestone(id="M-acc", contract_id="K1", name="Acceptance"),
            ),
        )
    )


@pytest.fixture
def ledger(store: Store) -> Ledger:
    led = Ledger(store, order_documents={"project": ["delivery_note"]})
    book(led)
    return led


def snapshot(ledger: Ledger) -> tuple[object, int, int]:
    s = ledger.store
    return dump_book(s), s.event_count(), s.audit_count()


def refused(ledger: Ledger, exc: type[ArflowError], event: BaseEvent) -> ArflowError:
    """Applying ``event`` raises ``exc`` and leaves the book exactly as it was."""
    before = snapshot(ledger)
    with pytest.raises(exc) as info:
        ledger.apply(event)  # type: ignore[arg-type]
    assert snapshot(ledger) == before
    return info.value


def req(ledger: Ledger, rid: str) -> InvoiceRequest:
    r: InvoiceRequest = ledger.get("invoice_request", rid)
    return r


def attach(rid: str, kind: str, ref: str = "DN-1") -> DocumentAttached:
    return DocumentAttached(**meta(), request_id=rid, kind=kind, reference=ref, sha256=sha(ref))


def approve(rid: str, who: str = "F1", **kw: Any) -> InvoiceRequestApproved:
    return InvoiceRequestApproved(
        **meta(actor=who), request_id=rid, approver=who, approved_on=date(2026, 3, 2), **kw
    )


def invoice(number: str, amount: int, **kw: Any) -> InvoiceIssued:
    return InvoiceIssued(
        **meta(),
        number=number,
        customer_id="C1",
        issue_date=date(2026, 3, 3),
        amount=cny(amount),
        **kw,
    )


# -- a milestone's request, its documents, finance, the invoice ---------------------------------


def test_milestone_request_waits_for_documents_then_goes_to_finance(ledger: Ledger) -> None:
    ledger.apply(MilestoneCompleted(**meta(), milestone_id="M-inst", completed_on=date(2026, 3, 1)))
    rid = "IR-K1-install"
    r = req(ledger, rid)
    assert r.state == "awaiting_documents"
    assert r.amount == cny(400_000)
    assert r.missing_documents == ("delivery_note",)
    assert "Installation and commissioning" in r.text and "Line 3 automation" in r.text
    assert "M-inst" not in r.text
    assert r.owner == "S1"  # the contract's salesperson, for want of a project manager
    trail = ledger.audit_trail("invoice_request", rid)
    assert [(a.before_state, a.after_state) for a in trail] == [
        (None, "requested"),
        ("requested", "awaiting_documents"),
    ]

    # finance cannot approve, and no invoice can be issued from it, before the document
    err = refused(ledger, DocumentsMissing, approve(rid))
    assert err.missing == ("delivery_note",)  # type: ignore[attr-defined]
    refused(ledger, DocumentsMissing, invoice("INV-2", 400_000, **_on_node(rid, "install")))

    ledger.apply(attach(rid, "delivery_note", "DN-2026-0042"))
    r = req(ledger, rid)
    assert r.state == "with_finance" and r.owner == "role:finance"
    (doc,) = r.documents
    assert (doc.reference, doc.sha256, doc.attached_by) == (
        "DN-2026-0042",
        sha("DN-2026-0042"),
        "pm.zhang",
    )
    refused(ledger, DuplicateObject, attach(rid, "delivery_note", "DN-again"))

    # only an active holder of the finance role approves
    refused(ledger, RoleRequired, approve(rid, "S1"))
    refused(ledger, RoleRequired, approve(rid, "F2"))  # left
    err = refused(ledger, RoleRequired, approve(rid, "nobody"))
    assert isinstance(err, NotAuthorized)
    ledger.apply(approve(rid, comment="delivery note checked"))
    assert req(ledger, rid).state == "approved"
    refused(ledger, IllegalTransition, approve(rid))  # approving twice

    refused(ledger, OverInvoiced, invoice("INV-2", 400_001, **_on_node(rid, "install")))
    ledger.apply(invoice("INV-2", 400_000, **_on_node(rid, "install")))
    r = req(ledger, rid)
    assert (r.state, r.receivable_id, r.owner) == ("invoiced", "INV-2", None)
    inv = ledger.receivable("INV-2")
    assert inv.invoice_request_id == rid and inv.stage is None
    refused(ledger, IllegalTransition, invoice("INV-3", 1, **_on_node(rid, "install")))

    # the invoice's stage with the customer
    refused(
        ledger,
        IllegalTransition,
        InvoiceConfirmed(**meta(), receivable_id="INV-2", confirmed_on=date(2026, 3, 4)),
    )
    ledger.apply(InvoiceSent(**meta(), receivable_id="INV-2", sent_on=date(2026, 3, 4)))
    ledger.apply(InvoiceConfirmed(**meta(), receivable_id="INV-2", confirmed_on=date(2026, 3, 6)))
    inv = ledger.receivable("INV-2")
    assert (inv.stage, inv.sent_on, inv.confirmed_on) == (
        "confirmed",
        date(2026, 3, 4),
        date(2026, 3, 6),
    )
    refused(
        ledger,
        IllegalTransition,
        InvoiceSent(**meta(), receivable_id="INV-2", sent_on=date(2026, 3, 7)),
    )


def _on_node(rid: str | None, node: str) -> dict[str, Any]:
    out: dict[str, Any] = {"contract_id": "K1", "payment_node_id": node}
    if rid is not None:
        out["invoice_request_id"] = rid
    return out


def test_invoice_before_its_milestone_needs_finance_to_say_so(ledger: Ledger) -> None:
    err = refused(ledger, MilestoneNotDone, invoice("INV-9", 300_000, **_on_node(None, "accept")))
    assert err.milestone_id == "M-acc"  # type: ignore[attr-defined]
    ledger.apply(
        InvoiceRequested(
            **meta(),
            request_id="IR-early",
            customer_id="C1",
            amount=cny(300_000),
            requested_on=date(2026, 3, 1),
            text="customer asked to be invoiced before acceptance",
            **_on_node(None, "accept"),
        )
    )
    r = req(ledger, "IR-early")
    assert r.required_documents == ("acceptance_certificate",)  # the node's own
    assert (r.state, r.owner, r.requested_by) == ("awaiting_documents", "pm.zhang", "pm.zhang")
    ledger.apply(attach("IR-early", "acceptance_certificate", "AC-7"))
    refused(ledger, MilestoneNotDone, approve("IR-early"))
    ledger.apply(approve("IR-early", before_milestone=True))
    ledger.apply(invoice("INV-9", 300_000, **_on_node("IR-early", "accept")))
    assert req(ledger, "IR-early").state == "invoiced"
    # the milestone done later asks for nothing more: the node is invoiced
    ledger.apply(MilestoneCompleted(**meta(), milestone_id="M-acc", completed_on=date(2026, 4, 1)))
    assert ledger.store.get("invoice_request", "IR-K1-accept") is None


def test_invoice_over_the_nodes_amount_is_refused(ledger: Ledger) -> None:
    refused(ledger, OverInvoiced, invoice("INV-1", 300_001, **_on_node(None, "sign")))
    ledger.apply(invoice("INV-1", 200_000, **_on_node(None, "sign")))
    err = refused(ledger, OverInvoiced, invoice("INV-1b", 100_001, **_on_node(None, "sign")))
    assert err.left == cny(100_000)  # type: ignore[attr-defined]
    over = InvoiceRequested(
        **meta(),
        request_id="IR-x",
        customer_id="C1",
        amount=cny(100_001),
        requested_on=date(2026, 3, 1),
        **_on_node(None, "sign"),
    )
    refused(ledger, OverInvoiced, over)
    ledger.apply(invoice("INV-1b", 100_000, **_on_node(None, "sign")))


def test_invoice_issued_directly_supersedes_the_open_request(ledger: Ledger) -> None:
    """A host that does not use requests keeps invoicing as before; the request the
    milestone made is closed, saying so."""
    ledger.apply(MilestoneCompleted(**meta(), milestone_id="M-inst", completed_on=date(2026, 3, 1)))
    ledger.apply(invoice("INV-5", 400_000, **_on_node(None, "install")))
    r = req(ledger, "IR-K1-install")
    assert (r.state, r.receivable_id) == ("cancelled", "INV-5")
    assert "superseded" in ledger.audit_trail("invoice_request", r.id)[-1].summary


def _order(ledger: Ledger, oid: str, order_type: str | None) -> None:
    ledger.apply(
        OrderSubmitted(
            **meta(),
            order_id=oid,
            customer_id="C1",
            amount=cny(5_000),
            submitted_on=date(2026, 3, 1),
            order_type=order_type,
        )
    )
    ledger.apply(OrderApproved(**meta(), order_id=oid, approver="S1"))
    ledger.apply(OrderShipped(**meta(), order_id=oid, shipped_on=date(2026, 3, 2)))


def test_a_shipped_order_asks_for_its_invoice(ledger: Ledger) -> None:
    _order(ledger, "O1", "project")  # its type needs a delivery note
    r = req(ledger, "IR-O1")
    assert (r.state, r.amount, r.order_id) == ("awaiting_documents", cny(5_000), "O1")
    ledger.apply(attach("IR-O1", "delivery_note"))
    ledger.apply(
        InvoiceRequestRejected(
            **meta(actor="F1"),
            request_id="IR-O1",
            approver="F1",
            rejected_on=date(2026, 3, 3),
            comment="wrong address on the delivery note",
        )
    )
    assert req(ledger, "IR-O1").state == "rejected"
    for late in (
        approve("IR-O1"),
        attach("IR-O1", "acceptance_certificate"),
        InvoiceRequestCancelled(**meta(), request_id="IR-O1", cancelled_on=date(2026, 3, 4)),
    ):
        refused(ledger, IllegalTransition, late)

    _order(ledger, "O2", None)  # no documents needed: straight to finance
    assert req(ledger, "IR-O2").state == "with_finance"
    ledger.apply(approve("IR-O2"))
    ledger.apply(invoice("INV-O2", 5_000, order_id="O2", invoice_request_id="IR-O2"))
    assert req(ledger, "IR-O2").state == "invoiced"
    assert ledger.get("order", "O2").state == "invoiced"


def test_request_by_hand_and_cancelled(ledger: Ledger) -> None:
    ledger.apply(
        InvoiceRequested(
            **meta(),
            request_id="IR-H",
            customer_id="C1",
            amount=cny(1_200),
            requested_on=date(2026, 3, 1),
            text="spare parts",
            required_documents=("delivery_note",),
        )
    )
    refused(ledger, DocumentsMissing, approve("IR-H"))
    ledger.apply(
        InvoiceRequestCancelled(**meta(), request_id="IR-H", cancelled_on=date(2026, 3, 2))
    )
    assert req(ledger, "IR-H").state == "cancelled"
    refused(ledger, IllegalTransition, attach("IR-H", "delivery_note"))


def test_refused_attempt_is_audited_by_the_engine(ledger: Ledger) -> None:
    from arflow import Engine, default_pack_path

    engine = Engine(ledger, [str(default_pack_path())])
    engine.handle(
        MilestoneCompleted(**meta(), milestone_id="M-inst", completed_on=date(2026, 3, 1))
    )
    ledger.apply(attach("IR-K1-install", "delivery_note"))
    before = dump_book(ledger.store)
    with pytest.raises(RoleRequired):
        engine.handle(approve("IR-K1-install", "S1"))
    assert dump_book(ledger.store) == before
    last = ledger.audit_trail("invoice_request", "IR-K1-install")[-1]
    assert (last.refused, last.actor, last.after_state) == ("RoleRequired", "S1", "with_finance")


def test_replay_gives_the_same_book(ledger: Ledger, store_factory: Any) -> None:
    ledger.apply(MilestoneCompleted(**meta(), milestone_id="M-inst", completed_on=date(2026, 3, 1)))
    ledger.apply(attach("IR-K1-install", "delivery_note"))
    ledger.apply(approve("IR-K1-install"))
    ledger.apply(invoice("INV-2", 400_000, **_on_node("IR-K1-install", "install")))
    ledger.apply(InvoiceSent(**meta(), receivable_id="INV-2", sent_on=date(2026, 3, 4)))
    _order(ledger, "O1", "project")
    again = Ledger(store_factory(), order_documents={"project": ["delivery_note"]})
    again.replay(ledger.store)
    assert dump_book(again.store) == dump_book(ledger.store)


# -- the property ----------------------------------------------------------------------------------

_STEPS = st.lists(
    st.sampled_from(
        [
            "attach_cert",
            "attach_note",
            "approve_f1",
            "approve_s1",
            "approve_early",
            "reject",
            "cancel",
            "invoice",
            "milestone",
        ]
    ),
    max_size=12,
)
_TERMINAL = {"invoiced", "rejected", "cancelled"}


def _step(ledger: Ledger, rid: str, step: str, n: int) -> None:
    events: dict[str, BaseEvent] = {
        "attach_cert": attach(rid, "acceptance_certificate", f"AC-{n}"),
        "attach_note": attach(rid, "delivery_note", f"DN-{n}"),
        "approve_f1": approve(rid),
        "approve_s1": approve(rid, "S1"),
        "approve_early": approve(rid, before_milestone=True),
        "reject": InvoiceRequestRejected(
            **meta(actor="F1"), request_id=rid, approver="F1", rejected_on=date(2026, 3, 2)
        ),
        "cancel": InvoiceRequestCancelled(**meta(), request_id=rid, cancelled_on=date(2026, 3, 2)),
        "invoice": invoice(f"INV-{n}", 300_000, **_on_node(rid, "accept")),
        "milestone": MilestoneCompleted(
            **meta(), milestone_id="M-acc", completed_on=date(2026, 3, 2)
        ),
    }
    before = snapshot(ledger)
    try:
        ledger.apply(events[step])  # type: ignore[arg-type]
    except ArflowError:
        assert snapshot(ledger) == before  # a refusal changes nothing
    r = req(ledger, rid)
    if r.state in ("with_finance", "approved", "invoiced"):
        assert not r.missing_documents


@settings(max_examples=40, deadline=None)
@given(steps=_STEPS)
def test_a_request_never_reaches_finance_without_its_documents(steps: list[str]) -> None:
    ledger = Ledger(MemoryStore())
    book(ledger)
    rid = "IR-P"
    ledger.apply(
        InvoiceRequested(
            **meta(),
            request_id=rid,
            customer_id="C1",
            amount=cny(300_000),
            requested_on=date(2026, 3, 1),
            required_documents=("delivery_note",),
            **_on_node(None, "accept"),
        )
    )
    for n, step in enumerate(steps):
        _step(ledger, rid, step, n)
    # then bring it to an end: cancel whatever is still open or approved
    r = req(ledger, rid)
    if r.state not in _TERMINAL:
        ledger.apply(
            InvoiceRequestCancelled(**meta(), request_id=rid, cancelled_on=date(2026, 4, 1))
        )
    trail = [a for a in ledger.audit_trail("invoice_request", rid) if a.refused is None]
    final = req(ledger, rid)
    assert final.state in _TERMINAL
    if final.state in ("with_finance", "approved", "invoiced"):
        assert not final.missing_documents
    reached = [a.after_state for a in trail if a.after_state != a.before_state]
    assert sum(1 for s in reached if s in _TERMINAL) == 1
    assert reached[-1] == final.state
    passed = [
        a for a in trail if a.after_state == "with_finance" and a.before_state != a.after_state
    ]
    if passed:
        kinds = {d.kind for d in final.documents}
        assert {"delivery_note", "acceptance_certificate"} <= kinds


def test_the_machine_itself_keeps_a_request_without_documents_from_finance() -> None:
    from arflow.lifecycle import INVOICE_REQUEST_MACHINE, allowed_triggers, move

    with pytest.raises(IllegalTransition):
        move(
            INVOICE_REQUEST_MACHINE,
            "invoice_request",
            "IR-1",
            "awaiting_documents",
            "to_finance",
            documents_complete=False,
        )
    assert move(
        INVOICE_REQUEST_MACHINE, "invoice_request", "IR-1", "awaiting_documents", "to_finance"
    ) == ("with_finance")
    for end in _TERMINAL:
        assert allowed_triggers(INVOICE_REQUEST_MACHINE, end) == []


# -- the stateful test: orders, milestones and requests thrown at one book ------------------------

from hypothesis.stateful import RuleBasedStateMachine, invariant, rule  # noqa: E402


class OrderToCash(RuleBasedStateMachine):
    """Random submit, approve, ship, milestone, request, attach, decide, invoice, cancel,
    send and confirm steps on one book: a request never reaches finance without its
    documents, a refusal changes nothing, and every request ends in exactly one terminal
    state once the open ones are cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(MemoryStore(), order_documents={"project": ["delivery_note"]})
        book(self.ledger)
        self.orders: list[str] = []
        self.invoices: list[str] = []
        self.n = 0

    def _try(self, event: BaseEvent) -> None:
        before = snapshot(self.ledger)
        try:
            self.ledger.apply(event)  # type: ignore[arg-type]
        except ArflowError:
            assert snapshot(self.ledger) == before

    def _requests(self) -> list[InvoiceRequest]:
        return sorted(self.ledger.store.all("invoice_request"), key=lambda q: q.id)

    def _pick(self, i: int, state: str | None = None) -> str | None:
        """A request by index: among those in ``state`` when there are some (so that
        random steps also reach the later states), else among all."""
        reqs = self._requests()
        some = [q for q in reqs if q.state == state] or reqs
        return some[i % len(some)].id if some else None

    @rule(project=st.booleans())
    def submit_approve_ship(self, project: bool) -> None:
        self.n += 1
        oid = f"O{self.n}"
        day = date(2026, 3, 1)
        self._try(
            OrderSubmitted(
                **meta(day),
                order_id=oid,
                customer_id="C1",
                amount=cny(1_000 * self.n),
                submitted_on=day,
                order_type="project" if project else None,
            )
        )
        self._try(OrderApproved(**meta(day), order_id=oid, approver="S1"))
        self._try(OrderShipped(**meta(day), order_id=oid, shipped_on=day))
        self.orders.append(oid)

    @rule(which=st.sampled_from(["M-inst", "M-acc"]))
    def milestone(self, which: str) -> None:
        self._try(MilestoneCompleted(**meta(), milestone_id=which, completed_on=date(2026, 3, 1)))

    @rule(node=st.sampled_from(["sign", "install", "accept"]), amount=st.integers(1, 400_000))
    def by_hand(self, node: str, amount: int) -> None:
        self.n += 1
        self._try(
            InvoiceRequested(
                **meta(),
                request_id=f"IR-H{self.n}",
                customer_id="C1",
                amount=cny(amount),
                requested_on=date(2026, 3, 1),
                **_on_node(None, node),
            )
        )

    @rule(
        i=st.integers(0, 20),
        kind=st.sampled_from(["missing", "delivery_note", "acceptance_certificate"]),
    )
    def attach(self, i: int, kind: str) -> None:
        rid = self._pick(i)
        if rid is None:
            return
        if kind == "missing":  # the first document it still needs, if any
            kind = next(iter(req(self.ledger, rid).missing_documents), "delivery_note")
        self.n += 1
        self._try(attach(rid, kind, f"D-{self.n}"))

    @rule(i=st.integers(0, 20), who=st.sampled_from(["F1", "F1", "S1", "F2"]), early=st.booleans())
    def approve(self, i: int, who: str, early: bool) -> None:
        rid = self._pick(i, "with_finance")
        if rid is not None:
            self._try(approve(rid, who, before_milestone=early))

    @rule(i=st.integers(0, 20), cancel=st.booleans())
    def reject_or_cancel(self, i: int, cancel: bool) -> None:
        rid = self._pick(i)
        if rid is None:
            return
        if cancel:
            self._try(
                InvoiceRequestCancelled(**meta(), request_id=rid, cancelled_on=date(2026, 3, 2))
            )
        else:
            self._try(
                InvoiceRequestRejected(
                    **meta(actor="F1"), request_id=rid, approver="F1", rejected_on=date(2026, 3, 2)
                )
            )

    @rule(i=st.integers(0, 20), direct=st.booleans())
    def issue(self, i: int, direct: bool) -> None:
        rid = self._pick(i, "approved")
        if rid is None:
            return
        q = req(self.ledger, rid)
        self.n += 1
        number = f"INV-{self.n}"
        where_from = {
            "contract_id": q.contract_id,
            "payment_node_id": q.payment_node_id,
            "order_id": q.order_id,
        }
        if not direct:
            where_from["invoice_request_id"] = rid
        self._try(invoice(number, int(q.amount.amount), **where_from))
        if self.ledger.store.get("receivable", number) is not None:
            self.invoices.append(number)

    @rule(i=st.integers(0, 20), confirm=st.booleans())
    def send_or_confirm(self, i: int, confirm: bool) -> None:
        if not self.invoices:
            return
        number = self.invoices[i % len(self.invoices)]
        if confirm:
            self._try(
                InvoiceConfirmed(**meta(), receivable_id=number, confirmed_on=date(2026, 4, 1))
            )
        else:
            self._try(InvoiceSent(**meta(), receivable_id=number, sent_on=date(2026, 4, 1)))

    @invariant()
    def never_past_the_gate_without_documents(self) -> None:
        for q in self._requests():
            if q.state in ("with_finance", "approved") or (
                q.state == "invoiced" and q.receivable_id
            ):
                assert not q.missing_documents, q

    def teardown(self) -> None:
        for q in self._requests():
            if q.state not in _TERMINAL:
                self.ledger.apply(
                    InvoiceRequestCancelled(
                        **meta(), request_id=q.id, cancelled_on=date(2026, 5, 1)
                    )
                )
        for q in self._requests():
            assert q.state in _TERMINAL
            trail = [
                a
                for a in self.ledger.audit_trail("invoice_request", q.id)
                if a.refused is None and a.after_state != a.before_state
            ]
            ends = [a.after_state for a in trail if a.after_state in _TERMINAL]
            assert ends == [q.state]
            assert trail[-1].after_state == q.state
            if q.state == "invoiced":
                assert self.ledger.receivable(q.receivable_id or "").invoice_request_id == q.id


OrderToCash.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
test_order_to_cash_stateful = OrderToCash.TestCase
