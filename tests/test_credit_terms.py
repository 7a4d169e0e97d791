"""Issue 12's leftovers: terms from the grade for orders and contracts (to the pack's terms
tier, or refused), approval requests that reach their approvers, tier names checked when
the pack loads, the dunning skip for what unapplied credit covers, and send windows of
internal messages in the recipient's time zone. On memory, SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

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
    Engine,
    InvoiceIssued,
    Ledger,
    Message,
    Money,
    NotAuthorized,
    OrderApproved,
    OrderSubmitted,
    PaymentNode,
    Person,
    PersonAdded,
    StepDecided,
    Store,
    TermsNotAllowed,
    dump_book,
)
from arflow.rules import default_pack_path
from arflow.rules.loader import load_pack
from arflow.testing import BookBuilder

DUE = date(2026, 2, 28)


def _contract(cid: str, days: int) -> ContractSigned:
    return ContractSigned(
        event_id=f"sign-{cid}",
        occurred_at=datetime(2026, 3, 5, 2, tzinfo=UTC),
        actor="sales",
        contract=Contract(
            id=cid,
            customer_id="C1",
            signed_on=date(2026, 3, 5),
            amount=Money.of(50_000, "CNY"),
            payment_nodes=(
                PaymentNode(id="n1", percent=Decimal(30), due=DueRule(days=10)),
                PaymentNode(id="n2", percent=Decimal(70), due=DueRule(days=days)),
            ),
        ),
    )


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


def test_unapplied_credit_covers_the_oldest_items_first_not_each_item_alone(
    store: Store,
) -> None:
    """A credit of 1,000 covers one item of 800, not two: the second is reminded."""
    b = BookBuilder(Ledger(store, apply_unapplied_cash=False))
    b.customer("C1", name="华东精密", email="ap@c1.example")
    b.pay("PRE", "C1", 1_000, on="2026-01-10")
    b.invoice("INV-1", "C1", 800, issued="2026-01-28", due=DUE)
    b.invoice("INV-2", "C1", 800, issued="2026-01-29", due=DUE)
    engine = Engine(b.ledger, load_pack(default_pack_path()))
    result = engine.run(DUE, first_run=True)
    sent = {d.subject_id for d in result.plan.decisions if d.kind == "dunning"}
    covered = {d.subject_id for d in result.plan.skipped if d.reason.startswith("covered")}
    assert (sent, covered) == ({"INV-2"}, {"INV-1"})


# -- send windows of internal messages: the recipient's time zone -------------------------------


def test_an_internal_notice_waits_for_the_window_in_the_persons_time_zone(store: Store) -> None:
    from zoneinfo import ZoneInfo

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


# -- terms from the grade, and approval requests that reach the approvers -----------------------


def _pack_dir(
    tmp_path: Path, *, terms_tier: bool = True, raises: bool = False, processes: bool = False
) -> Path:
    """The default pack, with finance_manager a person of the directory (P-FM); without the
    terms tier when asked; with re-rating and a 20% automatic raise when asked; without
    its terms and raise processes unless asked (they take over from the tiers)."""
    rules = tmp_path / "rules"
    shutil.copytree(default_pack_path(), rules)
    if not processes:
        text = (rules / "processes.yaml").read_text()
        cut = text.index("  # -- credit: payment terms beyond the grade")
        (rules / "processes.yaml").write_text(text[:cut])
    (rules / "zz_people.yaml").write_text("roles: {finance_manager: P-FM}\n")
    pack = (rules / "pack.yaml").read_text()
    if not terms_tier:
        pack = pack.replace("  terms_tier: terms-beyond-grade", "")
    (rules / "pack.yaml").write_text(pack)
    if raises:
        credit = (rules / "credit.yaml").read_text()
        credit = credit.replace("  # review: {every", "  review: {every")
        credit = credit.replace("  # max_auto_raise: 0.2", "  max_auto_raise: 0.2")
        (rules / "credit.yaml").write_text(credit)
    return rules


T = datetime(2026, 3, 5, 2, tzinfo=UTC)
META = {"occurred_at": T, "actor": "erp"}


def _book(store: Store, rules: Path, locale: str = "zh_CN", **customer: Any) -> Engine:
    engine = Engine(Ledger(store), load_pack(rules))
    engine.handle(
        PersonAdded(
            event_id="p-fm",
            **META,
            person=Person(
                id="P-FM",
                name="周敏",
                roles=("finance_manager",),
                addresses={"email": "zhou.min@example.cn"},
                locale=locale,
                timezone="Asia/Shanghai",
            ),
        )
    )
    fields: dict[str, Any] = {
        "id": "C1",
        "name": "华东精密",
        "contacts": [Contact(name="Wang", email="ap@c1.example")],
        "credit": CreditProfile(
            grade="B", credit_limit=Money.of(500_000, "CNY"), payment_terms_days=30
        ),
        **customer,
    }
    engine.handle(CustomerRegistered(event_id="c1", **META, customer=Customer(**fields)))
    return engine


def _order(oid: str, amount: int, terms: int | None = None) -> OrderSubmitted:
    return OrderSubmitted(
        event_id=f"o-{oid}",
        **META,
        order_id=oid,
        customer_id="C1",
        amount=Money.of(amount, "CNY"),
        submitted_on=T.date(),
        payment_terms_days=terms,
    )


def _messages(store: Store, prefix: str) -> list[Message]:
    return [Message.model_validate_json(r.body) for r in store.outbox() if r.key.startswith(prefix)]


def test_an_order_takes_its_grades_terms_and_its_invoice_is_due_by_them(
    store: Store, tmp_path: Path
) -> None:
    engine = _book(store, _pack_dir(tmp_path))
    engine.handle(_order("SO-1", 10_000))
    order = engine.ledger.get("order", "SO-1")
    # grade B allows 60 days; the customer's own 30 are not the grade's
    assert (order.state, order.payment_terms_days) == ("approved", 60)
    (rec,) = [r for r in engine.ledger.audit_trail("order", "SO-1") if r.before_state is None]
    assert rec.summary == "submitted 10,000.00 CNY, terms 60 days"
    engine.handle(
        InvoiceIssued(
            event_id="i1",
            **META,
            number="INV-1",
            customer_id="C1",
            order_id="SO-1",
            issue_date=date(2026, 3, 10),
            amount=Money.of(10_000, "CNY"),
        )
    )
    assert engine.ledger.receivable("INV-1").due_date == date(2026, 3, 10) + timedelta(60)
    # terms within the grade's: approved as asked
    engine.handle(_order("SO-2", 10_000, terms=45))
    order = engine.ledger.get("order", "SO-2")
    assert (order.state, order.payment_terms_days) == ("approved", 45)


def test_an_order_asking_longer_terms_goes_to_the_terms_tier_and_asks_its_approvers(
    store: Store, tmp_path: Path
) -> None:
    engine = _book(store, _pack_dir(tmp_path))
    _, decisions = engine.handle(_order("SO-9", 10_000, terms=90))
    order = engine.ledger.get("order", "SO-9")
    assert (order.state, order.payment_terms_days) == ("pending_approval", 90)
    assert order.approval_roles == ("finance_manager",) and order.approvers == ("P-FM",)
    (d,) = [d for d in decisions if d.rule == "order-terms"]
    assert d.why["approval"]["tier"] == "terms-beyond-grade"
    assert (d.why["asked_days"], d.why["allowed_days"], d.why["grade"]) == (90, 60, "B")
    assert d.reason == (
        "order SO-9: payment terms of 90 days, longer than grade B allows (60 days)"
    )
    (m,) = _messages(store, "approval:order-terms:SO-9")
    assert (m.channel, m.to, m.locale) == ("task", ("P-FM",), "zh_CN")
    assert "订单 SO-9申请的账期为 90 天，超过 B 级客户无需审批的上限 60 天" in m.text
    # only the holder of the role approves it
    with pytest.raises(NotAuthorized):
        engine.handle(OrderApproved(event_id="a1", **META, order_id="SO-9", approver="intern"))
    engine.handle(OrderApproved(event_id="a2", **META, order_id="SO-9", approver="P-FM"))
    assert engine.ledger.get("order", "SO-9").state == "approved"


def test_a_contract_asking_longer_terms_asks_the_terms_tier(store: Store, tmp_path: Path) -> None:
    engine = _book(store, _pack_dir(tmp_path))
    _, decisions = engine.handle(_contract("K1", 120))
    (d,) = [d for d in decisions if d.kind == "approval"]
    assert (d.rule, d.subject_kind, d.subject_id) == ("contract-terms", "contract", "K1")
    assert d.why["tier"] == "terms-beyond-grade" and d.why["nodes"] == {"n2": 120}
    (m,) = _messages(store, "approval:contract-terms:K1")
    assert m.to == ("P-FM",) and m.locale == "zh_CN"
    assert "华东精密" in (m.subject or "") and "合同 K1申请的账期为 120 天" in m.text
    # within the grade's 60 days: no approval, no message
    _, decisions = engine.handle(_contract("K2", 60))
    assert not [d for d in decisions if d.kind == "approval"]


def test_longer_terms_without_a_terms_tier_are_refused_and_change_nothing(
    store: Store, tmp_path: Path
) -> None:
    engine = _book(store, _pack_dir(tmp_path, terms_tier=False))
    before = (dump_book(store), store.event_count(), store.audit_count())
    with pytest.raises(TermsNotAllowed, match=r"order SO-9: 90 days .* grade B allows \(60"):
        engine.handle(_order("SO-9", 10_000, terms=90))
    with pytest.raises(TermsNotAllowed, match="contract K1: 120 days"):
        engine.handle(_contract("K1", 120))
    assert (dump_book(store), store.event_count()) == before[:2]
    # the two refused attempts are in the audit trail, and nothing else is
    assert store.audit_count() == before[2] + 2
    (refused,) = store.audit_trail("order", "SO-9")
    assert refused.refused == "TermsNotAllowed" and refused.event_type.endswith(":refused")
    # within the grade: accepted as before
    engine.handle(_order("SO-1", 10_000, terms=60))
    assert engine.ledger.get("order", "SO-1").state == "approved"


def test_a_held_limit_raise_asks_the_raise_approvers(store: Store, tmp_path: Path) -> None:
    # an A-grade profile (500,000) for a customer whose limit is 100,000: more than 20%
    engine = _book(
        store,
        _pack_dir(tmp_path, raises=True),
        credit=CreditProfile(grade="D", credit_limit=Money.of(100_000, "CNY")),
        profile=CompanyProfile(
            enterprise_type="state_owned",
            registered_capital=Money.of(60_000_000, "CNY"),
            established_on=date(2010, 1, 1),
            industry_risk=1,
            third_party_rating="AAA",
            bank_reference="good",
        ),
    )
    result = engine.run(date(2026, 3, 5))
    (d,) = [d for d in result.plan.decisions if d.rule == "credit-limit-raise"]
    assert d.why["approvers"] == ["finance_manager"]
    (m,) = _messages(store, "approval:credit-limit-raise:C1")
    assert (m.channel, m.to, m.locale) == ("task", ("P-FM",), "zh_CN")
    assert "由 100,000.00 CNY 提高至 500,000.00 CNY（评级 A）" in m.text


def test_a_held_limit_raise_starts_the_raise_process_when_the_pack_has_one(
    store: Store, tmp_path: Path
) -> None:
    engine = _book(
        store,
        _pack_dir(tmp_path, raises=True, processes=True),
        credit=CreditProfile(grade="D", credit_limit=Money.of(100_000, "CNY")),
        profile=CompanyProfile(
            enterprise_type="state_owned",
            registered_capital=Money.of(60_000_000, "CNY"),
            established_on=date(2010, 1, 1),
            industry_risk=1,
            third_party_rating="AAA",
            bank_reference="good",
        ),
    )
    result = engine.run(date(2026, 3, 5))
    (d,) = [d for d in result.plan.decisions if d.rule == "credit-limit-raise"]
    assert d.why["process"] == "credit_limit_raise" and not d.actions
    assert not _messages(store, "approval:credit-limit-raise:C1")  # the process asks
    pid = "PR-credit_limit_raise-C1-20260305"
    p = store.get("process", pid)
    assert (p.state, p.owner, p.proposed_limit) == (
        "finance_manager",
        "P-FM",
        Money.of(500_000, "CNY"),
    )
    customer = engine.ledger.customer("C1")
    assert (customer.credit.grade, customer.credit.credit_limit) == (
        "A",
        Money.of(100_000, "CNY"),
    )
    engine.run(date(2026, 3, 5))  # the same day again: no second process
    assert [x.id for x in store.find("process", customer_id="C1")] == [pid]
    for step, who in (("finance_manager", "P-FM"), ("finance_director", "role:finance_director")):
        if who.startswith("role:"):  # nobody holds it yet: a holder joins and decides
            engine.handle(
                PersonAdded(
                    event_id="p-fd",
                    **META,
                    person=Person(id="P-FD", name="钱", roles=("finance_director",)),
                )
            )
            who = "P-FD"
        engine.handle(
            StepDecided(
                event_id=f"d-{step}",
                occurred_at=T,
                actor=who,
                process_id=pid,
                step=step,
                decision="approve",
                decided_on=date(2026, 3, 5),
            )
        )
    assert engine.ledger.customer("C1").credit.credit_limit == Money.of(500_000, "CNY")


def test_a_terms_process_without_a_terms_tier_takes_longer_terms(
    store: Store, tmp_path: Path
) -> None:
    engine = _book(store, _pack_dir(tmp_path, terms_tier=False, processes=True))
    engine.handle(_order("SO-9", 10_000, terms=90))
    engine.handle(_contract("K1", 120))
    assert store.get("process", "PR-order_terms-SO-9").asked_days == 90
    assert store.get("process", "PR-contract_terms-K1").asked_days == 120


def test_an_approver_reads_the_request_in_their_own_locale(store: Store, tmp_path: Path) -> None:
    engine = _book(store, _pack_dir(tmp_path), locale="en")
    engine.handle(_contract("K1", 120))
    (m,) = _messages(store, "approval:contract-terms:K1")
    assert m.locale == "en"
    assert m.text.splitlines()[:4] == [
        "contract K1: payment terms longer than grade B allows (60 days): n2 120 days.",
        "",
        "Asked: payment terms of n2 120 days.",
        "Allowed without approval: 60 days (grade B).",
    ]


def test_an_order_applied_by_the_ledger_alone_takes_the_customers_terms(store: Store) -> None:
    b = BookBuilder(Ledger(store))
    b.customer("C1", terms=45)
    b.apply(_order("SO-1", 1_000))
    assert b.ledger.get("order", "SO-1").payment_terms_days == 45
    (rec,) = b.ledger.audit_trail("order", "SO-1")
    assert rec.summary == "submitted 1,000.00 CNY, terms 45 days (the customer's)"


def test_the_python_blocks_of_the_credit_pages_run(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parent.parent
    for page in ("grades.md", "credit.md"):
        text = (root / "docs" / page).read_text("utf-8")
        for i, block in enumerate(text.split("```python\n")[1:]):
            code = block.split("```", 1)[0]
            exec(compile(code, f"docs/{page} block {i + 1}", "exec"), {})
    out = capsys.readouterr().out
    assert "SO-2 approved 90" in out and "finance_manager role:finance_manager 90 60" in out


def test_a_contracts_nodes_without_terms_take_the_grades(store: Store, tmp_path: Path) -> None:
    engine = _book(store, _pack_dir(tmp_path))
    signed = ContractSigned(
        event_id="sign-K3",
        **META,
        contract=Contract(
            id="K3",
            customer_id="C1",
            signed_on=date(2026, 3, 5),
            amount=Money.of(50_000, "CNY"),
            payment_nodes=(
                PaymentNode(id="n1", percent=Decimal(30)),  # no due: grade B's 60 days
                PaymentNode(id="n2", percent=Decimal(70), due=DueRule(days=30)),
            ),
        ),
    )
    _, decisions = engine.handle(signed)
    assert not [d for d in decisions if d.kind == "approval"]
    nodes = engine.ledger.get("contract", "K3").payment_nodes
    assert [(n.id, n.due.days) for n in nodes] == [("n1", 60), ("n2", 30)]
    # the ledger alone keeps the default of a node without due (30 days)
    b = BookBuilder(Ledger(store))
    b.apply(
        signed.model_copy(
            update={
                "event_id": "sign-K4",
                "contract": signed.contract.model_copy(update={"id": "K4"}),
            }
        )
    )
    assert b.ledger.get("contract", "K4").payment_nodes[0].due.days == 30
