"""Cash that is applied (issue 12, item 5), on memory, SQLite and PostgreSQL.

A prepayment (unapplied cash) or an open credit note is applied to the customer's next
invoices when they are issued (``Ledger(apply_unapplied_cash=True)``, the default), or by a
``CashApplied`` event; unapplied cash is paid back by ``RefundIssued``. Applying or refunding
more than is unapplied, or in another currency, is refused and changes nothing. The default
ladder never reminds a customer of what its own unapplied credit covers, and a prepayment
customer's order is ``order.prepaid`` once its unapplied cash covers it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arflow import (
    ArflowError,
    CashApplied,
    ClosedItem,
    CurrencyMismatch,
    Engine,
    InvoiceIssued,
    Ledger,
    MemoryStore,
    Money,
    OverAllocation,
    ReceivableState,
    RefundIssued,
    Store,
    ValidationError,
    dump_book,
    parse_event,
)
from arflow.domain import Order
from arflow.rules import default_pack_path
from arflow.rules.facts import customer_facts, order_facts
from arflow.rules.loader import load_pack
from arflow.testing import BookBuilder

S = ReceivableState
DUE = date(2026, 2, 28)


def cny(x: int | str) -> Money:
    return Money.of(x, "CNY")


def snapshot(ledger: Ledger) -> tuple[object, int, int]:
    s = ledger.store
    return dump_book(s), s.event_count(), s.audit_count()


def refused(b: BookBuilder, exc: type[ArflowError], event: Any) -> ArflowError:
    """Apply ``event``: it must raise ``exc`` and leave the book exactly as it was."""
    before = snapshot(b.ledger)
    with pytest.raises(exc) as info:
        b.apply(event)
    assert snapshot(b.ledger) == before
    return info.value


def meta(b: BookBuilder, on: date = DUE) -> dict[str, Any]:
    return b._meta(on)


def apply_cash(
    b: BookBuilder,
    receivable: str,
    amount: Money | int | str,
    *,
    payment: str | None = None,
    note: str | None = None,
) -> CashApplied:
    return CashApplied(
        **meta(b),
        payment_id=payment,
        credit_note_id=note,
        receivable_id=receivable,
        amount=amount if isinstance(amount, Money) else cny(amount),
        applied_on=DUE,
    )


def refund(b: BookBuilder, payment: str, amount: Money | int | str) -> RefundIssued:
    return RefundIssued(
        **meta(b),
        payment_id=payment,
        amount=amount if isinstance(amount, Money) else cny(amount),
        refunded_on=DUE,
        reason="customer asked for it back",
    )


def book(store: Store, *, auto: bool = True) -> BookBuilder:
    b = BookBuilder(Ledger(store, apply_unapplied_cash=auto))
    b.customer("C1", name="华东精密", email="ap@c1.example", terms=30)
    b.customer("C2", name="Northwind", email="ap@c2.example")
    return b


# -- automatically, when an invoice is issued -----------------------------------------------


def test_a_prepayment_pays_the_next_invoice_and_it_is_never_dunned(store: Store) -> None:
    b = book(store)
    b.pay("PRE", "C1", 1_000, on="2026-01-10")  # nothing open: all of it unapplied
    assert b.ledger.unapplied_credit("C1") == {"CNY": cny(1_000)}
    b.invoice("INV-1", "C1", 600, issued="2026-01-29", due=DUE)
    r = b.ledger.receivable("INV-1")
    assert (r.state, r.paid, r.open_balance) == (S.PAID, cny(600), cny(0))
    pay = b.ledger.get("payment", "PRE")
    assert pay.unapplied == cny(400)
    assert [(a.receivable_id, a.amount) for a in pay.allocations] == [("INV-1", cny(600))]
    # the next invoice takes the 400 left; 100 stays open
    b.invoice("INV-2", "C1", 500, issued="2026-01-29", due=DUE)
    assert b.ledger.receivable("INV-2").open_balance == cny(100)
    assert b.ledger.unapplied_credit("C1") == {}
    # the audit trail shows the application, under the invoice's own event
    (issued, paid) = b.ledger.audit_trail("receivable", "INV-1")
    assert (issued.event_type, paid.event_type) == ("InvoiceIssued", "InvoiceIssued")
    assert (paid.before_state, paid.after_state) == ("open", "paid")
    trail = b.ledger.audit_trail("payment", "PRE")
    assert [a.summary for a in trail[1:]] == [
        "applied 600.00 CNY to INV-1, unapplied 400.00 CNY",
        "applied 400.00 CNY to INV-2, unapplied 0.00 CNY",
    ]
    # the default pack never reminds C1 of INV-1: its prepayment paid it
    engine = Engine(b.ledger, load_pack(default_pack_path()))
    for n in range(-8, 40):
        result = engine.run(DUE + timedelta(n), first_run=n == -8)
        assert [d for d in result.plan.decisions if d.subject_id == "INV-1"] == []


def test_credit_notes_and_cash_are_applied_oldest_first_in_the_invoices_currency(
    store: Store,
) -> None:
    b = book(store)
    b.credit("CN-OLD", "C1", 50, on="2026-01-02")
    b.pay("PRE", "C1", 70, on="2026-01-05")
    b.pay("USD", "C1", Money.of(500, "USD"), on="2026-01-01")  # another currency: untouched
    b.invoice("INV-1", "C1", 100, issued="2026-01-20")
    r = b.ledger.receivable("INV-1")
    assert (r.credited, r.paid, r.state) == (cny(50), cny(50), S.PAID)
    note = b.ledger.get("credit_note", "CN-OLD")
    assert note.unapplied == cny(0) and [a.receivable_id for a in note.applications] == ["INV-1"]
    assert b.ledger.unapplied_credit("C1") == {"CNY": cny(20), "USD": Money.of(500, "USD")}
    assert b.ledger.unapplied_credit("C2") == {}  # another customer's credit is its own


def test_with_application_off_the_prepayment_waits_for_cash_applied(store: Store) -> None:
    b = book(store, auto=False)
    b.pay("PRE", "C1", 1_000, on="2026-01-10")
    b.invoice("INV-1", "C1", 600, issued="2026-01-29", due=DUE)
    assert b.ledger.receivable("INV-1").open_balance == cny(600)
    applied = b.apply(apply_cash(b, "INV-1", 600, payment="PRE"))
    assert [a.summary for a in applied.audit] == [
        "paid 600.00 CNY",
        "applied 600.00 CNY to INV-1, unapplied 400.00 CNY",
    ]
    assert b.ledger.receivable("INV-1").state == S.PAID
    assert b.ledger.get("payment", "PRE").unapplied == cny(400)


# -- explicitly: CashApplied, and its refusals ---------------------------------------------


def test_cash_applied_refusals_change_nothing(store: Store) -> None:
    b = book(store, auto=False)
    b.pay("PRE", "C1", 100, on="2026-01-10")
    b.credit("CN", "C1", 30)
    b.invoice("INV-1", "C1", 1_000, issued="2026-01-29", due=DUE)
    b.invoice("INV-2", "C2", 1_000, issued="2026-01-29", due=DUE)
    b.invoice("INV-S", "C1", 10, issued="2026-01-29", due=DUE)
    b.invoice("INV-U", "C1", Money.of(10, "USD"), issued="2026-01-29", due=DUE)
    refused(b, OverAllocation, apply_cash(b, "INV-1", 101, payment="PRE"))
    refused(b, OverAllocation, apply_cash(b, "INV-1", 31, note="CN"))
    refused(b, OverAllocation, apply_cash(b, "INV-S", 11, payment="PRE"))  # more than open
    refused(b, CurrencyMismatch, apply_cash(b, "INV-U", Money.of(5, "USD"), payment="PRE"))
    refused(b, CurrencyMismatch, apply_cash(b, "INV-1", Money.of(5, "USD"), payment="PRE"))
    refused(b, ValidationError, apply_cash(b, "INV-2", 10, payment="PRE"))  # C2's invoice
    refused(b, ValidationError, apply_cash(b, "INV-1", 10))  # neither
    refused(b, ValidationError, apply_cash(b, "INV-1", 10, payment="PRE", note="CN"))  # both
    b.apply(apply_cash(b, "INV-S", 10, note="CN"))
    assert b.ledger.receivable("INV-S").state == S.CREDITED
    refused(b, ClosedItem, apply_cash(b, "INV-S", 1, payment="PRE"))  # closed now
    b.apply(apply_cash(b, "INV-1", 100, payment="PRE"))
    b.apply(apply_cash(b, "INV-1", 20, note="CN"))
    r = b.ledger.receivable("INV-1")
    assert (r.paid, r.credited, r.open_balance) == (cny(100), cny(20), cny(880))
    assert b.ledger.unapplied_credit("C1") == {}
    refused(b, OverAllocation, apply_cash(b, "INV-1", "0.01", payment="PRE"))
    b.reverse("PRE", on=DUE)  # a bounced prepayment reopens what it paid
    assert b.ledger.receivable("INV-1").open_balance == cny(980)
    refused(b, ClosedItem, apply_cash(b, "INV-1", 1, payment="PRE"))


# -- refunds --------------------------------------------------------------------------------


def test_refunds_reduce_the_unapplied_cash_and_no_more(store: Store) -> None:
    b = book(store)
    b.pay("PRE", "C1", 1_000, on="2026-01-10")
    refused(b, OverAllocation, refund(b, "PRE", "1000.01"))
    refused(b, CurrencyMismatch, refund(b, "PRE", Money.of(1, "USD")))
    applied = b.apply(refund(b, "PRE", 300))
    (rec,) = applied.audit
    assert rec.reason == "customer asked for it back"
    assert (rec.before_balance, rec.after_balance) == (cny(1_000), cny(700))
    p = b.ledger.get("payment", "PRE")
    assert (p.unapplied, p.refunded) == (cny(700), cny(300))
    b.invoice("INV-1", "C1", 1_000, issued="2026-01-29", due=DUE)  # takes the 700 left
    assert b.ledger.receivable("INV-1").open_balance == cny(300)
    refused(b, OverAllocation, refund(b, "PRE", "0.01"))
    p = b.ledger.get("payment", "PRE")
    allocated = sum((a.amount.amount for a in p.allocations), Decimal(0))
    assert allocated + p.unapplied.amount + p.refunded.amount == p.amount.amount


# -- dunning and orders ----------------------------------------------------------------------


def test_dunning_skips_what_the_customers_unapplied_credit_covers(store: Store) -> None:
    """With application off the prepayment stays unapplied: the default ladder does not
    remind C1 of an invoice its credit covers, and reminds C2 (no credit) as before."""
    b = book(store, auto=False)
    b.pay("PRE", "C1", 1_000, on="2026-01-10")
    b.invoice("INV-1", "C1", 800, issued="2026-01-29", due=DUE)
    b.invoice("INV-2", "C2", 800, issued="2026-01-29", due=DUE)
    engine = Engine(b.ledger, load_pack(default_pack_path()))
    dunned: set[str] = set()
    for n in range(-8, 20):
        result = engine.run(DUE + timedelta(n), first_run=n == -8)
        dunned |= {d.subject_id for d in result.plan.decisions if d.kind == "dunning"}
    assert dunned == {"INV-2"}


def test_order_prepaid_fact() -> None:
    """``order.prepaid``: the customer's unapplied credit (in its credit currency) covers
    the order; the default pack's prepayment tier asks for approval only when it does not."""
    b = BookBuilder()
    b.customer("D1", name="现款现货客户", grade="D")
    b.pay("PRE", "D1", 5_000)
    customer = b.ledger.customer("D1")
    credits = [b.ledger.get("payment", "PRE")]
    cf = customer_facts(customer, [], [], [], DUE, credits=credits)
    assert cf["customer.unapplied_credit"] == Decimal(5_000)

    def prepaid(amount: Money) -> bool:
        o = Order(id="O", customer_id="D1", amount=amount, submitted_on=DUE)
        return bool(order_facts(o, cf, DUE)["order.prepaid"])

    assert prepaid(cny(5_000)) and not prepaid(cny("5000.01"))
    assert not prepaid(Money.of(1, "USD"))
    (tier,) = [
        r for r in load_pack(default_pack_path()).approvals if r.id == "order-needs-prepayment"
    ]
    assert "order.prepaid" in tier.spec.when


