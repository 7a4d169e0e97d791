"""The credit processes of the default pack (issue 14, item 2): payment terms beyond the
grade (orders and contracts) and raises of a credit limit, started by themselves, each
path example-based on memory, SQLite and PostgreSQL; an order whose process refuses it is
rejected; only the engine times steps out."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from arflow import Ledger, where
from arflow.domain import (
    Contract,
    CreditProfile,
    Customer,
    DueRule,
    Money,
    PaymentNode,
    Person,
    ProcessInstance,
)
from arflow.engine import Engine
from arflow.errors import (
    ApprovalPending,
    EngineOnly,
    IllegalTransition,
    RaisePending,
    StepNotOwned,
)
from arflow.events import (
    ContractSigned,
    CreditReviewed,
    CustomerRegistered,
    CustomerUpdated,
    OrderApproved,
    OrderRejected,
    OrderShipped,
    OrderSubmitted,
    PersonAdded,
    ProcessStepTimedOut,
    StepDecided,
)
from arflow.rules import default_pack_path
from arflow.rules.loader import load_pack
from arflow.store import Store

DAY = date(2026, 3, 2)  # a Monday
PEOPLE = {
    "chen.ceo": ("ceo",),
    "wang.sm": ("sales_manager",),
    "zhao.sd": ("sales_director",),
    "li.fin": ("finance",),
    "zhou.fm": ("finance_manager",),
    "qian.fd": ("finance_director",),
}
LIMIT = Money.of("500000", "CNY")


def at(d: date, hour: int = 10) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    return load_pack(default_pack_path())


@pytest.fixture
def engine(store: Store, pack) -> Engine:  # type: ignore[no-untyped-def]
    ledger = Ledger(store)
    for pid, roles in PEOPLE.items():
        manager = "chen.ceo" if pid != "chen.ceo" else None
        ledger.apply(
            PersonAdded(
                event_id=f"p-{pid}",
                occurred_at=at(DAY, 8),
                actor="hr",
                person=Person(id=pid, name=pid, roles=roles, manager=manager),
            )
        )
    ledger.apply(
        CustomerRegistered(
            event_id="c1",
            occurred_at=at(DAY, 8),
            actor="t",
            customer=Customer(
                id="C1",
                name="Acme",
                sales_manager="wang.sm",
                credit=CreditProfile(grade="B", credit_limit=LIMIT),  # B: 60 days
            ),
        )
    )
    return Engine(ledger, pack)


def order(oid: str, terms: int | None = None) -> OrderSubmitted:
    return OrderSubmitted(
        event_id=f"sub-{oid}",
        occurred_at=at(DAY),
        actor="sales",
        order_id=oid,
        customer_id="C1",
        amount=Money.of("10000", "CNY"),
        submitted_on=DAY,
        payment_terms_days=terms,
    )


def decide(pid: str, step: str, who: str, decision: str = "approve", n: int = 0) -> StepDecided:
    return StepDecided(
        event_id=f"d-{pid}-{step}-{who}-{decision}-{n}",
        occurred_at=at(DAY, 11),
        actor=who,
        process_id=pid,
        step=step,
        decision=decision,  # type: ignore[arg-type]
        decided_on=DAY,
        comment=f"{decision} by {who}",
    )


def ship(oid: str) -> OrderShipped:
    return OrderShipped(
        event_id=f"ship-{oid}", occurred_at=at(DAY, 15), actor="wh", order_id=oid, shipped_on=DAY
    )


def get(engine: Engine, pid: str) -> ProcessInstance:
    p: ProcessInstance = engine.store.get("process", pid)
    return p


def open_tasks(engine: Engine, pid: str) -> list:  # type: ignore[type-arg]
    return [
        t
        for t in engine.store.find("task", customer_id="C1")
        if t.subject_id == pid and str(t.status) in ("open", "overdue")
    ]


def refused(engine: Engine, kind: str, oid: str) -> list[str | None]:
    return [a.refused for a in engine.ledger.audit_trail(kind, oid) if a.refused]


# -- terms beyond the grade ----------------------------------------------------------------------


def test_an_order_asking_longer_terms_waits_for_its_chain_and_ships_once_approved(
    engine: Engine,
) -> None:
    _, decisions = engine.handle(order("O1", terms=90))
    # the process takes over from the terms tier: no order-terms approval, no tier task
    assert not [d for d in decisions if d.rule == "order-terms"]
    assert engine.store.get("order", "O1").state == "approved"  # within its limit
    p = get(engine, "PR-order_terms-O1")
    assert (p.state, p.owner, p.asked_days, p.allowed_days) == (
        "finance_manager",
        "zhou.fm",
        90,
        60,
    )
    assert [t.owner for t in open_tasks(engine, p.id)] == ["zhou.fm"]
    with pytest.raises(ApprovalPending, match="order_terms"):
        engine.handle(ship("O1"))
    with pytest.raises(StepNotOwned):
        engine.handle(decide(p.id, "finance_manager", "li.fin"))
    engine.handle(decide(p.id, "finance_manager", "zhou.fm"))
    assert [t.owner for t in open_tasks(engine, p.id)] == ["qian.fd"]
    w = where(engine.store, "order", "O1", DAY)
    assert (w.stage, w.owner) == ("approval", "qian.fd")
    engine.handle(decide(p.id, "finance_director", "qian.fd"))
    assert get(engine, p.id).state == "approved"
    engine.handle(ship("O1"))
    assert engine.store.get("order", "O1").state == "shipped"
    trail = engine.ledger.audit_trail("process", p.id)
    assert [a.refused for a in trail if a.refused] == ["StepNotOwned"]
    assert [a.summary.split(";")[0] for a in trail if not a.refused][1:] == [
        "step finance_manager approved by zhou.fm: approve by zhou.fm",
        "step finance_director approved by qian.fd: approve by qian.fd",
    ]


def test_an_order_whose_terms_are_refused_is_rejected_and_where_says_why(engine: Engine) -> None:
    engine.handle(order("O2", terms=120))
    pid = "PR-order_terms-O2"
    engine.handle(decide(pid, "finance_manager", "zhou.fm", "reject"))
    o = engine.store.get("order", "O2")
    assert o.state == "rejected" and o.decided_by == "arflow-engine"
    last = engine.ledger.audit_trail("order", "O2")[-1]
    assert (last.before_state, last.after_state) == ("approved", "rejected")
    assert f"process {pid} (order_terms) ended rejected" in last.summary
    w = where(engine.store, "order", "O2", DAY)
    assert (w.stage, w.done, w.subject_kind, w.subject_id) == ("rejected", True, "process", pid)
    with pytest.raises(IllegalTransition):
        engine.handle(ship("O2"))
    assert not open_tasks(engine, pid)


def test_an_order_recorded_by_the_ledger_gets_its_terms_process_when_approved(
    engine: Engine,
) -> None:
    """No bypass: an order with longer terms given to ``Ledger.apply`` alone, approved
    through ``Engine.handle``, is checked as at entry and its terms process started."""
    engine.ledger.apply(order("O6", terms=90))
    engine.handle(
        OrderApproved(
            event_id="ap-O6", occurred_at=at(DAY, 12), actor="m", order_id="O6", approver="m"
        )
    )
    assert engine.store.get("order", "O6").state == "approved"
    assert get(engine, "PR-order_terms-O6").state == "finance_manager"
    with pytest.raises(ApprovalPending, match="order_terms"):
        engine.handle(ship("O6"))


def test_an_order_within_its_grades_terms_starts_no_process(engine: Engine) -> None:
    engine.handle(order("O3", terms=60))
    assert engine.store.get("process", "PR-order_terms-O3") is None
    engine.handle(ship("O3"))


def test_only_an_order_a_process_refused_may_be_rejected_once_approved(engine: Engine) -> None:
    engine.handle(order("O4"))
    with pytest.raises(IllegalTransition):
        engine.handle(
            OrderRejected(
                event_id="r-O4", occurred_at=at(DAY, 12), actor="m", order_id="O4", approver="m"
            )
        )
    assert engine.store.get("order", "O4").state == "approved"


def test_a_contract_asking_longer_terms_runs_its_chain(engine: Engine) -> None:
    c = Contract(
        id="K1",
        customer_id="C1",
        title="Line 3",
        signed_on=DAY,
        amount=Money.of("100000", "CNY"),
        payment_nodes=[
            PaymentNode(id="n1", percent=50, due=DueRule(days=30)),
            PaymentNode(id="n2", percent=50, due=DueRule(days=120)),
        ],
    )
    _, decisions = engine.handle(
        ContractSigned(event_id="k1", occurred_at=at(DAY), actor="s", contract=c)
    )
    assert not [d for d in decisions if d.rule == "contract-terms"]
    p = get(engine, "PR-contract_terms-K1")
    assert (p.subject_kind, p.owner, p.asked_days, p.allowed_days) == (
        "contract",
        "zhou.fm",
        120,
        60,
    )
    engine.handle(decide(p.id, "finance_manager", "zhou.fm"))
    engine.handle(decide(p.id, "finance_director", "qian.fd", "reject"))
    p = get(engine, p.id)
    assert p.state == "rejected" and [h.by for h in p.history] == ["zhou.fm", "qian.fd"]


# -- raises of a credit limit --------------------------------------------------------------------


def review(n: int, limit: str, who: str = "li.fin") -> CreditReviewed:
    return CreditReviewed(
        event_id=f"rv-{n}",
        occurred_at=at(DAY, 9),
        actor=who,
        customer_id="C1",
        reviewed_on=DAY,
        grade="B",
        credit_limit=Money.of(limit, "CNY"),
        payment_terms_days=45,
        reviewer=who,
        comment="a larger customer now",
    )


def limit_of(engine: Engine) -> Money | None:
    return engine.store.get("customer", "C1").credit.credit_limit


def test_a_raise_takes_effect_only_when_its_chain_approves(engine: Engine) -> None:
    engine.handle(review(1, "800000"))
    c = engine.store.get("customer", "C1")
    # the rest of the review is applied; the limit waits
    assert (c.credit.credit_limit, c.credit.payment_terms_days) == (LIMIT, 45)
    pid = "PR-credit_limit_raise-C1-20260302"
    p = get(engine, pid)
    assert (p.subject_kind, p.subject_id, p.state, p.owner) == (
        "customer",
        "C1",
        "finance_manager",
        "zhou.fm",
    )
    assert p.proposed_limit == Money.of("800000", "CNY")
    # a second raise while this one waits: refused, audited, nothing changed
    with pytest.raises(RaisePending, match=pid):
        engine.handle(review(2, "900000"))
    assert refused(engine, "customer", "C1") == ["RaisePending"]
    engine.handle(decide(pid, "finance_manager", "zhou.fm"))
    assert limit_of(engine) == LIMIT
    with pytest.raises(StepNotOwned):
        engine.handle(decide(pid, "finance_director", "zhou.fm"))
    engine.handle(decide(pid, "finance_director", "qian.fd"))
    assert limit_of(engine) == Money.of("800000", "CNY")
    last = engine.ledger.audit_trail("customer", "C1")[-1]
    assert last.event_type == "CreditReviewed" and last.actor == "arflow-engine"
    assert "credit_limit 500,000.00 CNY -> 800,000.00 CNY" in last.summary
    assert "by qian.fd" in last.summary and pid in last.summary
    assert not open_tasks(engine, pid)
    # the next raise is a process of its own
    engine.handle(review(3, "900000"))
    assert get(engine, pid + "-2").proposed_limit == Money.of("900000", "CNY")


def test_a_rejected_raise_leaves_the_limit_as_it_was(engine: Engine) -> None:
    engine.handle(review(1, "800000"))
    pid = "PR-credit_limit_raise-C1-20260302"
    engine.handle(decide(pid, "finance_manager", "zhou.fm", "reject"))
    assert get(engine, pid).state == "rejected" and limit_of(engine) == LIMIT
    assert not open_tasks(engine, pid)


def test_a_raise_by_customer_update_is_held_too_and_a_cut_is_not(engine: Engine) -> None:
    credit = CreditProfile(grade="B", credit_limit=Money.of("700000", "CNY"))
    engine.handle(
        CustomerUpdated(
            event_id="u1", occurred_at=at(DAY, 9), actor="erp", customer_id="C1", credit=credit
        )
    )
    assert limit_of(engine) == LIMIT
    pid = "PR-credit_limit_raise-C1-20260302"
    assert get(engine, pid).proposed_limit == Money.of("700000", "CNY")
    engine.handle(decide(pid, "finance_manager", "zhou.fm"))
    engine.handle(decide(pid, "finance_director", "qian.fd"))
    assert limit_of(engine) == Money.of("700000", "CNY")
    engine.handle(review(9, "300000"))  # lowering a limit is never held
    assert limit_of(engine) == Money.of("300000", "CNY")
    assert engine.store.get("process", pid + "-2") is None


def test_a_raise_nobody_decides_expires_and_the_limit_stays(engine: Engine) -> None:
    engine.handle(review(1, "800000"))
    pid = "PR-credit_limit_raise-C1-20260302"
    engine.run(date(2026, 3, 6))  # the manager's three business days passed
    assert get(engine, pid).state == "finance_director"
    engine.run(date(2026, 3, 16))
    p = get(engine, pid)
    assert p.state == "expired" and [h.decision for h in p.history] == ["timeout"] * 2
    assert limit_of(engine) == LIMIT and not open_tasks(engine, pid)


# -- timeouts are the engine's -------------------------------------------------------------------


def test_only_the_engine_times_a_step_out(engine: Engine) -> None:
    engine.handle(order("O5", terms=90))
    pid = "PR-order_terms-O5"
    before = get(engine, pid)
    forged = ProcessStepTimedOut(
        event_id="forged",
        occurred_at=at(DAY, 12),
        actor="zhou.fm",
        process_id=pid,
        step="finance_manager",
        timed_out_on=DAY,
    )
    with pytest.raises(EngineOnly, match="only the engine's daily run"):
        engine.handle(forged)
    with pytest.raises(EngineOnly):
        engine.ledger.apply(forged.model_copy(update={"event_id": "forged-2"}))
    assert get(engine, pid) == before
    assert refused(engine, "process", pid) == ["EngineOnly"]
