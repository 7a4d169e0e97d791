"""Notice grouping (``arflow.messages.group_notices``) and the pack's ``settings.group_by``.

The default grouping (customer, level, currency) must give exactly the notices and keys
arflow has always given (keys are stored in the outbox: a changed key would send twice).
Leaving ``level`` out merges the steps of different levels into one notice carrying the
highest; a grouping without ``customer`` or ``currency`` is refused when the pack loads.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from arflow import Message, Money
from arflow.decisions import Decision
from arflow.errors import RuleLoadError, ValidationError
from arflow.messages import DEFAULT_GROUP_BY, Composer, group_notices
from arflow.rules.loader import load_pack
from arflow.rules.schema import Action
from arflow.testing import BookBuilder

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
AS_OF = date(2026, 3, 2)


def dunning(
    sid: str,
    level: int,
    *,
    customer: str = "C1",
    currency: str = "CNY",
    template: str = "reminder_due",
    priority: str = "normal",
    kind: str = "dunning",
) -> Decision:
    action = Action(type="email", to=("customer",), template=template, priority=priority)  # type: ignore[arg-type]
    return Decision(
        key=f"{kind}:standard:l{level}:{sid}:{AS_OF}",
        kind=kind,  # type: ignore[arg-type]
        rule="standard",
        step=f"l{level}",
        level=level,
        subject_kind="receivable",
        subject_id=sid,
        customer_id=customer,
        currency=currency,
        occurrence=AS_OF,
        as_of=AS_OF,
        actions=(action,),
    )


def notice_key(cust: str, template: str, level: int, cur: str, keys: list[str]) -> str:
    """The notice key as arflow has always written it."""
    digest = hashlib.sha256("|".join(sorted(keys)).encode()).hexdigest()[:12]
    return f"notice:{cust}:email:{template}:customer:{level}:{cur}:{AS_OF}:{digest}"


def test_the_default_grouping_gives_todays_notices_and_keys() -> None:
    ds = [
        dunning("I1", 1),
        dunning("I2", 1),
        dunning("I3", 2),
        dunning("I4", 1, currency="USD"),
        dunning("I5", 1, customer="C2"),
        dunning("A1", 1, kind="alert"),
    ]
    notices = group_notices(ds)
    assert notices == group_notices(ds, DEFAULT_GROUP_BY)
    assert notices == group_notices(ds, ["currency", "level", "customer"])  # order is no matter
    got = [(n.key, n.level, n.currency, n.subject_ids) for n in notices]
    assert got == [
        (
            notice_key("C1", "reminder_due", 1, "CNY", [ds[0].key, ds[1].key]),
            1,
            "CNY",
            ("I1", "I2"),
        ),
        (notice_key("C1", "reminder_due", 1, "USD", [ds[3].key]), 1, "USD", ("I4",)),
        (notice_key("C1", "reminder_due", 2, "CNY", [ds[2].key]), 2, "CNY", ("I3",)),
        (notice_key("C2", "reminder_due", 1, "CNY", [ds[4].key]), 1, "CNY", ("I5",)),
        (f"{ds[5].key}#0", 1, "CNY", ("A1",)),  # not dunning: a notice of its own
    ]


def test_without_level_the_steps_of_different_levels_merge_into_the_highest() -> None:
    ds = [
        dunning("I1", 1, priority="low"),
        dunning("I2", 3, priority="urgent"),
        dunning("I3", 2, priority="high"),
        dunning("I4", 3, priority="normal"),
        dunning("I5", 1, currency="USD"),  # another currency: never merged
        dunning("I6", 2, template="formal_notice"),  # another template: another notice
    ]
    notices = group_notices(ds, ["customer", "currency"])
    merged = [n for n in notices if n.subject_ids == ("I1", "I2", "I3", "I4")]
    assert len(merged) == 1
    (n,) = merged
    assert n.level == 3 and n.currency == "CNY"
    assert n.action.priority == "urgent"  # the action of the first decision at that level
    assert n.key == notice_key("C1", "reminder_due", 3, "CNY", [d.key for d in ds[:4]])
    assert sorted(x.subject_ids for x in notices) == [("I1", "I2", "I3", "I4"), ("I5",), ("I6",)]
    # with level, the same decisions make one notice per level, template and currency
    assert len(group_notices(ds)) == 5


@pytest.mark.parametrize("group_by", [["level", "currency"], ["customer", "level"], []])
def test_a_grouping_without_customer_or_currency_is_refused(group_by: list[str]) -> None:
    with pytest.raises(ValidationError, match="one customer in one currency"):
        group_notices([dunning("I1", 1)], group_by)


@pytest.mark.parametrize(
    ("group_by", "missing"),
    [("[level, currency]", "customer"), ("[customer, level]", "currency"), ("[]", "customer")],
)
def test_a_pack_grouping_without_customer_or_currency_does_not_load(
    tmp_path: Path, group_by: str, missing: str
) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(RULES, pack)
    text = (pack / "pack.yaml").read_text(encoding="utf-8")
    assert "group_by: [customer, level, currency]" in text
    (pack / "pack.yaml").write_text(
        text.replace("group_by: [customer, level, currency]", f"group_by: {group_by}"),
        encoding="utf-8",
    )
    with pytest.raises(RuleLoadError) as info:
        load_pack(pack)
    (problem,) = info.value.problems
    assert Path(problem.file).name == "pack.yaml" and problem.line is not None
    assert f"group_by must keep {missing}" in str(info.value)
    assert f"pack.yaml:{problem.line}:" in str(info.value)


def test_the_composer_groups_as_the_pack_says(tmp_path: Path) -> None:
    pack_dir = tmp_path / "pack"
    shutil.copytree(RULES, pack_dir)
    text = (pack_dir / "pack.yaml").read_text(encoding="utf-8")
    (pack_dir / "pack.yaml").write_text(
        text.replace("group_by: [customer, level, currency]", "group_by: [customer, currency]"),
        encoding="utf-8",
    )
    merging, default = load_pack(pack_dir), load_pack(RULES)
    assert tuple(merging.settings.group_by) == ("customer", "currency")
    b = BookBuilder()
    b.customer("C1", email="ap@c1.example")
    b.invoice("I1", "C1", 1_000, issued="2026-01-01", due="2026-02-01")
    b.invoice("I2", "C1", 2_000, issued="2026-01-15", due="2026-02-15")
    ds = [dunning("I1", 2), dunning("I2", 1)]
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    store = b.ledger.store

    def messages(pack: object) -> list[Message]:
        records = Composer(pack, store=store).records(store, ds, at)  # type: ignore[arg-type]
        return [Message.model_validate_json(r.body) for r in records]

    (one,) = messages(merging)
    assert one.subject_ids == ("I1", "I2") and one.to == ("ap@c1.example",)
    assert set(one.decision_keys) == {d.key for d in ds}
    assert one.key.startswith("notice:C1:email:reminder_due:customer:2:CNY:")
    two = messages(default)
    assert sorted(m.subject_ids for m in two) == [("I1",), ("I2",)]


def test_an_engine_plan_groups_into_the_same_notices() -> None:
    """Over a real plan of the default pack (several customers, currencies and steps), the
    notices and their keys are those the engine's plan lists."""
    from arflow.engine import Engine

    b = BookBuilder()
    for c in ("C1", "C2"):
        b.customer(c, email=f"ap@{c.lower()}.example", salesperson="li.wei")
    for i in range(12):
        cid = "C1" if i % 3 else "C2"
        due = date(2026, 1, 1 + 2 * i)
        amount = Money.of(1_000 + i, "USD" if i % 4 == 1 else "CNY")
        b.invoice(f"I{i}", cid, amount, issued=date(2025, 12, 1), due=due)
    engine = Engine(b.ledger, load_pack(RULES))
    plan = engine.plan(date(2026, 3, 2), first_run=True)
    assert plan.decisions, "the book should be dunned"
    mine = group_notices(plan.decisions, engine.pack.settings.group_by)
    assert [n.model_dump() for n in mine] == [n.model_dump() for n in plan.notices]
    assert any(len(n.decision_keys) > 1 for n in mine), "some notice should merge decisions"
    assert {n.currency for n in mine} == {"CNY", "USD"}
