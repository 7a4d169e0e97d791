"""Warnings about a pack that loads but is probably not what its author meant."""

from __future__ import annotations

import itertools

from ..calendar import schedule_reach
from .loader import RulePack


def lint(pack: RulePack) -> list[str]:
    """Ladder gaps and overlaps, unreachable steps, actions nobody receives."""
    out: list[str] = []
    for ladder in pack.ladders:
        spans: list[tuple[int, int | None, str]] = []
        for st in ladder.steps:
            lo, hi = schedule_reach(st.schedule)
            spans.append((lo, hi, st.id))
        for i, (lo, hi, sid) in enumerate(spans):
            for lo2, hi2, sid2 in spans[i + 1 :]:
                same = lo == lo2 and hi == hi2
                if same and ladder.steps[i].when is None:
                    out.append(
                        f"{ladder.id}: steps {sid} and {sid2} fire on the same days with no "
                        f"condition telling them apart"
                    )
            if hi is None and i + 1 < len(spans):
                later = [s for s in spans[i + 1 :] if s[0] > lo]
                if later:
                    out.append(
                        f"{ladder.id}/{sid}: repeats with no 'until' and overlaps the later "
                        f"step(s) {', '.join(s[2] for s in later)}"
                    )
        ordered = sorted(spans, key=lambda s: s[0])
        for (lo, hi, sid), (lo2, _hi2, sid2) in itertools.pairwise(ordered):
            end = lo if hi is None else hi
            if lo2 - end > 45:
                out.append(f"{ladder.id}: {lo2 - end} days with no step between {sid} and {sid2}")
        for st in ladder.steps:
            if st.min_balance is not None and st.min_balance < ladder.min_balance:
                out.append(
                    f"{ladder.id}/{st.id}: min_balance {st.min_balance} is below the ladder's "
                    f"{ladder.min_balance}, which applies anyway"
                )
    for role, who in sorted(pack.roles.items()):
        if not who:
            out.append(f"role {role!r} has nobody behind it")
    return out
