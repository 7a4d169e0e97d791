"""Alerts on a customer and on an order: accepted by the loader and documented, and now
decided (once per subject, like receivable alerts) by the day's run and by ``handle``."""

from __future__ import annotations

import dataclasses
import decimal
import json
import logging
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from arflow import Money, OrderShipped, OrderSubmitted, Store
from arflow.engine import Engine
from arflow.rules.loader import RulePack, load_pack
from arflow.testing import BookBuilder

from .test_engine import register

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
DUE = date(2026, 1, 31)
LATE = date(2026, 3, 2)  # 30 days past due: over the customer alert's 20

MORE_ALERTS = """
  - id: customer-overdue-20
    description: A customer with anything over 20 days overdue; finance looks at it once.
    subject: customer
    when: "customer.overdue_max_days > 20"
    actions:
      - {type: notify, to: [finance_manager], template: late_payer}
  - id: big-order
    description: An order over 50,000 from anyone; the sales director hears of it.
    subject: order
    when: "order.amount > 50000"
    actions:
      - {type: notify, to: [sales_director], template: late_payer}

milestones:
"""


def alert_pack(tmp_path: Path) -> RulePack:
    """The default pack with a customer alert and an order alert added."""
    dest = tmp_path / "pack"
    shutil.copytree(RULES, dest)
    f = dest / "alerts.yaml"
    text = f.read_text(encoding="utf-8")
    assert "\nmilestones:\n" in text
    f.write_text(text.replace("\nmilestones:\n", MORE_ALERTS, 1), encoding="utf-8")
    return load_pack(dest)


@pytest.fixture
def b(store: Store) -> BookBuilder:
    builder = BookBuilder(store)
    register(builder, "C1")
    register(builder, "C2")
    return builder


def customer_alerts(decisions: Any) -> list[tuple[str, str, str]]:
    return [(d.rule, d.subject_kind, d.subject_id) for d in decisions if d.kind == "alert"]


def test_a_customer_alert_fires_in_the_run_once(b: BookBuilder, tmp_path: Path) -> None:
    engine = Engine(b.ledger, alert_pack(tmp_path))
    b.invoice("I1", "C1", 10_000, issued="2026-01-01", due=DUE)  # 30 days overdue on LATE
    b.invoice("I2", "C2", 10_000, issued="2026-02-01", due=LATE + timedelta(10))  # not due
    assert ("customer-overdue-20", "customer", "C1") in customer_alerts(
        engine.plan(LATE, first_run=True).decisions
    )
    first = engine.run(LATE, first_run=True)
    alerts = [d for d in first.plan.decisions if d.rule == "customer-overdue-20"]
    assert [(d.subject_kind, d.subject_id, d.customer_id) for d in alerts] == [
        ("customer", "C1", "C1")
    ]
    (alert,) = alerts
    assert alert.key == "alert:customer-overdue-20:C1"
    assert alert.recipients == {"finance_manager": "finance.manager@example.com"}
    assert alert.why["conditions"] == ["customer.overdue_max_days > 20"]
    assert alert.why["facts"]["customer.overdue_max_days"] == "30"
    assert first.failures == []
    # the same day again, and the days after: recorded once
    assert engine.run(LATE).recorded == 0
    later = engine.run(LATE + timedelta(1))
    assert not [d for d in later.plan.decisions if d.rule == "customer-overdue-20"]
    recorded = [r for r in b.ledger.store.decisions() if r.key.startswith("alert:customer-")]
    assert [r.key for r in recorded] == ["alert:customer-overdue-20:C1"]
    assert engine.explain("alert:customer-overdue-20:C1")["rule"] == "customer-overdue-20"
    # its notice went to the outbox, rendered (it lists the customer's open items)
    (sent,) = [r for r in b.ledger.store.outbox() if r.key.startswith("alert:customer-")]
    assert sent.status == "pending" and "I1" in json.loads(sent.body)["text"]


def test_a_customer_alert_comes_after_the_customers_locks_and_slices_merge(
    b: BookBuilder, tmp_path: Path
) -> None:
    """Customer alerts are in the customers' part of the plan, after each customer's
    locks: the plans of slices of the customers merge into the plan."""
    from arflow.engine import merge_plans

    engine = Engine(b.ledger, alert_pack(tmp_path))
    for cid in ("C3", "C4", "C5"):
        register(b, cid)
    for i, cid in enumerate(("C1", "C2", "C3", "C4", "C5")):
        b.invoice(f"I{i}", cid, 10_000, issued="2026-01-01", due=DUE)
    day = DUE + timedelta(31)
    whole = engine.plan(day, first_run=True)
    kinds = [(d.kind, d.customer_id) for d in whole.decisions[whole.segments[1] :]]
    assert kinds[:2] == [("lock", "C1"), ("alert", "C1")]
    parts = []
    for i in range(3):
        engine._slice = (i, 3)
        parts.append(engine.plan(day, first_run=True))
    engine._slice = None
    assert merge_plans(parts).decisions == whole.decisions


