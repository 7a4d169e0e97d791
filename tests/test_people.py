"""The people directory: who arflow addresses inside the company, by id or role, on each
channel, in their locale (issue 12, item 1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from arflow import (
    DuplicateObject,
    Ledger,
    Person,
    PersonAdded,
    PersonLeft,
    PersonUpdated,
    UnknownObject,
    ValidationError,
)
from arflow.testing import d

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _meta(**kw: Any) -> dict[str, Any]:
    return {"occurred_at": AT, "actor": "hr-sync", **kw}


def _person(pid: str = "P-007", **kw: Any) -> Person:
    fields: dict[str, Any] = {
        "id": pid,
        "name": "Li Wei",
        "roles": ("finance",),
        "addresses": {"email": "li.wei@example.cn", "phone": "+86 138 0013 8000", "wecom": "liwei"},
        "locale": "zh_CN",
        "timezone": "Asia/Shanghai",
    }
    return Person.model_validate({**fields, **kw})


# -- the model --------------------------------------------------------------------------------


def test_a_person_reaches_each_channel_at_its_own_address() -> None:
    p = _person()
    assert p.address("email") == "li.wei@example.cn"
    assert p.address("sms") == "+86 138 0013 8000"  # an SMS goes to the phone
    assert p.address("wecom") == "liwei"
    assert p.address("task") == "P-007"  # a task goes to the person's id
    assert p.address("dingtalk") is None
    assert Person.model_validate_json(p.model_dump_json()) == p


@pytest.mark.parametrize(
    ("addresses", "says"),
    [
        ({"email": "li.wei"}, "not an e-mail address"),
        ({"email": "a@x.cn, b@x.cn"}, "one address per contact"),
        ({"phone": "call me"}, "not a phone number"),
        ({"phone": "12"}, "not a phone number"),
        ({"WeCom": "x"}, "lower-case"),
        ({"wecom": "two\nlines"}, r"U\+000A"),
    ],
)
def test_an_address_must_fit_its_channel(addresses: dict[str, str], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        _person(addresses=addresses)


def test_a_person_is_checked_as_a_whole() -> None:
    with pytest.raises(ValueError, match="role"):
        _person(roles=("Finance Dept",))
    with pytest.raises(ValueError, match="time zone"):
        _person(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="own manager"):
        _person(manager="P-007")
    with pytest.raises(ValueError, match="two addresses for email"):
        _person(addresses=[{"channel": "email", "address": "a@x.cn"}] * 2)


# -- events, audit, storage -----------------------------------------------------------------


def test_people_are_added_updated_and_leave_audited(store) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(store)
    ledger.apply(PersonAdded(**_meta(), person=_person("P-001", name="Zhang Min", roles=("ceo",))))
    ledger.apply(PersonAdded(**_meta(), person=_person(manager="P-001")))
    ledger.apply(
        PersonUpdated(
            **_meta(reason="moved to Beijing"),
            person_id="P-007",
            roles=("finance", "sales_manager"),
            addresses={"email": "wei.li@example.cn"},
        )
    )
    p: Person = ledger.get("person", "P-007")
    assert p.roles == ("finance", "sales_manager")
    assert p.address("email") == "wei.li@example.cn"
    assert p.address("sms") is None  # addresses are replaced as a whole
    assert (p.name, p.locale, p.manager) == ("Li Wei", "zh_CN", "P-001")  # kept
    ledger.apply(PersonLeft(**_meta(), person_id="P-007", left_on=d("2026-03-31")))
    assert not ledger.get("person", "P-007").active
    trail = ledger.audit_trail("person", "P-007")
    assert [r.event_type for r in trail] == ["PersonAdded", "PersonUpdated", "PersonLeft"]
    assert trail[1].reason == "moved to Beijing"
    assert trail[1].summary == "updated addresses, roles"
    assert [r.after_state for r in trail] == ["active", "active", "inactive"]
    assert {p.id for p in store.all("person")} == {"P-001", "P-007"}
    # the log replays into the same directory
    again = Ledger("memory://")
    again.replay(store)
    assert again.get("person", "P-007") == ledger.get("person", "P-007")


def test_bad_person_events_change_nothing(store) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(store)
    ledger.apply(PersonAdded(**_meta(), person=_person()))
    before = store.event_count()
    with pytest.raises(DuplicateObject):
        ledger.apply(PersonAdded(**_meta(), person=_person()))
    with pytest.raises(UnknownObject):
        ledger.apply(PersonAdded(**_meta(), person=_person("P-008", manager="P-404")))
    with pytest.raises(UnknownObject):
        ledger.apply(PersonUpdated(**_meta(), person_id="P-404", name="Nobody"))
    with pytest.raises(ValidationError, match="name cannot be removed"):
        ledger.apply(PersonUpdated(**_meta(), person_id="P-007", name=None))
    with pytest.raises(ValidationError, match="time zone"):
        ledger.apply(PersonUpdated(**_meta(), person_id="P-007", timezone="Nowhere/Else"))
    with pytest.raises(ValidationError, match="own manager"):
        ledger.apply(PersonUpdated(**_meta(), person_id="P-007", manager="P-007"))
    ledger.apply(PersonLeft(**_meta(), person_id="P-007", left_on=d("2026-03-31")))
    with pytest.raises(Exception, match="closed"):
        ledger.apply(PersonLeft(**_meta(), person_id="P-007", left_on=d("2026-04-01")))
    assert store.event_count() == before + 1
    assert len(ledger.audit_trail("person", "P-007")) == 2


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_an_older_book_upgrades_to_hold_people(backend: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A book made before the directory existed (schema version 6) gets its people table
    from step 7, keeps what it holds, and then stores people."""
    import uuid

    from arflow.store.sql import SCHEMA, SCHEMA_VERSION, SqlStore
    from arflow.store.sql._schema import MIGRATIONS
    from arflow.testing import BookBuilder
    from tests.conftest import _drop_schema, _postgres_engine

    schema = None
    if backend == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        engine = _postgres_engine(schema)
    try:
        with engine.begin() as conn:
            SCHEMA.create(conn)
            for version in range(1, 7):
                MIGRATIONS[version - 1](conn)
                conn.execute(SCHEMA.insert().values(version=version))
            assert "ar_person" not in sa.inspect(conn).get_table_names()
            # the tables of step 11 (the figures' journal), which this arflow's writes fill
            # whatever the book's version: the v6 book below is written by it
            MIGRATIONS[10](conn)
        at_v6 = SqlStore(engine, upgrade=False, _unchecked=True)
        BookBuilder(Ledger(at_v6)).customer("C1")  # a book at v6
        old = SqlStore(engine)  # opening it runs step 7
        b = BookBuilder(Ledger(old))
        with engine.connect() as conn:
            assert "ar_person" in sa.inspect(conn).get_table_names()
            versions = conn.execute(sa.select(SCHEMA.c.version)).scalars().all()
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        b.apply(PersonAdded(**_meta(), person=_person()))
        assert Ledger(SqlStore(engine)).get("person", "P-007") == _person()
        assert Ledger(old).customer("C1").id == "C1"
    finally:
        engine.dispose()
        if schema is not None:
            _drop_schema(schema)


