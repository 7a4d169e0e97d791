"""Issue 12, items 2 and 3: orders checked at entry, and locks that follow every change.

Each path on memory, SQLite and PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

import contextlib
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from arflow import (
    Contact,
    CreditNoteIssued,
    CreditProfile,
    Customer,
    CustomerRegistered,
    CustomerUpdated,
    Engine,
    IllegalTransition,
    InvoiceIssued,
    Money,
    NotAuthorized,
    OrderApproved,
    OrderSubmitted,
    PaymentReceived,
)
from arflow.rules.loader import load_pack
from arflow.store import Store
from arflow.testing import BookBuilder

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
T = datetime(2026, 3, 5, 11, tzinfo=UTC)


def _pack(tmp_path: Path, *, raises: bool = False):  # type: ignore[no-untyped-def]
    """The default pack (its order settings are those of docs/orders.md), copied to
    ``tmp_path`` so that a test may edit it; without its credit processes (terms, raises:
    docs/workflows.md) unless ``raises``, so that a limit changes when it is set."""
    dest = tmp_path / "pack"
    shutil.copytree(RULES, dest)
    if not raises:
        text = (dest / "processes.yaml").read_text()
        cut = text.index("  # -- credit: payment terms beyond the grade")
        (dest / "processes.yaml").write_text(text[:cut])
    return load_pack(dest)


def register(b: BookBuilder, cid: str = "C1", limit: int = 100_000) -> None:
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
                contacts=[Contact(name="Wang", email=f"ap@{cid.lower()}.example")],
                credit=CreditProfile(
                    grade="B", credit_limit=Money.of(limit, "CNY"), payment_terms_days=30
                ),
            ),
        )
    )


def submit(engine: Engine, oid: str, amount: int, cid: str = "C1", at: datetime = T) -> list:  # type: ignore[type-arg]
    _a, ds = engine.handle(
        OrderSubmitted(
            event_id=f"submit-{oid}",
            occurred_at=at,
            actor="sales",
            order_id=oid,
            customer_id=cid,
            amount=Money.of(amount, "CNY"),
            submitted_on=at.date(),
        )
    )
    return ds


def approve(engine: Engine, oid: str, who: str, eid: str | None = None) -> list:  # type: ignore[type-arg]
    _a, ds = engine.handle(
        OrderApproved(
            event_id=eid or f"approve-{oid}-{who}",
            occurred_at=T,
            actor=who,
            order_id=oid,
            approver=who,
        )
    )
    return ds


def issue(engine: Engine, number: str, amount: int, due: str = "2026-04-01") -> list:  # type: ignore[type-arg]
    """An invoice issued through ``Engine.handle``: its customer's locks follow at once."""
    _a, ds = engine.handle(
        InvoiceIssued(
            event_id=f"inv-{number}",
            occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
            actor="erp",
            number=number,
            customer_id="C1",
            issue_date=date(2026, 3, 1),
            due_date=date.fromisoformat(due),
            amount=Money.of(amount, "CNY"),
        )
    )
    return ds


@pytest.fixture
def b(store: Store) -> BookBuilder:
    builder = BookBuilder(store)
    register(builder)
    return builder


def test_within_limit_and_unlocked_is_approved_and_next_owners_get_tasks(
    b: BookBuilder, tmp_path: Path
) -> None:
    engine = Engine(b.ledger, _pack(tmp_path))
    ds = submit(engine, "SO-1", 10_000)
    assert [(d.rule, d.why["on_order"]) for d in ds] == [("order-approved", "auto")]
    assert [a.to for a in ds[0].actions] == [("finance",), ("warehouse",)]
    assert ds[0].recipients == {
        "finance": "finance@example.com",
        "warehouse": "warehouse@example.com",
    }
    o = b.ledger.get("order", "SO-1")
    assert (o.state, o.decided_by) == ("approved", "arflow-engine")


def test_exposure_counts_the_order_and_every_open_order(b: BookBuilder, tmp_path: Path) -> None:
    engine = Engine(b.ledger, _pack(tmp_path))
    b.invoice("I1", "C1", 60_000, issued="2026-03-01", due="2026-04-01")
    assert submit(engine, "SO-1", 20_000)[0].rule == "order-approved"  # 80%
    # 86% -> 92%: the order that passes the limit with the others open goes to approval
    ds = submit(engine, "SO-2", 25_000)
    assert next(d.rule for d in ds) == "order-over-limit"
    assert b.ledger.get("order", "SO-2").state == "pending_approval"
    assert b.ledger.exposure("C1")["CNY"] == Money.of(105_000, "CNY")


