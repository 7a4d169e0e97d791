"""The state machines: declared once, enforced, and drawn in the docs from the same data."""

from __future__ import annotations

from pathlib import Path

import pytest

from arflow import IllegalTransition, OrderState, ReceivableState
from arflow.lifecycle import (
    ORDER_MACHINE,
    ORDER_TRANSITIONS,
    RECEIVABLE_MACHINE,
    RECEIVABLE_TRANSITIONS,
    allowed_triggers,
    mermaid,
    move,
)

R = ReceivableState
DOCS = Path(__file__).resolve().parent.parent / "docs" / "concepts.md"


@pytest.mark.parametrize(
    ("state", "trigger", "reductions", "expected"),
    [
        (R.OPEN, "part_pay", False, R.PARTIALLY_PAID),
        (R.DISPUTED, "part_pay", True, R.DISPUTED),
        (R.PROMISED, "settle", True, R.PAID),
        (R.DISPUTED, "resolve_dispute", True, R.PARTIALLY_PAID),
        (R.DISPUTED, "resolve_dispute", False, R.OPEN),
        (R.PROMISED, "break_promise", False, R.OPEN),
        (R.PAID, "reopen", True, R.PARTIALLY_PAID),
        (R.PAID, "reopen", False, R.OPEN),
        (R.PARTIALLY_PAID, "write_off", True, R.WRITTEN_OFF),
    ],
)
def test_receivable_moves(state: R, trigger: str, reductions: bool, expected: R) -> None:
    assert (
        move(RECEIVABLE_MACHINE, "receivable", "I1", state, trigger, has_reductions=reductions)
        == expected
    )


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (R.PAID, "part_pay"),
        (R.WRITTEN_OFF, "dispute"),
        (R.CREDITED, "reopen"),
        (R.DISPUTED, "promise"),
        (R.OPEN, "resolve_dispute"),
        (R.OPEN, "no_such_trigger"),
    ],
)
def test_illegal_receivable_moves_name_object_state_and_event(state: R, trigger: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        move(RECEIVABLE_MACHINE, "receivable", "INV-9", state, trigger)
    assert str(info.value) == f"receivable 'INV-9' cannot {trigger!r} from state {str(state)!r}"


def test_closed_states_have_no_way_out_but_reopen_of_paid() -> None:
    assert allowed_triggers(RECEIVABLE_MACHINE, R.WRITTEN_OFF) == []
    assert allowed_triggers(RECEIVABLE_MACHINE, R.CREDITED) == []
    assert allowed_triggers(RECEIVABLE_MACHINE, R.PAID) == ["reopen"]
    assert allowed_triggers(ORDER_MACHINE, OrderState.INVOICED) == []
    assert allowed_triggers(ORDER_MACHINE, OrderState.REJECTED) == []


def test_docs_diagrams_are_drawn_from_the_declarations() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert mermaid(RECEIVABLE_TRANSITIONS, "open") in text
    assert mermaid(ORDER_TRANSITIONS, "submitted") in text
