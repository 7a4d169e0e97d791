"""Processes declared in rule packs (issue 14, items 1 and 2): the shipped discount
approval chains, each path, bad input refused and audited, the daily run's timeouts, the
diagrams, and a stateful test; on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from arflow import Ledger
from arflow.domain import Contract, CreditProfile, Customer, Money, Person, ProcessInstance
from arflow.engine import Engine
from arflow.errors import (
    ApprovalPending,
    CurrencyMismatch,
    DiscountWithoutTier,
    EngineOnly,
    RaisePending,
    RuleLoadError,
    StepDecidedAlready,
    StepNotOwned,
    StepTimedOut,
    ValidationError,
)
from arflow.events import (
    ContractSigned,
    CreditReviewed,
    CustomerRegistered,
    CustomerUpdated,
    OrderApproved,
    OrderShipped,
    OrderSubmitted,
    PersonAdded,
    ProcessStarted,
    ProcessStepTimedOut,
    StepDecided,
)
from arflow.lifecycle import process_mermaid
from arflow.rules.loader import load_pack
from arflow.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "rules" / "default"
DAY = date(2026, 3, 2)  # a Monday
PEOPLE = {
    "chen.ceo": ("ceo",),
    "wang.sm": ("sales_manager",),
    "zhao.sd": ("sales_director",),
    "li.fin": ("finance",),
    "zhou.fm": ("finance_manager",),
    "qian.fd": ("finance_director",),
}


def at(d: date, hour: int = 10) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    return load_pack(DEFAULT)


def setup(ledger: Ledger) -> None:
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
            customer=Customer(id="C1", name="Acme", sales_manager="wang.sm"),
        )
    )


def submit(oid: str, percent: str | None = None, amount: str | None = None) -> OrderSubmitted:
    return OrderSubmitted(
        event_id=f"sub-{oid}",
        occurred_at=at(DAY),
        actor="sales",
        order_id=oid,
        customer_id="C1",
        amount=Money.of("90000", "CNY"),
        submitted_on=DAY,
        discount_percent=None if percent is None else Decimal(percent),
        discount_amount=None if amount is None else Money.of(amount, "CNY"),
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


@pytest.fixture
def engine(store: Store, pack) -> Engine:  # type: ignore[no-untyped-def]
    ledger = Ledger(store)
    setup(ledger)
    return Engine(ledger, pack)


def proc(engine: Engine, oid: str) -> ProcessInstance:
    p: ProcessInstance = engine.store.get("process", f"PR-discount_approval-{oid}")
    return p


def open_tasks(engine: Engine, pid: str) -> list:  # type: ignore[type-arg]
    return [
        t
        for t in engine.store.find("task", customer_id="C1")
        if t.subject_id == pid and str(t.status) in ("open", "overdue")
    ]


# -- each path of the shipped discount chain ---------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "approvers", "end"),
    [
        ("4", [("sales_manager", "wang.sm")], "approved"),
        ("8", [("sales_manager", "wang.sm"), ("sales_director", "zhao.sd")], "approved"),
        (
            "20",
            [("sales_manager", "wang.sm"), ("sales_director", "zhao.sd"), ("ceo", "chen.ceo")],
            "approved",
        ),
    ],
)
def test_each_level_approves_in_turn(
    engine: Engine, percent: str, approvers: list[tuple[str, str]], end: str
) -> None:
    engine.handle(submit("O1", percent))
    p = proc(engine, "O1")
    assert p.state == "sales_manager" and p.owner == "wang.sm"
    with pytest.raises(ApprovalPending):
        engine.handle(ship("O1"))
    for step, who in approvers:
        assert [t.owner for t in open_tasks(engine, p.id)] == [who]
        engine.handle(decide(p.id, step, who))
    p = proc(engine, "O1")
    assert p.state == end and not open_tasks(engine, p.id)
    assert [(h.step, h.decision, h.by) for h in p.history] == [
        (s, "approve", w) for s, w in approvers
    ]
    trail = engine.ledger.audit_trail("process", p.id)
    assert len(trail) == 1 + len(approvers)
    assert all(f"by {w}" in a.summary for a, (_s, w) in zip(trail[1:], approvers, strict=True))


def test_a_rejection_ends_it_and_the_order_never_ships(engine: Engine) -> None:
    engine.handle(submit("O2", "8"))
    p = proc(engine, "O2")
    engine.handle(decide(p.id, "sales_manager", "wang.sm"))
    engine.handle(decide(p.id, "sales_director", "zhao.sd", "reject"))
    p = proc(engine, "O2")
    assert p.state == "rejected" and p.history[-1].comment == "reject by zhao.sd"
    # approved at entry (no limit, no lock), the order is now rejected: it can never ship
    o = engine.store.get("order", "O2")
    assert (o.state, o.decided_by) == ("rejected", "arflow-engine")
    (last,) = engine.ledger.audit_trail("order", "O2")[-1:]
    assert last.summary == f"reject: process {p.id} (discount_approval) ended rejected"
    with pytest.raises(ApprovalPending):
        engine.handle(ship("O2"))


def test_a_discount_by_amount_is_tiered_too(engine: Engine) -> None:
    # 9,000 off 99,000 is 9.09%: the sales manager's 5% and 10,000 do not cover it
    engine.handle(submit("O3", amount="9000"))
    p = proc(engine, "O3")
    assert p.discount_percent == Decimal("9.09") and p.discount_amount == Decimal("9000")
    engine.handle(decide(p.id, "sales_manager", "wang.sm"))
    assert proc(engine, "O3").state == "sales_director"


def test_reminders_escalation_and_timeouts_in_the_daily_run(engine: Engine) -> None:
    engine.handle(submit("O4", "20"))
    pid = proc(engine, "O4").id
    first = open_tasks(engine, pid)[0]
    # Monday: 3 business days to decide, the manager's manager after 2
    assert (first.owner, first.kind, first.subject_kind) == ("wang.sm", "approval", "process")
    assert first.deadline == date(2026, 3, 5) and first.escalate_on == date(2026, 3, 4)
    engine.run(date(2026, 3, 3))  # Tuesday: reminded, once
    engine.run(date(2026, 3, 3))
    reminders = [r for r in engine.store.outbox() if r.key.startswith("process-remind:")]
    assert len(reminders) == 1 and '"wang.sm"' in reminders[0].body
    engine.run(date(2026, 3, 4))  # Wednesday: escalated to the manager
    assert engine.store.get("task", first.id).escalated_to == "chen.ceo"
    assert proc(engine, "O4").state == "sales_manager"
    engine.run(date(2026, 3, 6))  # Friday: Thursday's deadline passed
    p = proc(engine, "O4")
    assert p.state == "sales_director" and p.history[-1].decision == "timeout"
    assert p.owner == "zhao.sd" and p.step_since == date(2026, 3, 6)
    assert engine.store.get("task", first.id).status == "cancelled"
    engine.run(date(2026, 3, 6))  # the same day again: nothing more
    assert len(proc(engine, "O4").history) == 1
    with pytest.raises(StepTimedOut):
        engine.handle(decide(pid, "sales_manager", "wang.sm"))
    engine.run(date(2026, 3, 12))
    assert proc(engine, "O4").state == "ceo"
    engine.run(date(2026, 3, 20))
    p = proc(engine, "O4")
    assert p.state == "expired" and [h.decision for h in p.history] == ["timeout"] * 3
    assert not open_tasks(engine, pid)
    refused = [a.refused for a in engine.ledger.audit_trail("process", pid) if a.refused]
    assert refused == ["StepTimedOut"]


def test_an_order_with_a_discount_recorded_without_the_engine_cannot_ship(
    engine: Engine,
) -> None:
    engine.ledger.apply(submit("O9", "3"))
    engine.ledger.apply(
        OrderApproved(
            event_id="ap-O9", occurred_at=at(DAY, 12), actor="m", order_id="O9", approver="m"
        )
    )
    with pytest.raises(ApprovalPending, match="never approved"):
        engine.ledger.apply(ship("O9"))


def test_an_approved_discount_lets_the_order_ship(engine: Engine) -> None:
    engine.handle(submit("O10", "3"))
    assert engine.store.get("order", "O10").state == "approved"  # within limit, unlocked
    engine.handle(decide(proc(engine, "O10").id, "sales_manager", "wang.sm"))
    engine.handle(ship("O10"))
    assert engine.store.get("order", "O10").state == "shipped"


# -- bad input: refused, nothing changed, audited ---------------------------------------------


def _refused(engine: Engine, pid: str) -> list[tuple[str | None, str]]:
    return [
        (a.refused, a.event_type) for a in engine.ledger.audit_trail("process", pid) if a.refused
    ]


def test_approving_twice_or_a_step_not_yours_is_refused_and_audited(engine: Engine) -> None:
    engine.handle(submit("O5", "8"))
    pid = proc(engine, "O5").id
    with pytest.raises(StepNotOwned):
        engine.handle(decide(pid, "sales_manager", "li.fin"))
    with pytest.raises(StepNotOwned):
        engine.handle(decide(pid, "sales_manager", "zhao.sd"))
    before = proc(engine, "O5")
    assert before.state == "sales_manager" and not before.history
    engine.handle(decide(pid, "sales_manager", "wang.sm"))
    with pytest.raises(StepDecidedAlready):
        engine.handle(decide(pid, "sales_manager", "wang.sm", n=1))
    assert proc(engine, "O5").state == "sales_director"
    assert _refused(engine, pid) == [
        ("StepNotOwned", "StepDecided:refused"),
        ("StepNotOwned", "StepDecided:refused"),
        ("StepDecidedAlready", "StepDecided:refused"),
    ]


def test_a_discount_without_a_tier_is_refused_and_audited(engine: Engine) -> None:
    with pytest.raises(DiscountWithoutTier):
        engine.handle(submit("O6", "40"))
    assert engine.store.get("order", "O6") is None
    assert engine.store.get("process", "PR-discount_approval-O6") is None
    refused = [a for a in engine.ledger.audit_trail("order", "O6") if a.refused]
    assert [a.refused for a in refused] == ["DiscountWithoutTier"]


def test_a_pack_without_a_discount_process_refuses_discounts(store: Store, tmp_path: Path) -> None:
    (tmp_path / "pack.yaml").write_text("pack: bare\n")
    ledger = Ledger(store)
    setup(ledger)
    engine = Engine(ledger, load_pack(tmp_path, templates=[]))
    with pytest.raises(DiscountWithoutTier, match="no process with starts_on"):
        engine.handle(submit("O7", "3"))


def test_a_contract_discount_runs_its_own_chain(engine: Engine) -> None:
    c = Contract(
        id="K1",
        customer_id="C1",
        title="Line 3",
        signed_on=DAY,
        amount=Money.of("500000", "CNY"),
        discount_percent=Decimal("1"),
    )
    engine.handle(ContractSigned(event_id="k1", occurred_at=at(DAY), actor="s", contract=c))
    p: ProcessInstance = engine.store.get("process", "PR-contract_discount-K1")
    assert p.subject_kind == "contract" and p.owner == "wang.sm"
    engine.handle(decide(p.id, "sales_manager", "wang.sm"))
    assert engine.store.get("process", p.id).state == "approved"


def test_an_order_without_a_discount_starts_no_process(engine: Engine) -> None:
    engine.handle(submit("O8"))
    assert engine.store.get("process", "PR-discount_approval-O8") is None


# -- declaring processes -------------------------------------------------------------------------


def test_a_bad_process_is_a_load_error_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "processes:\n"
        "  - id: p\n"
        "    start: a\n"
        "    terminals: [done]\n"
        "    approved_state: done\n"
        "    steps:\n"
        "      - id: a\n"
        "        owner: role:x\n"
        "        on_approve: nowhere\n"
        "        on_reject: done\n"
        "        on_timeout: done\n"
    )
    with pytest.raises(RuleLoadError, match="nowhere") as exc:
        load_pack(tmp_path, templates=[])
    assert exc.value.problems[0].line == 2


def test_the_docs_draw_the_shipped_processes_as_declared(pack) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / "docs" / "workflows.md").read_text()
    for p in pack.processes:
        assert f"```mermaid\n{process_mermaid(p)}```" in text, p.id


def test_the_process_diagram_command(capsys) -> None:  # type: ignore[no-untyped-def]
    from arflow.cli import main

    assert main(["process", "diagram", "discount_approval", "--rules", str(DEFAULT)]) == 0
    assert capsys.readouterr().out == process_mermaid(
        load_pack(DEFAULT).process("discount_approval")
    )


# -- random sequences ------------------------------------------------------------------------------

WHO = sorted(PEOPLE)


class Processes(RuleBasedStateMachine):
    """Random submit, approve, reject, time-passes, forged timeouts and limit raises at
    the discount and raise chains."""

    @initialize()
    def start(self) -> None:
        self.ledger = Ledger(open_store("memory://"))
        setup(self.ledger)
        self.engine = Engine(self.ledger, load_pack(DEFAULT))
        self.day = DAY
        self.orders: list[str] = []
        self.shipped: set[str] = set()
        self.n = 0
        # a credit limit to raise (recorded, not asked: no process), and what it must be
        self.ledger.apply(
            CustomerUpdated(
                event_id="limit",
                occurred_at=at(DAY, 8),
                actor="t",
                customer_id="C1",
                credit=CreditProfile(grade="A", credit_limit=Money.of("10000000", "CNY")),
            )
        )
        self.limit = Money.of("10000000", "CNY")
        self.raises: list[str] = []

    @rule(percent=st.sampled_from(["2", "7", "15", "45"]))
    def submit(self, percent: str) -> None:
        oid = f"O{len(self.orders)}"
        e = submit(oid, percent).model_copy(
            update={"occurred_at": at(self.day), "submitted_on": self.day}
        )
        try:
            self.engine.handle(e)
        except DiscountWithoutTier:
            assert percent == "45"
            return
        self.orders.append(oid)

    @rule(
        data=st.data(),
        decision=st.sampled_from(["approve", "approve", "reject"]),
        right=st.booleans(),
    )
    def decide(self, data: st.DataObject, decision: str, right: bool) -> None:
        if not self.orders:
            return
        oid = data.draw(st.sampled_from(self.orders))
        p = proc(self.engine, oid)
        if right and p.is_open:  # the current step, by its owner
            who, step = str(p.owner), p.state
        else:
            who = data.draw(st.sampled_from(WHO))
            step = data.draw(st.sampled_from([s.id for s in p.definition.steps]))
        self.n += 1
        e = decide(p.id, step, who, decision, self.n).model_copy(
            update={"occurred_at": at(self.day, 11), "decided_on": self.day}
        )
        try:
            self.engine.handle(e)
        except (StepNotOwned, StepDecidedAlready, StepTimedOut):
            assert proc(self.engine, oid) == p  # nothing changed
            refused = [a for a in self.ledger.audit_trail("process", p.id) if a.refused]
            assert refused[-1].event_id == e.event_id  # and the attempt is audited
            return
        assert p.state == step and (p.owner == who or p.role in PEOPLE[who])
        after = proc(self.engine, oid)
        assert after.history[-1] == after.history[-1].model_copy(
            update={"step": step, "decision": decision, "by": who}
        )

    @rule(more=st.sampled_from(["1", "500000", "2000000"]))
    def ask_raise(self, more: str) -> None:
        """A person asks a higher limit: it waits for the raise process (one at a time)."""
        asked = Money.of(self.limit.amount + Decimal(more), "CNY")
        self.n += 1
        e = CreditReviewed(
            event_id=f"raise-{self.n}",
            occurred_at=at(self.day, 9),
            actor="li.fin",
            customer_id="C1",
            reviewed_on=self.day,
            grade="A",
            credit_limit=asked,
            reviewer="li.fin",
        )
        pending = [p for p in self._raises() if p.is_open]
        try:
            self.engine.handle(e)
        except RaisePending:
            assert pending
            return
        assert not pending
        (new,) = [p for p in self._raises() if p.id not in self.raises]
        assert new.proposed_limit == asked
        self.raises.append(new.id)

    @rule(data=st.data(), decision=st.sampled_from(["approve", "approve", "reject"]))
    def decide_raise(self, data: st.DataObject, decision: str) -> None:
        open_ = [p for p in self._raises() if p.is_open]
        if not open_:
            return
        p = data.draw(st.sampled_from(open_))
        self.n += 1
        e = decide(p.id, p.state, str(p.owner), decision, self.n).model_copy(
            update={"occurred_at": at(self.day, 11), "decided_on": self.day}
        )
        self.engine.handle(e)
        after = self.engine.store.get("process", p.id)
        if after.state == "approved":
            assert after.proposed_limit is not None
            self.limit = after.proposed_limit

    def _raises(self) -> list[ProcessInstance]:
        return [
            p
            for p in self.engine.store.find("process", customer_id="C1")
            if p.process == "credit_limit_raise"
        ]

    @invariant()
    def the_limit_moves_only_by_an_approved_raise(self) -> None:
        if hasattr(self, "limit"):
            assert self.engine.store.get("customer", "C1").credit.credit_limit == self.limit
            assert sum(p.is_open for p in self._raises()) <= 1

    @rule(days=st.integers(1, 4))
    def time_passes(self, days: int) -> None:
        self.day += timedelta(days)
        self.engine.run(self.day)

    @rule(data=st.data())
    def try_ship(self, data: st.DataObject) -> None:
        if not self.orders:
            return
        oid = data.draw(st.sampled_from(self.orders))
        p = proc(self.engine, oid)
        before = self.engine.store.get("order", oid).state
        try:
            applied, _decided = self.engine.handle(
                ship(oid).model_copy(
                    update={"occurred_at": at(self.day, 15), "shipped_on": self.day}
                )
            )
        except ApprovalPending:
            assert p.state != "approved"
            return
        except Exception:
            return
        if applied.duplicate:  # the same shipment again: a no-op, the order shipped once
            assert oid in self.shipped and before == "shipped"
            return
        assert before == "approved" and p.state == "approved"
        self.shipped.add(oid)

    def teardown(self) -> None:
        """Time enough passes: every process ends, in exactly one terminal state."""
        if not hasattr(self, "engine"):
            return
        for _ in range(4):
            self.day += timedelta(10)
            self.engine.run(self.day)
        assert not [p for p in self._raises() if p.is_open]
        for oid in self.orders:
            p = proc(self.engine, oid)
            assert not p.is_open and p.state in p.definition.terminals
            assert not open_tasks(self.engine, p.id)
            assert p.history[-1].moved_to == p.state

    @invariant()
    def shipped_only_when_approved(self) -> None:
        for oid in getattr(self, "shipped", ()):
            assert proc(self.engine, oid).state == "approved"

    @invariant()
    def refused_orders_are_rejected(self) -> None:
        """An order whose chain ended other than approved is rejected, by the engine, and
        only such an order (the customer has no limit: each was approved at entry)."""
        for oid in getattr(self, "orders", ()):
            p, o = proc(self.engine, oid), self.engine.store.get("order", oid)
            refused = not p.is_open and p.state != "approved"
            assert (o.state == "rejected") == refused
            if refused:
                assert o.decided_by == "arflow-engine"

    @rule(data=st.data())
    def forge_a_timeout(self, data: st.DataObject) -> None:
        """Anyone but the engine timing a step out is refused, changing nothing."""
        if not self.orders:
            return
        p = proc(self.engine, data.draw(st.sampled_from(self.orders)))
        self.n += 1
        forged = ProcessStepTimedOut(
            event_id=f"forged-{self.n}",
            occurred_at=at(self.day, 12),
            actor=data.draw(st.sampled_from(WHO)),
            process_id=p.id,
            step=p.state,
            timed_out_on=self.day,
        )
        with pytest.raises(EngineOnly):
            self.engine.handle(forged)
        assert proc(self.engine, p.id.removeprefix("PR-discount_approval-")) == p

    @invariant()
    def one_state_one_owner_and_explained(self) -> None:
        for oid in getattr(self, "orders", ()):
            p = proc(self.engine, oid)
            terminals = [s for s in p.definition.terminals if s == p.state]
            assert (len(terminals) == 1) != p.is_open
            tasks = open_tasks(self.engine, p.id)
            assert len(tasks) == (1 if p.is_open else 0)
            assert all(t.owner for t in tasks)
            if p.is_open:
                assert tasks[0].owner == p.owner
            trail = self.ledger.audit_trail("process", p.id)
            moves = [a for a in trail if not a.refused]
            assert len(moves) == 1 + len(p.history)
            for a, h in zip(moves[1:], p.history, strict=True):
                assert h.step in a.summary and h.by in a.summary


TestProcesses = Processes.TestCase
TestProcesses.settings = settings(
    max_examples=30,
    deadline=None,
    stateful_step_count=15,
    suppress_health_check=[HealthCheck.too_slow],
)


def _declared_in_docs() -> str:
    text = (ROOT / "docs" / "workflows.md").read_text()
    part = text[text.index("### Declaring your own") :]
    return part[part.index("```yaml\n") + 8 : part.index("```", part.index("```yaml\n") + 8)]


def test_a_process_declared_as_the_docs_say_runs_when_started_by_hand(
    store: Store, tmp_path: Path
) -> None:
    (tmp_path / "credit.yaml").write_text(_declared_in_docs())
    pack = load_pack([DEFAULT, tmp_path / "credit.yaml"])
    ledger = Ledger(store)
    setup(ledger)
    ledger.apply(
        PersonAdded(
            event_id="p-cfo",
            occurred_at=at(DAY, 8),
            actor="hr",
            person=Person(id="qian.cfo", name="qian", roles=("cfo",), manager="chen.ceo"),
        )
    )
    engine = Engine(ledger, pack)
    definition = pack.process("credit_raise")
    engine.handle(
        ProcessStarted(
            event_id="start-raise",
            occurred_at=at(DAY),
            actor="li.fin",
            reason="raise to 2,000,000",
            process_id="RAISE-1",
            definition=definition,
            subject_kind="customer",
            subject_id="C1",
            customer_id="C1",
            started_on=DAY,
        )
    )
    p: ProcessInstance = store.get("process", "RAISE-1")
    assert (p.state, p.owner, p.role) == ("finance", "li.fin", "finance")
    assert [t.owner for t in open_tasks(engine, "RAISE-1")] == ["li.fin"]
    engine.handle(decide("RAISE-1", "finance", "li.fin"))
    assert [t.owner for t in open_tasks(engine, "RAISE-1")] == ["qian.cfo"]
    engine.handle(decide("RAISE-1", "cfo", "qian.cfo", "reject"))
    p = store.get("process", "RAISE-1")
    assert p.state == "rejected" and not open_tasks(engine, "RAISE-1")
    done = [t for t in store.find("task", customer_id="C1") if t.subject_id == "RAISE-1"]
    assert sorted(t.outcome for t in done) == ["approved", "rejected"]


def test_lint_warns_of_steps_and_ends_never_reached(tmp_path: Path) -> None:
    from arflow.rules.lint import lint

    (tmp_path / "p.yaml").write_text(
        "processes:\n"
        "  - id: p\n"
        "    start: a\n"
        "    terminals: [approved, lost]\n"
        "    steps:\n"
        "      - {id: a, owner: 'role:x', on_approve: approved, on_reject: approved,"
        " on_timeout: approved}\n"
        "      - {id: b, owner: 'role:x', on_approve: approved, on_reject: lost,"
        " on_timeout: lost}\n"
    )
    assert lint(load_pack(tmp_path, templates=[])) == [
        "process p: step b is never reached from a",
        "process p: terminal state lost is never reached",
    ]
    assert lint(load_pack(DEFAULT)) == [w for w in lint(load_pack(DEFAULT)) if "process" not in w]


def test_where_says_an_order_waits_for_its_discount_approval(engine: Engine) -> None:
    from arflow import where

    engine.handle(submit("O11", "8"))
    pid = proc(engine, "O11").id
    w = where(engine.store, "order", "O11", DAY)
    assert (w.stage, w.owner, w.waiting) == (
        "approval",
        "wang.sm",
        ("discount_approval: step sales_manager",),
    )
    engine.handle(decide(pid, "sales_manager", "wang.sm"))
    w = where(engine.store, "order", "O11", DAY)
    assert (w.owner, w.waiting) == ("zhao.sd", ("discount_approval: step sales_director",))
    engine.handle(decide(pid, "sales_director", "zhao.sd", "reject"))
    w = where(engine.store, "order", "O11", DAY)
    assert (w.stage, w.done, w.subject_id) == ("rejected", True, pid)


def test_rules_read_the_discount_of_an_order(tmp_path: Path) -> None:
    from arflow.rules.facts import order_facts

    (tmp_path / "a.yaml").write_text(
        "approvals:\n"
        "  - id: big-discount\n"
        "    when: order.discount_percent > 5\n"
        "    approvers: [sales_manager]\n"
        "    template: approval_request\n"
    )
    pack = load_pack(tmp_path, templates=["approval_request"])
    cond = pack.approvals[0].when
    assert cond is not None
    from arflow.domain import Order

    order = Order(
        id="O",
        customer_id="C1",
        amount=Money.of("90000", "CNY"),
        submitted_on=DAY,
        discount_amount=Money.of("10000", "CNY"),
    )
    facts = order_facts(order, {}, DAY)
    assert facts["order.discount_percent"] == Decimal("10.00")
    assert cond(facts) is True


def test_a_process_about_another_customers_order_is_refused(engine: Engine, pack) -> None:  # type: ignore[no-untyped-def]
    engine.ledger.apply(
        CustomerRegistered(
            event_id="c2", occurred_at=at(DAY, 8), actor="t", customer=Customer(id="C2", name="B")
        )
    )
    engine.handle(submit("O12"))
    started = ProcessStarted(
        event_id="s-x",
        occurred_at=at(DAY),
        actor="li.fin",
        process_id="X-1",
        definition=pack.process("discount_approval"),
        subject_kind="order",
        subject_id="O12",
        customer_id="C2",
        started_on=DAY,
    )
    with pytest.raises(ValidationError, match="is not of C2"):
        engine.handle(started)
    assert engine.store.get("process", "X-1") is None
    assert [a.refused for a in engine.ledger.audit_trail("process", "X-1")] == ["ValidationError"]


def test_a_contract_discount_without_a_tier_is_refused_and_audited(engine: Engine) -> None:
    c = Contract(
        id="K2",
        customer_id="C1",
        signed_on=DAY,
        amount=Money.of("100000", "CNY"),
        discount_percent=Decimal("35"),
    )
    with pytest.raises(DiscountWithoutTier, match="contract K2"):
        engine.handle(ContractSigned(event_id="k2", occurred_at=at(DAY), actor="s", contract=c))
    assert engine.store.get("contract", "K2") is None
    assert [a.refused for a in engine.ledger.audit_trail("contract", "K2")] == [
        "DiscountWithoutTier"
    ]


def test_a_discount_in_another_currency_is_refused(engine: Engine) -> None:
    bad = submit("O13").model_copy(update={"discount_amount": Money.of("100", "USD")})
    with pytest.raises(CurrencyMismatch):
        engine.handle(bad)
    assert engine.store.get("order", "O13") is None
    assert engine.store.get("process", "PR-discount_approval-O13") is None


def test_the_process_show_command(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from arflow.cli import main

    url = f"sqlite:///{tmp_path / 'book.db'}"
    ledger = Ledger(url)
    setup(ledger)
    engine = Engine(ledger, load_pack(DEFAULT))
    engine.handle(submit("O14", "8"))
    engine.handle(decide("PR-discount_approval-O14", "sales_manager", "wang.sm"))
    capsys.readouterr()
    assert main(["process", "show", "PR-discount_approval-O14", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "at step sales_director since 2026-03-02, owner zhao.sd" in out
    assert "sales_manager approve by wang.sm -> sales_director: approve by wang.sm" in out
    assert out.endswith(process_mermaid(load_pack(DEFAULT).process("discount_approval")))
    assert main(["process", "show", "NOPE", "--db", url]) == 3
