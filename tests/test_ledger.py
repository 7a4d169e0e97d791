"""Example tests for every event and every refusal, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from arflow import (
    ArflowError,
    ClosedItem,
    Contract,
    ContractSigned,
    CurrencyMismatch,
    CustomerUpdated,
    DueRule,
    DuplicateObject,
    IllegalTransition,
    InvalidAmount,
    InvalidDates,
    InvoiceIssued,
    Ledger,
    Milestone,
    MilestoneCompleted,
    Money,
    OrderApprovalRequested,
    OrderState,
    OverAllocation,
    PaymentNode,
    PromiseStatus,
    ReceivableState,
    Store,
    UnknownObject,
    ValidationError,
    dump_book,
)
from arflow.testing import BookBuilder
from tests.conftest import at

S = ReceivableState


def cny(x: int | str) -> Money:
    return Money.of(x, "CNY")


@pytest.fixture
def b(store: Store) -> BookBuilder:
    builder = BookBuilder(store)
    builder.customer("C1", name="华东精密", limit=100_000, terms=30)
    builder.customer("C2", name="Northwind")
    return builder


def snapshot(ledger: Ledger) -> tuple[object, int, int]:
    s = ledger.store
    return dump_book(s), s.event_count(), s.audit_count()


def refused(b: BookBuilder, exc: type[ArflowError], call, *args, **kw) -> ArflowError:  # type: ignore[no-untyped-def]
    """Run ``call``; it must raise ``exc`` and leave the book exactly as it was."""
    before = snapshot(b.ledger)
    with pytest.raises(exc) as info:
        call(*args, **kw)
    assert snapshot(b.ledger) == before
    return info.value


# -- customers -------------------------------------------------------------------------------


def test_customer_registered_and_updated(b: BookBuilder) -> None:
    c = b.ledger.customer("C1")
    assert c.name == "华东精密"
    assert c.credit.credit_limit == cny(100_000)
    b.apply(
        CustomerUpdated(
            event_id="u1",
            occurred_at=at(date(2026, 2, 1)),
            actor="crm",
            customer_id="C1",
            salesperson="li.wei",
            reason="territory change",
        )
    )
    c2 = b.ledger.customer("C1")
    assert c2.salesperson == "li.wei"
    assert c2.name == "华东精密"
    trail = b.ledger.audit_trail("customer", "C1")
    assert [a.event_type for a in trail] == ["CustomerRegistered", "CustomerUpdated"]
    assert trail[1].reason == "territory change"
    assert trail[1].actor == "crm"
    assert trail[1].summary == "updated salesperson"


def test_customer_refusals(b: BookBuilder) -> None:
    refused(b, DuplicateObject, b.customer, "C1")
    err = refused(
        b,
        UnknownObject,
        b.apply,
        CustomerUpdated(
            occurred_at=at(date(2026, 1, 1)), actor="x", customer_id="NOPE", region="x"
        ),
    )
    assert "customer 'NOPE'" in str(err)


# -- invoices ----------------------------------------------------------------------------------


def test_invoice_issued_defaults_due_date_from_customer_terms(b: BookBuilder) -> None:
    b.invoice("I1", "C1", "1234.565", issued="2026-01-10")
    r = b.ledger.receivable("I1")
    assert r.due_date == date(2026, 2, 9)  # 30 days' terms
    assert r.amount == cny("1234.57")  # rounded half up to the minor unit
    assert r.open_balance == r.amount
    assert r.state == S.OPEN
    (a,) = b.ledger.audit_trail("receivable", "I1")
    assert (a.before_state, a.after_state, a.after_balance) == (None, "open", cny("1234.57"))


def test_invoice_refusals(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 100)
    refused(b, DuplicateObject, b.invoice, "I1", "C1", 100)
    refused(b, UnknownObject, b.invoice, "I2", "NOPE", 100)
    refused(b, InvalidAmount, b.invoice, "I2", "C1", 0)
    refused(b, InvalidAmount, b.invoice, "I2", "C1", -5)
    err = refused(b, InvalidDates, b.invoice, "I2", "C1", 10, issued="2026-03-01", due="2026-02-28")
    assert "before issue date" in str(err)
    refused(b, UnknownObject, b.invoice, "I2", "C1", 10, contract_id="K-none")


def _contract(b: BookBuilder) -> None:
    b.apply(
        ContractSigned(
            event_id="k1",
            occurred_at=at(date(2026, 1, 2)),
            actor="sales",
            contract=Contract(
                id="K1",
                customer_id="C1",
                signed_on=date(2026, 1, 2),
                amount=cny(100_000),
                payment_nodes=[
                    PaymentNode(id="adv", percent=Decimal(30), due=DueRule(days=10)),
                    PaymentNode(
                        id="acc",
                        percent=Decimal(70),
                        due=DueRule(basis="milestone", milestone_id="M1", days=30),
                    ),
                ],
            ),
            milestones=[Milestone(id="M1", contract_id="K1", planned_date=date(2026, 3, 1))],
        )
    )


def test_contract_milestone_invoice_request_and_node_due_dates(b: BookBuilder) -> None:
    _contract(b)
    b.invoice("I-adv", "C1", 30_000, issued="2026-01-05", contract_id="K1", payment_node_id="adv")
    assert b.ledger.receivable("I-adv").due_date == date(2026, 1, 15)
    done = b.apply(
        MilestoneCompleted(
            event_id="m1",
            occurred_at=at(date(2026, 3, 10)),
            actor="pm",
            milestone_id="M1",
            completed_on=date(2026, 3, 10),
        )
    )
    (req,) = done.invoice_requests
    assert (req.contract_id, req.payment_node_id, req.amount) == ("K1", "acc", cny(70_000))
    assert b.ledger.get("milestone", "M1").status == "done"
    b.invoice("I-acc", "C1", 70_000, issued="2026-03-12", contract_id="K1", payment_node_id="acc")
    # 30 days after acceptance, counted from the later of acceptance and invoice date
    assert b.ledger.receivable("I-acc").due_date == date(2026, 4, 11)
    again = MilestoneCompleted(
        occurred_at=at(date(2026, 3, 11)),
        actor="pm",
        milestone_id="M1",
        completed_on=date(2026, 3, 11),
    )
    refused(b, ClosedItem, b.apply, again)


def test_contract_refusals(b: BookBuilder) -> None:
    _contract(b)
    refused(b, CurrencyMismatch, b.invoice, "I9", "C1", Money.of(10, "USD"), contract_id="K1")
    refused(b, ValidationError, b.invoice, "I9", "C2", 10, contract_id="K1")
    refused(b, UnknownObject, b.invoice, "I9", "C1", 10, contract_id="K1", payment_node_id="nope")
    with pytest.raises(ValueError, match="more than the contract amount"):
        Contract(
            id="K2",
            customer_id="C1",
            signed_on=date(2026, 1, 1),
            amount=cny(100),
            payment_nodes=[
                PaymentNode(id="a", amount=cny(60)),
                PaymentNode(id="b", percent=Decimal(50)),
            ],
        )
    dup = ContractSigned(
        occurred_at=at(date(2026, 1, 3)),
        actor="s",
        contract=Contract(id="K1", customer_id="C1", signed_on=date(2026, 1, 3), amount=cny(1)),
    )
    refused(b, DuplicateObject, b.apply, dup)
    unknown_ms = ContractSigned(
        occurred_at=at(date(2026, 1, 3)),
        actor="s",
        contract=Contract(
            id="K3",
            customer_id="C1",
            signed_on=date(2026, 1, 3),
            amount=cny(10),
            payment_nodes=[
                PaymentNode(
                    id="x", percent=Decimal(100), due=DueRule(basis="milestone", milestone_id="M-x")
                )
            ],
        ),
    )
    refused(b, UnknownObject, b.apply, unknown_ms)


# -- payments ----------------------------------------------------------------------------------


def test_automatic_allocation_oldest_due_first_with_unapplied_credit(b: BookBuilder) -> None:
    b.invoice("I-late", "C1", 300, issued="2026-01-20", due="2026-03-01")
    b.invoice("I-early", "C1", 200, issued="2026-01-25", due="2026-02-01")
    b.invoice("I-usd", "C1", Money.of(50, "USD"), issued="2026-01-01", due="2026-01-02")
    applied = b.pay("P1", "C1", 600, on="2026-03-05")
    assert b.ledger.receivable("I-early").state == S.PAID
    assert b.ledger.receivable("I-late").state == S.PAID
    assert b.ledger.receivable("I-usd").state == S.OPEN  # other currency untouched
    p = b.ledger.get("payment", "P1")
    assert [(a.receivable_id, a.amount) for a in p.allocations] == [
        ("I-early", cny(200)),
        ("I-late", cny(300)),
    ]
    assert p.unapplied == cny(100)
    assert b.ledger.unapplied_credit("C1") == {"CNY": cny(100)}
    assert {a.subject_id for a in applied.audit} == {"I-early", "I-late", "P1"}


def test_explicit_allocation_and_partial_payment(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 300, due="2026-02-01")
    b.invoice("I2", "C1", 200, due="2026-01-15")
    b.pay("P1", "C1", 250, to=[("I1", 250)])
    r1 = b.ledger.receivable("I1")
    assert (r1.state, r1.open_balance, r1.paid) == (S.PARTIALLY_PAID, cny(50), cny(250))
    assert b.ledger.receivable("I2").state == S.OPEN
    assert b.ledger.balance("C1") == {"CNY": cny(250)}


def test_payment_refusals(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 100)
    b.invoice("I2", "C2", 100)
    refused(b, UnknownObject, b.pay, "P1", "NOPE", 10)
    refused(b, InvalidAmount, b.pay, "P1", "C1", 0)
    refused(b, OverAllocation, b.pay, "P1", "C1", 500, to=[("I1", 101)])
    refused(b, OverAllocation, b.pay, "P1", "C1", 50, to=[("I1", 60)])
    refused(b, UnknownObject, b.pay, "P1", "C1", 50, to=[("I-none", 10)])
    refused(b, ValidationError, b.pay, "P1", "C1", 50, to=[("I2", 10)])
    refused(b, CurrencyMismatch, b.pay, "P1", "C1", Money.of(50, "USD"), to=[("I1", 10)])
    refused(b, ValidationError, b.pay, "P1", "C1", 50, to=[("I1", 10), ("I1", 10)])
    b.pay("P1", "C1", 100)
    refused(b, DuplicateObject, b.pay, "P1", "C1", 10)
    refused(b, ClosedItem, b.pay, "P2", "C1", 10, to=[("I1", 10)])


def test_payment_reversed_reopens_items(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 100)
    b.invoice("I2", "C1", 100, due="2026-03-01")
    b.pay("P0", "C1", 30, to=[("I2", 30)])
    b.pay("P1", "C1", 150)
    assert b.ledger.receivable("I1").state == S.PAID
    b.reverse("P1", on="2026-02-01")
    r1, r2 = b.ledger.receivable("I1"), b.ledger.receivable("I2")
    assert (r1.state, r1.open_balance) == (S.OPEN, cny(100))
    assert (r2.state, r2.open_balance) == (S.PARTIALLY_PAID, cny(70))
    assert b.ledger.get("payment", "P1").reversed
    refused(b, ClosedItem, b.reverse, "P1")
    refused(b, UnknownObject, b.reverse, "P-none")


def test_reversal_refused_when_an_item_was_credited_since(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 100)
    b.pay("P1", "C1", 40)
    b.credit("CN1", "C1", 60, invoice="I1")
    assert b.ledger.receivable("I1").state == S.CREDITED
    refused(b, ClosedItem, b.reverse, "P1")


# -- credit notes, write-offs -------------------------------------------------------------


def test_credit_notes(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 100)
    b.credit("CN1", "C1", 40, invoice="I1")
    r = b.ledger.receivable("I1")
    assert (r.state, r.open_balance, r.credited) == (S.PARTIALLY_PAID, cny(60), cny(40))
    b.credit("CN2", "C1", 60, invoice="I1")
    assert b.ledger.receivable("I1").state == S.CREDITED
    b.credit("CN3", "C1", 25)  # on account
    assert b.ledger.unapplied_credit("C1") == {"CNY": cny(25)}
    refused(b, ClosedItem, b.credit, "CN4", "C1", 1, invoice="I1")
    # issue 12: the credit on account is applied to the customer's next invoices
    b.invoice("I2", "C1", 10)
    assert b.ledger.receivable("I2").state == S.CREDITED
    assert b.ledger.unapplied_credit("C1") == {"CNY": cny(15)}
    b.invoice("I3", "C1", 25)  # takes the 15 left: 10 open
    assert b.ledger.receivable("I3").open_balance == cny(10)
    assert b.ledger.unapplied_credit("C1") == {}
    refused(b, OverAllocation, b.credit, "CN4", "C1", 11, invoice="I3")
    refused(b, DuplicateObject, b.credit, "CN1", "C1", 1, invoice="I3")
    refused(b, ValidationError, b.credit, "CN4", "C2", 1, invoice="I3")


def test_write_off(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 100)
    b.pay("P1", "C1", 30)
    b.write_off("I1", on="2026-12-31")
    r = b.ledger.receivable("I1")
    assert (r.state, r.open_balance, r.written_off) == (S.WRITTEN_OFF, cny(0), cny(70))
    refused(b, ClosedItem, b.write_off, "I1")
    assert b.ledger.open_items("C1") == []


# -- disputes ----------------------------------------------------------------------------------


def test_partial_dispute_leaves_the_rest_collectable(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 1000, due="2026-01-31")
    b.invoice("I2", "C1", 500, due="2026-02-28")
    b.dispute("D1", "I1", 400, reason_code="short-delivery")
    r = b.ledger.receivable("I1")
    assert (r.state, r.disputed_amount, r.undisputed_balance) == (S.DISPUTED, cny(400), cny(600))
    b.pay("P1", "C1", 1000)  # automatic: skips the disputed 400
    r = b.ledger.receivable("I1")
    assert (r.state, r.open_balance) == (S.DISPUTED, cny(400))
    assert b.ledger.receivable("I2").open_balance == cny(100)
    b.resolve("D1", "customer right: credit issued")
    r = b.ledger.receivable("I1")
    assert (r.state, r.disputed_amount) == (S.PARTIALLY_PAID, cny(0))
    assert b.ledger.get("dispute", "D1").status == "resolved"
    refused(b, ClosedItem, b.resolve, "D1")


def test_dispute_refusals(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 100)
    refused(b, OverAllocation, b.dispute, "D1", "I1", 101)
    refused(b, InvalidAmount, b.dispute, "D1", "I1", 0)
    refused(b, CurrencyMismatch, b.dispute, "D1", "I1", Money.of(5, "USD"))
    refused(b, UnknownObject, b.dispute, "D1", "I-none")
    b.dispute("D1", "I1")  # whole balance
    refused(b, OverAllocation, b.dispute, "D2", "I1", 1)
    refused(b, DuplicateObject, b.dispute, "D1", "I1", 1)
    b.pay("P1", "C1", 100, to=[("I1", 100)])
    refused(b, ClosedItem, b.dispute, "D3", "I1", 1)


# -- promises ----------------------------------------------------------------------------------


def test_promise_kept_by_payment(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 100)
    b.invoice("I2", "C1", 100)
    b.promise("PTP1", "C1", ["I1", "I2"], 200, by="2026-02-15", on="2026-02-01")
    assert b.ledger.receivable("I1").state == S.PROMISED
    b.pay("P1", "C1", 120)
    assert b.ledger.get("promise", "PTP1").status == PromiseStatus.OPEN
    assert b.ledger.receivable("I2").state == S.PROMISED  # partly paid, still promised
    b.pay("P2", "C1", 80)
    p = b.ledger.get("promise", "PTP1")
    assert (p.status, p.received) == (PromiseStatus.KEPT, cny(200))
    assert b.ledger.receivable("I2").state == S.PAID


def test_promise_kept_by_amount_releases_the_rest(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 100)
    b.promise("PTP1", "C1", ["I1"], 60, by="2026-02-15", on="2026-02-01")
    b.pay("P1", "C1", 60)
    assert b.ledger.get("promise", "PTP1").status == PromiseStatus.KEPT
    r = b.ledger.receivable("I1")
    assert (r.state, r.open_balance) == (S.PARTIALLY_PAID, cny(40))


def test_promise_broken_and_partially_kept(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 100)
    b.invoice("I2", "C1", 100)
    b.promise("PTP1", "C1", ["I1"], 100, by="2026-02-15", on="2026-02-01")
    b.promise("PTP2", "C1", ["I2"], 100, by="2026-02-15", on="2026-02-01")
    b.pay("P1", "C1", 30, to=[("I2", 30)])
    b.break_promise("PTP1", on="2026-02-16")
    b.break_promise("PTP2", on="2026-02-16")
    assert b.ledger.get("promise", "PTP1").status == PromiseStatus.BROKEN
    assert b.ledger.get("promise", "PTP2").status == PromiseStatus.PARTIALLY_KEPT
    assert b.ledger.receivable("I1").state == S.OPEN
    assert b.ledger.receivable("I2").state == S.PARTIALLY_PAID
    refused(b, ClosedItem, b.break_promise, "PTP1")


def test_a_reversed_payment_unkeeps_the_promise_it_kept(b: BookBuilder) -> None:
    """A bounced payment keeps no promise: before the promised date the promise is open again
    and its item back under it; after that date it is broken."""
    b.invoice("I1", "C1", 100)
    b.invoice("I2", "C1", 100)
    b.promise("PTP1", "C1", ["I1"], 100, by="2026-02-15", on="2026-02-01")
    b.promise("PTP2", "C1", ["I2"], 100, by="2026-02-15", on="2026-02-01")
    b.pay("P1", "C1", 100, to=[("I1", 100)], on="2026-02-05")
    b.pay("P2", "C1", 100, to=[("I2", 100)], on="2026-02-06")
    assert b.ledger.get("promise", "PTP1").status == PromiseStatus.KEPT
    b.reverse("P1", on="2026-02-10")
    p1 = b.ledger.get("promise", "PTP1")
    assert (p1.status, p1.received) == (PromiseStatus.OPEN, cny(0))
    r1 = b.ledger.receivable("I1")
    assert (r1.state, r1.promise_id, r1.open_balance) == (S.PROMISED, "PTP1", cny(100))
    b.reverse("P2", on="2026-02-20")
    p2 = b.ledger.get("promise", "PTP2")
    assert (p2.status, p2.received) == (PromiseStatus.BROKEN, cny(0))
    assert b.ledger.receivable("I2").state == S.OPEN
    refused(b, ClosedItem, b.break_promise, "PTP2")
    b.break_promise("PTP1", on="2026-02-16")  # open again, so it can break


def test_a_promise_over_an_item_whose_promise_survived_a_dispute_is_refused(
    b: BookBuilder,
) -> None:
    b.invoice("I1", "C1", 100)
    b.promise("PTP1", "C1", ["I1"], 100, by="2026-03-15", on="2026-02-01")
    b.dispute("D1", "I1")
    b.resolve("D1")
    assert b.ledger.receivable("I1").state == S.OPEN  # "open", but PTP1 still runs
    assert b.ledger.get("promise", "PTP1").status == PromiseStatus.OPEN
    err = refused(b, ValidationError, b.promise, "PTP2", "C1", ["I1"], 100, by="2026-03-01")
    assert "already under promise PTP1" in str(err)
    b.break_promise("PTP1", on="2026-03-20")
    b.promise("PTP2", "C1", ["I1"], 100, by="2026-04-01")  # PTP1 is over: a new one is fine


def test_promise_refusals(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 100)
    b.invoice("I2", "C2", 100)
    refused(b, InvalidDates, b.promise, "X", "C1", ["I1"], 10, by="2026-01-01", on="2026-02-01")
    refused(b, ValidationError, b.promise, "X", "C1", ["I2"], 10, by="2026-03-01")
    refused(b, UnknownObject, b.promise, "X", "C1", ["I-none"], 10, by="2026-03-01")
    refused(b, InvalidAmount, b.promise, "X", "C1", ["I1"], 0, by="2026-03-01")
    b.dispute("D1", "I1")
    refused(b, IllegalTransition, b.promise, "X", "C1", ["I1"], 10, by="2026-03-01")
    b.resolve("D1")
    b.promise("X", "C1", ["I1"], 10, by="2026-03-01")
    refused(b, ValidationError, b.promise, "Y", "C1", ["I1"], 10, by="2026-03-01")
    refused(b, DuplicateObject, b.promise, "X", "C1", ["I1"], 10, by="2026-03-01")


# -- orders and exposure -------------------------------------------------------------------


def test_order_lifecycle_and_exposure(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 30_000)
    b.order("O1", "C1", 50_000)
    # issue 12: a submitted order counts toward exposure (it is judged with itself)
    assert b.ledger.exposure("C1") == {"CNY": cny(80_000)}
    b.apply(
        OrderApprovalRequested(
            occurred_at=at(date(2026, 1, 2)),
            actor="credit",
            order_id="O1",
            reason="over 90% of limit",
        )
    )
    assert b.ledger.get("order", "O1").state == OrderState.PENDING_APPROVAL
    b.approve("O1", "cfo")
    assert b.ledger.exposure("C1") == {"CNY": cny(80_000)}
    assert b.ledger.credit_available("C1") == cny(20_000)
    b.ship("O1")
    b.invoice("I2", "C1", 50_000, order_id="O1")
    o = b.ledger.get("order", "O1")
    assert (o.state, o.receivable_id, o.decided_by) == (OrderState.INVOICED, "I2", "cfo")
    assert b.ledger.exposure("C1") == {"CNY": cny(80_000)}  # now as a receivable
    assert b.ledger.credit_available("C2") is None


def test_order_refusals(b: BookBuilder) -> None:
    b.order("O1", "C1", 100)
    refused(b, DuplicateObject, b.order, "O1", "C1", 100)
    refused(b, InvalidAmount, b.order, "O2", "C1", 0)
    refused(b, UnknownObject, b.order, "O2", "NOPE", 10)
    err = refused(b, IllegalTransition, b.ship, "O1")
    assert str(err) == "order 'O1' cannot 'ship' from state 'submitted'"
    b.reject("O1")
    refused(b, IllegalTransition, b.approve, "O1")
    refused(b, IllegalTransition, b.invoice, "I1", "C1", 100, order_id="O1")
    b.order("O3", "C2", 100)
    b.approve("O3")
    refused(b, ValidationError, b.invoice, "I1", "C1", 100, order_id="O3")


# -- idempotency and replay -----------------------------------------------------------------


def test_same_event_id_twice_is_a_no_op(b: BookBuilder) -> None:
    e = InvoiceIssued(
        event_id="same",
        occurred_at=at(date(2026, 1, 1)),
        actor="erp",
        number="I1",
        customer_id="C1",
        issue_date=date(2026, 1, 1),
        amount=cny(10),
    )
    assert not b.apply(e).duplicate
    before = snapshot(b.ledger)
    again = b.apply(e)
    assert again.duplicate and again.audit == ()
    assert snapshot(b.ledger) == before


def test_replay_rebuilds_an_identical_book(b: BookBuilder, store_factory) -> None:  # type: ignore[no-untyped-def]
    _contract(b)
    b.invoice("I1", "C1", 100)
    b.invoice("I2", "C1", 200, due="2026-01-10")
    b.pay("P1", "C1", 250)
    b.dispute("D1", "I1", 20)
    b.credit("CN1", "C1", 5)
    b.reverse("P1")
    b.order("O1", "C2", 10)
    copy = Ledger(store_factory())
    assert copy.replay(b.ledger.store) == b.ledger.store.event_count()
    assert snapshot(copy) == snapshot(b.ledger)
    assert copy.audit_trail("receivable", "I2") == b.ledger.audit_trail("receivable", "I2")


def test_apply_all_is_all_or_nothing(b: BookBuilder) -> None:
    t = at(date(2026, 1, 1))
    good = InvoiceIssued(
        occurred_at=t,
        actor="x",
        number="I1",
        customer_id="C1",
        issue_date=date(2026, 1, 1),
        amount=cny(10),
    )
    bad = InvoiceIssued(
        occurred_at=t,
        actor="x",
        number="I2",
        customer_id="NOPE",
        issue_date=date(2026, 1, 1),
        amount=cny(10),
    )
    refused(b, UnknownObject, b.ledger.apply_all, [good, bad])
    assert (
        b.ledger.apply_all([good, good.model_copy(update={"event_id": "other", "number": "I3"})])
        == 2
    )


def test_closed_on_records_the_day_an_item_closed_and_reopening_clears_it(
    b: BookBuilder,
) -> None:
    b.invoice("I1", "C1", 100)
    b.invoice("I2", "C1", 100)
    b.invoice("I3", "C1", 100)
    b.pay("P1", "C1", 100, on="2026-02-03", to=[("I1", 100)])
    b.credit("CN1", "C1", 100, invoice="I2", on="2026-02-04")
    b.write_off("I3", on="2026-12-31")
    assert b.ledger.receivable("I1").closed_on == date(2026, 2, 3)
    assert b.ledger.receivable("I2").closed_on == date(2026, 2, 4)
    assert b.ledger.receivable("I3").closed_on == date(2026, 12, 31)
    b.reverse("P1")
    assert b.ledger.receivable("I1").closed_on is None


def test_engine_outcome_events_are_applied_and_audited(b: BookBuilder) -> None:
    from arflow.events import (
        DunningBlockChanged,
        DunningStepRecorded,
        OrderLockLifted,
        OrderLockPlaced,
        RiskFlagged,
    )

    t = at(date(2026, 3, 3))
    b.invoice("I1", "C1", 100, due="2026-02-01")
    b.apply(
        DunningStepRecorded(
            occurred_at=t,
            actor="engine",
            receivable_id="I1",
            ladder="standard",
            step="formal",
            level=2,
            decision_key="k1",
            sent_on=date(2026, 3, 3),
        )
    )
    b.apply(
        DunningStepRecorded(
            occurred_at=t,
            actor="engine",
            receivable_id="I1",
            ladder="standard",
            step="sms",
            level=1,
            decision_key="k2",
            sent_on=date(2026, 3, 4),
        )
    )
    r = b.ledger.receivable("I1")
    assert (r.dunning_level, r.last_dunned_on) == (2, date(2026, 3, 4))  # level never drops
    refused(
        b,
        ValidationError,
        b.apply,
        DunningBlockChanged(occurred_at=t, actor="x", receivable_id="I1", blocked=True),
    )
    b.apply(
        DunningBlockChanged(
            occurred_at=t,
            actor="x",
            receivable_id="I1",
            blocked=True,
            reason="customer in restructuring",
        )
    )
    assert b.ledger.receivable("I1").dunning_block_reason == "customer in restructuring"
    b.apply(
        RiskFlagged(
            occurred_at=t,
            actor="engine",
            receivable_id="I1",
            level="high",
            rule="high-risk-30",
            flagged_on=date(2026, 3, 3),
        )
    )
    assert b.ledger.receivable("I1").risk_level == "high"
    place = OrderLockPlaced(
        occurred_at=t,
        actor="engine",
        customer_id="C1",
        lock_id="overdue-30",
        placed_on=date(2026, 3, 3),
        reason="INV I1 31 days overdue",
    )
    b.apply(place)
    c = b.ledger.customer("C1")
    assert c.orders_blocked and c.locks[0].reason == "INV I1 31 days overdue"
    refused(b, DuplicateObject, b.apply, place.model_copy(update={"event_id": "again"}))
    b.apply(
        OrderLockLifted(
            occurred_at=t,
            actor="engine",
            customer_id="C1",
            lock_id="overdue-30",
            lifted_on=date(2026, 3, 9),
        )
    )
    assert not b.ledger.customer("C1").orders_blocked
    refused(
        b,
        UnknownObject,
        b.apply,
        OrderLockLifted(
            occurred_at=t,
            actor="engine",
            customer_id="C1",
            lock_id="overdue-30",
            lifted_on=date(2026, 3, 9),
        ),
    )
    kinds = [a.event_type for a in b.ledger.audit_trail("customer", "C1")]
    assert kinds[-2:] == ["OrderLockPlaced", "OrderLockLifted"]
