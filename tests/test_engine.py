"""The engine with the default rule pack: the seed policies, day by day."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from arflow import (
    CompanyProfile,
    Contact,
    Contract,
    ContractSigned,
    CreditProfile,
    Customer,
    CustomerRegistered,
    DueRule,
    Milestone,
    MilestoneCompleted,
    Money,
    OrderApproved,
    OrderSubmitted,
    PaymentNode,
    PaymentReceived,
    Store,
)
from arflow.engine import Engine
from arflow.errors import ArflowError
from arflow.rules.loader import load_pack
from arflow.rules.patterns import BuiltinPatternMatcher
from arflow.testing import BookBuilder

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
DUE = date(2026, 3, 2)  # a Monday


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    return load_pack(RULES)


def register(b: BookBuilder, cid: str = "C1", *, limit: int = 100_000, grade: str = "B") -> None:
    b.apply(
        CustomerRegistered(
            event_id=f"reg-{cid}",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="t",
            customer=Customer(
                id=cid,
                name=f"Customer {cid}",
                salesperson="li.wei",
                sales_manager="zhang.min",
                contacts=[
                    Contact(
                        name="王芳",
                        email=f"ap@{cid.lower()}.example",
                        phone="+8613800000001",
                        locale="zh_CN",
                        timezone="Asia/Shanghai",
                    )
                ],
                credit=CreditProfile(
                    grade=grade,
                    credit_limit=Money.of(limit, "CNY"),  # type: ignore[arg-type]
                    payment_terms_days=30,
                ),
            ),
        )
    )


@pytest.fixture
def b(store: Store) -> BookBuilder:
    builder = BookBuilder(store)
    register(builder)
    return builder


def steps_sent(engine: Engine, day: date) -> list[str]:
    result = engine.run(day)
    return sorted(
        f"{d.kind}:{d.rule}/{d.step or '-'}:{d.subject_id}"
        for d in result.plan.decisions
        if d.status == "planned"
    )


def test_the_default_ladder_day_by_day(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    b.invoice("I1", "C1", 10_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    expected = {
        DUE - timedelta(7): ["dunning:standard/before-due:I1"],
        DUE: ["dunning:standard/due-day:I1"],
        DUE + timedelta(1): ["dunning:standard/formal-notice:I1"],
        DUE + timedelta(3): ["dunning:standard/sms-3:I1"],
        DUE + timedelta(8): ["dunning:standard/formal-notice:I1"],
        DUE + timedelta(15): ["dunning:standard/formal-notice:I1"],
        DUE + timedelta(16): ["dunning:standard/call-16:I1"],
        DUE + timedelta(31): [
            "alert:high-risk-30/-:I1",
            "dunning:standard/escalate-31:I1",
            "lock:overdue-30/-:C1",
        ],
        DUE + timedelta(91): ["dunning:standard/legal-91:I1"],
    }
    day = DUE - timedelta(10)
    engine.run(day, first_run=True)
    while day < DUE + timedelta(100):
        day += timedelta(1)
        assert steps_sent(engine, day) == expected.get(day, []), day
    r = b.ledger.receivable("I1")
    assert (r.dunning_level, r.risk_level) == (5, "high")
    assert b.ledger.customer("C1").orders_blocked
    assert engine.run(day).recorded == 0  # the same day again adds nothing


def test_payment_stops_the_ladder_and_lifts_the_lock(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    b.invoice("I1", "C1", 10_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    engine.run(DUE + timedelta(31), first_run=True)
    assert b.ledger.customer("C1").orders_blocked
    _applied, decisions = engine.handle(
        PaymentReceived(
            event_id="pay",
            occurred_at=datetime(2026, 4, 3, 10, tzinfo=UTC),
            actor="bank",
            payment_id="P1",
            customer_id="C1",
            amount=Money.of(10_000, "CNY"),
            received_on=date(2026, 4, 3),
        )
    )
    assert [(d.kind, d.rule) for d in decisions] == [("unlock", "overdue-30")]
    assert not b.ledger.customer("C1").orders_blocked
    for n in range(1, 90):
        assert steps_sent(engine, DUE + timedelta(31 + n)) == []


def test_catch_up_after_downtime_sends_only_the_latest_step(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    b.invoice("I1", "C1", 10_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    engine.run(DUE - timedelta(1), first_run=True)
    result = engine.run(DUE + timedelta(3))  # three days down: due-day, formal-1, sms-3 due
    assert [d.step for d in result.plan.decisions] == ["sms-3"]
    skipped = {d.step: d.reason for d in result.plan.skipped}
    assert set(skipped) == {"due-day", "formal-notice"}
    assert all("stale on catch-up" in (why or "") for why in skipped.values())
    assert engine.explain(result.plan.skipped[0].key)["status"] == "skipped"
    assert engine.run(DUE + timedelta(3)).recorded == 0


def test_first_run_on_an_old_book_brings_each_item_to_its_stage(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    b.invoice("I-old", "C1", 5_000, issued="2025-12-15", due="2026-01-15")  # 46 days late
    b.invoice("I-new", "C1", 5_000, issued="2026-02-01", due=DUE)
    engine = Engine(b.ledger, pack)
    result = engine.run(DUE, first_run=True)
    sent = {(d.subject_id, d.step) for d in result.plan.decisions if d.kind == "dunning"}
    assert sent == {("I-old", "escalate-31"), ("I-new", "due-day")}


def test_pauses_dispute_promise_block_and_minimum(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    for n in ("I-disp", "I-part", "I-prom", "I-small", "I-block"):
        b.invoice(n, "C1", 50 if n == "I-small" else 1_000, issued="2026-01-31", due=DUE)
    b.dispute("D1", "I-disp")  # whole: nothing left to dun
    b.dispute("D2", "I-part", 400)  # partial: the undisputed 600 is still dunned
    b.promise("PTP", "C1", ["I-prom"], 1_000, by=DUE + timedelta(5), on=DUE - timedelta(1))
    from arflow.events import DunningBlockChanged

    b.apply(
        DunningBlockChanged(
            occurred_at=datetime(2026, 2, 1, tzinfo=UTC),
            actor="t",
            receivable_id="I-block",
            blocked=True,
            reason="legal hold",
        )
    )
    engine = Engine(b.ledger, pack)
    engine.run(DUE - timedelta(1), first_run=True)
    result = engine.run(DUE)
    assert [d.subject_id for d in result.plan.decisions] == ["I-part"]
    reasons = {d.subject_id: d.reason for d in result.plan.skipped}
    assert reasons["I-disp"] == "the open balance is under dispute"
    assert reasons["I-prom"].startswith("promise to pay until 2026-03-07")
    assert reasons["I-small"] == "undisputed balance 50.00 is under the minimum 100"
    assert reasons["I-block"] == "dunning blocked"
    # the promise covers until its date plus 3 days' grace; then the ladder resumes
    for n in range(1, 9):
        engine.run(DUE + timedelta(n))
    b.break_promise("PTP", on=DUE + timedelta(9))
    assert "I-prom" in [d.subject_id for d in engine.run(DUE + timedelta(15)).plan.decisions]


def test_one_notice_per_customer_for_steps_due_together(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C1", 2_000, issued="2026-01-31", due=DUE)
    register(b, "C2")
    b.invoice("I3", "C2", 3_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    engine.run(DUE + timedelta(2), first_run=True)
    plan = engine.plan(DUE + timedelta(3))
    sms = [n for n in plan.notices if n.action.type == "sms"]
    assert [(n.customer_id, n.subject_ids) for n in sms] == [("C1", ("I1", "I2")), ("C2", ("I3",))]
    assert len(plan.decisions) == 3


def test_plan_is_pure_and_run_is_idempotent(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    first = engine.plan(DUE, first_run=True)
    assert engine.plan(DUE, first_run=True) == first
    engine.run(DUE, first_run=True)
    again = engine.run(DUE, first_run=True)
    assert again.recorded == 0 and again.plan.decisions == []


def test_exposure_lock_approval_and_unlock(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    engine = Engine(b.ledger, pack)
    b.invoice("I1", "C1", 60_000, issued="2026-02-01", due="2026-04-01")
    t = datetime(2026, 2, 10, 10, tzinfo=UTC)
    _a, ds = engine.handle(
        OrderSubmitted(
            event_id="o1",
            occurred_at=t,
            actor="sales",
            order_id="SO-1",
            customer_id="C1",
            amount=Money.of(45_000, "CNY"),
            submitted_on=date(2026, 2, 10),
        )
    )
    # issue 12: exposure counts the submitted order, so the lock is placed at submission
    assert [(d.kind, d.rule) for d in ds] == [
        ("approval", "order-over-limit"),
        ("lock", "exposure-90"),
    ]
    assert ds[0].recipients == {
        "sales_manager": "zhang.min",
        "finance_manager": "finance.manager@example.com",
    }
    assert ds[1].why["facts"]["customer.exposure_ratio"] == "1.05"
    _a, ds = engine.handle(
        OrderApproved(
            event_id="o1a",
            occurred_at=t,
            actor="cfo",
            order_id="SO-1",
            approver="finance.manager@example.com",
        )
    )
    # issue 12: an approved order's next owners (finance, then the warehouse) get tasks
    assert [(d.kind, d.rule) for d in ds] == [("approval", "order-approved")]
    assert [a.to for a in ds[0].actions] == [("finance",), ("warehouse",)]
    assert b.ledger.customer("C1").locks[0].lock_id == "exposure-90"
    _a, ds = engine.handle(
        PaymentReceived(
            event_id="p",
            occurred_at=t,
            actor="bank",
            payment_id="P",
            customer_id="C1",
            amount=Money.of(30_000, "CNY"),
            received_on=date(2026, 2, 10),
        )
    )
    assert [(d.kind, d.rule) for d in ds] == [("unlock", "exposure-90")]
    assert b.ledger.customer("C1").locks == ()


def test_milestone_done_asks_finance_to_invoice(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    engine = Engine(b.ledger, pack)
    t = datetime(2026, 2, 1, tzinfo=UTC)
    b.apply(
        ContractSigned(
            event_id="k",
            occurred_at=t,
            actor="s",
            contract=Contract(
                id="K1",
                customer_id="C1",
                signed_on=date(2026, 2, 1),
                amount=Money.of(100_000, "CNY"),
                payment_nodes=[
                    PaymentNode(
                        id="acc",
                        percent=Decimal(100),
                        due=DueRule(basis="milestone", milestone_id="M1"),
                    )
                ],
            ),
            milestones=[Milestone(id="M1", contract_id="K1")],
        )
    )
    _a, ds = engine.handle(
        MilestoneCompleted(
            event_id="m",
            occurred_at=t,
            actor="pm",
            milestone_id="M1",
            completed_on=date(2026, 2, 1),
        )
    )
    (d,) = ds
    assert (d.kind, d.subject_id, d.actions[0].type) == ("milestone", "K1", "request_invoice")
    assert d.recipients == {"finance": "finance@example.com"}
    assert d.why["amount"] == "100,000.00 CNY"


def test_credit_scoring_gives_grade_and_policy(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    from arflow import CustomerUpdated

    b.apply(
        CustomerUpdated(
            occurred_at=datetime(2026, 1, 2, tzinfo=UTC),
            actor="t",
            customer_id="C1",
            profile=CompanyProfile(
                enterprise_type="state_owned",
                registered_capital=Money.of(80_000_000, "CNY"),
                established_on=date(2001, 5, 1),
                industry_risk=2,
                third_party_rating="AA",
                bank_reference="good",
            ),
        )
    )
    engine = Engine(b.ledger, pack)
    s = engine.score("C1", date(2026, 3, 1))
    # 20 + 15 + 10 + 8 + 10 (no history) + 5 (no history) + 9 + 5
    assert s.score == Decimal(82)
    assert (s.grade, s.credit_limit, s.payment_terms_days) == ("A", Decimal(500000), 90)


def test_a_failing_receivable_is_recorded_and_the_run_goes_on(
    b: BookBuilder,
    pack,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C1", 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    real = engine._plan_ladder

    def boom(plan, ladder, r, *args):  # type: ignore[no-untyped-def]
        if r.id == "I1":
            raise RuntimeError("corrupt item")
        return real(plan, ladder, r, *args)

    monkeypatch.setattr(engine, "_plan_ladder", boom)
    result = engine.run(DUE, first_run=True)
    assert [d.subject_id for d in result.plan.decisions] == ["I2"]
    assert [(f.subject_id, f.error) for f in result.failures] == [
        ("I1", "RuntimeError: corrupt item")
    ]
    import json

    assert json.loads(b.ledger.store.runs()[-1].body)["failed"] == 1


def _custom_pack(tmp_path: Path, **replace: str):  # type: ignore[no-untyped-def]
    """The default pack copied to ``tmp_path`` with text replaced in its files."""
    import shutil

    dest = tmp_path / "pack"
    shutil.copytree(RULES, dest)
    for name, (old, new) in ((k, v.split("=>", 1)) for k, v in replace.items()):
        f = dest / f"{name}.yaml"
        text = f.read_text(encoding="utf-8")
        assert old in text, (name, old)
        f.write_text(text.replace(old, new), encoding="utf-8")
    return load_pack(dest)


def test_orders_are_held_for_approval_when_locked_or_over_policy(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    engine = Engine(b.ledger, pack)
    b.invoice("I1", "C1", 10_000, issued="2026-01-01", due="2026-01-31")
    engine.run(date(2026, 3, 5), first_run=True)  # 33 days overdue: overdue-30 lock
    t = datetime(2026, 3, 5, 11, tzinfo=UTC)
    _a, ds = engine.handle(
        OrderSubmitted(
            event_id="o",
            occurred_at=t,
            actor="sales",
            order_id="SO-9",
            customer_id="C1",
            amount=Money.of(1_000, "CNY"),
            submitted_on=date(2026, 3, 5),
        )
    )
    assert [(d.kind, d.rule) for d in ds] == [("approval", "lock-overdue-30")]
    # the lock's reason is the rule's description, not "rule overdue-30"
    (lock,) = b.ledger.customer("C1").locks
    assert lock.reason == "Anything over 30 days overdue suspends the customer."
    # issue 12: the default pack's overdue-30 lock says on_order: reject; the order is
    # refused with the lock's description as its reason
    assert ds[0].reason == "Anything over 30 days overdue suspends the customer."
    assert b.ledger.get("order", "SO-9").state == "rejected"
    trail = b.ledger.audit_trail("order", "SO-9")
    assert [(a.actor, a.after_state) for a in trail][-1] == ("arflow-engine", "rejected")
    assert trail[-1].reason == ds[0].reason


def test_review_mode_holds_then_releases(b: BookBuilder, tmp_path: Path) -> None:
    pack = _custom_pack(tmp_path, pack="review: false=>review: true")
    engine = Engine(b.ledger, pack)
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    register(b, "C2")
    b.invoice("I2", "C2", 1_000, issued="2026-01-31", due=DUE)
    register(b, "C3")
    b.invoice("I3", "C3", 1_000, issued="2026-01-31", due=DUE)
    result = engine.run(DUE, first_run=True)
    assert result.recorded == 3 and {d.status for d in result.plan.decisions} == {"held"}
    assert b.ledger.receivable("I1").dunning_level == 0  # nothing carried out yet
    assert engine.run(DUE).recorded == 0
    held = engine.proposal()
    assert [d.subject_id for d in held] == ["I1", "I2", "I3"]
    counts = engine.release(drop=[held[1].key], hold_customers=["C3"], actor="ar.clerk")
    assert counts == {"released": 1, "dropped": 1, "held": 1, "skipped": 0}
    assert b.ledger.receivable("I1").dunning_level == 1
    assert b.ledger.receivable("I2").dunning_level == 0
    assert engine.explain(held[1].key)["status"] == "dropped"
    assert [d.subject_id for d in engine.proposal()] == ["I3"]
    assert engine.release() == {"released": 1, "dropped": 0, "held": 0, "skipped": 0}
    assert engine.proposal() == []


def test_a_held_reminder_for_an_invoice_paid_since_is_skipped_on_release(
    b: BookBuilder, tmp_path: Path
) -> None:
    pack = _custom_pack(tmp_path, pack="review: false=>review: true")
    engine = Engine(b.ledger, pack)
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C1", 1_000, issued="2026-01-31", due=DUE)
    engine.run(DUE, first_run=True)
    (held,) = [d.key for d in engine.proposal() if d.subject_id == "I1"]
    b.pay("P1", "C1", 1_000, on=DUE, to=[("I1", 1_000)])
    assert engine.release() == {"released": 1, "dropped": 0, "held": 0, "skipped": 1}
    assert engine.explain(held)["status"] == "skipped"
    assert engine.explain(held)["reason"] == "receivable I1 is paid since it was decided"
    assert b.ledger.receivable("I2").dunning_level == 1


def test_an_alert_without_a_days_past_due_bound_reads_every_live_receivable(
    b: BookBuilder, tmp_path: Path
) -> None:
    """Its window is every due date; merging it with the ladder's windows once overflowed
    past ``date.max`` on every day after the first."""
    pack = _custom_pack(
        tmp_path, alerts='when: "days_past_due > 30 and balance > 0"=>when: "balance > 100"'
    )
    engine = Engine(b.ledger, pack)
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-06-30")  # far from due
    assert [d.kind for d in engine.run(date(2026, 3, 1), first_run=True).plan.decisions] == [
        "alert"
    ]
    assert engine.run(date(2026, 3, 2)).recorded == 0  # flagged once
    assert [r.id for r in engine.candidates(date(2026, 3, 2), date(2026, 3, 2))] == ["I1"]


def test_send_window_in_the_customers_time_zone(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    (d,) = engine.plan(DUE, first_run=True).decisions
    # Monday 2 March 2026, 09:00 in Shanghai is 01:00 UTC
    assert d.send_at == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    (d,) = engine.plan(DUE - timedelta(7), first_run=True).decisions
    # Monday 23 February is still in the 2026 Spring Festival holiday: the next business day
    assert d.send_at == datetime(2026, 2, 24, 1, 0, tzinfo=UTC)


def test_dunning_charge_and_late_interest_are_receivables_of_their_own(
    b: BookBuilder, tmp_path: Path
) -> None:
    pack = _custom_pack(
        tmp_path,
        dunning="""          - {type: task, to: salesperson, template: call_and_record, priority: high, due_in: 2bd}