def test_over_the_ceiling_is_rejected_whatever_approves(b: BookBuilder, tmp_path: Path) -> None:
    engine = Engine(b.ledger, _pack(tmp_path))
    ds = submit(engine, "SO-1", 160_000)
    assert ds[0].rule == "order-ceiling" and ds[0].why["on_order"] == "reject"
    o = b.ledger.get("order", "SO-1")
    assert (o.state, o.decided_by) == ("rejected", "arflow-engine")
    with pytest.raises(IllegalTransition):
        approve(engine, "SO-1", "zhang.min")


def test_a_reject_lock_refuses_the_order_with_its_description(
    b: BookBuilder, tmp_path: Path
) -> None:
    engine = Engine(b.ledger, _pack(tmp_path))
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    engine.run(date(2026, 3, 5), first_run=True)  # 33 days overdue: overdue-30
    ds = submit(engine, "SO-1", 1_000)
    assert [(d.rule, d.reason) for d in ds] == [
        ("lock-overdue-30", "Anything over 30 days overdue suspends the customer.")
    ]
    assert b.ledger.get("order", "SO-1").state == "rejected"
    (rejected,) = [a for a in b.ledger.audit_trail("order", "SO-1") if a.after_state == "rejected"]
    assert rejected.reason == "Anything over 30 days overdue suspends the customer."


def test_an_approve_lock_sends_to_its_tier_and_only_a_holder_approves(
    b: BookBuilder, tmp_path: Path
) -> None:
    engine = Engine(b.ledger, _pack(tmp_path))
    ds = issue(engine, "I1", 95_000)  # 95%: exposure-90 placed at once, not days later
    assert [(d.kind, d.rule) for d in ds] == [("lock", "exposure-90")]
    assert b.ledger.customer("C1").locks[0].lock_id == "exposure-90"
    ds = submit(engine, "SO-1", 1_000)
    assert "lock-exposure-90" in [d.rule for d in ds]
    o = b.ledger.get("order", "SO-1")
    assert o.state == "pending_approval"
    assert o.approval_roles == ("sales_manager", "finance_manager")
    assert o.approvers == ("zhang.min", "finance.manager@example.com")
    with pytest.raises(NotAuthorized):
        approve(engine, "SO-1", "intern")
    assert b.ledger.get("order", "SO-1").state == "pending_approval"  # nothing changed
    approve(engine, "SO-1", "zhang.min")
    assert b.ledger.get("order", "SO-1").decided_by == "zhang.min"
    with pytest.raises(IllegalTransition):  # approving twice
        approve(engine, "SO-1", "finance.manager@example.com")


def test_ledger_apply_cannot_approve_a_locked_or_over_limit_order(b: BookBuilder) -> None:
    b.invoice("I1", "C1", 95_000, issued="2026-03-01", due="2026-04-01")
    b.order("SO-1", "C1", 10_000)  # Ledger.apply: no check, no decision
    with pytest.raises(NotAuthorized, match=r"Engine\.handle"):
        b.approve("SO-1", "intern")
    assert b.ledger.get("order", "SO-1").state == "submitted"
    register(b, "C2")
    b.order("SO-3", "C2", 1_000)  # within limit, unlocked: the host may approve it
    b.approve("SO-3", "someone")
    assert b.ledger.get("order", "SO-3").state == "approved"


def test_a_payment_lifts_the_lock_at_once_with_its_own_notice(
    b: BookBuilder, tmp_path: Path
) -> None:
    engine = Engine(b.ledger, _pack(tmp_path))
    issue(engine, "I1", 95_000)
    _a, ds = engine.handle(
        PaymentReceived(
            event_id="p1",
            occurred_at=T,
            actor="bank",
            payment_id="P1",
            customer_id="C1",
            amount=Money.of(50_000, "CNY"),
            received_on=T.date(),
        )
    )
    (unlock,) = [d for d in ds if d.kind == "unlock"]
    notify = [a for a in unlock.actions if a.type == "notify"]
    assert [a.template for a in notify] == ["order_lock_lifted"]
    assert b.ledger.customer("C1").locks == ()