# -- the bulk import's plain path --------------------------------------------------------------


def _invoice(n: int, customer: str, amount: int) -> InvoiceIssued:
    at = datetime(2026, 1, 20, 9, tzinfo=UTC)
    return InvoiceIssued(
        event_id=f"imp-{n}",
        occurred_at=at,
        actor="import",
        number=f"IMP-{n:03d}",
        customer_id=customer,
        issue_date=date(2026, 1, 20),
        amount=cny(amount),
    )


def test_apply_all_applies_credit_to_plain_invoices_like_one_by_one(store: Store) -> None:
    """``apply_all`` issues plain invoices straight to rows, except for a customer with
    credit to apply: the book equals the same events applied one by one."""
    b = book(store)
    b.pay("PRE", "C1", 250, on="2026-01-10")
    events: list[Any] = [_invoice(n, "C1" if n % 3 == 0 else "C2", 100) for n in range(30)]
    assert b.ledger.apply_all(events) == 30
    one = book(MemoryStore())
    one.pay("PRE", "C1", 250, on="2026-01-10")
    for e in events:
        one.apply(e)
    assert dump_book(store) == dump_book(one.ledger.store)
    assert [b.ledger.receivable(f"IMP-{n:03d}").open_balance for n in (0, 3, 6, 9)] == [
        cny(0),
        cny(0),
        cny(50),
        cny(100),
    ]
    # and a replay with the same setting gives the same book
    again = Ledger(MemoryStore())
    again.replay(store)
    assert dump_book(again.store) == dump_book(store)
    assert [parse_event(body).type for _t, body in store.event_log()][-1] == "InvoiceIssued"


