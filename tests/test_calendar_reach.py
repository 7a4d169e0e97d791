"""Schedule reach in the calendar: how far from its anchor (and from the due date) a
schedule can fire, by arithmetic. Pinned to the engine's own copy until it uses these."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arflow.calendar import ANCHORS, UNITS, Offset, Schedule, Step, due_reach, schedule_reach

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def offsets(draw: st.DrawFn) -> Offset:
    unit = draw(st.sampled_from(UNITS))
    return Offset(draw(st.sampled_from(ANCHORS)), draw(st.integers(-400, 400)), unit)


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    start = draw(offsets())
    if draw(st.booleans()):
        return Schedule(start)
    every = Step(draw(st.integers(1, 30)), draw(st.sampled_from(UNITS)))
    return Schedule(start, every, draw(offsets()) if draw(st.booleans()) else None)


@pytest.mark.parametrize(
    ("text", "reach", "from_due"),
    [
        ("due", (0, 0), (0, 0)),
        ("due-7d", (-7, -7), (-7, -7)),
        ("due+2w", (14, 14), (14, 14)),
        ("due+1m", (28, 31), (28, 31)),
        ("due-2m", (-62, -56), (-62, -56)),
        ("due+5bd", (5, 22), (5, 22)),
        ("due-5bd", (-22, -5), (-22, -5)),
        ("issue+30d", (30, 30), None),
        ("every 7d from due+1d", (1, None), (1, None)),
        ("every 7d from due+1d until due+15d", (1, 15), (1, 15)),
        ("every 1m from due until due+2m", (0, 62), (0, 62)),
        ("every 7d from due+1d until issue+60d", (1, 60), (1, 60)),
        ("every 7d from due+1d until promise+10d", (1, 10), (1, None)),
        ("every 3bd from promise until promise+9bd", (0, 27), None),
    ],
)
def test_reach_of_examples(
    text: str, reach: tuple[int, int | None], from_due: tuple[int, int | None] | None
) -> None:
    s = Schedule.parse(text)
    assert s.reach() == schedule_reach(s) == reach
    assert s.due_reach() == due_reach(s) == from_due


@PROPS
@given(offsets())
def test_offset_reach_is_an_interval(o: Offset) -> None:
    lo, hi = o.reach()
    assert lo <= hi


@PROPS
@given(schedules())
def test_schedule_reach_method_and_function_agree(s: Schedule) -> None:
    """The engine reads the functions (cached), lint and authors the methods."""
    assert s.reach() == schedule_reach(s)
    assert s.due_reach() == due_reach(s)