=>          - {type: task, to: salesperson, template: call_and_record, priority: high, due_in: 2bd}
          - {type: charge, fee: 50, interest_rate: 0.0365, day_count: act/365, exempt_grades: [A]}
""",
    )
    b.invoice("I1", "C1", 100_000, issued="2026-01-31", due=DUE)
    register(b, "C-A", grade="A")
    b.invoice("I2", "C-A", 100_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    engine.run(DUE + timedelta(16), first_run=True)
    charge = b.ledger.receivable("CHG-I1-call-16-2026-03-18")
    # 50 fee + 100,000 x 3.65% x 16 / 365 = 50 + 160
    assert charge.amount == Money.of(210, "CNY")
    assert charge.tags == ("dunning-charge", "for:I1")
    assert charge.due_date == date(2026, 4, 17)  # the customer's 30 days' terms
    assert b.ledger.store.get("receivable", "CHG-I2-call-16-2026-03-18") is None  # grade A
    engine.run(DUE + timedelta(16))
    assert len([r for r in b.ledger.store.all("receivable") if "dunning-charge" in r.tags]) == 1


def test_a_contract_scoped_lock_holds_only_that_contract(b: BookBuilder, tmp_path: Path) -> None:
    pack = _custom_pack(
        tmp_path,
        locks="""  - id: overdue-30
    description: Anything over 30 days overdue suspends the customer.
    when: "customer.overdue_max_days > 30"
