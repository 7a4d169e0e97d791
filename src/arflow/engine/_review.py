"""Review (``settings.review: true``): the decisions held for a person to look at, and
their release (carried out now), drop or continued hold."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..decisions import Decision
from ..ledger import Batch, Ledger
from ..lifecycle import LIVE_STATES
from ..store.base import Store
from ._record import ENGINE_ACTOR, _effects, _record
from ._tasks import queue_with_tasks


def proposal(store: Store) -> list[Decision]:
    """Decisions held for review, oldest first."""
    held = [Decision.model_validate_json(r.body) for r in store.decisions(status="held")]
    return sorted(held, key=lambda d: (d.as_of, d.customer_id, d.key))


def release(
    ledger: Ledger,
    composer: Any,
    keys: Iterable[str] | None = None,
    *,
    drop: Iterable[str] = (),
    hold_customers: Iterable[str] = (),
    at: datetime | None = None,
    actor: str = ENGINE_ACTOR,
) -> dict[str, int]:
    """Release held decisions (all, or ``keys``): they are carried out now. ``drop``
    removes items for good; customers in ``hold_customers`` stay held."""
    wanted = None if keys is None else set(keys)
    dropped, kept = set(drop), set(hold_customers)
    counts = {"released": 0, "dropped": 0, "held": 0, "skipped": 0}
    released: list[tuple[Decision, datetime]] = []
    with ledger.batch() as batch:
        for d in proposal(ledger.store):
            if d.key in dropped:
                batch.tx.add_decision(
                    _record(
                        d.model_copy(update={"status": "dropped", "reason": f"dropped by {actor}"})
                    )
                )
                counts["dropped"] += 1
            elif d.customer_id in kept or (wanted is not None and d.key not in wanted):
                counts["held"] += 1
            elif (gone := _gone(batch, d)) is not None:
                batch.tx.add_decision(
                    _record(d.model_copy(update={"status": "skipped", "reason": gone}))
                )
                counts["skipped"] += 1
            else:
                when = at or datetime(d.as_of.year, d.as_of.month, d.as_of.day, tzinfo=UTC)
                released.append((d.model_copy(update={"status": "planned"}), when))
                counts["released"] += 1
        if released:
            # rendered before the effects are booked, as in run()
            moment = at or max(when for _d, when in released)
            queue_with_tasks(batch, composer, [d for d, _when in released], moment)
        for d, when in released:
            batch.tx.add_decision(_record(d))
            _effects(batch, d, when)
    return counts


def _gone(batch: Batch, d: Decision) -> str | None:
    """Why a decision held for review can no longer be carried out (None: it can): the
    receivable it is about was paid, credited or written off since."""
    if d.subject_kind != "receivable" or d.kind not in ("dunning", "alert"):
        return None
    r = batch.tx.get("receivable", d.subject_id)
    if r is None or r.state not in LIVE_STATES:
        return (
            f"receivable {d.subject_id} is {'gone' if r is None else r.state} since it was decided"
        )
    return None
