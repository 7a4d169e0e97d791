"""Review before sending as a process (issue 14, item 6): the proposal belongs to a holder
of ``settings.review_role``, who sees it whole, edits a message's text or send date within
bounds, drops a line, holds a customer and releases it; each action audited, each bad
action refused with nothing changed, and released messages sent once, as edited."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arflow import (
    Contact,
    CreditProfile,
    Customer,
    CustomerRegistered,
    Dispatcher,
    Ledger,
    MemoryAdapter,
    Money,
    Person,
    PersonAdded,
    PersonLeft,
    Store,
)
from arflow.cli import main
from arflow.engine import Engine
from arflow.errors import (
    DateOutOfRange,
    IllegalTransition,
    NotAuthorized,
    NotReviewer,
    RuleLoadError,
    UnknownObject,
    ValidationError,
)
from arflow.outbox import micros
from arflow.rules.loader import load_pack
from arflow.store.base import dump_book
from arflow.store.sql import SqlStore
from arflow.testing import BookBuilder

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
DAY = date(2026, 3, 6)  # a Friday: the due day of the invoices below
AT = datetime(2026, 3, 6, 10, tzinfo=UTC)
REVIEWER, CLERK, GONE = "P-100", "P-200", "P-300"
_PACKS: dict[str, Any] = {}
_PACK_DIRS: dict[str, Path] = {}


def _pack(review_role: str | None = "ar_reviewer") -> Any:
    """The default pack in review mode, its proposal owned by ``review_role`` holders."""
    key = str(review_role)
    if key not in _PACKS:
        dest = Path(tempfile.mkdtemp(prefix="arflow-review-")) / "pack"
        shutil.copytree(RULES, dest)
        f = dest / "pack.yaml"
        role = f"\n  review_role: {review_role}" if review_role else ""
        f.write_text(
            f.read_text(encoding="utf-8").replace("review: false", "review: true" + role),
            encoding="utf-8",
        )
        _PACKS[key] = load_pack(dest)
        _PACK_DIRS[key] = dest
    return _PACKS[key]


def _customer(b: BookBuilder, cid: str) -> None:
    b.apply(
        CustomerRegistered(
            event_id=f"reg-{cid}",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="t",
            customer=Customer(
                id=cid,
                name=f"Customer {cid}",
                salesperson="li.wei",
                contacts=[
                    Contact(
                        name="王芳",
                        email=f"ap@{cid.lower()}.example",
                        locale="zh_CN",
                        timezone="Asia/Shanghai",
                    )
                ],
                credit=CreditProfile(
                    grade="B", credit_limit=Money.of(100_000, "CNY"), payment_terms_days=30
                ),
            ),
        )
    )


def _person(b: BookBuilder, pid: str, *roles: str) -> None:
    b.apply(
        PersonAdded(
            event_id=f"person-{pid}",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="hr",
            person=Person(
                id=pid,
                name=pid,
                roles=roles,
                addresses={"email": f"{pid.lower()}@example.com"},
            ),
        )
    )


def _book(store: Store, customers: tuple[str, ...] = ("C1", "C2")) -> tuple[BookBuilder, Engine]:
    """Customers with two invoices each, due on DAY; a run of DAY held for review."""
    b = BookBuilder(store)
    _person(b, REVIEWER, "ar_reviewer")
    _person(b, CLERK, "finance")
    _person(b, GONE, "ar_reviewer")
    b.apply(
        PersonLeft(
            event_id="left",
            occurred_at=datetime(2026, 2, 1, tzinfo=UTC),
            actor="hr",
            person_id=GONE,
            left_on=date(2026, 2, 1),
        )
    )
    for cid in customers:
        _customer(b, cid)
        b.invoice(f"{cid}-I1", cid, 1_000, issued="2026-01-31", due=DAY)
        b.invoice(f"{cid}-I2", cid, 2_000, issued="2026-01-31", due=DAY)
    engine = Engine(b.ledger, _pack())
    engine.run(DAY, first_run=True)
    return b, engine


def _state(store: Store) -> Any:
    return (
        dump_book(store),
        sorted((r.key, r.status, r.body) for r in store.decisions()),
        sorted((r.key, r.body, r.next_at) for r in store.outbox()),
        store.audit_count(),
    )


def _email(engine: Engine, cid: str) -> Any:
    (c,) = engine.proposal_view(cid)
    (m,) = [m for m in c.messages if m.channel == "email"]
    return m


@pytest.fixture
def book(store: Store) -> tuple[BookBuilder, Engine]:
    return _book(store)


def test_the_proposal_is_shown_whole_by_customer_with_its_messages(
    book: tuple[BookBuilder, Engine],
) -> None:
    _b, engine = book
    view = engine.proposal_view()
    assert [c.customer_id for c in view] == ["C1", "C2"]
    c1 = view[0]
    assert [d.subject_id for d in c1.lines] == ["C1-I1", "C1-I2"]
    assert sorted(m.channel for m in c1.messages) == ["email", "task"]
    email = _email(engine, "C1")
    assert "C1-I1" in email.text and "C1-I2" in email.text and email.to == ("ap@c1.example",)
    assert email.send_at == datetime(2026, 3, 6, 1, tzinfo=UTC)  # 09:00 in Shanghai
    assert set(email.lines) == {d.key for d in c1.lines}
    assert json.loads(json.dumps(c1.as_dict()))["messages"][0]["lines"]
    assert engine.store.outbox() == []  # nothing goes out while held


def test_an_edited_message_goes_out_as_edited_and_the_edit_is_audited(
    book: tuple[BookBuilder, Engine],
) -> None:
    _b, engine = book
    before = _email(engine, "C1")
    after = engine.edit_message(
        before.key, by=REVIEWER, at=AT, subject="Two invoices due", text="Dear Ms Wang, ..."
    )
    assert (after.subject, after.text, after.edited) == (
        "Two invoices due",
        "Dear Ms Wang, ...",
        True,
    )
    assert _email(engine, "C1") == after
    (audit,) = engine.store.audit_trail("message", before.key)
    assert (audit.event_type, audit.actor) == ("ProposalEdited", REVIEWER)
    change = json.loads(audit.summary)
    assert change["before"]["text"] == before.text and change["after"]["text"] == after.text
    counts = engine.release(actor=REVIEWER, at=AT)
    assert counts == {"released": 4, "dropped": 0, "held": 0, "skipped": 0}
    rec = engine.store.outbox_item(before.key)
    assert rec is not None
    sent = json.loads(rec.body)
    assert (sent["subject"], sent["text"]) == ("Two invoices due", "Dear Ms Wang, ...")
    assert sent["data"]["edited_by"] == REVIEWER
    assert "Dear" not in json.loads(engine.store.outbox_item(_key_of(engine, "C2")).body)["text"]
    for d in before.lines:
        trail = engine.store.audit_trail("decision", d)
        assert [(a.event_type, a.actor, a.after_state) for a in trail] == [
            ("ProposalReleased", REVIEWER, "released")
        ]
    # the receivables were dunned as the run decided
    assert engine.ledger.receivable("C1-I1").dunning_level == 1


def _key_of(engine: Engine, cid: str) -> str:
    keys = [r.key for r in engine.store.outbox() if r.customer_id == cid and r.channel == "email"]
    assert len(keys) == 1
    return keys[0]


def test_a_send_date_on_a_weekend_moves_to_the_next_window(
    book: tuple[BookBuilder, Engine],
) -> None:
    _b, engine = book
    m = _email(engine, "C1")
    # Saturday 7 March: the window opens again on Monday 9 March, 09:00 in Shanghai
    after = engine.edit_message(m.key, by=REVIEWER, at=AT, send_on=date(2026, 3, 7))
    assert after.send_at == datetime(2026, 3, 9, 1, tzinfo=UTC) and after.text == m.text
    engine.release(actor=REVIEWER, at=AT)
    rec = engine.store.outbox_item(m.key)
    assert rec is not None and rec.next_at == micros(datetime(2026, 3, 9, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("on", "why"),
    [
        (date(2026, 3, 5), "before the run date"),
        # formal-notice fires on due+1d (7 March): a later date would overtake it
        (date(2026, 3, 8), "after the step's next occurrence"),
    ],
)
def test_a_send_date_out_of_bounds_is_refused_and_changes_nothing(
    book: tuple[BookBuilder, Engine], on: date, why: str
) -> None:
    _b, engine = book
    m = _email(engine, "C1")
    before = _state(engine.store)
    with pytest.raises(DateOutOfRange, match=r"2026-03-06 \.\. 2026-03-07"):
        engine.edit_message(m.key, by=REVIEWER, at=AT, send_on=on)
    assert _state(engine.store) == before, why


def test_the_pack_bound_caps_the_send_date(store: Store) -> None:
    b = BookBuilder(store)
    _person(b, REVIEWER, "ar_reviewer")
    _customer(b, "C1")
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-02-20")
    engine = Engine(b.ledger, _pack())
    engine.run(date(2026, 3, 23), first_run=True)  # due+31d: escalate-31, next at due+91d
    (c,) = engine.proposal_view()
    (m,) = [x for x in c.messages if any("escalate-31" in k for k in x.lines)]
    with pytest.raises(DateOutOfRange, match=r"2026-03-23 \.\. 2026-03-30"):
        engine.edit_message(m.key, by=REVIEWER, at=AT, send_on=date(2026, 3, 31))
    assert engine.edit_message(m.key, by=REVIEWER, at=AT, send_on=date(2026, 3, 30)).edited


@pytest.mark.parametrize("who", [CLERK, GONE, "nobody"])
def test_only_a_holder_of_the_review_role_may_act(
    book: tuple[BookBuilder, Engine], who: str
) -> None:
    _b, engine = book
    m = _email(engine, "C1")
    before = _state(engine.store)
    for act in (
        lambda: engine.edit_message(m.key, by=who, at=AT, text="x"),
        lambda: engine.drop_lines([m.lines[0]], by=who, at=AT),
        lambda: engine.hold_customer("C1", by=who, at=AT),
        lambda: engine.release(actor=who, at=AT),
        lambda: engine.release(),  # the engine itself is no reviewer either
    ):
        with pytest.raises(NotReviewer, match="ar_reviewer") as info:
            act()
        assert isinstance(info.value, NotAuthorized)
    assert _state(engine.store) == before


def test_unknown_keys_are_refused_and_change_nothing(book: tuple[BookBuilder, Engine]) -> None:
    _b, engine = book
    before = _state(engine.store)
    with pytest.raises(UnknownObject, match="message 'nope'"):
        engine.edit_message("nope", by=REVIEWER, at=AT, text="x")
    with pytest.raises(UnknownObject, match="decision 'nope'"):
        engine.drop_lines(["nope"], by=REVIEWER, at=AT)
    with pytest.raises(UnknownObject, match="decision 'nope'"):
        engine.release(["nope"], actor=REVIEWER, at=AT)
    with pytest.raises(UnknownObject, match="customer 'C9'"):
        engine.hold_customer("C9", by=REVIEWER, at=AT)
    with pytest.raises(ValidationError, match="give a subject"):
        engine.edit_message(_email(engine, "C1").key, by=REVIEWER, at=AT)
    # a line carrying two messages (the e-mail and the call task) must name one
    line = engine.proposal()[0].key
    with pytest.raises(ValidationError, match="carries 2 messages"):
        engine.edit_message(line, by=REVIEWER, at=AT, text="x")
    assert _state(engine.store) == before


def test_an_edit_after_release_is_refused(book: tuple[BookBuilder, Engine]) -> None:
    _b, engine = book
    m = _email(engine, "C1")
    engine.release(actor=REVIEWER, at=AT)
    before = _state(engine.store)
    with pytest.raises(IllegalTransition, match="cannot 'edit' from state 'released'"):
        engine.edit_message(m.key, by=REVIEWER, at=AT, text="too late")
    with pytest.raises(IllegalTransition, match="cannot 'edit' from state 'planned'"):
        engine.edit_message(m.lines[0], by=REVIEWER, at=AT, text="too late")
    with pytest.raises(IllegalTransition, match="cannot 'drop' from state 'planned'"):
        engine.drop_lines([m.lines[0]], by=REVIEWER, at=AT)
    assert _state(engine.store) == before


def test_a_dropped_line_is_never_sent(book: tuple[BookBuilder, Engine]) -> None:
    _b, engine = book
    line = next(d.key for d in engine.proposal() if d.subject_id == "C1-I2")
    assert engine.drop_lines([line], by=REVIEWER, at=AT) == 1
    assert engine.explain(line)["status"] == "dropped"
    (audit,) = engine.store.audit_trail("decision", line)
    assert (audit.event_type, audit.actor, audit.before_state, audit.after_state) == (
        "ProposalDropped",
        REVIEWER,
        "held",
        "dropped",
    )
    assert "C1-I2" not in _email(engine, "C1").text
    engine.release(actor=REVIEWER, at=AT)
    sent = [json.loads(r.body) for r in engine.store.outbox()]
    assert all(line not in m["decision_keys"] for m in sent)
    assert engine.ledger.receivable("C1-I2").dunning_level == 0
    with pytest.raises(IllegalTransition, match="cannot 'release' from state 'dropped'"):
        engine.release([line], actor=REVIEWER, at=AT)


def test_an_edit_after_a_dropped_line_replaces_the_edit_before(
    book: tuple[BookBuilder, Engine],
) -> None:
    _b, engine = book
    m = _email(engine, "C1")
    engine.edit_message(m.key, by=REVIEWER, at=AT, subject="Due today", text="first")
    engine.drop_lines([m.lines[0]], by=REVIEWER, at=AT)
    shrunk = _email(engine, "C1")  # one line fewer: another key, the edit still on it
    assert shrunk.key != m.key and (shrunk.subject, shrunk.text) == ("Due today", "first")
    again = engine.edit_message(shrunk.key, by=REVIEWER, at=AT, text="second")
    assert (again.subject, again.text) == ("Due today", "second")
    engine.release(actor=REVIEWER, at=AT)
    rec = engine.store.outbox_item(shrunk.key)
    assert rec is not None
    assert (json.loads(rec.body)["subject"], json.loads(rec.body)["text"]) == (
        "Due today",
        "second",
    )


def test_a_held_customer_stays_held_until_named_or_let_go(
    book: tuple[BookBuilder, Engine],
) -> None:
    _b, engine = book
    assert engine.hold_customer("C2", by=REVIEWER, at=AT) == 2
    assert [c.on_hold for c in engine.proposal_view()] == [False, True]
    with pytest.raises(IllegalTransition, match="cannot 'hold'"):
        engine.hold_customer("C2", by=REVIEWER, at=AT)
    assert engine.release(actor=REVIEWER, at=AT)["held"] == 2
    assert {d.customer_id for d in engine.proposal()} == {"C2"}
    (audit,) = engine.store.audit_trail("proposal", "C2")
    assert (audit.event_type, audit.actor, audit.after_state) == (
        "ProposalHeld",
        REVIEWER,
        "on hold",
    )
    engine.hold_customer("C2", by=REVIEWER, at=AT, lift=True)
    assert engine.release(actor=REVIEWER, at=AT)["released"] == 2
    assert engine.proposal() == []


def test_releasing_twice_and_running_again_send_once(book: tuple[BookBuilder, Engine]) -> None:
    _b, engine = book
    assert engine.run(DAY).recorded == 0  # a run repeated while held adds nothing
    assert len(engine.proposal()) == 4
    keys = [d.key for d in engine.proposal() if d.customer_id == "C1"]
    assert engine.release(keys, actor=REVIEWER, at=AT)["released"] == 2
    queued = _state(engine.store)[2]
    assert engine.release(keys, actor=REVIEWER, at=AT)["released"] == 0
    assert engine.run(DAY).recorded == 0
    assert _state(engine.store)[2] == queued
    engine.release(actor=REVIEWER, at=AT)
    engine.release(actor=REVIEWER, at=AT)
    sink = MemoryAdapter()
    Dispatcher(engine.store, sink, clock=lambda: datetime(2026, 3, 31, tzinfo=UTC)).run()
    assert sorted(m.key for m in sink.sent) == sorted({m.key for m in sink.sent})
    assert len(sink.sent) == 4  # an e-mail and a call task per customer


def test_an_edited_message_is_released_whole(book: tuple[BookBuilder, Engine]) -> None:
    _b, engine = book
    m = _email(engine, "C1")
    engine.edit_message(m.key, by=REVIEWER, at=AT, text="edited")
    before = _state(engine.store)
    with pytest.raises(ValidationError, match="release its lines together"):
        engine.release([m.lines[0]], actor=REVIEWER, at=AT)
    assert _state(engine.store) == before
    engine.release(list(m.lines), actor=REVIEWER, at=AT)
    rec = engine.store.outbox_item(m.key)
    assert rec is not None and json.loads(rec.body)["text"] == "edited"


def test_a_later_runs_lines_do_not_merge_into_an_edited_message(store: Store) -> None:
    b, engine = _book(store, ("C1",))
    m = _email(engine, "C1")
    engine.edit_message(m.key, by=REVIEWER, at=AT, text="edited")
    b.invoice("C1-I3", "C1", 3_000, issued="2026-02-09", due="2026-03-09")
    engine.run(date(2026, 3, 9))
    (c,) = engine.proposal_view()
    emails = [x for x in c.messages if x.channel == "email"]
    assert [x.key for x in emails if x.edited] == [m.key]
    assert any("C1-I3" in x.text for x in emails if not x.edited)


def test_a_review_role_needs_review_mode(tmp_path: Path) -> None:
    dest = tmp_path / "pack"
    shutil.copytree(RULES, dest)
    f = dest / "pack.yaml"
    f.write_text(
        f.read_text(encoding="utf-8").replace("review: false", "review: false\n  review_role: x1"),
        encoding="utf-8",
    )
    with pytest.raises(RuleLoadError, match="review_role"):
        load_pack(dest)


def test_without_a_review_role_anyone_may_release(store: Store) -> None:
    b = BookBuilder(store)
    _customer(b, "C1")
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DAY)
    engine = Engine(b.ledger, _pack(None))
    engine.run(DAY, first_run=True)
    assert engine.release(actor="ar.clerk")["released"] == 1


# -- the property -----------------------------------------------------------------------------

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["edit", "drop", "hold", "lift", "release", "release_some"]),
        st.integers(0, 7),
        st.integers(0, 7),
    ),
    max_size=8,
)


#: sequences per backend: PostgreSQL makes a schema per sequence, and a few sequences show
#: that it agrees; memory and SQLite search wider
SEQUENCES = {"memory": 15, "sqlite": 15, "postgres": 6}


def test_held_messages_are_sent_at_most_once_and_exactly_the_released_ones(
    backend: str, store_factory: Callable[[], Store]
) -> None:
    @settings(
        max_examples=SEQUENCES[backend],
        deadline=None,
        # the factory gives a fresh store to each example
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(ops=_OPS)
    def check(ops: list[tuple[str, int, int]]) -> None:
        store = store_factory()
        try:
            _check_sequence(store, ops)
        finally:
            store.close()  # the factory closes it again at the end, which is harmless

    check()


def test_two_releases_at_once_carry_out_each_line_once(tmp_path: Path) -> None:
    """Two processes releasing the same proposal at once (two stores on one SQLite file):
    writers are serialised and each release reads the proposal under the lock."""
    url = f"sqlite:///{tmp_path / 'book.db'}"
    first = SqlStore(url)
    second = SqlStore(url)
    try:
        _book(first)
        engines = [Engine(Ledger(s), _pack()) for s in (first, second)]
        results: list[dict[str, int]] = []
        threads = [
            threading.Thread(target=lambda e=e: results.append(e.release(actor=REVIEWER, at=AT)))
            for e in engines
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(r["released"] for r in results) == [0, 4]
        for d in first.decisions():
            if d.status != "planned":
                continue
            trail = first.audit_trail("decision", d.key)
            assert [a.event_type for a in trail] == ["ProposalReleased"]
        assert len(first.outbox()) == 4
    finally:
        first.close()
        second.close()


def _check_sequence(store: Store, ops: list[tuple[str, int, int]]) -> None:
    _b, engine = _book(store, ("C1", "C2", "C3"))
    customers = ["C1", "C2", "C3"]
    texts: dict[str, str] = {}  # message key -> the text the reviewer gave it last
    for op, i, j in ops:
        held = engine.proposal()
        before = _state(store)
        try:
            if op == "edit":
                msgs = [m for c in engine.proposal_view() for m in c.messages]
                if msgs:
                    m = msgs[i % len(msgs)]
                    engine.edit_message(m.key, by=REVIEWER, at=AT, text=f"edited {i}-{j}")
                    texts[m.key] = f"edited {i}-{j}"
            elif op == "drop" and held:
                engine.drop_lines([held[i % len(held)].key], by=REVIEWER, at=AT)
            elif op in ("hold", "lift"):
                engine.hold_customer(customers[i % 3], by=REVIEWER, at=AT, lift=op == "lift")
            elif op == "release":
                engine.release(actor=REVIEWER, at=AT)
            elif op == "release_some" and held:
                engine.release(
                    [held[i % len(held)].key, held[j % len(held)].key], actor=REVIEWER, at=AT
                )
        except (IllegalTransition, ValidationError):
            assert _state(store) == before  # a refused action changes nothing
    # let everything go, twice
    for cid in customers:
        if cid in {c.customer_id for c in engine.proposal_view() if c.on_hold}:
            engine.hold_customer(cid, by=REVIEWER, at=AT, lift=True)
    engine.release(actor=REVIEWER, at=AT)
    engine.release(actor=REVIEWER, at=AT)
    assert engine.proposal() == []
    status = {r.key: r.status for r in store.decisions()}
    sent: dict[tuple[str, str], int] = {}
    for r in store.outbox():
        if r.key.endswith("~cc") or r.status == "dead":
            continue
        m = json.loads(r.body)
        for k in m["decision_keys"]:
            sent[(k, m["template"])] = sent.get((k, m["template"]), 0) + 1
        if r.key in texts:
            assert m["text"] == texts[r.key]
    assert all(n == 1 for n in sent.values())  # at most once per line and message
    released = {k for k, s in status.items() if s == "planned"}
    assert {k for k, _t in sent} == released
    assert not released & {k for k, s in status.items() if s == "dropped"}
    # each released line went out as both its messages: the e-mail and the call task
    assert all((k, t) in sent for k in released for t in ("reminder_due", "call_on_due_day"))


def test_the_proposal_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'book.db'}"
    store = SqlStore(db)
    try:
        _book(store)
    finally:
        store.close()
    rules = ["--db", db, "--rules", str(_PACK_DIRS["ar_reviewer"])]
    assert main(["proposal", "show", *rules, "--json", "--customer", "C1"]) == 0
    (c1,) = json.loads(capsys.readouterr().out)
    (email,) = [m for m in c1["messages"] if m["channel"] == "email"]
    assert main(["proposal", "show", *rules]) == 0
    assert "(on hold)" not in capsys.readouterr().out
    text = tmp_path / "text.txt"
    text.write_text("Dear Ms Wang, two invoices are due today.", encoding="utf-8")
    edit = ["proposal", "edit", email["key"], *rules, "--text-file", str(text)]
    assert main([*edit, "--as", CLERK]) == 4  # not a reviewer: docs/cli.md
    assert main([*edit, "--as", REVIEWER, "--send-on", "2026-03-08"]) == 4  # out of bounds
    assert main([*edit, "--as", REVIEWER, "--subject", "Due today"]) == 0
    assert main(["proposal", "edit", "nope", *rules, "--as", REVIEWER, "--subject", "x"]) == 3
    assert main(["proposal", "hold", "C2", *rules, "--as", REVIEWER]) == 0
    assert main(["proposal", "drop", "nope", *rules, "--as", REVIEWER]) == 3
    assert main(["proposal", "release", *rules]) == 4  # who releases?
    capsys.readouterr()
    assert main(["proposal", "release", *rules, "--as", REVIEWER]) == 0
    assert capsys.readouterr().out.strip() == "2 released, 0 dropped, 2 held, 0 skipped"
    assert main(["proposal", "edit", email["key"], *rules, "--as", REVIEWER, "--subject", "x"]) == 4
    store = SqlStore(db)
    try:
        rec = store.outbox_item(email["key"])
        assert rec is not None
        sent = json.loads(rec.body)
        assert (sent["subject"], sent["text"]) == (
            "Due today",
            "Dear Ms Wang, two invoices are due today.",
        )
    finally:
        store.close()


def test_the_python_blocks_of_the_review_page_run(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/review.md is one story: its blocks run in order, in one namespace."""
    text = (RULES.parent.parent / "docs" / "review.md").read_text("utf-8")
    scope: dict[str, Any] = {}
    for i, block in enumerate(text.split("```python\n")[1:]):
        code = block.split("```", 1)[0]
        exec(compile(code, f"docs/review.md block {i + 1}", "exec"), scope)
    out = capsys.readouterr().out
    assert "outside 2026-03-06 .. 2026-03-07" in out
    assert "NotReviewer" in out and "UnknownObject" in out and "IllegalTransition" in out
    assert "P-100 ProposalEdited Two invoices due today" in out
