"""The host's callbacks: what it does when arflow tells it of a decision.

arflow calls them after the transaction that made the decision committed, never for one
rolled back. That transaction is over, so a reaction writes in a short transaction of its
own. It is keyed by the notice, so a notice told twice is written once; and since a
callback is lost if the process dies right after the commit, the host can always rebuild
these rows from the book (``Ledger.get``), which is the record.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from arflow import Happened, HappenedKind

from .models import CustomerRow, NotificationRow

#: the kinds of notice the host listens to
KINDS: tuple[HappenedKind, ...] = (
    "order_refused",
    "order_approved",
    "approval_requested",
    "lock_placed",
    "lock_lifted",
)


class Reactions:
    """Keeps the host's ``customers.on_hold`` and ``notifications`` in step with arflow."""

    def __init__(self, db: sa.Engine) -> None:
        self.db = db
        #: every notice heard, in order (what the story prints)
        self.heard: list[Happened] = []

    def __call__(self, h: Happened) -> None:
        self.heard.append(h)
        key = f"{h.kind}:{h.key}:{h.subject_id}"
        with self.db.begin() as conn:
            seen = conn.execute(
                sa.select(NotificationRow.id).where(NotificationRow.key == key)
            ).first()
            if seen is not None:
                return
            if h.kind in ("lock_placed", "lock_lifted"):
                conn.execute(
                    sa.update(CustomerRow)
                    .where(CustomerRow.id == h.subject_id)
                    .values(on_hold=h.kind == "lock_placed")
                )
            conn.execute(
                sa.insert(NotificationRow).values(
                    key=key,
                    kind=h.kind,
                    customer_id=h.customer_id,
                    text=describe(h),
                    created_at=datetime.now(UTC),
                )
            )


def describe(h: Happened) -> str:
    """The line a salesperson's screen shows."""
    if h.kind == "lock_placed":
        return f"customer {h.subject_id} on hold: new orders wait ({h.detail})"
    if h.kind == "lock_lifted":
        return f"customer {h.subject_id} released ({h.detail})"
    if h.kind == "order_refused":
        return f"order {h.subject_id} refused by credit control"
    if h.kind == "approval_requested":
        return f"order {h.subject_id} waits for credit approval"
    return f"order {h.subject_id} approved"