# -- addressing -------------------------------------------------------------------------------


def test_values_resolve_to_people_by_channel() -> None:
    from arflow import Customer
    from arflow.messages._addresses import Directory, reach, resolve_people

    boss = _person(
        "P-001", name="Zhang Min", roles=("ceo", "finance"), addresses={"email": "z@x.cn"}
    )
    gone = _person("P-009", name="Old Hand", roles=("finance",), active=False)
    people = Directory.of([_person(), boss, gone])
    assert [r.address for r in reach("P-007", "email", people)] == ["li.wei@example.cn"]
    assert [r.address for r in reach("P-007", "sms", people)] == ["+86 138 0013 8000"]
    assert [r.address for r in reach("P-007", "wecom", people)] == ["liwei"]
    assert [r.address for r in reach("role:finance", "email", people)] == [
        "z@x.cn",
        "li.wei@example.cn",
    ]  # the active holders, by id
    assert reach("P-001", "sms", people)[0].problem == "person P-001 (Zhang Min) has no sms address"
    assert reach("P-009", "email", people)[0].problem == "person P-009 (Old Hand) has left"
    assert (
        reach("role:legal", "email", people)[0].problem == "no active person holds the role 'legal'"
    )
    assert [r.address for r in reach("ar@x.cn", "email", people)] == ["ar@x.cn"]
    assert reach("li.wei", "email", people)[0].problem == (
        "'li.wei' is neither a known person nor an e-mail address"
    )
    assert [r.address for r in reach("li.wei", "task", people)] == ["li.wei"]  # tasks take names
    c = Customer(id="C1", name="One", salesperson="P-007", sales_manager="li.wei")
    got = resolve_people(
        c, ["salesperson", "sales_manager", "cfo"], "email", people, roles={"cfo": "role:ceo"}
    )
    assert [(r.address, r.problem) for r in got] == [
        ("li.wei@example.cn", None),
        (
            None,
            "sales_manager of customer C1: 'li.wei' is neither a known person nor an e-mail address",
        ),
        ("z@x.cn", None),
    ]


