"""Lint: warnings about a pack that loads but is probably not what its author meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from arflow.rules import default_pack_path
from arflow.rules.lint import lint
from arflow.rules.loader import load_pack

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = frozenset(p.name.split(".", 1)[0] for p in (ROOT / "rules/default/templates").iterdir())
EMAIL = "actions: [{type: email, to: customer, template: reminder_due}]"


def pack_of(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    return lint(load_pack(tmp_path, templates=TEMPLATES))


def ladder(*steps: str, when: str | None = None, catch_up: str | None = None) -> str:
    head = f"settings:\n  catch_up: {catch_up}\n" if catch_up else ""
    head += "ladders:\n  - id: l\n"
    if when is not None:
        head += f"    when: {when!r}\n"
    return head + "    steps:\n" + "".join(steps)


def step(sid: str, at: str, when: str | None = None) -> str:
    text = f"      - id: {sid}\n        at: {at}\n        level: 1\n        {EMAIL}\n"
    return text + (f"        when: {when!r}\n" if when is not None else "")


def test_shipped_packs_lint_clean_of_dead_steps_and_contradictions() -> None:
    packs = sorted(p.parent for p in (ROOT / "rules").glob("*/pack.yaml"))
    packs += [ROOT / "examples/rule_authoring/policy"]
    shipped = default_pack_path()  # the checkout's rules/default, or its installed copy
    assert shipped in packs or (shipped.parent.name == "_rules" and ROOT / "rules/default" in packs)
    for path in packs:
        warnings = lint(load_pack(path))
        assert not [w for w in warnings if "never fire" in w or "contradicts" in w], path
    # the default pack's one known warning, unchanged
    assert lint(load_pack(default_pack_path())) == [
        "standard: 60 days with no step between escalate-31 and legal-91"
    ]


def test_a_step_whose_condition_rules_out_its_days_can_never_fire(tmp_path: Path) -> None:
    got = pack_of(tmp_path, ladder(step("late", "due+100d", when="days_past_due < 0")))
    f = tmp_path / "rules.yaml"
    assert got == [
        f"{f}:8: [l/late] can never fire: 'at: due+100d' falls 100 days past due and the "
        "conditions need days_past_due < 0"
    ]


def test_the_ladders_condition_counts_too(tmp_path: Path) -> None:
    text = ladder(step("s", "due+10d", when="balance > 0"), when="days_past_due <= 5")
    got = pack_of(tmp_path, text)
    assert len(got) == 1 and "[l/s] can never fire" in got[0] and "days_past_due <= 5" in got[0]
    assert got[0].startswith(f"{tmp_path / 'rules.yaml'}:9:")  # the step's own 'when'


def test_a_step_only_a_late_run_can_send(tmp_path: Path) -> None:
    text = ladder(step("s", "every 7d from due+1d until due+15d", when="days_past_due > 20"))
    got = pack_of(tmp_path, text)
    assert len(got) == 1
    assert (
        "[l/s] never fires on its own days: 'at: every 7d from due+1d until due+15d' falls "
        in got[0]
    )
    assert "1 to 15 days past due" in got[0] and "only a run catching up late" in got[0]
    # with catch_up: none a late run does not send it either
    got = pack_of(tmp_path, ladder(step("s", "due+3d", when="days_past_due > 20"), catch_up="none"))
    assert len(got) == 1 and "[l/s] can never fire" in got[0]


@pytest.mark.parametrize(
    ("at", "when"),
    [
        ("due+100d", "days_past_due >= 100"),
        ("due+100d", "days_past_due < 0 or days_past_due == 100"),
        ("due+1m", "days_past_due > 30"),  # 28 to 31 days
        ("due+5bd", "days_past_due >= 7"),
        ("every 7d from due+1d", "days_past_due > 300"),
        ("issue+100d", "days_past_due < 0"),  # not from the due date: unknown
        ("every 1d from due until promise+3d", "days_past_due > 90"),
        ("due+3d", "not (days_past_due > 1)"),  # anything but comparisons: unbounded
        ("due+3d", "balance > 10"),
    ],
)
def test_steps_that_can_fire_are_not_reported(tmp_path: Path, at: str, when: str) -> None:
    assert pack_of(tmp_path, ladder(step("s", at, when=when))) == []


def test_a_condition_that_contradicts_itself_in_any_rule_kind(tmp_path: Path) -> None:
    text = (
        ladder(
            step("s", "due+3d", when="balance > 10 and balance < 5"),
            when="balance == 1 and balance == 2",
        )
        + "alerts:\n  - id: a\n    subject: receivable\n"
        + "    when: days_past_due > 30 and days_past_due <= 30\n"
        + "    actions: [{type: risk_flag, level: high}]\n"
        + "locks:\n  - id: k\n    when: customer.exposure_ratio >= 2 and customer.exposure_ratio < 1\n"
        + "approvals:\n  - id: p\n    when: order.amount < 0 and order.amount > 0\n"
        + "    approvers: [sales_manager]\n    template: approval_request\n"
    )
    got = pack_of(tmp_path, text)
    f = tmp_path / "rules.yaml"
    assert got == [
        f"{f}:3: [l] the condition contradicts itself: no value of balance satisfies "
        "'balance == 1 and balance == 2', so it never holds",
        f"{f}:9: [l/s] the condition contradicts itself: no value of balance satisfies "
        "'balance > 10 and balance < 5', so it never holds",
        f"{f}:17: [k] the condition contradicts itself: no value of customer.exposure_ratio "
        "satisfies 'customer.exposure_ratio >= 2 and customer.exposure_ratio < 1', so it never holds",
        f"{f}:13: [a] the condition contradicts itself: no value of days_past_due satisfies "
        "'days_past_due > 30 and days_past_due <= 30', so it never holds",
        f"{f}:20: [p] the condition contradicts itself: no value of order.amount satisfies "
        "'order.amount < 0 and order.amount > 0', so it never holds",
    ]


def test_a_condition_with_a_dead_branch_is_not_a_contradiction(tmp_path: Path) -> None:
    text = ladder(step("s", "due+3d", when="balance > 10 and balance < 5 or balance > 100"))
    assert pack_of(tmp_path, text) == []
