"""Grades that are applied: a credit review sets grade, limit, terms and prepayment from a
score (audited with the points of each factor) or from a person's decision; the pack
schedules re-rating (every period, after a broken promise or an item 60 days overdue); a
raise beyond the pack's automatic limit goes to approval; an unknown grade is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from arflow import (
    CreditReviewed,
    Engine,
    FactorPoints,
    Ledger,
    Money,
    Store,
    UnknownGrade,
    ValidationError,
    load_pack,
    parse_event,
)
from arflow.rules.loader import RulePack
from arflow.testing import BookBuilder

PACK = """
pack: grades-test
settings: {send_window: null}
roles: {finance_manager: fm@example.com, credit_committee: cc@example.com}
scoring:
  currency: CNY
  factors:
    - fact: customer.enterprise_type
      points: {state_owned: 60, listed: 50, private: 30}
      missing: 10
  grades:
    - {grade: AAA, min_score: 55, credit_limit: 300000, payment_terms_days: 90}
    - {grade: BB, min_score: 25, credit_limit: 100000, payment_terms_days: 30}
    - {grade: C, min_score: 0, credit_limit: 0, payment_terms_days: 0, prepayment_percent: 100}
  review: {every: "3 months", after: [broken_promise, overdue_60]}
  max_auto_raise: 0.2
  raise_approvers: [credit_committee]
