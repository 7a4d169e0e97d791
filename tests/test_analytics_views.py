"""The project-contract-receivable view and the watch lists, on the book of
``docs/analytics_views.md`` (every number computed by hand there), on every store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arflow import Ledger, Store
from arflow.analytics import contract_view, falling_due, high_risk, project_view
from arflow.engine import Engine
from arflow.errors import DateOutOfRange, UnknownObject, ValidationError
from arflow.rules.loader import RulePack, load_pack
from arflow.strategies import event_sequences
from tests.analytics_book import AS_OF, build, cny, usd

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_pack(RULES)


def test_contract_view_by_hand(store: Store, pack: RulePack) -> None:
    build(store)
    v = contract_view(store, "K1", date(2026, 3, 23), pack=pack)
    assert (v.customer_id, v.customer_name, v.project_id, v.title) == (
        "C1",
        "Acme",
        "PRJ1",
        "Line 3 upgrade",
    )
    assert v.amount == cny(5000)
    assert (v.invoiced, v.collected, v.open, v.overdue, v.unbilled) == (
        cny(1500),
        cny(100),
        cny(1400),
        cny(900),
        cny(3500),
    )
    assert [n.node_id for n in v.nodes] == ["N1", "N2", "N3"]
    n1, n2, n3 = v.nodes
    assert (n1.label, n1.planned, n1.invoiced, n1.collected, n1.overdue, n1.due_date) == (
        "advance",
        cny(1000),  # 20% of 5,000
        cny(1000),
        cny(100),
        cny(900),
        date(2026, 3, 20),  # issued 18 Feb, net 30
    )
    assert n1.receivable_ids == ("A1",) and n1.milestones == ()
    assert (n2.planned, n2.invoiced, n2.collected, n2.overdue, n2.due_date) == (
        cny(500),
        cny(500),
        cny(0),
        cny(0),
        date(2026, 4, 1),  # 30 days after acceptance on 2 March
    )
    (m1,) = n2.milestones
    assert (m1.id, m1.name, m1.planned_date, m1.actual_date, m1.status) == (
        "M1",
        "acceptance",
        date(2026, 2, 28),
        date(2026, 3, 2),
        "done",
    )
    assert (n3.planned, n3.invoiced, n3.due_date, n3.receivable_ids) == (
        cny(3500),
        cny(0),
        None,
        (),
    )
    assert v.promises == ("P1",) and v.disputes == ()
    # nothing recorded yet: the SMS three days after A1's due date is the next step
    assert v.next_action == (
        "on 2026-03-23: dunning step standard/sms-3 (level 2) for A1, 900.00 CNY open: "
        "sms to customer"
    )


def test_contract_view_as_of_an_earlier_date(store: Store) -> None:
    build(store)
    v = contract_view(Ledger(store), "K1", date(2026, 2, 20))
    # A2 not yet issued, the 100 on A1 not yet received, the promise not yet made
    assert (v.invoiced, v.collected, v.open, v.overdue, v.unbilled) == (
        cny(1000),
        cny(0),
        cny(1000),
        cny(0),
        cny(4000),
    )
    (m1,) = v.nodes[1].milestones
    assert (m1.status, m1.actual_date) == ("planned", None)
    assert v.nodes[1].invoiced == cny(0) and v.nodes[1].due_date is None
    assert v.promises == () and v.next_action is None  # no pack: no next action


def test_next_action_moves_on_after_a_run(store: Store, pack: RulePack) -> None:
    b = build(store)
    engine = Engine(b.ledger, pack)
    engine.run(date(2026, 3, 23))
    v = contract_view(store, "K1", date(2026, 3, 23), pack=engine)  # the engine's pack
    # A1's steps up to the 23rd are recorded; P1 (18 March + 3 days' grace) no longer
    # pauses A2, whose reminder a week before its due date comes first
    assert v.next_action == (
        "on 2026-03-25: dunning step standard/before-due (level 0) for A2, 500.00 CNY open: "
        "email to customer"
    )


def test_next_action_says_why_nothing_is_sent(store: Store, pack: RulePack) -> None:
    b = build(store)
    b.dispute("D2", "A1", on="2026-03-17")  # the whole of A1
    b.dispute("D3", "A2", on="2026-03-17")
    v = contract_view(store, "K1", date(2026, 3, 23), pack=pack)
    assert v.disputes == ("D2", "D3")
    assert v.next_action == (
        "A1 is under dispute: no reminder until it is resolved; "
        "A2 is under dispute: no reminder until it is resolved"
    )
    # on the 16th neither dispute was open yet
    assert contract_view(store, "K1", AS_OF).disputes == ()
    b.resolve("D3", on="2026-03-20")
    assert contract_view(store, "K1", date(2026, 3, 19)).disputes == ("D2", "D3")
    assert contract_view(store, "K1", date(2026, 3, 20)).disputes == ("D2",)
    b.pay("PAY5", "C1", 1400, on="2026-03-24", to=[("A1", 900), ("A2", 500)])
    v = contract_view(store, "K1", date(2026, 3, 24), pack=pack)
    assert v.open == cny(0) and v.collected == cny(1500)
    assert v.next_action == "nothing open to collect"


def test_project_view(store: Store) -> None:
    build(store)
    (v,) = project_view(store, "PRJ1", AS_OF)
    assert v.contract_id == "K1" and v.open == cny(1400) and v.overdue == cny(0)


def test_unknown_contract_and_project(store: Store) -> None:
    build(store)
    with pytest.raises(UnknownObject) as e:
        contract_view(store, "K9", AS_OF)
    assert (e.value.kind, e.value.object_id) == ("contract", "K9")
    with pytest.raises(UnknownObject) as e:
        project_view(store, "PRJ9", AS_OF)
    assert (e.value.kind, e.value.object_id) == ("project", "PRJ9")


def test_falling_due_by_hand(store: Store) -> None:
    build(store)
    w = falling_due(store, AS_OF, days=14)
    assert w.name == "falling_due" and w.as_of == AS_OF
    got = [
        (i.receivable_id, i.customer_name, i.due_date, i.open_balance, i.days, i.dunning_level)
        for i in w.items
    ]
    assert got == [
        ("A1", "Acme", date(2026, 3, 20), cny(900), 4, 0),
        ("U1", "Gamma", date(2026, 3, 25), usd(1000), 9, 0),
        ("B3", "Beta", date(2026, 3, 30), cny(400), 14, 0),
    ]
    assert [i.receivable_id for i in falling_due(store, AS_OF, days=4).items] == ["A1"]
    assert falling_due(store, AS_OF, days=0).items == ()


def test_high_risk_by_hand(store: Store) -> None:
    build(store)
    w = high_risk(store, AS_OF)
    assert [(i.receivable_id, i.days, i.open_balance) for i in w.items] == [
        ("B0", 75, cny(300)),  # 75 days past due (60 or more)
        ("B1", 7, cny(800)),  # its promise was broken
    ]
    b0, b1 = w.items
    assert b0.history == ("2025-12-01 InvoiceIssued: issued 300.00 CNY, due 2025-12-31",)
    assert b0.last_contact is None
    assert b1.history == (
        "2026-02-07 InvoiceIssued: issued 800.00 CNY, due 2026-03-09",
        "2026-03-10 PromiseMade: promised 800.00 CNY by 2026-03-12 (customer)",
        "2026-03-15 PromiseBroken: promise P2 broken",
    )
    assert b1.last_contact == "2026-03-15 PromiseBroken: promise P2 broken"
    # the history stops at the list's date
    early = high_risk(store, date(2026, 3, 14))
    assert [i.receivable_id for i in early.items] == ["B0"]
    assert [i.receivable_id for i in high_risk(store, AS_OF, overdue_days=80).items] == ["B1"]


def test_high_risk_after_a_run_shows_the_reminders(store: Store, pack: RulePack) -> None:
    b = build(store)
    Engine(b.ledger, pack).run(AS_OF)
    w = high_risk(store, AS_OF)
    b0 = next(i for i in w.items if i.receivable_id == "B0")
    assert b0.dunning_level > 0 and b0.risk_level == "high"
    assert b0.last_contact is not None and "DunningStepRecorded: dunning standard/" in (
        b0.last_contact
    )
    assert any("RiskFlagged" in h for h in b0.history)


def test_watch_lists_refuse_bad_bounds(store: Store) -> None:
    build(store)
    for days in (-1, 4000, True):
        with pytest.raises(ValidationError, match="days"):
            falling_due(store, AS_OF, days=days)
    with pytest.raises(ValidationError, match="as_of must be a date"):
        falling_due(store, "2026-03-16", days=1)  # type: ignore[arg-type]
    with pytest.raises(DateOutOfRange):
        high_risk(store, date(9999, 12, 31))
    with pytest.raises(DateOutOfRange):
        contract_view(store, "K1", date(1, 1, 1))
    # the last date of the horizon is a date like any other
    assert contract_view(store, "K1", date(9899, 12, 31)).invoiced == cny(1500)
    with pytest.raises(ValidationError, match="overdue_days"):
        high_risk(store, AS_OF, overdue_days=0)


def test_docs_example_runs() -> None:
    """docs/analytics_views.md's worked example, as written."""
    import re

    text = (RULES.parent.parent / "docs" / "analytics_views.md").read_text("utf-8")
    (block,) = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    exec(compile(block, "docs/analytics_views.md", "exec"), {})