def _engine_book(store: Any, *, salesperson: str, manager: str) -> Any:
    from arflow import Contact, CreditProfile, Customer, CustomerRegistered, Money
    from arflow.testing import BookBuilder

    b = BookBuilder(Ledger(store))
    zhang = _person(
        "P-001",
        name="Zhang Min",
        locale="en",
        roles=("sales_manager",),
        addresses={"email": "zhang.min@example.cn"},
    )
    b.apply(PersonAdded(**_meta(event_id="p1"), person=zhang))
    b.apply(PersonAdded(**_meta(event_id="p7"), person=_person(manager="P-001")))
    b.apply(
        CustomerRegistered(
            **_meta(event_id="c1"),
            customer=Customer(
                id="C1",
                name="Customer C1",
                salesperson=salesperson,
                sales_manager=manager,
                contacts=[Contact(name="Wang", email="ap@c1.example")],
                credit=CreditProfile(grade="B", credit_limit=Money.of(1_000_000, "CNY")),
            ),
        )
    )
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due="2026-03-02")
    return b


PACK = None


def _pack() -> Any:
    from pathlib import Path

    from arflow import load_pack

    global PACK
    if PACK is None:
        PACK = load_pack(Path(__file__).resolve().parent.parent / "rules" / "default")
    return PACK


def _lock_notice(store: Any) -> Any:
    (rec,) = [r for r in store.outbox() if r.key.startswith("lock:overdue-30:")]
    return rec


def test_a_lock_notice_reaches_people_in_their_locale(store) -> None:  # type: ignore[no-untyped-def]
    from arflow import Engine, Message

    b = _engine_book(store, salesperson="P-007", manager="P-001")
    # written the other way by the ERP: still the pack's zh_CN
    b.apply(PersonUpdated(**_meta(), person_id="P-007", locale="zh-CN"))
    Engine(b.ledger, _pack()).run(d("2026-04-02"), first_run=True)
    m = Message.model_validate_json(_lock_notice(store).body)
    assert m.to == ("li.wei@example.cn", "zhang.min@example.cn")
    assert m.locale == "zh_CN"  # the first recipient's, which the pack has
    assert "unreachable" not in m.data


def test_a_bare_name_is_a_permanent_failure_with_its_reason(store) -> None:  # type: ignore[no-untyped-def]
    """Issue 12: "li.wei" used as an e-mail address was retried as a temporary failure.
    Now the notice is a dead letter at once, saying why, and never reaches an adapter."""
    from arflow import Dispatcher, Engine, MemoryAdapter

    b = _engine_book(store, salesperson="li.wei", manager="zhang.min")
    Engine(b.ledger, _pack()).run(d("2026-04-02"), first_run=True)
    rec = _lock_notice(store)
    assert rec.status == "dead" and rec.attempts == 0
    assert rec.last_error == (
        "unreachable: email: salesperson of customer C1: 'li.wei' is neither a known person "
        "nor an e-mail address; email: sales_manager of customer C1: 'zhang.min' is neither "
        "a known person nor an e-mail address"
    )
    adapter = MemoryAdapter()
    Dispatcher(store, adapter).run()
    assert all(not m.key.startswith("lock:") for m in adapter.sent)
    assert store.outbox_item(rec.key).status == "dead"


def test_a_reachable_recipient_still_gets_the_notice_and_the_rest_is_named(store) -> None:  # type: ignore[no-untyped-def]
    from arflow import Engine, Message

    b = _engine_book(store, salesperson="li.wei", manager="P-001")
    Engine(b.ledger, _pack()).run(d("2026-04-02"), first_run=True)
    rec = _lock_notice(store)
    m = Message.model_validate_json(rec.body)
    assert rec.status == "pending" and m.to == ("zhang.min@example.cn",)
    assert m.locale == "en"  # Zhang Min's
    assert m.data["unreachable"] == [
        "email: salesperson of customer C1: 'li.wei' is neither a known person nor an "
        "e-mail address"
    ]


# -- import -----------------------------------------------------------------------------------

PEOPLE_CSV = """id,name,roles,manager,email,phone,wecom,locale,timezone
P-001,Zhang Min,sales_manager;sales_director,,zhang.min@example.cn,+8613800000001,zhangmin,en,Asia/Shanghai
P-007,Li Wei,salesperson,P-001,li.wei@example.cn,,liwei,zh_CN,Asia/Shanghai
P-010,Chen Jing,finance,,chen.jing@example.cn,,,zh_CN,
"""

BAD_PEOPLE_CSV = """id,name,roles,manager,email,phone,wecom,locale,timezone
P-001,Zhang Min,sales_manager,,zhang.min,+8613800000001,,en,Asia/Shanghai
P-007,,Sales Person,P-001,li.wei@example.cn,call me,,zh_CN,Mars/Base
P-001,Again,finance,,again@example.cn,,,en,
"""


