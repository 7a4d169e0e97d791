"""Example tests pinning engine behaviour the mutation run found unpinned.

Each test kills mutants of ``arflow.engine`` that survived the engine's tests (see
docs/testing.md): how many decisions ``record`` reports, the reason a dropped proposal
keeps, a milestone decision's currency, and scoring without a scoring section.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from arflow import (
    Contract,
    ContractSigned,
    DueRule,
    Ledger,
    MemoryStore,
    Milestone,
    MilestoneCompleted,
    Money,
    PaymentNode,
)
from arflow.engine import Engine, group_notices
from arflow.errors import ArflowError
from arflow.rules.loader import load_pack
from arflow.store.sql import SqlStore
from arflow.testing import BookBuilder

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
DUE = date(2026, 3, 2)
T = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    return load_pack(RULES)


def book() -> BookBuilder:
    b = BookBuilder(MemoryStore())
    for cid in ("C1", "C2"):
        b.customer(cid)
    return b


def test_record_counts_the_decisions_it_records(pack) -> None:  # type: ignore[no-untyped-def]
    b = book()
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C2", 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    plan = engine.plan(DUE, first_run=True)
    assert len(plan.decisions) >= 2
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert engine.record(plan.decisions, at) == len(plan.decisions)
    assert engine.record(plan.decisions, at) == 0


def test_a_dropped_proposal_says_who_dropped_it(tmp_path: Path) -> None:
    dest = tmp_path / "pack"
    shutil.copytree(RULES, dest)
    p = dest / "pack.yaml"
    p.write_text(p.read_text("utf-8").replace("review: false", "review: true"), "utf-8")
    b = book()
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, load_pack(dest))
    engine.run(DUE, first_run=True)
    (held,) = engine.proposal()
    assert engine.release(drop=[held.key], actor="ar.clerk")["dropped"] == 1
    got = engine.explain(held.key)
    assert (got["status"], got["reason"]) == ("dropped", "dropped by ar.clerk")


def test_a_milestone_decision_is_in_the_contracts_currency(pack) -> None:  # type: ignore[no-untyped-def]
    b = book()
    engine = Engine(b.ledger, pack)
    b.apply(
        ContractSigned(
            event_id="k",
            occurred_at=T,
            actor="s",
            contract=Contract(
                id="K1",
                customer_id="C1",
                signed_on=date(2026, 2, 1),
                amount=Money.of(100_000, "USD"),
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
            event_id="m", occurred_at=T, actor="pm", milestone_id="M1", completed_on=T.date()
        )
    )
    (d,) = ds
    assert d.currency == "USD"
    assert d.why["amount"] == "100,000.00 USD"


def test_scoring_needs_a_scoring_section(tmp_path: Path) -> None:
    (tmp_path / "pack.yaml").write_text("pack: tiny\n", encoding="utf-8")
    engine = Engine(Ledger(MemoryStore()), load_pack(tmp_path))
    with pytest.raises(ArflowError) as info:
        engine.score("C1", DUE)
    assert str(info.value) == "the rule pack has no scoring section"


def test_the_run_record_counts_what_the_run_did(pack) -> None:  # type: ignore[no-untyped-def]
    b = book()
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C2", 50, issued="2026-01-31", due=DUE)  # under the minimum: skipped
    engine = Engine(b.ledger, pack)
    result = engine.run(DUE, first_run=True)
    body = json.loads(b.ledger.store.runs()[-1].body)
    assert body["recorded"] == result.recorded > 0
    assert body["skipped"] == result.skipped == len(result.plan.skipped) > 0
    assert body["failed"] == 0 and body["since"] is None


def test_alerts_and_failures_name_their_subject_kind(
    pack,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = book()
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C2", 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    late = date(2026, 4, 2)  # 31 days past due: the high-risk alert
    alerts = [d for d in engine.plan(late, first_run=True).decisions if d.kind == "alert"]
    assert alerts and {d.subject_kind for d in alerts} == {"receivable"}
    real = engine._plan_ladder

    def boom(plan, ladder, r, *args):  # type: ignore[no-untyped-def]
        if r.id == "I1":
            raise RuntimeError("corrupt item")
        return real(plan, ladder, r, *args)

    monkeypatch.setattr(engine, "_plan_ladder", boom)
    (failure,) = engine.plan(DUE, first_run=True).failures
    assert (failure.subject_kind, failure.subject_id, failure.customer_id, failure.rule) == (
        "receivable",
        "I1",
        "C1",
        "standard",
    )


def test_a_contract_lock_sums_in_the_base_currency_without_a_credit_limit(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "pack"
    shutil.copytree(RULES, dest)
    (dest / "locks.yaml").write_text(
        """locks:
  - id: contract-open
    description: An open balance on a contract suspends that contract.
    when: "customer.open_balance > 500"
    scope: contract