def test_next_action_names_a_dunning_block(store: Store, pack: RulePack) -> None:
    from arflow.events import DunningBlockChanged

    b = build(store)
    for rid in ("A1", "A2"):
        b.apply(
            DunningBlockChanged(
                event_id=f"block-{rid}",
                occurred_at=datetime(2026, 3, 17, 9, tzinfo=UTC),
                actor="finance",
                reason="customer in talks",
                receivable_id=rid,
                blocked=True,
            )
        )
    v = contract_view(store, "K1", date(2026, 3, 23), pack=pack)
    assert v.next_action == (
        "dunning of A1 is blocked (customer in talks); dunning of A2 is blocked (customer in talks)"
    )


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=event_sequences(
        start=date(2025, 6, 1), end=date(2026, 4, 30), n_events=(10, 60), opening=(0, 4)
    ),
    offset=st.integers(0, 360),
    limit=st.integers(1, 6),
)
def test_a_limited_watch_list_is_the_first_of_the_whole(
    store_factory: Callable[[], Store],
    events: list,  # type: ignore[type-arg]
    offset: int,
    limit: int,
) -> None:
    """With a limit, the lists (read a few due days at a time) are the first items of the
    whole lists, and say when they were cut."""
    store = store_factory()
    Ledger(store).apply_all(events)
    day = date(2025, 6, 1) + timedelta(offset)
    for make in (
        lambda **kw: falling_due(store, day, 45, **kw),
        lambda **kw: high_risk(store, day, overdue_days=20, **kw),
    ):
        whole = make()
        assert not whole.cut
        part = make(limit=limit)
        assert part.items == whole.items[:limit]
        assert part.cut or part.items == whole.items
        if len(whole.items) > limit:
            assert part.cut
    with pytest.raises(ValidationError):
        high_risk(store, day, limit=0)


def test_a_report_says_when_a_watch_list_was_cut(store: Store) -> None:
    from arflow.analytics import build_report
    from arflow.report import render_html, report_dict

    build(store)
    whole = build_report(store, AS_OF)
    cut = build_report(store, AS_OF, max_watch=1)
    assert [len(w.items) for w in whole.watch] == [3, 2]
    assert [(len(w.items), w.cut) for w in cut.watch] == [(1, True), (1, True)]
    assert [w.items[0] for w in cut.watch] == [w.items[0] for w in whole.watch]
    assert "first 1 shown" in render_html(cut) and "first 1 shown" not in render_html(whole)
    assert "仅显示前 1 项" in render_html(cut, "zh_CN")
    assert [w["cut"] for w in report_dict(cut)["watch"]] == [True, True]
    with pytest.raises(ValidationError):
        build_report(store, AS_OF, max_watch=0)