"""


def at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 9, tzinfo=UTC)


@pytest.fixture
def pack(tmp_path: Path) -> RulePack:
    (tmp_path / "pack.yaml").write_text(PACK)
    return load_pack(tmp_path)


def book(store: Store, **credit: object) -> BookBuilder:
    b = BookBuilder(Ledger(store))
    b.customer("C1", **credit)  # type: ignore[arg-type]
    return b


def reviews(engine: Engine) -> list[str]:
    return [r.key for r in engine.store.decisions() if r.kind == "credit_review"]


def test_a_run_applies_the_score_audited_with_its_factors(store: Store, pack: RulePack) -> None:
    b = book(store)
    engine = Engine(b.ledger, pack)
    engine.run(date(2026, 3, 2))
    c = b.ledger.customer("C1")
    # no company facts: 10 points, grade C
    assert (c.credit.grade, c.credit.payment_terms_days) == ("C", 0)
    assert c.credit.credit_limit == Money.of(0, "CNY")
    assert c.credit.prepayment_percent == Decimal(100)
    assert c.credit.reviewed_on == date(2026, 3, 2)
    (rec,) = [a for a in b.ledger.audit_trail("customer", "C1") if a.event_type == "CreditReviewed"]
    assert "score 10 (customer.enterprise_type 10)" in rec.summary
    assert "grade None -> C" in rec.summary
    assert rec.reason and "credit review (every)" in rec.reason
    # run twice: recorded once
    engine.run(date(2026, 3, 2))
    engine.run(date(2026, 3, 3))
    assert reviews(engine) == ["credit_review:review:every:C1:2026-03-02"]


def test_re_rating_every_quarter(store: Store, pack: RulePack) -> None:
    b = book(store)
    engine = Engine(b.ledger, pack)
    for day in ("2026-01-31", "2026-02-28", "2026-04-30", "2026-05-01", "2026-05-02"):
        engine.run(date.fromisoformat(day))
    # 3 months before 30 April is 30 January: not yet; before 1 May, 1 February: due
    assert reviews(engine) == [
        "credit_review:review:every:C1:2026-01-31",
        "credit_review:review:every:C1:2026-05-01",
    ]
    assert b.ledger.customer("C1").credit.reviewed_on == date(2026, 5, 1)


def test_a_broken_promise_re_rates_at_once(store: Store, pack: RulePack) -> None:
    b = book(store)
    engine = Engine(b.ledger, pack)
    engine.run(date(2026, 1, 5))
    b.invoice("I1", "C1", 1000, issued="2026-01-01", due="2026-01-31")
    b.promise("P1", "C1", ["I1"], 1000, by="2026-02-10", on="2026-02-01")
    _, ds = engine.handle(
        __import__("arflow").PromiseBroken(
            event_id="pb1",
            occurred_at=at(date(2026, 2, 12)),
            actor="t",
            promise_id="P1",
            broken_on=date(2026, 2, 12),
        )
    )
    assert [d.key for d in ds if d.kind == "credit_review"] == [
        "credit_review:review:broken_promise:C1:P1"
    ]
    assert b.ledger.customer("C1").credit.reviewed_on == date(2026, 2, 12)
    # the day's run sees the same promise: nothing again
    engine.run(date(2026, 2, 13))
    assert len(reviews(engine)) == 2


def test_sixty_days_overdue_re_rates(store: Store, pack: RulePack) -> None:
    b = book(store)
    engine = Engine(b.ledger, pack)
    b.invoice("I1", "C1", 1000, issued="2026-01-01", due="2026-01-31")
    engine.run(date(2026, 1, 5))
    engine.run(date(2026, 3, 31))  # 59 days
    assert len(reviews(engine)) == 1
    engine.run(date(2026, 4, 1))  # 60 days
    assert reviews(engine)[-1] == "credit_review:review:overdue_60:C1:I1"
    engine.run(date(2026, 4, 2))
    assert len(reviews(engine)) == 2


def test_a_raise_beyond_the_automatic_limit_goes_to_approval(store: Store, pack: RulePack) -> None:
    from arflow import CompanyProfile

    b = book(store, limit=100_000, grade="BB")
    b.ledger.apply(
        __import__("arflow").CustomerUpdated(
            event_id="u1",
            occurred_at=at(date(2026, 1, 2)),
            actor="t",
            customer_id="C1",
            profile=CompanyProfile(enterprise_type="state_owned"),
        )
    )
    engine = Engine(b.ledger, pack)
    result = engine.run(date(2026, 3, 2))
    c = b.ledger.customer("C1")
    # the grade and terms are applied; the limit (100000 -> 300000, +200%) waits
    assert (c.credit.grade, c.credit.payment_terms_days) == ("AAA", 90)
    assert c.credit.credit_limit == Money.of(100_000, "CNY")
    (ask,) = [d for d in result.plan.decisions if d.kind == "approval"]
    assert ask.subject_kind == "customer" and ask.why["approvers"] == ["credit_committee"]
    assert ask.why["proposed_limit"] == str(Money.of(300_000, "CNY"))
    assert ask.reason and "20%" in ask.reason
    # a person approves: a review with a reviewer applies the raise
    engine.handle(
        CreditReviewed(
            event_id="ok1",
            occurred_at=at(date(2026, 3, 3)),
            actor="li.wei",
            customer_id="C1",
            reviewed_on=date(2026, 3, 3),
            grade="AAA",
            credit_limit=Money.of(300_000, "CNY"),
            reviewer="li.wei",
            comment="bank reference checked",
        )
    )
    assert b.ledger.customer("C1").credit.credit_limit == Money.of(300_000, "CNY")
    last = b.ledger.audit_trail("customer", "C1")[-1]
    assert "by li.wei" in last.summary and "bank reference checked" in last.summary


def test_a_raise_within_the_automatic_limit_is_applied(store: Store, pack: RulePack) -> None:
    b = book(store, limit=90_000, grade="C")
    b.ledger.apply(
        __import__("arflow").CustomerUpdated(
            event_id="u1",
            occurred_at=at(date(2026, 1, 2)),
            actor="t",
            customer_id="C1",
            profile=__import__("arflow").CompanyProfile(enterprise_type="private"),
        )
    )
    engine = Engine(b.ledger, pack)
    result = engine.run(date(2026, 3, 2))
    assert not [d for d in result.plan.decisions if d.kind == "approval"]
    assert b.ledger.customer("C1").credit.credit_limit == Money.of(100_000, "CNY")


def test_an_unknown_grade_is_refused_by_the_engine(store: Store, pack: RulePack) -> None:
    b = book(store)
    engine = Engine(b.ledger, pack)
    event = CreditReviewed(
        event_id="x1",
        occurred_at=at(date(2026, 3, 3)),
        actor="t",
        customer_id="C1",
        reviewed_on=date(2026, 3, 3),
        grade="A",  # this pack's grades are AAA, BB, C
        reviewer="t",
    )
    before = b.ledger.customer("C1")
    with pytest.raises(UnknownGrade, match="AAA, BB, C"):
        engine.handle(event)
    assert b.ledger.customer("C1") == before
    # nothing applied: the only record of x1 is the refused attempt (docs/credit.md)
    tried = [a for a in b.ledger.audit_trail("customer", "C1") if a.event_id == "x1"]
    assert [(a.event_type, a.refused) for a in tried] == [
        ("CreditReviewed:refused", "UnknownGrade")
    ]


def test_a_review_needs_a_score_or_a_reviewer_and_a_well_formed_grade() -> None:
    base = {
        "occurred_at": at(date(2026, 3, 3)),
        "actor": "t",
        "customer_id": "C1",
        "reviewed_on": date(2026, 3, 3),
    }
    with pytest.raises(Exception, match="score or from a reviewer"):
        CreditReviewed(grade="A", **base)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="grade"):
        CreditReviewed(grade="", reviewer="t", **base)  # type: ignore[arg-type]
    e = CreditReviewed(
        grade="1",
        score=Decimal("72.5"),
        factors=(FactorPoints(fact="x", points=Decimal(3)),),
        **base,
    )  # type: ignore[arg-type]
    assert parse_event(e.model_dump_json()) == e
    with pytest.raises(ValidationError):
        parse_event(e.model_dump_json().replace('"grade":"1"', '"grade":"bad grade"'))


def test_grades_one_to_five_in_the_ledger_and_the_schema(store: Store, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        PACK.replace("AAA", "1").replace("grade: BB", "grade: 3").replace("grade: C,", "grade: 5,")
    )
    pack = load_pack(tmp_path)
    assert pack.scoring is not None
    assert [g.grade for g in pack.scoring.grades] == ["1", "3", "5"]
    b = book(store, grade="3")
    Engine(b.ledger, pack).run(date(2026, 3, 2))
    assert b.ledger.customer("C1").credit.grade == "5"


def test_the_docs_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).parent.parent / "docs" / "grades.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/grades.md", "exec"), {})
    out = capsys.readouterr().out
    assert "BB 100,000.00 CNY 30 2026-03-02" in out
    assert "score 30 (customer.enterprise_type 30)" in out


def contract_signed(cid: str, days: int) -> object:
    from arflow import Contract, ContractSigned, DueRule, PaymentNode

    return ContractSigned(
        event_id=f"sign-{cid}",
        occurred_at=at(date(2026, 3, 5)),
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


def test_contract_terms_longer_than_the_grade_allows_go_to_approval(
    store: Store, tmp_path: Path
) -> None:
    # a pack naming no terms tier but its terms_approvers: the approval goes to them
    (tmp_path / "pack.yaml").write_text(PACK + "  terms_approvers: [finance_manager]\n")
    pack = load_pack(tmp_path)
    b = book(store, grade="BB", terms=30)
    engine = Engine(b.ledger, pack)
    _, ds = engine.handle(contract_signed("K1", 120))  # type: ignore[arg-type]
    (d,) = [d for d in ds if d.kind == "approval"]
    assert (d.rule, d.subject_kind, d.subject_id) == ("contract-terms", "contract", "K1")
    assert d.why["nodes"] == {"n2": 120} and d.why["allowed_days"] == 30
    assert d.reason and "grade BB allows (30 days): n2 120 days" in d.reason
    assert engine.store.decision("approval:contract-terms:K1") is not None
    # within the grade's terms: no approval
    _, ds = engine.handle(contract_signed("K2", 30))  # type: ignore[arg-type]
    assert not [d for d in ds if d.kind == "approval"]


def test_an_invoice_without_terms_takes_the_reviewed_grade_terms(
    store: Store, pack: RulePack
) -> None:
    from arflow import CompanyProfile, CustomerUpdated, InvoiceIssued

    b = book(store, terms=30)
    b.ledger.apply(
        CustomerUpdated(
            event_id="u1",
            occurred_at=at(date(2026, 1, 2)),
            actor="t",
            customer_id="C1",
            profile=CompanyProfile(enterprise_type="state_owned"),
        )
    )
    Engine(b.ledger, pack).run(date(2026, 3, 2))  # grade AAA: 90 days
    b.ledger.apply(
        InvoiceIssued(
            event_id="i1",
            occurred_at=at(date(2026, 3, 3)),
            actor="t",
            number="I9",
            customer_id="C1",
            issue_date=date(2026, 3, 3),
            amount=Money.of(1000, "CNY"),
        )
    )
    assert b.ledger.receivable("I9").due_date == date(2026, 6, 1)


def test_the_pack_checks_grades_and_approvers(tmp_path: Path) -> None:
    from arflow import RuleLoadError

    (tmp_path / "pack.yaml").write_text(
        PACK.replace("raise_approvers: [credit_committee]", "raise_approvers: [nobody]")
        + """
