"""Issue 12's leftovers: terms from the grade for orders and contracts (to the pack's terms
tier, or refused), approval requests that reach their approvers, tier names checked when
the pack loads, the dunning skip for what unapplied credit covers, and send windows of
internal messages in the recipient's time zone. On memory, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

from arflow import Engine, Ledger, Store
from arflow.rules import default_pack_path
from arflow.rules.loader import load_pack
from arflow.testing import BookBuilder

DUE = date(2026, 2, 28)


# -- dunning: what the customer's unapplied credit covers ---------------------------------------


def test_dunning_says_an_item_is_covered_by_unapplied_credit(store: Store) -> None:
    b = BookBuilder(Ledger(store, apply_unapplied_cash=False))
    b.customer("C1", name="华东精密", email="ap@c1.example")
    b.pay("PRE", "C1", 1_000, on="2026-01-10")
    b.invoice("INV-1", "C1", 800, issued="2026-01-29", due=DUE)
    b.invoice("INV-2", "C1", 1_200, issued="2026-01-29", due=DUE)  # more than the credit
    engine = Engine(b.ledger, load_pack(default_pack_path()))
    result = engine.run(DUE, first_run=True)
    sent = {d.subject_id for d in result.plan.decisions if d.kind == "dunning"}
    skipped = [d for d in result.plan.skipped if d.subject_id == "INV-1" and d.occurrence == DUE]
    assert sent == {"INV-2"}
    assert skipped and {d.reason for d in skipped} == {
        "covered by unapplied credit of 1,000.00 CNY"
    }
    explained = engine.explain(skipped[0].key)
    assert explained["reason"] == "covered by unapplied credit of 1,000.00 CNY"
    assert explained["status"] == "skipped"


# -- send windows of internal messages: the recipient's time zone -------------------------------


def test_an_internal_notice_waits_for_the_window_in_the_persons_time_zone(store: Store) -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from arflow import (
        Contact,
        CreditProfile,
        Customer,
        CustomerRegistered,
        InvoiceIssued,
        Money,
        Person,
        PersonAdded,
    )

    t = datetime(2026, 3, 5, 1, tzinfo=UTC)  # a Thursday, a working day in China
    meta = {"occurred_at": t, "actor": "erp"}
    ledger = Ledger(store)
    engine = Engine(ledger, load_pack(default_pack_path()))
    engine.handle(
        PersonAdded(
            event_id="p1",
            **meta,
            person=Person(
                id="P-NY",
                name="Ana",
                roles=("salesperson",),
                addresses={"email": "ana@example.com"},
                timezone="America/New_York",
            ),
        )
    )
    engine.handle(
        CustomerRegistered(
            event_id="c1",
            **meta,
            customer=Customer(
                id="C1",
                name="Acme",
                salesperson="P-NY",
                contacts=[Contact(name="Wang", email="ap@acme.example", timezone="Asia/Shanghai")],
                credit=CreditProfile(grade="B", credit_limit=Money.of(100_000, "CNY")),
            ),
        )
    )
    _, decisions = engine.handle(
        InvoiceIssued(
            event_id="i1",
            **meta,
            number="INV-1",
            customer_id="C1",
            issue_date=date(2026, 3, 1),
            due_date=date(2026, 3, 12),
            amount=Money.of(95_000, "CNY"),
        )
    )
    (lock,) = [d for d in decisions if d.kind == "lock"]
    assert lock.send_at is not None
    # 09:00 in New York (the salesperson's), not 09:00 in Shanghai (the customer's)
    local = lock.send_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.date(), local.hour, local.minute) == (date(2026, 3, 5), 9, 0)
    # a message to the customer still waits for the customer's window
    result = engine.run(date(2026, 3, 5))
    (before_due,) = [d for d in result.plan.decisions if d.step == "before-due"]
    assert before_due.send_at is not None
    there = before_due.send_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert (there.date(), there.hour) == (date(2026, 3, 5), 9)