def test_people_import_from_csv_and_json(store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from arflow import import_files

    ledger = Ledger(store)
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(PEOPLE_CSV, encoding="utf-8")
    json_file = tmp_path / "people_more.json"
    json_file.write_text(
        json.dumps(
            [
                {
                    "id": "P-020",
                    "name": "Wang Fang",
                    "roles": ["warehouse"],
                    "manager": "P-001",
                    "dingtalk": "wangfang",
                    "active": False,
                }
            ]
        ),
        encoding="utf-8",
    )
    report = import_files(ledger, [csv_file, json_file], now=AT)  # managers first
    assert report.people == 4 and report.applied == 4
    assert "4 person(s)" in str(report)
    li: Person = ledger.get("person", "P-007")
    assert (li.manager, li.roles, li.locale) == ("P-001", ("salesperson",), "zh_CN")
    assert li.address("email") == "li.wei@example.cn" and li.address("wecom") == "liwei"
    wang: Person = ledger.get("person", "P-020")
    assert not wang.active and wang.address("dingtalk") == "wangfang"
    assert ledger.audit_trail("person", "P-010")[0].actor == "import"
    again = import_files(ledger, [csv_file], now=AT)  # rows imported before are skipped
    assert again.people == 3 and again.applied == 0


def test_a_bad_people_file_names_each_problem_and_imports_nothing(store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from arflow import ImportRejected, import_files

    ledger = Ledger(store)
    bad = tmp_path / "people.csv"
    bad.write_text(BAD_PEOPLE_CSV, encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_files(ledger, [bad], now=AT)
    got = {(row, column): message for _file, row, column, message in info.value.problems}
    assert set(got) == {
        (2, "email"),
        (3, "name"),
        (3, "roles"),
        (3, "phone"),
        (3, "timezone"),
        (4, "id"),
    }, got
    assert "not an e-mail address" in got[(2, "email")]
    assert "appears twice" in got[(4, "id")]
    assert list(store.all("person")) == []
    # a manager that is nowhere is refused against the manager column
    orphan = tmp_path / "person_orphan.csv"
    orphan.write_text("id,name,manager\nP-030,Orphan,P-404\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_files(ledger, [orphan], now=AT)
    ((_file, row, column, message),) = info.value.problems
    assert (row, column) == (2, "manager") and "P-404" in message


# -- lint -------------------------------------------------------------------------------------


def test_lint_reports_a_role_value_that_reaches_no_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from arflow.rules.lint import lint
    from arflow.rules.loader import load_pack

    (tmp_path / "rules.yaml").write_text(
        "roles:\n"
        "  finance: finance@example.com\n"
        "  finance_manager: P-007\n"
        "  approvers: role:finance\n"
        "  hotline: '+86 400 800 8000'\n"
        "  sales_lead: li.wei\n"
        "  cfo: 刘洋\n"
        "  auditors: 'role:Audit Team'\n",
        encoding="utf-8",
    )
    warnings = [w for w in lint(load_pack(tmp_path)) if w.startswith("role ")]
    assert warnings == [
        "role 'auditors': 'role:Audit Team' names no role: after 'role:' give a lower-case "
        "role name",
        "role 'cfo': '刘洋' is neither an e-mail address, a person id (like P-007) nor "
        "role:NAME, so no message reaches it",
        "role 'sales_lead': 'li.wei' is neither an e-mail address, a person id (like P-007) "
        "nor role:NAME, so no message reaches it",
    ]


def test_the_docs_example_runs() -> None:
    import contextlib
    import io
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parent.parent / "docs" / "people.md"
    (block,) = re.findall(r"^```python\n(.*?)^```", doc.read_text(encoding="utf-8"), re.S | re.M)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(doc), "exec"), {})
    assert "('PersonLeft', 'left on 2026-03-02')" in out.getvalue()


# -- invariants -------------------------------------------------------------------------------


def _st() -> Any:
    from hypothesis import strategies as st

    return st.one_of(
        st.text(max_size=30),
        st.emails(),
        st.from_regex(r"\+?[0-9 \-]{4,20}", fullmatch=True),
        st.sampled_from(["P-007", "P-404", "role:finance", "role:legal", "li.wei", "刘洋"]),
    )


def test_whatever_a_value_is_it_reaches_a_valid_address_or_says_why() -> None:
    """The composer never hands an adapter something that is not an address for its
    channel: every value resolves to checked addresses or to a reason."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from arflow.domain import check_email, check_phone
    from arflow.messages._addresses import Directory, reach

    people = Directory.of([_person()])

    @settings(max_examples=300, deadline=None)
    @given(_st(), st.sampled_from(["email", "sms"]))
    def prop(value: str, channel: str) -> None:
        for r in reach(value, channel, people):
            assert (r.address is None) != (r.problem is None)
            if r.address is not None:
                (check_email if channel == "email" else check_phone)(r.address)

    prop()