""",
        encoding="utf-8",
    )
    b = book()  # C1 has no credit limit: its facts are in the base currency, CNY
    for k in ("K1", "K2"):
        b.apply(
            ContractSigned(
                event_id=k,
                occurred_at=T,
                actor="s",
                contract=Contract(
                    id=k, customer_id="C1", signed_on=date(2026, 1, 1), amount=Money.of(9, "CNY")
                ),
            )
        )
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-02-02", contract_id="K1")
    b.invoice("I2", "C1", 100, issued="2026-01-01", due="2026-02-02", contract_id="K2")
    Engine(b.ledger, load_pack(dest)).run(date(2026, 3, 5), first_run=True)
    (lock,) = b.ledger.customer("C1").locks
    assert (lock.lock_id, lock.scope, lock.ref) == ("contract-open", "contract", "K1")


def test_a_run_in_slices_keeps_the_since_it_was_given(pack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    b = BookBuilder(SqlStore(f"sqlite:///{tmp_path}/book.db"))
    for cid in ("C1", "C2", "C3"):
        b.customer(cid)
        b.invoice(f"I-{cid}", cid, 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    engine.slice_candidates = 1  # one customer a slice
    assert engine.run(DUE, first_run=True).plan.slices > 1
    # From 18 March on only call-16 counts; the formal notices and the SMS before it do not.
    result = engine.run(date(2026, 3, 22), since=date(2026, 3, 18))
    assert result.plan.slices > 1
    assert (result.recorded, result.skipped) == (3, 0)


def test_a_step_whose_condition_fails_or_that_pauses_does_not_stop_the_ladder(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "pack"
    shutil.copytree(RULES, dest)
    (dest / "dunning.yaml").write_text(
        """ladders:
  - id: t
    steps:
      - id: big-only
        at: due+2d
        level: 1
        when: "amount > 1000000"
        actions:
          - {type: email, to: customer, template: reminder_due}
      - id: rich-only
        at: due+2d
        level: 2
        min_balance: 5000
        actions:
          - {type: email, to: customer, template: reminder_due}
      - id: weekly
        at: every 7d from due+2d
        level: 3
        actions:
          - {type: email, to: customer, template: reminder_due}
""",
        encoding="utf-8",
    )
    b = BookBuilder(MemoryStore())
    b.customer("C1", email="ap@c1.example")
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, load_pack(dest))
    plan = engine.plan(date(2026, 3, 4), first_run=True)
    assert plan.failures == []
    assert [(d.rule, d.step) for d in plan.decisions if d.kind == "dunning"] == [("t", "weekly")]
    assert [(d.step, d.reason) for d in plan.skipped] == [
        ("rich-only", "undisputed balance 1000.00 is under the minimum 5000")
    ]


def test_a_pack_given_loaded_is_planned_in_this_process(pack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    b = BookBuilder(SqlStore(f"sqlite:///{tmp_path}/book.db"))
    for cid in ("C1", "C2", "C3"):
        b.customer(cid, email=f"ap@{cid}.example")
        b.invoice(f"I-{cid}", cid, 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack, workers=2)  # helpers could not load this pack
    assert engine._helper_spec(DUE, None, True, T) is None
    result = engine.run(DUE, first_run=True)
    assert result.failures == [] and result.recorded == 3


def test_tasks_of_one_step_are_one_notice_per_owner(pack) -> None:  # type: ignore[no-untyped-def]
    b = book()
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.invoice("I2", "C1", 2_000, issued="2026-01-31", due=DUE)
    plan = Engine(b.ledger, pack).plan(DUE, first_run=True)
    tasks = [n for n in group_notices(plan.decisions) if n.action.type == "task"]
    assert [n.subject_ids for n in tasks] == [("I1", "I2")]


def test_a_plan_keeps_the_since_it_was_given(pack) -> None:  # type: ignore[no-untyped-def]
    b = book()
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)
    engine.run(DUE, first_run=True)
    plan = engine.plan(date(2026, 3, 22), since=date(2026, 3, 18))
    assert plan.since == date(2026, 3, 18)
    assert [d.step for d in plan.decisions if d.kind == "dunning"] == ["call-16"]
    assert plan.skipped == []


def test_only_open_promises_can_be_found_unpaid(pack) -> None:  # type: ignore[no-untyped-def]
    b = book()
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    b.promise("PR1", "C1", ["I1"], 1_000, by=date(2026, 3, 7), on=DUE)
    b.break_promise("PR1", on=date(2026, 3, 8))  # recorded broken by hand already
    plan = Engine(b.ledger, pack).plan(date(2026, 3, 14), first_run=True)
    assert [d for d in plan.decisions if d.rule == "promise-broken"] == []


def test_a_lock_rule_failing_on_a_customer_names_the_customer(
    pack,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = book()
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, pack)

    def boom(*args: object) -> None:
        raise ArflowError("broken facts")

    monkeypatch.setattr(engine, "_plan_locks", boom)
    failures = engine.plan(DUE, first_run=True).failures
    # a first run judges the locks of every customer, C2 (no invoice) too
    assert sorted((f.subject_kind, f.subject_id, f.error) for f in failures) == [
        ("customer", "C1", "broken facts"),
        ("customer", "C2", "broken facts"),
    ]


@pytest.mark.parametrize("when", ["days_past_due >= 31", "days_past_due > 30"])
def test_an_alert_fires_on_the_first_day_its_bound_allows(when: str, tmp_path: Path) -> None:
    dest = tmp_path / "pack"
    shutil.copytree(RULES, dest)
    alerts = dest / "alerts.yaml"
    alerts.write_text(
        alerts.read_text("utf-8").replace('"days_past_due > 30 and balance > 0"', f'"{when}"'),
        "utf-8",
    )
    b = book()
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    engine = Engine(b.ledger, load_pack(dest))
    engine.run(date(2026, 4, 1), first_run=True)  # 30 days past due: not yet
    plan = engine.plan(date(2026, 4, 2))  # 31 days
    assert [d.subject_id for d in plan.decisions if d.kind == "alert"] == ["I1"]
