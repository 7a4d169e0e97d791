"""Refused attempts in the audit trail (issue 12, "Bad input"): an order for an unknown
customer or in the wrong currency, an approval by someone without the role, approving
twice, applying more credit than is unapplied, a grade the pack does not define. Through
``Engine.handle`` each raises its specific error and changes nothing (book, event log,
decisions, outbox), and the attempt is in the audit trail of the object it was about,
marked refused with the error's class and message; the event id stays free, so the
corrected event with the same id succeeds. ``Ledger.apply`` refuses alike and records
nothing (docs/credit.md, "Refused attempts").

On memory, SQLite and PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from arflow import (
    ArflowError,
    AuditRecord,
    CashApplied,
    Contact,
    CreditProfile,
    CreditReviewed,
    CurrencyMismatch,
    Customer,
    CustomerRegistered,
    Engine,
    Event,
    IllegalTransition,
    InvoiceIssued,
    Ledger,
    Money,
    NotAuthorized,
    OrderApproved,
    OrderSubmitted,
    OverAllocation,
    PaymentReceived,
    UnknownGrade,
    UnknownObject,
)
from arflow.errors import StoreError
from arflow.rules.loader import load_pack
from arflow.store import Store
from arflow.store.base import dump_book

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
T = datetime(2026, 3, 5, 11, tzinfo=UTC)


@pytest.fixture
def engine(store: Store, tmp_path: Path) -> Engine:
    """C1 with a limit of 100,000 CNY, the default pack; cash is applied by events only."""
    shutil.copytree(RULES, tmp_path / "pack")
    ledger = Ledger(store, apply_unapplied_cash=False)
    ledger.apply(
        CustomerRegistered(
            event_id="reg-C1",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="t",
            customer=Customer(
                id="C1",
                name="Customer C1",
                salesperson="li.wei",
                sales_manager="zhang.min",
                contacts=[Contact(name="Wang", email="ap@c1.example")],
                credit=CreditProfile(
                    grade="B", credit_limit=Money.of(100_000, "CNY"), payment_terms_days=30
                ),
            ),
        )
    )
    return Engine(ledger, load_pack(tmp_path / "pack"))


def everything_but_audit(store: Store) -> tuple[object, ...]:
    return (
        dump_book(store),
        list(store.event_log()),
        [(d.key, d.status) for d in store.decisions()],
        [(o.key, o.status) for o in store.outbox()],
    )


def refused(
    engine: Engine, event: Event, exc: type[ArflowError], kind: str, oid: str
) -> AuditRecord:
    """Handle ``event``: it must raise ``exc``, change nothing but add one audit record,
    the refusal, to the trail of (``kind``, ``oid``); returns that record."""
    store = engine.store
    before, audits = everything_but_audit(store), store.audit_count()
    trail = store.audit_trail(kind, oid)
    with pytest.raises(exc) as info:
        engine.handle(event)
    assert everything_but_audit(store) == before
    assert store.audit_count() == audits + 1
    *old, rec = store.audit_trail(kind, oid)
    assert old == trail
    assert rec.event_id == event.event_id and rec.actor == event.actor
    assert rec.event_type == f"{type(event).__name__}:refused"
    assert (rec.refused, rec.summary) == (exc.__name__, str(info.value))
    assert rec.before_state == rec.after_state  # nothing changed
    assert event.event_id not in {json.loads(body)["event_id"] for _t, body in store.event_log()}
    return rec


def order(oid: str, amount: Money, cid: str = "C1", eid: str | None = None) -> OrderSubmitted:
    return OrderSubmitted(
        event_id=eid or f"submit-{oid}",
        occurred_at=T,
        actor="sales",
        order_id=oid,
        customer_id=cid,
        amount=amount,
        submitted_on=T.date(),
    )


def approval(oid: str, who: str, eid: str) -> OrderApproved:
    return OrderApproved(event_id=eid, occurred_at=T, actor=who, order_id=oid, approver=who)


def states(engine: Engine, kind: str, oid: str) -> list[tuple[str, str | None, str | None]]:
    return [(a.event_type, a.after_state, a.refused) for a in engine.store.audit_trail(kind, oid)]


def test_an_order_for_an_unknown_customer(engine: Engine) -> None:
    rec = refused(
        engine, order("SO-1", Money.of(1_000, "CNY"), "C9"), UnknownObject, "order", "SO-1"
    )
    assert "C9" in rec.summary and rec.before_state is None  # the order does not exist
    _a, ds = engine.handle(order("SO-1", Money.of(1_000, "CNY")))  # the same id, corrected
    assert [d.rule for d in ds] == ["order-approved"]
    assert states(engine, "order", "SO-1") == [
        ("OrderSubmitted:refused", None, "UnknownObject"),
        ("OrderSubmitted", "submitted", None),
        ("OrderApproved", "approved", None),
    ]


def test_an_order_in_another_currency_than_the_limit(engine: Engine) -> None:
    rec = refused(engine, order("SO-1", Money.of(1_000, "USD")), CurrencyMismatch, "order", "SO-1")
    assert "USD" in rec.summary and "CNY" in rec.summary
    engine.handle(order("SO-1", Money.of(1_000, "CNY")))
    assert engine.store.get("order", "SO-1").state == "approved"


def test_an_approval_without_the_role_and_approving_twice(engine: Engine) -> None:
    engine.handle(  # 95% of the limit: the exposure lock sends new orders to approval
        InvoiceIssued(
            event_id="inv-I1",
            occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
            actor="erp",
            number="I1",
            customer_id="C1",
            issue_date=date(2026, 3, 1),
            due_date=date(2026, 4, 1),
            amount=Money.of(95_000, "CNY"),
        )
    )
    engine.handle(order("SO-1", Money.of(1_000, "CNY")))
    assert engine.store.get("order", "SO-1").state == "pending_approval"

    rec = refused(engine, approval("SO-1", "intern", "ap-1"), NotAuthorized, "order", "SO-1")
    assert rec.after_state == "pending_approval" and "intern" in rec.summary
    engine.handle(approval("SO-1", "zhang.min", "ap-1"))  # the same id, by a holder
    assert engine.store.get("order", "SO-1").decided_by == "zhang.min"

    rec = refused(
        engine,
        approval("SO-1", "finance.manager@example.com", "ap-2"),
        IllegalTransition,
        "order",
        "SO-1",
    )
    assert rec.after_state == "approved"
    assert [s for s in states(engine, "order", "SO-1") if s[2] is not None] == [
        ("OrderApproved:refused", "pending_approval", "NotAuthorized"),
        ("OrderApproved:refused", "approved", "IllegalTransition"),
    ]


def test_applying_more_credit_than_is_unapplied(engine: Engine) -> None:
    engine.handle(
        PaymentReceived(
            event_id="pay-P1",
            occurred_at=T,
            actor="bank",
            payment_id="P1",
            customer_id="C1",
            amount=Money.of(1_000, "CNY"),
            received_on=T.date(),
        )
    )
    engine.ledger.apply(
        InvoiceIssued(
            event_id="inv-I1",
            occurred_at=T,
            actor="erp",
            number="I1",
            customer_id="C1",
            issue_date=T.date(),
            due_date=date(2026, 4, 4),
            amount=Money.of(5_000, "CNY"),
        )
    )

    def cash(amount: int) -> CashApplied:
        return CashApplied(
            event_id="ca-1",
            occurred_at=T,
            actor="finance",
            payment_id="P1",
            receivable_id="I1",
            amount=Money.of(amount, "CNY"),
            applied_on=T.date(),
        )

    rec = refused(engine, cash(1_500), OverAllocation, "payment", "P1")
    assert rec.after_state == "unapplied"  # 1,000 of it is left to apply
    engine.handle(cash(1_000))
    assert engine.store.get("payment", "P1").unapplied == Money.of(0, "CNY")
    assert engine.store.get("receivable", "I1").open_balance == Money.of(4_000, "CNY")


def test_a_grade_the_pack_does_not_define(engine: Engine) -> None:
    def review(grade: str) -> CreditReviewed:
        return CreditReviewed(
            event_id="cr-1",
            occurred_at=T,
            actor="credit.officer",
            customer_id="C1",
            reviewed_on=T.date(),
            grade=grade,
            reviewer="credit.officer",
        )

    rec = refused(engine, review("E"), UnknownGrade, "customer", "C1")
    assert "'E'" in rec.summary and "A, B, C, D" in rec.summary
    engine.handle(review("C"))
    assert engine.store.get("customer", "C1").credit.grade == "C"


def test_ledger_apply_refuses_alike_and_records_nothing(engine: Engine) -> None:
    store = engine.store
    before, audits = everything_but_audit(store), store.audit_count()
    with pytest.raises(UnknownObject):
        engine.ledger.apply(order("SO-1", Money.of(1_000, "CNY"), "C9"))
    assert (everything_but_audit(store), store.audit_count()) == (before, audits)


def test_a_failure_of_the_store_is_not_recorded_as_a_refusal(engine: Engine) -> None:
    assert engine.ledger.record_refusal(order("SO-1", Money.of(1, "CNY")), ArflowError("x"))
    assert engine.ledger.record_refusal(order("SO-2", Money.of(1, "CNY")), StoreError("x")) is None
    assert engine.store.audit_trail("order", "SO-2") == []


def test_the_examples_in_docs_credit_md_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = RULES.parent.parent
    text = (root / "docs" / "credit.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    monkeypatch.chdir(root)
    for code in blocks:
        exec(compile(code, "docs/credit.md", "exec"), {})
    assert "C9" in capsys.readouterr().out