def test_a_raised_limit_lifts_the_lock_at_once(b: BookBuilder, tmp_path: Path) -> None:
    engine = Engine(b.ledger, _pack(tmp_path))
    issue(engine, "I1", 95_000)
    _a, ds = engine.handle(
        CustomerUpdated(
            event_id="u1",
            occurred_at=T,
            actor="credit",
            customer_id="C1",
            credit=CreditProfile(
                grade="B", credit_limit=Money.of(200_000, "CNY"), payment_terms_days=30
            ),
        )
    )
    assert [(d.kind, d.rule) for d in ds] == [("unlock", "exposure-90")]


def test_a_raise_approved_by_its_process_lifts_the_lock_at_once(
    b: BookBuilder, tmp_path: Path
) -> None:
    """With the default pack's raise process, the raise waits for it; its last approval
    raises the limit and lifts the lock in the same transaction."""
    from arflow.domain import Person
    from arflow.events import PersonAdded, StepDecided

    engine = Engine(b.ledger, _pack(tmp_path, raises=True))
    for pid, role in (("fm", "finance_manager"), ("fd", "finance_director")):
        engine.handle(
            PersonAdded(
                event_id=f"p-{pid}",
                occurred_at=T,
                actor="hr",
                person=Person(id=pid, name=pid, roles=(role,)),
            )
        )
    issue(engine, "I1", 95_000)
    _a, ds = engine.handle(
        CustomerUpdated(
            event_id="u1",
            occurred_at=T,
            actor="credit",
            customer_id="C1",
            credit=CreditProfile(
                grade="B", credit_limit=Money.of(200_000, "CNY"), payment_terms_days=30
            ),
        )
    )
    assert not ds and [lk.lock_id for lk in b.ledger.customer("C1").locks] == ["exposure-90"]
    pid = f"PR-credit_limit_raise-C1-{T:%Y%m%d}"
    for n, (step, who) in enumerate((("finance_manager", "fm"), ("finance_director", "fd"))):
        _a, ds = engine.handle(
            StepDecided(
                event_id=f"d{n}",
                occurred_at=T,
                actor=who,
                process_id=pid,
                step=step,
                decision="approve",
                decided_on=T.date(),
            )
        )
    assert [(d.kind, d.rule) for d in ds] == [("unlock", "exposure-90")]
    assert b.ledger.customer("C1").credit.credit_limit == Money.of(200_000, "CNY")


def test_an_earlier_day_run_again_never_lifts_a_current_lock(
    b: BookBuilder, tmp_path: Path
) -> None:
    engine = Engine(b.ledger, _pack(tmp_path))
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    engine.run(date(2026, 2, 1), first_run=True)
    engine.run(date(2026, 3, 5))  # 33 days overdue: suspended
    assert [lk.lock_id for lk in b.ledger.customer("C1").locks] == ["overdue-30"]
    engine.run(date(2026, 2, 10))  # an earlier day again: on 10 Feb nothing was 30 days over
    assert [lk.lock_id for lk in b.ledger.customer("C1").locks] == ["overdue-30"]


def test_existing_lock_without_on_order_keeps_todays_behaviour(
    b: BookBuilder, tmp_path: Path
) -> None:
    pack = _pack(tmp_path / "x")
    dest = tmp_path / "x" / "pack" / "locks.yaml"
    text = dest.read_text(encoding="utf-8").replace(
        "    on_order: reject             # a suspended customer's new order is refused\n", ""
    )
    dest.write_text(text, encoding="utf-8")
    pack = load_pack(dest.parent)
    engine = Engine(b.ledger, pack)
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-01-31")
    engine.run(date(2026, 3, 5), first_run=True)
    ds = submit(engine, "SO-1", 1_000)
    assert [d.rule for d in ds] == ["lock-overdue-30"]
    o = b.ledger.get("order", "SO-1")
    assert (o.state, o.approvers) == ("pending_approval", ("zhang.min",))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    invoice=st.integers(0, 150_000),
    orders=st.lists(st.integers(1, 80_000), min_size=1, max_size=4),
    who=st.sampled_from(["intern", "zhang.min", "finance.manager@example.com", "li.wei"]),
)
def test_no_locked_or_over_limit_order_is_approved_without_a_holder(
    tmp_path_factory: pytest.TempPathFactory, invoice: int, orders: list[int], who: str
) -> None:
    """Property: an order of a locked or over-limit customer never reaches approved without
    an approval by a holder of the role, whichever call the host makes."""
    pack = _PACK.get("p") or _PACK.setdefault("p", _pack(tmp_path_factory.mktemp("p")))
    b = BookBuilder()
    register(b)
    engine = Engine(b.ledger, pack)
    if invoice:
        b.invoice("I1", "C1", invoice, issued="2026-01-01", due="2026-01-31")
    engine.run(date(2026, 3, 5), first_run=True)
    for i, amount in enumerate(orders):
        oid = f"SO-{i}"
        customer = b.ledger.customer("C1")
        exposure = b.ledger.exposure("C1").get("CNY", Money.of(0, "CNY")).amount
        held = bool(customer.locks) or exposure + amount > 100_000
        submit(engine, oid, amount)
        with contextlib.suppress(NotAuthorized, IllegalTransition):
            approve(engine, oid, who)
        o = b.ledger.get("order", oid)
        if held and o.state == "approved":
            assert o.decided_by in o.approvers
            assert o.decided_by in ("zhang.min", "finance.manager@example.com")


