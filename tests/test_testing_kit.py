"""arflow.testing for rule authors: every kind of customer, contact and person a pack can
address, events through the engine, and the rule-coverage plugin (with pytester)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from arflow import Dispatcher, MemoryAdapter
from arflow.domain import Contact
from arflow.testing import RuleCoverage, RuleHarness, rule_items

pytest_plugins = ["pytester"]

PACK = """\
pack: tiny
calendar: {country: null}
settings: {send_window: null, locales: [en], catch_up: all}
roles: {finance_manager: fm@example.com}
ladders:
  - id: std
    steps:
      - {id: remind, at: due+1d, level: 1, actions: [{type: email, to: customer, template: t}]}
      - {id: text, at: due+3d, level: 2, actions: [{type: sms, to: customer, template: t}]}
      - {id: chat, at: due+5d, level: 3, actions: [{type: wecom, to: salesperson, template: t}]}
locks:
  - {id: late, when: "customer.overdue_max_days > 20"}
alerts:
  - id: big
    when: "balance > 5000"
    actions: [{type: risk_flag, level: high}]
approvals:
  - {id: big-order, when: "order.amount > 10000", approvers: [finance_manager], template: t}
"""


def _pack(where: Path) -> Path:
    pack = where / "pack"
    (pack / "templates").mkdir(parents=True)
    (pack / "tiny.yaml").write_text(PACK, encoding="utf-8")
    (pack / "templates" / "t.en.j2").write_text(
        "{% block subject %}About your account{% endblock %}{% block body %}Hello.{% endblock %}\n",
        encoding="utf-8",
    )
    return pack


def test_every_kind_of_customer_contact_and_person(tmp_path: Path) -> None:
    h = RuleHarness(_pack(tmp_path))
    b = h.book
    b.person("li", "sales", name="Li Lei", wecom="lilei", dingtalk="ll01", email="li@corp.example")
    b.person("boss", "sales_manager", phone="+86 138 0000 0001", locale="zh_CN")
    b.customer("PH", phone="+86 139 0000 0002", salesperson="li", limit=50_000, grade="B")
    b.customer("EM", email="ap@em.example", contact="Ms Wu", locale="zh_CN", salesperson="li")
    b.customer(
        "BOTH",
        email="ap@both.example",
        phone="+86 139 0000 0003",
        channel="sms",
        contacts=[{"name": "Letters", "preferred_channel": "letter"}],
        prepayment=30,
        order_block=True,
    )
    b.contact("EM", "Mr Zhao", phone="+86 139 0000 0004", channel="phone", role="payables")

    ph, em, both = (h.ledger.customer(c) for c in ("PH", "EM", "BOTH"))
    assert ph.contacts == (Contact(name="PH", phone="+86 139 0000 0002", preferred_channel="sms"),)
    assert ph.credit.grade == "B" and str(ph.credit.credit_limit) == "50,000.00 CNY"
    assert [(c.name, c.preferred_channel, c.locale) for c in em.contacts] == [
        ("Ms Wu", "email", "zh_CN"),
        ("Mr Zhao", "phone", "en"),
    ]
    assert [c.preferred_channel for c in both.contacts] == ["sms", "letter"]
    assert both.credit.prepayment_percent == 30 and both.credit.order_block
    li = h.ledger.store.get("person", "li")
    assert (li.address("wecom"), li.address("dingtalk"), li.address("email")) == (
        "lilei",
        "ll01",
        "li@corp.example",
    )

    # the pack reaches each of them on its channel: the phone-only contact by SMS (its
    # preferred channel, for the e-mail step too), the salesperson at their WeCom id
    b.invoice("INV-1", "PH", 1_000, issued="2026-03-01", due="2026-03-02")
    h.run("2026-03-09")
    boxes = {ch: MemoryAdapter() for ch in ("email", "sms", "wecom")}
    stats = Dispatcher(h.ledger.store, dict(boxes), channels=None).run()
    assert stats.dead == 0, stats.errors
    got = sorted((ch, m.to) for ch, box in boxes.items() for m in box.sent)
    assert got == [
        ("sms", ("+86 139 0000 0002",)),
        ("sms", ("+86 139 0000 0002",)),
        ("wecom", ("lilei",)),
    ]


def test_grades_limits_locks_and_feedback(tmp_path: Path) -> None:
    h = RuleHarness(_pack(tmp_path))
    b = h.book
    b.customer("C1", email="ap@c1.example", limit=10_000, grade="C")
    b.grade("C1", "A", limit=80_000, terms=60, on="2026-02-01")
    c1 = h.ledger.customer("C1")
    assert (c1.credit.grade, str(c1.credit.credit_limit), c1.credit.payment_terms_days) == (
        "A",
        "80,000.00 CNY",
        60,
    )
    b.lock("C1", "late", on="2026-02-02")
    assert [x.lock_id for x in h.ledger.customer("C1").locks] == ["late"]
    b.unlock("C1", "late", on="2026-02-03")
    assert h.ledger.customer("C1").locks == ()
    b.bounce("C1", "ap@c1.example")
    assert h.ledger.customer("C1").contacts[0].email_invalid
    b.person("gone", "sales", email="gone@corp.example")
    b.leave("gone", on="2026-02-04")
    assert not h.ledger.store.get("person", "gone").active


def test_live_sends_events_through_the_engine(tmp_path: Path) -> None:
    h = RuleHarness(_pack(tmp_path))
    h.book.customer("C1", email="ap@c1.example", limit=100_000)
    h.book.order("SO-0", "C1", 20_000, on="2026-03-02")  # the ledger alone: no rule judges it
    with h.live() as decided:
        h.book.order("SO-1", "C1", 20_000, on="2026-03-02")
        h.book.order("SO-2", "C1", 500, on="2026-03-02")
    assert decided == ["approval big-order SO-1"]
    assert h.ledger.store.get("order", "SO-0").state == "submitted"
    h.book.order("SO-3", "C1", 30_000, on="2026-03-03")  # after the block: the ledger again
    assert decided == ["approval big-order SO-1"]


def test_rule_items_and_coverage_of_a_pack(tmp_path: Path) -> None:
    pack = _pack(tmp_path)
    cov = RuleCoverage(pack)
    assert sorted(cov.items) == [
        "alert big",
        "approval big-order",
        "dunning std/chat",
        "dunning std/remind",
        "dunning std/text",
        "lock late",
        "unlock late",
    ]
    assert cov.items["lock late"] == "tiny.yaml:12"
    assert rule_items(cov.pack) == cov.items
    assert cov.percent == 0 and len(cov.unfired) == 7


TESTS = """\
from pathlib import Path
from arflow.testing import RuleHarness