=>  - id: overdue-30
    description: Anything over 30 days overdue suspends that contract.
    when: "customer.overdue_max_days > 30"
    scope: contract
""",
    )
    t = datetime(2026, 1, 1, tzinfo=UTC)
    for k in ("K1", "K2"):
        b.apply(
            ContractSigned(
                event_id=k,
                occurred_at=t,
                actor="s",
                contract=Contract(
                    id=k,
                    customer_id="C1",
                    signed_on=date(2026, 1, 1),
                    amount=Money.of(50_000, "CNY"),
                ),
            )
        )
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-01-31", contract_id="K1")
    b.invoice("I2", "C1", 1_000, issued="2026-03-01", due="2026-03-31", contract_id="K2")
    engine = Engine(b.ledger, pack)
    engine.run(date(2026, 3, 5), first_run=True)
    (lock,) = b.ledger.customer("C1").locks
    assert (lock.lock_id, lock.scope, lock.ref) == ("overdue-30", "contract", "K1")
    assert not b.ledger.customer("C1").orders_blocked  # only contract K1 is held
    t2 = datetime(2026, 3, 6, tzinfo=UTC)
    _a, ds = engine.handle(
        OrderSubmitted(
            event_id="o2",
            occurred_at=t2,
            actor="s",
            order_id="SO-K2",
            customer_id="C1",
            contract_id="K2",
            amount=Money.of(10, "CNY"),
            submitted_on=date(2026, 3, 6),
        )
    )
    assert [d.rule for d in ds] == ["order-approved"]  # issue 12: approved at entry
    _a, ds = engine.handle(
        OrderSubmitted(
            event_id="o1",
            occurred_at=t2,
            actor="s",
            order_id="SO-K1",
            customer_id="C1",
            contract_id="K1",
            amount=Money.of(10, "CNY"),
            submitted_on=date(2026, 3, 6),
        )
    )
    assert [d.rule for d in ds] == ["lock-overdue-30"]
    _a, ds = engine.handle(
        PaymentReceived(
            event_id="p",
            occurred_at=t2,
            actor="bank",
            payment_id="P1",
            customer_id="C1",
            amount=Money.of(1_000, "CNY"),
            received_on=date(2026, 3, 6),
        )
    )
    assert [(d.kind, d.why["ref"]) for d in ds] == [("unlock", "K1")]
    assert b.ledger.customer("C1").locks == ()


# -- patterns over a customer's history (durable-rules) -------------------------------------------


def _through(engine: Engine, b: BookBuilder) -> list:  # type: ignore[type-arg]
    """Route the builder's events through ``engine.handle``; collect what they trigger."""
    triggered: list = []  # type: ignore[type-arg]

    def apply(event):  # type: ignore[no-untyped-def]
        applied, decisions = engine.handle(event)
        triggered.extend(decisions)
        return applied

    b.apply = apply  # type: ignore[method-assign]
    return triggered