_PACK: dict[str, object] = {}


_EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("invoice"), st.integers(1_000, 60_000), st.integers(-60, 30)),
        st.tuples(st.just("pay"), st.integers(1_000, 60_000), st.just(0)),
        st.tuples(st.just("limit"), st.integers(10_000, 200_000), st.just(0)),
        st.tuples(st.just("order"), st.integers(1_000, 60_000), st.just(0)),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=_EVENTS)
@example(events=[("limit", 10_000, 0), ("order", 15_001, 0)])  # found once: kept
def test_locks_always_equal_what_the_rules_say_and_earlier_runs_change_nothing(
    tmp_path_factory: pytest.TempPathFactory, events: list[tuple[str, int, int]]
) -> None:
    """Property: after every event given to ``Engine.handle`` (invoices, payments, limit
    changes, orders), the customer's locks are exactly those whose rule holds on the book
    as it now stands; and running an earlier day after a later one changes no lock."""
    pack = _PACK.get("p") or _PACK.setdefault("p", _pack(tmp_path_factory.mktemp("p")))
    b = BookBuilder()
    register(b)
    engine = Engine(b.ledger, pack)
    engine.run(date(2026, 3, 4), first_run=True)
    meta = {"occurred_at": T, "actor": "prop"}
    for i, (kind, amount, due_in) in enumerate(events):
        money = Money.of(amount, "CNY")
        if kind == "invoice":
            engine.handle(
                InvoiceIssued(
                    event_id=f"e{i}",
                    **meta,
                    number=f"I{i}",
                    customer_id="C1",
                    issue_date=date(2026, 1, 1),
                    due_date=date.fromordinal(T.date().toordinal() + due_in),
                    amount=money,
                )
            )
        elif kind == "pay":
            engine.handle(
                PaymentReceived(
                    event_id=f"e{i}",
                    **meta,
                    payment_id=f"P{i}",
                    customer_id="C1",
                    amount=money,
                    received_on=T.date(),
                )
            )
        elif kind == "limit":
            engine.handle(
                CustomerUpdated(
                    event_id=f"e{i}",
                    **meta,
                    customer_id="C1",
                    credit=CreditProfile(grade="B", credit_limit=money, payment_terms_days=30),
                )
            )
        else:
            submit(engine, f"SO-{i}", amount)
        facts = engine._customer_facts("C1", T.date())
        want = sorted(r.id for r in pack.locks if r.when is not None and r.when(facts))
        assert sorted(lk.lock_id for lk in b.ledger.customer("C1").locks) == want
    engine.run(T.date())
    now = sorted(lk.lock_id for lk in b.ledger.customer("C1").locks)
    engine.run(date(2026, 3, 4))  # an earlier day again
    engine.run(date(2026, 1, 15), since=date(2026, 1, 15))
    assert sorted(lk.lock_id for lk in b.ledger.customer("C1").locks) == now


def test_a_credit_note_lifts_the_lock_at_once(b: BookBuilder, tmp_path: Path) -> None:
    engine = Engine(b.ledger, _pack(tmp_path))
    issue(engine, "I1", 95_000)
    _a, ds = engine.handle(
        CreditNoteIssued(
            event_id="cn1",
            occurred_at=T,
            actor="finance",
            credit_note_id="CN1",
            customer_id="C1",
            receivable_id="I1",
            amount=Money.of(20_000, "CNY"),
            issued_on=T.date(),
        )
    )
    assert [(d.kind, d.rule) for d in ds] == [("unlock", "exposure-90")]
    assert b.ledger.customer("C1").locks == ()


def test_the_example_in_docs_orders_md_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    root = RULES.parent.parent
    text = (root / "docs" / "orders.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, re.S)[-1]
    monkeypatch.chdir(root)
    exec(compile(code, "docs/orders.md", "exec"), {})