PACK = Path(__file__).parent / "pack"

def test_reminder():
    h = RuleHarness(PACK)
    h.book.customer("C1", email="ap@c1.example")
    h.book.invoice("INV-1", "C1", 100, issued="2026-03-01", due="2026-03-02")
    assert h.run("2026-03-03").plan.decisions[0].step == "remind"

def test_big_order():
    h = RuleHarness(PACK)
    h.book.customer("C1", email="ap@c1.example", limit=100_000)
    with h.live() as decided:
        h.book.order("SO-1", "C1", 20_000, on="2026-03-02")
    assert decided == ["approval big-order SO-1"]
"""


def _project(pytester: pytest.Pytester) -> None:
    _pack(pytester.path)
    pytester.makepyfile(test_tiny=TESTS)


def test_plugin_lists_the_rules_no_test_fired(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = pytester.runpytest("-p", "arflow.testing.plugin", "--arflow-coverage=pack")
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*arflow rule coverage*",
            "pack: 2 of 7 rules fired (29%)",
            "  never fired:",
            "    dunning std/text * tiny.yaml:9",
            "    dunning std/chat * tiny.yaml:10",
            "    lock late * tiny.yaml:12",
            "    unlock late * tiny.yaml:12",
            "    alert big * tiny.yaml:14",
        ]
    )
    assert "dunning std/remind " not in result.stdout.str()
    assert "approval big-order " not in result.stdout.str()


def test_plugin_fails_the_session_under_the_threshold(pytester: pytest.Pytester) -> None:
    _project(pytester)
    args = ["-p", "arflow.testing.plugin", "--arflow-coverage=pack"]
    low = pytester.runpytest(*args, "--arflow-coverage-fail-under=80")
    low.assert_outcomes(passed=2)
    assert low.ret == pytest.ExitCode.TESTS_FAILED
    low.stdout.fnmatch_lines(["FAIL: pack: 29% of its rules fired, under *=80"])
    ok = pytester.runpytest(*args, "--arflow-coverage-fail-under=25")
    assert ok.ret == pytest.ExitCode.OK
    assert "FAIL:" not in ok.stdout.str()


def test_plugin_is_silent_without_the_option_and_refuses_a_broken_pack(
    pytester: pytest.Pytester,
) -> None:
    _project(pytester)
    quiet = pytester.runpytest("-p", "arflow.testing.plugin")
    assert quiet.ret == 0 and "arflow rule coverage" not in quiet.stdout.str()
    (pytester.path / "broken").mkdir()
    (pytester.path / "broken" / "x.yaml").write_text("ladders: [{id: l}]\n", encoding="utf-8")
    bad = pytester.runpytest("-p", "arflow.testing.plugin", "--arflow-coverage=broken")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(
        [
            "ERROR: --arflow-coverage: 1 problem(s) in the rules:",
            "*x.yaml:1: ?l? missing field 'steps'",
        ]
    )


ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "rule-authoring.md"


def _section(title: str) -> str:
    return DOC.read_text(encoding="utf-8").split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_the_docs_people_block_runs() -> None:
    import re

    (code,) = re.findall(r"^```python\n(.*?)^```", _section("5. "), re.S | re.M)
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_block"})


def test_the_docs_coverage_command_prints_what_the_doc_shows() -> None:
    import os
    import re
    import shlex
    import subprocess
    import sys

    section = _section("6. ")
    (command,) = re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)
    (shown,) = re.findall(r"^```text\n(.*?)^```", section, re.S | re.M)
    argv = shlex.split(command)
    assert argv[0] == "pytest"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    plugin = ["-p", "arflow.testing.plugin", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *plugin, *argv[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in shown.splitlines():
        assert line.strip("- ") in done.stdout, line


def test_coverage_sees_a_run_planned_in_helper_processes(tmp_path: Path) -> None:
    """``workers=2``: one slice of the customers is planned in a helper process, out of
    sight of ``Engine.plan`` in this one. The customers of one slice are due for the
    reminder that day, those of the other for the text: both count as fired."""
    import zlib

    from arflow import Ledger
    from arflow.engine import Engine
    from arflow.testing import BookBuilder
    from arflow.testing._coverage import watching

    pack = _pack(tmp_path)
    cov = RuleCoverage(pack)
    book = BookBuilder(f"sqlite:///{tmp_path / 'book.db'}")
    for i in range(8):
        cid = f"C{i}"
        # slice 0: due 03-04, reminded 03-05; slice 1: due 03-02, texted 03-05
        due = "2026-03-04" if zlib.crc32(cid.encode()) % 2 == 0 else "2026-03-02"
        book.customer(cid, email=f"ap{i}@example.com", phone=f"+86138000000{i:02d}")
        book.invoice(f"INV-{i}", cid, 100, issued="2026-03-01", due=due)
    engine = Engine(Ledger(book.ledger.store), pack, workers=2)
    engine.helpers_from = 0  # a helper even for a day this small
    engine.run(date(2026, 3, 3), first_run=True)  # slice 1's reminders, unobserved
    with watching(cov.observe):
        result = engine.run(date(2026, 3, 5))
    steps = {d.customer_id: d.step for d in result.plan.decisions}
    assert {zlib.crc32(c.encode()) % 2 for c, st in steps.items() if st == "remind"} == {0}
    assert {zlib.crc32(c.encode()) % 2 for c, st in steps.items() if st == "text"} == {1}
    assert {"dunning std/remind", "dunning std/text"} <= cov.fired