def test_an_unpaid_promise_is_broken_after_its_grace_and_the_ladder_resumes(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.promise("PTP", "C1", ["I1"], 1_000, by=DUE + timedelta(5), on=DUE - timedelta(1))
    engine = Engine(b.ledger, pack)
    engine.run(DUE - timedelta(1), first_run=True)
    for n in range(0, 9):  # promised for DUE+5, grace 3 days: nothing until DUE+9
        result = engine.run(DUE + timedelta(n))
        assert not [d for d in result.plan.decisions if d.kind == "pattern"], n
    result = engine.run(DUE + timedelta(9))
    [broken] = [d for d in result.plan.decisions if d.kind == "pattern"]
    assert (broken.key, broken.rule, broken.subject_id) == (
        "pattern:promise-broken:PTP",
        "promise-broken",
        "PTP",
    )
    assert [a.template for a in broken.actions] == ["promise_broken"]
    assert broken.recipients == {"salesperson": "li.wei", "sales_manager": "zhang.min"}
    assert broken.why["unpaid_receivable"] == "I1"
    promise = b.ledger.get("promise", "PTP")
    assert promise.status == "broken"
    trail = b.ledger.audit_trail("promise", "PTP")
    assert trail[-1].actor == "arflow-engine" and "promise-broken" in (trail[-1].reason or "")
    assert engine.explain(broken.key)["rule"] == "promise-broken"
    # idempotent: the same day again adds nothing, and the next day does not repeat it
    assert engine.run(DUE + timedelta(9)).recorded == 0
    assert not [d for d in engine.run(DUE + timedelta(10)).plan.decisions if d.kind == "pattern"]
    # the customer's facts count the broken promise, so a ladder or grade can react to it
    assert (
        engine._customer_facts("C1", DUE + timedelta(10), {})["customer.broken_promises_180d"] == 1
    )


def test_a_promise_with_a_payment_before_its_deadline_is_not_unpaid(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.promise("PTP", "C1", ["I1"], 1_000, by=DUE + timedelta(5), on=DUE - timedelta(1))
    b.pay("P1", "C1", 300, on=DUE + timedelta(7), to=[("I1", 300)])  # in the grace days
    engine = Engine(b.ledger, pack)
    engine.run(DUE + timedelta(20), first_run=True)
    assert not [d for d in b.ledger.store.decisions() if d.kind == "pattern"]
    assert b.ledger.get("promise", "PTP").status == "open"  # partly paid: still running


def test_three_late_payments_within_six_months_alert_once_as_the_third_arrives(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    engine = Engine(b.ledger, pack)
    triggered = _through(engine, b)
    months = [date(2026, 1, 10), date(2026, 2, 10), date(2026, 3, 10), date(2026, 4, 10)]
    for i, due in enumerate(months, 1):
        b.invoice(f"I{i}", "C1", 1_000, issued=due - timedelta(30), due=due)
    b.pay("P1", "C1", 1_000, on=date(2026, 1, 20), to=[("I1", 1_000)])  # late
    b.pay("P2", "C1", 1_000, on=date(2026, 2, 9), to=[("I2", 1_000)])  # on time
    b.pay("P3", "C1", 1_000, on=date(2026, 3, 15), to=[("I3", 1_000)])  # late
    assert not [d for d in triggered if d.kind == "pattern"]
    b.pay("P4", "C1", 1_000, on=date(2026, 4, 30), to=[("I4", 1_000)])  # late: the third
    [alert] = [d for d in triggered if d.kind == "pattern"]
    assert alert.rule == "habitual-late-payer" and alert.subject_id == "C1"
    assert alert.why["first_late_payment"] == {
        "receivable": "I1",
        "paid_on": "2026-01-20",
        "due_date": "2026-01-10",
    }
    assert alert.recipients == {
        "finance_manager": "finance.manager@example.com",
        "salesperson": "li.wei",
    }
    assert b.ledger.store.decision(alert.key) is not None
    # the daily run sees the same run of late payments and adds nothing
    assert not [d for d in engine.run(date(2026, 5, 1)).plan.decisions if d.kind == "pattern"]


def test_late_payments_spread_over_more_than_the_window_do_not_match(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    engine = Engine(b.ledger, pack)
    triggered = _through(engine, b)
    for i, due in enumerate([date(2026, 1, 10), date(2026, 5, 10), date(2026, 9, 10)], 1):
        b.invoice(f"I{i}", "C1", 1_000, issued=due - timedelta(30), due=due)
        b.pay(f"P{i}", "C1", 1_000, on=due + timedelta(5), to=[(f"I{i}", 1_000)])
    assert not [d for d in triggered if d.kind == "pattern"]


def test_each_engine_has_its_own_pattern_matcher(store: Store, pack) -> None:  # type: ignore[no-untyped-def]
    ledger = BookBuilder(store).ledger
    with Engine(ledger, pack) as one, Engine(ledger, pack) as two:
        assert one.matcher is not None and two.matcher is not None
        assert one.matcher is not two.matcher
        if not isinstance(one.matcher, BuiltinPatternMatcher):  # durable-rules: a host each
            assert one.matcher._host is not two.matcher._host  # type: ignore[attr-defined]
    assert one._matcher is None  # closed with the engine


def test_an_order_submitted_while_an_invoice_is_disputed_goes_to_approval(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    engine = Engine(b.ledger, pack)
    b.invoice("I1", "C1", 10_000, issued="2026-03-01", due="2026-03-31")
    b.dispute("D1", "I1", 2_000)

    def submit(order_id: str, day: date) -> list[tuple[str, str]]:
        _a, ds = engine.handle(
            OrderSubmitted(
                event_id=order_id,
                occurred_at=datetime(day.year, day.month, day.day, 10, tzinfo=UTC),
                actor="sales",
                order_id=order_id,
                customer_id="C1",
                amount=Money.of(1_000, "CNY"),
                submitted_on=day,
            )
        )
        return [(d.kind, d.rule) for d in ds]

    assert submit("SO-1", date(2026, 3, 10)) == [("approval", "order-while-disputed")]
    assert b.ledger.get("order", "SO-1").state == "pending_approval"
    b.resolve("D1", "accepted", on="2026-03-12")
    # issue 12: within limit and unlocked, the order is approved at entry
    assert submit("SO-2", date(2026, 3, 13)) == [("approval", "order-approved")]
    assert b.ledger.get("order", "SO-2").state == "approved"


def test_the_daily_run_lifts_a_lock_whose_cause_went_and_leaves_untouched_locks_alone(
    b: BookBuilder,
    pack,  # type: ignore[no-untyped-def]
) -> None:
    """Locks lift by themselves when the cause is gone, also when the payment came in through
    Ledger.apply rather than Engine.handle; a daily run looks only at the locked customers
    the book changed for since the last run."""
    register(b, "C2")
    b.invoice("I1", "C1", 10_000, issued="2026-01-01", due="2026-01-31")
    b.invoice("I2", "C2", 10_000, issued="2026-01-01", due="2026-01-31")
    engine = Engine(b.ledger, pack)
    engine.run(date(2026, 3, 5), first_run=True)  # 33 days overdue: both locked
    assert [lk.lock_id for lk in b.ledger.customer("C1").locks] == ["overdue-30"]
    assert [lk.lock_id for lk in b.ledger.customer("C2").locks] == ["overdue-30"]
    b.pay("P1", "C1", 10_000, on="2026-03-05")  # straight into the ledger
    looked_at: list[str] = []
    original = engine._plan_locks

    def spy(plan, customer_id, as_of, cache):  # type: ignore[no-untyped-def]
        looked_at.append(customer_id)
        return original(plan, customer_id, as_of, cache)

    engine._plan_locks = spy  # type: ignore[method-assign]
    result = engine.run(date(2026, 3, 6))
    assert [(d.kind, d.subject_id) for d in result.plan.decisions if d.kind == "unlock"] == [
        ("unlock", "C1")
    ]
    assert b.ledger.customer("C1").locks == () and b.ledger.customer("C2").locks
    # the first run's own lock events change no fact a lock reads: only C1, paid, is looked at
    assert looked_at == ["C1"]
    looked_at.clear()
    engine.run(date(2026, 3, 7))
    assert looked_at == []  # C1 is no longer locked; nothing changed for C2 since 03-06


def _pay_while_planning(engine: Engine, b: BookBuilder, payments: list[tuple[str, str, int]]):  # type: ignore[no-untyped-def]
    """Commit ``payments`` (id, customer, amount) right after the run has planned its day:
    what a bank feed does while a run is busy. Returns the engine's original planner."""
    real = engine._plan_slice
    todo = list(payments)

    def plan_then_pay(*args):  # type: ignore[no-untyped-def]
        plan = real(*args)
        while todo:
            pid, cid, amount = todo.pop(0)
            b.pay(pid, cid, amount, on=DUE)
        return plan

    engine._plan_slice = plan_then_pay  # type: ignore[method-assign]
    return real


def test_a_payment_committed_while_a_run_plans_does_not_abort_the_day(store: Store, pack) -> None:  # type: ignore[no-untyped-def]
    b = BookBuilder(store)
    register(b, "C1")
    register(b, "C2")
    b.invoice("I1", "C1", 10_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C2", 10_000, issued="2026-01-31", due=DUE)
    b.invoice("I3", "C1", 4_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    engine.run(DUE - timedelta(1), first_run=True)
    # C1 pays I1 in full between planning and recording; I3 and C2 are untouched
    _pay_while_planning(engine, b, [("P1", "C1", 10_000)])
    result = engine.run(DUE)
    recorded = {(r.subject_id, r.status) for r in store.decisions(as_of=DUE)}
    assert recorded == {("I2", "planned"), ("I3", "planned")}
    assert b.ledger.receivable("I1").state == "paid"
    assert b.ledger.receivable("I3").dunning_level == 1
    assert result.plan.replanned == 1
    assert json.loads(store.runs()[-1].body)["replanned"] == 1
    # the messages show the book as recorded: C1's notice lists I3 only
    today = [json.loads(rec.body) for rec in store.outbox() if DUE.isoformat() in rec.key]
    assert {m["customer_id"]: m["subject_ids"] for m in today} == {"C1": ["I3"], "C2": ["I2"]}
    assert all(d.subject_id != "I1" for d in result.plan.decisions)


def test_a_rule_that_raises_is_a_failure_of_that_rule_and_subject_and_the_day_goes_on(
    b: BookBuilder,
) -> None:
    """A lock or alert condition raising what arflow does not expect (``decimal.Overflow``
    from arithmetic on a huge literal) is reported for that rule and subject; the other
    rules, and the other subjects of the same rule, are decided as usual."""
    import dataclasses
    import decimal

    pack = load_pack(RULES)  # changed below: not the module's shared pack

    def overflow(facts):  # type: ignore[no-untyped-def]
        if facts.get("customer.id", facts.get("customer_id")) == "C1":
            raise decimal.Overflow("above Emax")
        return real(facts)

    lock = next(r for r in pack.locks if r.id == "exposure-90")
    assert lock.when is not None
    real = lock.when.predicate
    pack.locks = [
        dataclasses.replace(r, when=dataclasses.replace(r.when, predicate=overflow))  # type: ignore[arg-type]
        if r.id == "exposure-90"
        else r
        for r in pack.locks
    ]
    alert = next(r for r in pack.alerts if r.subject == "receivable")
    assert alert.when is not None
    pack.alerts = [
        dataclasses.replace(r, when=dataclasses.replace(r.when, predicate=overflow))  # type: ignore[arg-type]
        if r is alert
        else r
        for r in pack.alerts
    ]
    register(b, "C2", limit=1_000)
    b.invoice("I1", "C1", 10_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C2", 10_000, issued="2026-01-31", due=DUE)
    result = Engine(b.ledger, pack).run(DUE + timedelta(31), first_run=True)
    failed = {(f.rule, f.subject_kind, f.subject_id, f.error) for f in result.failures}
    assert failed == {
        ("exposure-90", "customer", "C1", "Overflow: above Emax"),
        (alert.id, "receivable", "I1", "Overflow: above Emax"),
    }
    decided = {(d.kind, d.rule, d.subject_id) for d in result.plan.decisions}
    assert {
        ("lock", "overdue-30", "C1"),  # the other lock rule on the same customer
        ("lock", "exposure-90", "C2"),  # the same rule on another customer
        ("alert", alert.id, "I2"),
        ("dunning", "standard", "I1"),
    } <= decided
    assert json.loads(b.ledger.store.runs()[-1].body)["failed"] == 2


def test_a_step_offset_past_the_calendars_end_fires_never_and_breaks_nothing(
    b: BookBuilder, tmp_path: Path
) -> None:
    try:
        pack = _custom_pack(tmp_path, dunning="at: due-7d=>at: due+999999d")
    except ArflowError as exc:  # refused when the pack is loaded: as good
        assert "999999" in str(exc)
        return
    b.invoice("I1", "C1", 10_000, issued="2026-01-31", due=DUE)
    result = Engine(b.ledger, pack).run(DUE, first_run=True)
    assert not result.failures
    assert [d.step for d in result.plan.decisions] == ["due-day"]


def test_a_small_balance_is_not_dunned_alerted_or_locked_for(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    """The pack's ``min_balance`` (100) holds for alerts and locks as for the ladder: a
    0.01 balance left 40 days overdue pages no director and suspends no customer."""
    assert pack.settings.min_balance == Decimal(100)
    register(b, "C2")
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.pay("P1", "C1", Decimal("999.99"), on=DUE, to=[("I1", Decimal("999.99"))])
    b.invoice("I2", "C2", 1_000, issued="2026-01-31", due=DUE)
    b.pay("P2", "C2", 800, on=DUE, to=[("I2", 800)])  # 200 left: not small
    result = Engine(b.ledger, pack).run(DUE + timedelta(40), first_run=True)
    decided = {(d.kind, d.rule, d.subject_id) for d in result.plan.decisions}
    assert decided == {
        ("alert", "high-risk-30", "I2"),
        ("dunning", "standard", "I2"),
        ("lock", "overdue-30", "C2"),
    }
    assert not b.ledger.customer("C1").orders_blocked
    small = [d.reason for d in result.plan.skipped if d.subject_id == "I1"]
    assert any("under the minimum 100" in (why or "") for why in small)


def test_lock_and_alert_notices_wait_for_the_send_window(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    """Monday 23 February 2026 is in the Spring Festival holiday: the risk alert's task and
    the lock's notice wait for 09:00 on the next business day, like the reminder."""
    from arflow.outbox import micros

    b.invoice("I1", "C1", 10_000, issued="2025-12-20", due="2026-01-20")  # 34 days late
    result = Engine(b.ledger, pack).run(date(2026, 2, 23), first_run=True)
    opens = datetime(2026, 2, 24, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert {d.kind: d.send_at for d in result.plan.decisions} == {
        "dunning": opens,
        "alert": opens,
        "lock": opens,
    }
    queued = b.ledger.store.outbox()
    assert {rec.channel for rec in queued} >= {"email", "task"}
    assert all(rec.next_at == micros(opens) for rec in queued)


# -- pins: behaviour a mutation of the engine once changed unnoticed ----------------------------


def test_the_last_day_of_a_promises_grace_still_pauses_the_ladder(b: BookBuilder, pack) -> None:  # type: ignore[no-untyped-def]
    """Promised for DUE+5 with 3 days' grace: the formal notice due on DUE+8, the grace's
    last day, is paused; the next one (DUE+15) goes out once the promise is broken."""
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.promise("PTP", "C1", ["I1"], 1_000, by=DUE + timedelta(5), on=DUE - timedelta(1))
    engine = Engine(b.ledger, pack)
    engine.run(DUE - timedelta(1), first_run=True)
    for n in range(0, 8):
        engine.run(DUE + timedelta(n))
    last = engine.run(DUE + timedelta(8))
    assert [d.step for d in last.plan.decisions if d.kind == "dunning"] == []
    (paused,) = [d for d in last.plan.skipped if d.step == "formal-notice"]
    assert paused.reason == "promise to pay until 2026-03-07 (+3d grace)"


def test_a_wholly_disputed_invoice_is_not_dunned_on_a_ladder_without_a_minimum(
    b: BookBuilder, tmp_path: Path
) -> None:
    pack = _custom_pack(
        tmp_path,
        dunning="min_balance: 100 =>min_balance: 0 ",
        pack="min_balance: 100 =>min_balance: 0 ",
    )
    assert pack.settings.min_balance == 0 and pack.ladders[0].min_balance == 0
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.dispute("D1", "I1")  # the whole invoice
    result = Engine(b.ledger, pack).run(DUE, first_run=True)
    assert [d.subject_id for d in result.plan.decisions] == ["I2"]
    reasons = {d.subject_id: d.reason for d in result.plan.skipped if d.step == "due-day"}
    assert reasons == {"I1": "the open balance is under dispute"}


def test_a_lock_on_a_trailing_window_lifts_by_the_passage_of_time_alone(
    b: BookBuilder, tmp_path: Path
) -> None:
    """``late_payments_180d`` falls as the late payment leaves the window: no event says so,
    yet the daily run must look at the locked customer and lift the lock."""
    pack = _custom_pack(
        tmp_path,
        locks="locks:\n=>locks:\n  - id: late-payer\n"
        '    when: "customer.late_payments_180d >= 1"\n',
    )
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.pay("P1", "C1", 1_000, on=DUE + timedelta(10))  # ten days late
    # a live item the first run reads, so that it looks at C1 (paid in full later)
    b.invoice("I2", "C1", 1_000, issued="2026-02-13", due=DUE + timedelta(15))
    engine = Engine(b.ledger, pack)
    engine.run(DUE + timedelta(11), first_run=True)
    assert [lk.lock_id for lk in b.ledger.customer("C1").locks] == ["late-payer"]
    b.pay("P2", "C1", 1_000, on=DUE + timedelta(12))
    day = DUE + timedelta(12)
    engine.run(day)
    lifted = None
    while lifted is None and day < DUE + timedelta(200):
        day += timedelta(1)
        lifted = next((d for d in engine.run(day).plan.decisions if d.kind == "unlock"), None)
    assert lifted is not None and lifted.rule == "late-payer"
    assert day == DUE + timedelta(10 + 181)  # the first day the payment is 181 days back
    assert b.ledger.customer("C1").locks == ()


def submit(engine: Engine, order_id: str, customer_id: str, amount: int) -> list:  # type: ignore[type-arg]
    """Submit an order on 5 March 2026 through ``engine.handle``; the decisions it triggers."""
    _applied, decisions = engine.handle(
        OrderSubmitted(
            event_id=f"submit-{order_id}",
            occurred_at=datetime(2026, 3, 5, 11, tzinfo=UTC),
            actor="sales",
            order_id=order_id,
            customer_id=customer_id,
            amount=Money.of(amount, "CNY"),
            submitted_on=date(2026, 3, 5),
        )
    )
    return decisions


def test_an_approval_tier_that_raises_leaves_the_order_and_the_other_tiers_standing(
    b: BookBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses
    import decimal
    import logging

    pack = load_pack(RULES)  # changed below: not the module's shared pack

    def overflow(facts):  # type: ignore[no-untyped-def]
        raise decimal.Overflow("above Emax")

    pack.approvals = [
        dataclasses.replace(r, when=dataclasses.replace(r.when, predicate=overflow))  # type: ignore[arg-type]
        if r.id == "order-over-limit"
        else r
        for r in pack.approvals
    ]
    register(b, "C2", limit=1_000)
    b.invoice("I1", "C2", 500, issued="2026-01-31", due=DUE)
    b.dispute("D1", "I1", 100)
    engine = Engine(b.ledger, pack)
    with caplog.at_level(logging.ERROR, logger="arflow.engine"):
        ds = submit(engine, "SO-1", "C2", 800)  # under the 1.5x ceiling (issue 12)
    # issue 12: the order counts toward exposure at once, so exposure-90 locks on submission
    assert [d.rule for d in ds] == ["order-while-disputed", "exposure-90"]
    assert b.ledger.get("order", "SO-1").state == "pending_approval"
    assert "rule order-over-limit failed on order SO-1 after submit-SO-1: Overflow: above Emax" in (
        caplog.text
    )


def test_long_rule_step_and_invoice_ids_are_recorded(b: BookBuilder, tmp_path: Path) -> None:
    """A decision's key holds the ladder, step and invoice ids: at their longest it is
    longer than an event id may be, and its effect's event id is then its digest."""
    ladder, step, number = "L" * 80, "S" * 80, "I" * 100
    pack = _custom_pack(tmp_path, dunning=f"- id: standard=>- id: {ladder}")
    text = (tmp_path / "pack" / "dunning.yaml").read_text(encoding="utf-8")
    (tmp_path / "pack" / "dunning.yaml").write_text(
        text.replace("- id: due-day", f"- id: {step}"), encoding="utf-8"
    )
    pack = load_pack(tmp_path / "pack")
    b.invoice(number, "C1", 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    result = engine.run(DUE, first_run=True)
    (d,) = result.plan.decisions
    assert d.key == f"dunning:{ladder}:{step}:{number}:{DUE}" and len(d.key) > 200
    assert b.ledger.receivable(number).dunning_level == 1
    assert engine.run(DUE).recorded == 0  # and once only


def test_an_approval_tiers_description_is_its_reason(b: BookBuilder, tmp_path: Path) -> None:
    pack = _custom_pack(
        tmp_path,
        credit="  - id: order-over-limit\n=>  - id: order-over-limit\n"
        "    description: Over the credit limit, the sales and finance managers decide.\n",
    )
    register(b, "C2", limit=1_000)
    ds = submit(Engine(b.ledger, pack), "SO-1", "C2", 1_200)  # under the ceiling (issue 12)
    assert [(d.rule, d.reason) for d in ds] == [
        ("order-over-limit", "Over the credit limit, the sales and finance managers decide."),
        ("exposure-90", None),  # issue 12: the submitted order counts toward exposure
    ]
    (requested,) = [a for a in b.ledger.audit_trail("order", "SO-1") if a.actor == "arflow-engine"]
    assert requested.reason == "Over the credit limit, the sales and finance managers decide."