ladders:
  - id: l1
    exempt_grades: [A]
    steps:
      - {id: s1, at: due, level: 1, actions: [{type: risk_flag, level: low}]}
"""
    )
    with pytest.raises(RuleLoadError) as err:
        load_pack(tmp_path)
    text = str(err.value)
    assert "unknown role 'nobody'" in text
    assert "unknown grade 'A' (the pack's: AAA, BB, C)" in text
    (tmp_path / "pack.yaml").write_text(PACK.replace("grade: BB", "grade: AAA"))
    with pytest.raises(RuleLoadError, match="grade 'AAA' is defined twice"):
        load_pack(tmp_path)


def test_a_customer_update_to_an_unknown_grade_is_refused(store: Store, pack: RulePack) -> None:
    from arflow import CreditProfile, CustomerUpdated

    b = book(store, grade="BB")
    engine = Engine(b.ledger, pack)
    with pytest.raises(UnknownGrade):
        engine.handle(
            CustomerUpdated(
                event_id="u9",
                occurred_at=at(date(2026, 3, 3)),
                actor="erp",
                customer_id="C1",
                credit=CreditProfile(grade="B"),
            )
        )
    assert b.ledger.customer("C1").credit.grade == "BB"


def test_a_held_review_is_applied_when_released(store: Store, tmp_path: Path) -> None:
    (tmp_path / "pack.yaml").write_text(
        PACK.replace("settings: {send_window: null}", "settings: {send_window: null, review: true}")
    )
    b = book(store, limit=100_000, grade="BB")
    engine = Engine(b.ledger, load_pack(tmp_path))
    engine.run(date(2026, 3, 2))
    assert b.ledger.customer("C1").credit.reviewed_on is None  # held, not applied
    (held,) = [d for d in engine.proposal() if d.kind == "credit_review"]
    engine.release([held.key], at=at(date(2026, 3, 3)))
    credit = b.ledger.customer("C1").credit
    # 10 points: grade C, limit 0 (a cut is never held for approval)
    assert (credit.grade, credit.reviewed_on) == ("C", date(2026, 3, 2))
    assert credit.credit_limit == Money.of(0, "CNY")


def test_no_review_raises_a_limit_beyond_the_automatic_share(tmp_path: Path) -> None:
    """Whatever the current limit and the score: after a review, the limit is the scored
    one only if that is a cut or within max_auto_raise; otherwise it is unchanged and an
    approval is asked for."""
    from hypothesis import given
    from hypothesis import strategies as st

    from arflow import CompanyProfile, CustomerUpdated

    (tmp_path / "pack.yaml").write_text(PACK)
    pack = load_pack(tmp_path)

    @given(
        limit=st.integers(min_value=0, max_value=1_000_000),
        kind=st.sampled_from([None, "state_owned", "listed", "private"]),
    )
    def check(limit: int, kind: str | None) -> None:
        b = book("memory://", limit=limit)  # type: ignore[arg-type]
        if kind is not None:
            b.ledger.apply(
                CustomerUpdated(
                    event_id="u1",
                    occurred_at=at(date(2026, 1, 2)),
                    actor="t",
                    customer_id="C1",
                    profile=CompanyProfile(enterprise_type=kind),  # type: ignore[arg-type]
                )
            )
        result = Engine(b.ledger, pack).run(date(2026, 3, 2))
        scored = result.plan.decisions[0].why["credit_limit"]
        now = b.ledger.customer("C1").credit.credit_limit
        asked = [d for d in result.plan.decisions if d.kind == "approval"]
        assert now is not None
        if Decimal(scored) > Decimal(limit) * Decimal("1.2"):
            assert now.amount == limit and len(asked) == 1
        else:
            assert now.amount == Decimal(scored) and not asked

    check()
