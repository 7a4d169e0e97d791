"""A first run's stale steps are recorded compactly (a receivable's skipped steps after the
first as their differences from it) and still explained whole: the store gives back, for
every key, the decision the planner made, as ``Decision.model_dump_json`` would have
recorded it (the old path), on every backend."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arflow import Store
from arflow.decisions import Decision
from arflow.engine import Engine
from arflow.engine._record import _record, _record_as_difference
from arflow.rules.loader import load_pack
from arflow.store.base import SAME_AS_PREFIX, expanded
from arflow.testing import BookBuilder

from .test_engine import register

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
DUE = date(2026, 3, 2)


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    return load_pack(RULES)


def _whole(d: Decision) -> dict[str, Any]:
    """What the decision ledger held for ``d`` before compact records: its whole JSON."""
    return json.loads(_record(d).body)  # type: ignore[no-any-return]


def test_a_first_run_explains_every_stale_step_as_it_was_decided(store: Store, pack) -> None:  # type: ignore[no-untyped-def]
    b = BookBuilder(store)
    register(b)
    register(b, "C2", grade="A")
    for i, due in enumerate(("2025-06-02", "2025-09-15", "2025-12-01", "2026-02-20")):
        b.invoice(f"I{i}", "C1", 5_000 + i, issued="2025-05-01", due=due)
        b.invoice(f"J{i}", "C2", 80 + 900 * i, issued="2025-05-01", due=due)
    engine = Engine(b.ledger, pack)
    result = engine.run(DUE, first_run=True)
    stale = [d for d in result.plan.skipped if "stale on catch-up" in (d.reason or "")]
    assert len(stale) > 20  # several per receivable
    for d in result.plan.decisions + result.plan.skipped:
        assert engine.explain(d.key) == _whole(d), d.key
        rec = store.decision(d.key)
        assert rec is not None and json.loads(rec.body) == _whole(d)
    listed = {r.key: json.loads(r.body) for r in store.decisions(as_of=DUE)}
    assert listed == {d.key: _whole(d) for d in result.plan.decisions + result.plan.skipped}
    listed = {r.key: json.loads(r.body) for r in store.decisions(status="skipped")}
    assert listed == {d.key: _whole(d) for d in result.plan.skipped}
    # the same run again records nothing: the stale steps' keys are known
    assert engine.run(DUE, first_run=True).recorded == 0
    assert engine.run(DUE, first_run=True).skipped == 0


def test_stale_steps_are_stored_as_differences(tmp_path: Path, pack) -> None:  # type: ignore[no-untyped-def]
    from arflow.store.sql import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'book.db'}")
    try:
        b = BookBuilder(store)
        register(b)
        b.invoice("I0", "C1", 5_000, issued="2025-05-01", due="2025-06-02")
        engine = Engine(b.ledger, pack)
        result = engine.run(DUE, first_run=True)
        stale = [d for d in result.plan.skipped if d.subject_id == "I0"]
        assert len(stale) >= 5
        raw = {d.key: store._decision(d.key) for d in stale}
        compact = [k for k, r in raw.items() if r is not None and r.body.startswith(SAME_AS_PREFIX)]
        assert len(compact) == len(stale) - 1  # all but the first refer to it
        whole = sum(len(_record(d).body) for d in stale)
        stored = sum(len(r.body) for r in raw.values() if r is not None)
        assert stored < whole / 2
        for d in stale:
            assert engine.explain(d.key) == _whole(d)
    finally:
        store.close()


def _base_decision(**over: Any) -> Decision:
    fields: dict[str, Any] = dict(
        key="dunning:standard:due-day:I1:2026-01-05",
        kind="dunning",
        rule="standard",
        step="due-day",
        level=1,
        subject_kind="receivable",
        subject_id="I1",
        customer_id="C1",
        currency="CNY",
        occurrence=date(2026, 1, 5),
        as_of=DUE,
        status="skipped",
        reason="stale on catch-up (latest): the latest due step is on 2026-02-20",
        why={
            "rule": "standard/due-day",
            "at": "due",
            "occurrence": "2026-01-05",
            "group": True,
            "conditions": [],
            "facts": {"balance": "5000", "days_past_due": "56", "state": "open"},
        },
    )
    fields.update(over)
    return Decision(**fields)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    step=st.sampled_from(["due-day", "formal-notice", "sms-3", None]),
    level=st.one_of(st.none(), st.integers(0, 9)),
    days=st.integers(-400, 400),
    why_changes=st.dictionaries(
        st.sampled_from(["rule", "at", "occurrence", "group", "conditions", "facts"]),
        _json_values,
        max_size=4,
    ),
    other=st.sampled_from(["", "reason", "currency", "why-key", "subject"]),
)
def test_a_difference_expands_to_the_whole_decision(  # type: ignore[no-untyped-def]
    step, level, days, why_changes, other
) -> None:
    base = _base_decision()
    why = {**base.why, **why_changes}
    over: dict[str, Any] = {
        "key": f"k-{days}",
        "step": step,
        "level": level,
        "occurrence": base.occurrence + timedelta(days),
        "why": why,
    }
    if other == "reason":
        over["reason"] = "dunning blocked"
    elif other == "currency":
        over["currency"] = None
    elif other == "why-key":
        over["why"] = {**why, "extra": 1}
    elif other == "subject":
        over["subject_id"] = "I2"
    d = _base_decision(**over)
    rec = _record_as_difference(d, base)
    if other:
        assert rec is None  # more than the step differs: recorded whole
        return
    assert rec is not None and rec.body.startswith(SAME_AS_PREFIX)
    stored = {base.key: _record(base)}
    assert json.loads(expanded(rec, stored.get).body) == _whole(d)


def test_values_of_why_come_back_as_the_decisions_json_had_them() -> None:
    base = _base_decision()
    at = datetime(2026, 1, 1, 9, tzinfo=UTC)
    d = _base_decision(key="k2", why={**base.why, "at": at, "facts": {"n": Decimal("1.50")}})
    rec = _record_as_difference(d, base)
    assert rec is not None
    stored = {base.key: _record(base)}
    assert json.loads(expanded(rec, stored.get).body) == _whole(d)


def test_a_difference_from_a_decision_the_store_lacks_is_a_store_error() -> None:
    from arflow.errors import StoreError

    base = _base_decision()
    d = _base_decision(key="k2", step="sms-3")
    rec = _record_as_difference(d, base)
    assert rec is not None
    with pytest.raises(StoreError, match=r"k2.*does not hold whole"):
        expanded(rec, {}.get)