# -- money is conserved ------------------------------------------------------------------------

_step = st.one_of(
    st.tuples(st.just("pay"), st.integers(1, 500)),
    st.tuples(st.just("note"), st.integers(1, 500)),
    st.tuples(st.just("invoice"), st.integers(1, 500)),
    st.tuples(st.just("refund"), st.integers(1, 600)),
    st.tuples(st.just("apply"), st.integers(1, 600)),
)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(_step, max_size=25), auto=st.booleans())
def test_cash_is_conserved(steps: list[tuple[str, int]], auto: bool) -> None:
    """Whatever is paid, credited, issued, refunded and applied (refusals included): every
    payment's amount is what it applied plus what is unapplied plus what was refunded, no
    balance or remainder is negative, and a refusal changes nothing."""
    b = BookBuilder(Ledger(MemoryStore(), apply_unapplied_cash=auto))
    b.customer("C1")
    pays: list[str] = []
    notes: list[str] = []
    invoices: list[str] = []
    for i, (what, x) in enumerate(steps):
        before = snapshot(b.ledger)
        try:
            if what == "pay":
                b.pay(f"P{i}", "C1", x)
                pays.append(f"P{i}")
            elif what == "note":
                b.credit(f"N{i}", "C1", x)
                notes.append(f"N{i}")
            elif what == "invoice":
                b.invoice(f"I{i}", "C1", x)
                invoices.append(f"I{i}")
            elif what == "refund" and pays:
                b.apply(refund(b, pays[x % len(pays)], x))
            elif what == "apply" and invoices and (pays or notes):
                credit = (pays + notes)[x % len(pays + notes)]
                kw = {"payment": credit} if credit in pays else {"note": credit}
                b.apply(apply_cash(b, invoices[x % len(invoices)], x, **kw))
        except ArflowError:
            assert snapshot(b.ledger) == before
    applied: dict[str, Decimal] = {}
    for pid in pays:
        p = b.ledger.get("payment", pid)
        out = sum((a.amount.amount for a in p.allocations), Decimal(0))
        refunded = p.refunded.amount if p.refunded is not None else Decimal(0)
        assert p.unapplied.amount >= 0 and refunded >= 0
        assert out + p.unapplied.amount + refunded == p.amount.amount
        for a in p.allocations:
            applied[a.receivable_id] = applied.get(a.receivable_id, Decimal(0)) + a.amount.amount
    credited: dict[str, Decimal] = {}
    for nid in notes:
        n = b.ledger.get("credit_note", nid)
        out = sum((a.amount.amount for a in n.applications), Decimal(0))
        assert n.unapplied.amount >= 0 and out + n.unapplied.amount == n.amount.amount
        for a in n.applications:
            credited[a.receivable_id] = credited.get(a.receivable_id, Decimal(0)) + a.amount.amount
    for rid in invoices:
        r = b.ledger.receivable(rid)
        assert r.open_balance.amount >= 0
        assert r.paid.amount == applied.get(rid, Decimal(0))
        assert r.credited.amount == credited.get(rid, Decimal(0))
        assert r.paid + r.credited + r.open_balance == r.amount
    if auto:  # no cash is left unapplied while an invoice is open (a credit note on
        # account waits for the next invoice or a CashApplied)
        left = [b.ledger.get("payment", pid).unapplied for pid in pays]
        assert not (any(left) and b.ledger.open_items("C1"))


def test_the_docs_example_runs() -> None:
    """docs/cash.md's example, as written."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "cash.md").read_text("utf-8")
    (block,) = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    exec(compile(block, "docs/cash.md", "exec"), {})