def test_an_order_alert_fires_from_handle(b: BookBuilder, tmp_path: Path) -> None:
    engine = Engine(b.ledger, alert_pack(tmp_path))
    t = datetime(2026, 2, 10, 10, tzinfo=UTC)

    def submit(order_id: str, amount: int) -> list[Any]:
        _a, ds = engine.handle(
            OrderSubmitted(
                event_id=f"submit-{order_id}",
                occurred_at=t,
                actor="sales",
                order_id=order_id,
                customer_id="C1",
                amount=Money.of(amount, "CNY"),
                submitted_on=t.date(),
            )
        )
        return ds

    assert customer_alerts(submit("SO-1", 1_000)) == []
    ds = submit("SO-2", 60_000)
    assert ("big-order", "order", "SO-2") in customer_alerts(ds)
    (alert,) = [d for d in ds if d.rule == "big-order"]
    assert alert.key == "alert:big-order:SO-2"
    assert alert.recipients == {"sales_director": "sales.director@example.com"}
    assert alert.why["facts"]["order.amount"] == "60000"
    assert b.ledger.store.decision("alert:big-order:SO-2") is not None
    (sent,) = [r for r in b.ledger.store.outbox() if r.key.startswith("alert:big-order:")]
    assert sent.status == "pending" and "Customer C1" in json.loads(sent.body)["text"]
    # a later event about the same order does not decide it again (issue 12: the order,
    # within limit, was approved at entry; it ships)
    assert b.ledger.get("order", "SO-2").state == "approved"
    _a, again = engine.handle(
        OrderShipped(
            event_id="ship-SO-2",
            occurred_at=t + timedelta(1),
            actor="warehouse",
            order_id="SO-2",
            shipped_on=(t + timedelta(1)).date(),
        )
    )
    assert customer_alerts(again) == []
    assert len([r for r in b.ledger.store.decisions() if r.key == alert.key]) == 1


def test_a_broken_customer_alert_is_a_failure_and_the_day_goes_on(
    b: BookBuilder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pack = alert_pack(tmp_path)
    rule = next(r for r in pack.alerts if r.id == "customer-overdue-20")
    assert rule.when is not None
    real = rule.when.predicate

    def overflow(facts: Any) -> bool:
        if facts.get("customer.id") == "C1":
            raise decimal.Overflow("above Emax")
        return bool(real(facts))

    pack.alerts = [
        dataclasses.replace(r, when=dataclasses.replace(r.when, predicate=overflow))  # type: ignore[arg-type]
        if r is rule
        else r
        for r in pack.alerts
    ]
    b.invoice("I1", "C1", 10_000, issued="2026-01-01", due=DUE)
    b.invoice("I2", "C2", 10_000, issued="2026-01-01", due=DUE)
    result = Engine(b.ledger, pack).run(LATE, first_run=True)
    assert [(f.rule, f.subject_kind, f.subject_id, f.error) for f in result.failures] == [
        ("customer-overdue-20", "customer", "C1", "Overflow: above Emax")
    ]
    decided = {(d.kind, d.rule, d.subject_id) for d in result.plan.decisions}
    assert {
        ("alert", "customer-overdue-20", "C2"),  # the same rule on another customer
        ("dunning", "standard", "I1"),  # the failing customer's other rules
        ("dunning", "standard", "I2"),
    } <= decided
    assert json.loads(b.ledger.store.runs()[-1].body)["failed"] == 1


def test_a_broken_order_alert_is_logged_and_the_order_stands(
    b: BookBuilder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pack = alert_pack(tmp_path)
    rule = next(r for r in pack.alerts if r.id == "big-order")

    def boom(facts: Any) -> bool:
        raise decimal.Overflow("above Emax")

    assert rule.when is not None
    pack.alerts = [
        dataclasses.replace(r, when=dataclasses.replace(r.when, predicate=boom))  # type: ignore[arg-type]
        if r is rule
        else r
        for r in pack.alerts
    ]
    engine = Engine(b.ledger, pack)
    t = datetime(2026, 2, 10, 10, tzinfo=UTC)
    with caplog.at_level(logging.ERROR, logger="arflow.engine"):
        applied, ds = engine.handle(
            OrderSubmitted(
                event_id="o1",
                occurred_at=t,
                actor="sales",
                order_id="SO-1",
                customer_id="C1",
                amount=Money.of(60_000, "CNY"),
                submitted_on=t.date(),
            )
        )
    assert not applied.duplicate and b.ledger.get("order", "SO-1").state
    assert not [d for d in ds if d.kind == "alert"]
    assert "rule big-order failed on order SO-1 after o1" in caplog.text
