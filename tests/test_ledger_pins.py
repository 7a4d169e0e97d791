"""Example tests pinning ledger behaviour the mutation run found unpinned.

Each test kills mutants of ``arflow.ledger`` that survived ``tests/test_ledger.py`` and
``tests/test_properties.py`` (see docs/testing.md): which customer fields an update changes,
which contact flag feedback sets, projects and milestones signed with a contract, the
refusals' exact text, audit summaries, and exposure per customer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arflow import (
    Contact,
    Contract,
    ContractSigned,
    CreditProfile,
    CustomerRegistered,
    CustomerUpdated,
    DueRule,
    Ledger,
    MemoryStore,
    Milestone,
    MilestoneCompleted,
    Money,
    PaymentNode,
)
from arflow.domain import Person, Project
from arflow.errors import ArflowError, MilestoneNotDone
from arflow.events import (
    ContactFeedback,
    DunningBlockChanged,
    DunningStepRecorded,
    InvoiceIssued,
    InvoiceRequestApproved,
    InvoiceRequested,
    OrderLockLifted,
    OrderLockPlaced,
    PaymentReversed,
    PersonAdded,
    RiskFlagged,
)
from arflow.rows import plain_invoice
from arflow.store.sql import SqlStore
from arflow.testing import BookBuilder

T = datetime(2026, 2, 1, tzinfo=UTC)


def meta(eid: str) -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": T, "actor": "t"}


@pytest.fixture
def b() -> BookBuilder:
    b = BookBuilder(MemoryStore())
    b.customer("C1")
    b.customer("C2")
    return b


def _reversal(eid: str, payment: str) -> PaymentReversed:
    return PaymentReversed(**meta(eid), payment_id=payment, reversed_on=date(2026, 2, 10))


def refusal(b: BookBuilder, event: Any) -> str:
    with pytest.raises(ArflowError) as info:
        b.ledger.apply(event)
    return str(info.value)


def last_summary(b: BookBuilder, kind: str, oid: str) -> str:
    return b.ledger.audit_trail(kind, oid)[-1].summary


def test_an_update_changes_exactly_the_fields_it_names(b: BookBuilder) -> None:
    contacts = [Contact(name="New", email="new@c1.example")]
    credit = CreditProfile(grade="A", credit_limit=Money.of(5, "CNY"), payment_terms_days=10)
    b.ledger.apply(
        CustomerUpdated(**meta("u1"), customer_id="C1", contacts=contacts, credit=credit)
    )
    c = b.ledger.customer("C1")
    assert [x.email for x in c.contacts] == ["new@c1.example"]
    assert c.credit.grade == "A" and c.credit.payment_terms_days == 10
    assert last_summary(b, "customer", "C1") == "updated contacts, credit"
    msg = refusal(b, CustomerUpdated(**meta("u2"), customer_id="C1", name=None))
    assert msg == "customer 'C1': name cannot be removed"


@pytest.mark.parametrize(
    ("channel", "address", "feedback", "flag"),
    [
        ("email", "ap@c1.example", "bounced", "email_invalid"),
        ("sms", "+8613800000001", "invalid", "phone_invalid"),
        ("sms", "+8613800000001", "unsubscribed", "unsubscribed"),
    ],
)
def test_feedback_marks_the_contact_with_that_address(
    b: BookBuilder, channel: str, address: str, feedback: str, flag: str
) -> None:
    contacts = [
        Contact(name="Other", email="other@c1.example", phone="+8613800000009"),
        Contact(name="Wang", email="ap@c1.example", phone="+8613800000001"),
    ]
    b.ledger.apply(CustomerUpdated(**meta("u"), customer_id="C1", contacts=contacts))
    event = ContactFeedback(
        **meta("f"), customer_id="C1", address=address, channel=channel, feedback=feedback
    )
    b.ledger.apply(event)
    other, wang = b.ledger.customer("C1").contacts
    assert getattr(wang, flag) is True
    assert not (other.email_invalid or other.phone_invalid or other.unsubscribed)
    for f in {"email_invalid", "phone_invalid", "unsubscribed"} - {flag}:
        assert getattr(wang, f) is False
    assert last_summary(b, "customer", "C1") == f"{channel} {address}: {feedback}"
    nobody = ContactFeedback(
        **meta("f2"), customer_id="C1", address="+86999", channel="sms", feedback="invalid"
    )
    assert refusal(b, nobody) == "customer 'C1' has no contact with phone '+86999'"


def contract(cid: str = "K1", **kw: Any) -> Contract:
    return Contract(
        id=cid,
        customer_id="C1",
        signed_on=date(2026, 2, 1),
        amount=Money.of(100_000, "CNY"),
        payment_nodes=[
            PaymentNode(
                id="acc", percent=Decimal(100), due=DueRule(basis="milestone", milestone_id="M1")
            )
        ],
        **kw,
    )


def test_a_contract_signed_with_its_project_and_milestones(b: BookBuilder) -> None:
    project = Project(id="PJ", customer_id="C1", name="Plant")
    b.apply(
        ContractSigned(
            **meta("k1"),
            contract=contract(project_id="PJ"),
            project=project,
            milestones=[Milestone(id="M1", contract_id="K1")],
        )
    )
    assert b.ledger.get("project", "PJ") == project
    assert last_summary(b, "project", "PJ") == "created with contract K1"
    # A milestone without a project of its own belongs to the contract's.
    assert b.ledger.get("milestone", "M1").project_id == "PJ"
    # The same project again is fine; a different one under the same id is refused.
    b.apply(
        ContractSigned(
            **meta("k2"),
            contract=contract("K2", project_id="PJ"),
            project=project,
            milestones=[Milestone(id="M2", contract_id="K2", project_id="OWN")],
        )
    )
    assert b.ledger.get("milestone", "M2").project_id == "OWN"
    other = Project(id="PJ", customer_id="C1", name="Another plant")
    msg = refusal(b, ContractSigned(**meta("k3"), contract=contract("K3"), project=other))
    assert msg == "project 'PJ' already exists"
    unknown = contract("K4").model_copy(
        update={
            "payment_nodes": (
                PaymentNode(
                    id="x", percent=Decimal(100), due=DueRule(basis="milestone", milestone_id="MX")
                ),
            )
        }
    )
    assert refusal(b, ContractSigned(**meta("k4"), contract=unknown)) == "unknown milestone 'MX'"


def test_a_milestone_completes_once_and_asks_to_invoice_its_customer(b: BookBuilder) -> None:
    b.apply(
        ContractSigned(
            **meta("k1"), contract=contract(), milestones=[Milestone(id="M1", contract_id="K1")]
        )
    )
    applied = b.ledger.apply(
        MilestoneCompleted(**meta("m1"), milestone_id="M1", completed_on=date(2026, 2, 3))
    )
    (req,) = applied.invoice_requests
    assert (req.customer_id, req.contract_id, req.payment_node_id, req.milestone_id) == (
        "C1",
        "K1",
        "acc",
        "M1",
    )
    again = MilestoneCompleted(**meta("m2"), milestone_id="M1", completed_on=date(2026, 2, 4))
    assert refusal(b, again) == "MilestoneCompleted: milestone 'M1' is closed (state 'done')"


def test_dunning_risk_and_lock_records(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    b.ledger.apply(
        DunningBlockChanged(**meta("d1"), receivable_id="I1", blocked=True, reason="talks")
    )
    assert last_summary(b, "receivable", "I1") == "dunning blocked: talks"
    b.ledger.apply(DunningBlockChanged(**meta("d2"), receivable_id="I1", blocked=False))
    assert last_summary(b, "receivable", "I1") == "unblocked"
    b.ledger.apply(
        RiskFlagged(
            **meta("r1"),
            receivable_id="I1",
            level="high",
            rule="high-risk-30",
            flagged_on=date(2026, 3, 2),
        )
    )
    rec = b.ledger.audit_trail("receivable", "I1")[-1]
    assert rec.summary == "risk high by high-risk-30 on 2026-03-02"
    assert (rec.before_state, rec.after_state) == ("open", "open")
    assert b.ledger.receivable("I1").risk_level == "high"
    b.pay("P1", "C1", 1_000, on="2026-02-10")
    step = DunningStepRecorded(
        **meta("s1"),
        receivable_id="I1",
        ladder="standard",
        step="due-day",
        level=1,
        decision_key="k",
        sent_on=date(2026, 2, 11),
    )
    assert refusal(b, step) == "DunningStepRecorded: receivable 'I1' is closed (state 'paid')"
    lifted = OrderLockLifted(
        **meta("l1"), customer_id="C1", lock_id="overdue-30", lifted_on=date(2026, 3, 1)
    )
    assert refusal(b, lifted) == "unknown order lock 'C1/overdue-30'"
    b.ledger.apply(
        OrderLockPlaced(
            **meta("l2"), customer_id="C1", lock_id="overdue-30", placed_on=date(2026, 3, 1)
        )
    )
    b.ledger.apply(lifted.model_copy(update={"event_id": "l3"}))
    assert b.ledger.customer("C1").locks == ()
    assert last_summary(b, "customer", "C1") == "lock overdue-30 lifted"


def test_exposure_counts_only_the_customers_own_orders(b: BookBuilder) -> None:
    b.order("SO-1", "C1", 300)
    b.approve("SO-1")
    b.order("SO-2", "C2", 700)
    b.approve("SO-2")
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    assert b.ledger.exposure("C1") == {"CNY": Money.of(1_300, "CNY")}
    assert b.ledger.exposure("C2") == {"CNY": Money.of(700, "CNY")}


def test_a_batch_applies_its_events_in_one_transaction(b: BookBuilder) -> None:
    event = CustomerRegistered(
        **meta("c3"), customer=b.ledger.customer("C1").model_copy(update={"id": "C3"})
    )
    with b.ledger.batch() as batch:
        got = batch.apply(event)
    assert got is not None and b.ledger.customer("C3").id == "C3"


def issue(number: str, customer: str = "C1") -> InvoiceIssued:
    return InvoiceIssued(
        **meta(f"inv-{number}"),
        number=number,
        customer_id=customer,
        issue_date=date(2026, 1, 1),
        due_date=date(2026, 1, 31),
        amount=Money.of(100, "CNY"),
    )


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_apply_all_counts_plain_invoices_and_names_a_refused_event(
    url: str, tmp_path: Path
) -> None:
    store = MemoryStore() if url == "memory://" else SqlStore(f"sqlite:///{tmp_path}/book.db")
    b = BookBuilder(store)
    b.customer("C1")
    events = [plain_invoice(issue("I1")), issue("I2"), plain_invoice(issue("I3")), issue("I4")]
    assert b.ledger.apply_all(events) == 4
    assert [r.id for r in b.ledger.open_items("C1")] == ["I1", "I2", "I3", "I4"]
    with pytest.raises(ArflowError) as info:
        b.ledger.apply_all([issue("I5"), issue("I6", customer="NOPE"), issue("I7")])
    assert info.value.event_id == "inv-I6"  # type: ignore[attr-defined]
    assert len(b.ledger.open_items("C1")) == 4


def test_resolving_one_of_two_disputes_leaves_the_other_disputed(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    b.dispute("D1", "I1", 300)
    b.dispute("D2", "I1", 200)
    assert b.ledger.receivable("I1").disputed_amount == Money.of(500, "CNY")
    b.resolve("D1")
    r = b.ledger.receivable("I1")
    assert r.disputed_amount == Money.of(200, "CNY")
    assert r.state == "disputed"
    assert last_summary(b, "dispute", "D1") == "rejected"
    with pytest.raises(ArflowError) as info:
        b.resolve("D1")
    assert str(info.value) == "DisputeResolved: dispute 'D1' is closed (state 'resolved')"
    b.resolve("D2", "credited")
    r = b.ledger.receivable("I1")
    assert r.disputed_amount == Money.of(0, "CNY") and r.state == "open"


def test_plain_invoices_on_the_bulk_path_refuse_and_inherit_like_single_ones(
    tmp_path: Path,
) -> None:
    b = BookBuilder(SqlStore(f"sqlite:///{tmp_path}/book.db"))
    b.customer("C1")
    b.ledger.apply(
        CustomerUpdated(**meta("u"), customer_id="C1", region="East", salesperson="li.wei")
    )
    b.ledger.apply_all([issue("I1")])
    r = b.ledger.receivable("I1")
    assert (r.region, r.salesperson) == ("East", "li.wei")
    zero = issue("I2").model_copy(update={"amount": Money.of(0, "CNY")})
    with pytest.raises(ArflowError) as info:
        b.ledger.apply_all([zero])
    assert str(info.value) == "invoice I2 amount must be positive, got 0.00 CNY"
    early = issue("I3").model_copy(update={"due_date": date(2025, 12, 31)})
    with pytest.raises(ArflowError) as info:
        b.ledger.apply_all([early])
    assert str(info.value) == "invoice I3: due date 2025-12-31 is before issue date 2026-01-01"


def test_an_order_names_only_its_customers_contract(b: BookBuilder) -> None:
    b.apply(
        ContractSigned(
            **meta("k1"), contract=contract(), milestones=[Milestone(id="M1", contract_id="K1")]
        )
    )
    b.order("SO-1", "C1", 100, contract_id="K1")
    assert b.ledger.get("order", "SO-1").contract_id == "K1"
    with pytest.raises(ArflowError) as info:
        b.order("SO-2", "C2", 100, contract_id="K1")
    assert str(info.value) == "order SO-2: contract 'K1' is another's"


def test_promises_refuse_and_track_what_they_receive(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    b.invoice("I2", "C1", 500, issued="2026-01-01", due="2026-01-31")
    b.pay("P2", "C1", 500, on="2026-02-01", to=[("I2", 500)])
    with pytest.raises(ArflowError) as info:
        b.promise("PR0", "C1", ["I1"], 0, by="2026-02-10", on="2026-02-01")
    assert str(info.value) == "promise PR0 amount must be positive, got 0.00 CNY"
    with pytest.raises(ArflowError) as info:
        b.promise("PR0", "C1", ["I2"], 10, by="2026-02-10", on="2026-02-01")
    assert str(info.value) == "PromiseMade: receivable 'I2' is closed (state 'paid')"
    b.promise("PR1", "C1", ["I1"], 700, by="2026-02-10", on="2026-02-01")
    b.pay("P1", "C1", 400, on="2026-02-05", to=[("I1", 400)])
    assert last_summary(b, "promise", "PR1") == "received 400.00 CNY of 700.00 CNY"
    b.pay("P3", "C1", 300, on="2026-02-06", to=[("I1", 300)])
    assert last_summary(b, "promise", "PR1") == "received 700.00 CNY of 700.00 CNY, kept"
    kept = b.ledger.audit_trail("receivable", "I1")[-1]
    assert kept.summary == "promise PR1 kept"
    assert (kept.before_state, kept.after_state) == ("promised", "partially_paid")


def test_reversals_refuse_closed_items_and_reopen_promises(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    b.pay("P1", "C1", 400, on="2026-02-01", to=[("I1", 400)])
    b.write_off("I1", on="2026-02-02")
    assert refusal(b, _reversal("R1", "P1")) == (
        "PaymentReversed: receivable 'I1' is closed (state 'written_off')"
    )
    b.invoice("I2", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    b.pay("P2", "C1", 1_000, on="2026-02-01", to=[("I2", 1_000)])
    with pytest.raises(ArflowError) as info:
        b.dispute("D1", "I2", 100)
    assert str(info.value) == "DisputeOpened: receivable 'I2' is closed (state 'paid')"
    b.reverse("P2", on="2026-02-03")
    assert refusal(b, _reversal("R2", "P2")) == (
        "PaymentReversed: payment 'P2' is closed (state 'reversed')"
    )
    rec = b.ledger.audit_trail("receivable", "I2")[-1]
    assert rec.summary == "payment P2 reversed: 1,000.00 CNY reopened"
    assert (rec.before_state, rec.after_state) == ("paid", "open")
    # A promise kept by a payment that bounces before its date is open again.
    b.invoice("I3", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    b.promise("PR1", "C1", ["I3"], 500, by="2026-02-20", on="2026-02-01")
    b.pay("P3", "C1", 500, on="2026-02-05", to=[("I3", 500)])
    b.reverse("P3", on="2026-02-06")
    promise = b.ledger.audit_trail("promise", "PR1")[-1]
    assert promise.summary == "payment P3 reversed: received 0.00 CNY of 500.00 CNY, open"
    assert (promise.before_state, promise.after_state) == ("kept", "open")


def test_a_node_due_after_its_milestone_counts_from_the_milestone(b: BookBuilder) -> None:
    node = PaymentNode(
        id="acc",
        percent=Decimal(100),
        due=DueRule(basis="milestone", milestone_id="M1", days=10),
    )
    k = contract().model_copy(update={"payment_nodes": (node,)})
    planned = Milestone(id="M1", contract_id="K1", planned_date=date(2026, 2, 15))
    b.apply(ContractSigned(**meta("k1"), contract=k, milestones=[planned]))
    # before its milestone is done, only an invoice finance approved early may go out
    fin = Person(id="F1", name="Finance", roles=("finance",))
    b.apply(PersonAdded(**meta("f1"), person=fin))
    ask = InvoiceRequested(
        **meta("r1"),
        request_id="R1",
        customer_id="C1",
        amount=Money.of(100_000, "CNY"),
        requested_on=date(2026, 2, 1),
        contract_id="K1",
        payment_node_id="acc",
    )
    b.apply(ask)
    ok = InvoiceRequestApproved(
        **meta("r2"), request_id="R1", approver="F1", approved_on=date(2026, 2, 1)
    )
    with pytest.raises(MilestoneNotDone):
        b.apply(ok)
    b.apply(ok.model_copy(update={"before_milestone": True}))
    b.invoice(
        "I1",
        "C1",
        100_000,
        issued="2026-02-01",
        contract_id="K1",
        payment_node_id="acc",
        invoice_request_id="R1",
    )
    assert b.ledger.receivable("I1").due_date == date(2026, 2, 25)


def test_registration_and_payment_refusals_read_well(b: BookBuilder) -> None:
    assert b.ledger.audit_trail("customer", "C1")[0].summary == "registered"
    with pytest.raises(ArflowError) as info:
        b.pay("P0", "C1", 0, on="2026-02-01")
    assert str(info.value) == "payment P0 amount must be positive, got 0.00 CNY"


def test_a_subclass_handler_of_invoices_sees_plain_invoices_as_events() -> None:
    seen: list[str] = []

    class Audited(Ledger):
        def _invoice_issued(self, ctx: Any, e: InvoiceIssued) -> None:
            seen.append(e.number)
            super()._invoice_issued(ctx, e)

    ledger = Audited(MemoryStore())
    BookBuilder(ledger.store).customer("C1")
    assert ledger.apply_all([plain_invoice(issue("I1")), issue("I2")]) == 2
    assert seen == ["I1", "I2"]
    assert [r.id for r in ledger.open_items("C1")] == ["I1", "I2"]
