"""The SQL store's outbox: actions claimed, renewed and settled by dispatchers.

The dispatcher's statements run in short transactions of their own, without the book's
writer lock: delivering mail must not wait for a day's run, nor hold it up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..base import OUTBOX_STATUSES, OutboxRecord, Settle, new_claim
from ._driver import _insert_new, _outbox_row
from ._errors import _Edge, translated
from ._schema import OUTBOX


class _SqlOutbox:
    """The outbox half of :class:`~arflow.store.sql.SqlStore` (a mixin: it needs the store's
    ``engine`` and ``_read``)."""

    engine: Engine
    _edge: _Edge

    def _read(self) -> Any:
        raise NotImplementedError

    @contextmanager
    def _outbox_tx(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(arflow_write=True)
            with conn.begin():
                yield conn

    @translated("claiming outbox actions")
    def outbox_claim(
        self,
        worker: str,
        now: int,
        limit: int,
        lease: int,
        channels: Iterable[str] | None = None,
    ) -> list[OutboxRecord]:
        """Claim up to ``limit`` due actions. On PostgreSQL the rows are picked with
        ``FOR UPDATE SKIP LOCKED``, so dispatchers running at once never claim the same
        action and never wait for each other; SQLite serialises them (``BEGIN IMMEDIATE``).
        The rows claimed carry a new claim token.

        The keys are picked by a statement of their own: as a subquery of the UPDATE,
        PostgreSQL may run the pick again for each row, and claim more than ``limit``."""
        o = OUTBOX.c
        due = sa.or_(
            sa.and_(o.status == "pending", o.next_at <= now),
            sa.and_(o.status == "sending", o.lease_until < now),
        )
        pick = sa.select(o.key).where(due).order_by(o.next_at, o.key).limit(limit)
        if channels is not None:
            pick = pick.where(o.channel.in_(list(channels)))
        with self._outbox_tx() as conn:
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            keys = [str(k) for (k,) in conn.execute(pick)]
            if not keys:
                return []
            stmt = (
                sa.update(OUTBOX)
                .where(o.key.in_(keys), due)
                .values(
                    status="sending",
                    claimed_by=worker,
                    lease_until=now + lease,
                    attempts=o.attempts + 1,
                    claim=new_claim(),
                )
                .returning(*OUTBOX.c)
            )
            rows = [_outbox_row(r) for r in conn.execute(stmt)]
        return sorted(rows, key=lambda r: (r.next_at, r.key))

    @translated("renewing outbox claims")
    def outbox_renew(self, keys: Iterable[str], claim: str, now: int, lease: int) -> set[str]:
        o = OUTBOX.c
        listed = list(dict.fromkeys(keys))
        held: set[str] = set()
        with self._outbox_tx() as conn:
            for i in range(0, len(listed), 500):
                stmt = (
                    sa.update(OUTBOX)
                    .where(o.key.in_(listed[i : i + 500]), o.status == "sending", o.claim == claim)
                    .values(lease_until=now + lease)
                    .returning(o.key)
                )
                held.update(str(k) for (k,) in conn.execute(stmt))
        return held

    @translated("settling an outbox action")
    def outbox_settle(self, key: str, change: Settle) -> bool:
        """Record an attempt's outcome (only while the action is being sent, under the
        change's claim when it names one) and queue its follow-up, in one transaction."""
        o = OUTBOX.c
        held = [o.key == key, o.status == "sending"]
        if change.claim is not None:
            held.append(o.claim == change.claim)
        values: dict[str, Any] = {"status": change.status, "lease_until": None, "claim": None}
        if change.next_at is not None:
            values["next_at"] = change.next_at
        if change.status == "sent":
            values["sent_at"] = change.now
        if change.error is not None:
            values["last_error"] = change.error
        if change.receipt is not None:
            values["receipt"] = change.receipt
        with self._outbox_tx() as conn:
            done = conn.execute(sa.update(OUTBOX).where(*held).values(**values)).rowcount
            if done and change.follow_up is not None:
                conn.execute(_insert_new(conn.dialect.name, "outbox"), [change.follow_up.__dict__])
        return bool(done)

    @translated("reading the outbox")
    def outbox(self, *, status: str | None = None, limit: int | None = None) -> list[OutboxRecord]:
        q = sa.select(OUTBOX).order_by(OUTBOX.c.created_at, OUTBOX.c.key)
        if status is not None:
            q = q.where(OUTBOX.c.status == status)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [_outbox_row(r) for r in conn.execute(q)]

    @translated("reading an outbox action")
    def outbox_item(self, key: str) -> OutboxRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.key == key)).first()
        return None if row is None else _outbox_row(row)

    @translated("counting the outbox")
    def outbox_counts(self) -> dict[str, int]:
        q = sa.select(OUTBOX.c.status, sa.func.count()).group_by(OUTBOX.c.status)
        out = dict.fromkeys(OUTBOX_STATUSES, 0)
        with self._read() as conn:
            out.update({str(st): int(n) for st, n in conn.execute(q)})
        return out

    @translated("retrying dead letters")
    def outbox_retry(self, keys: Iterable[str] | None, now: int) -> int:
        o = OUTBOX.c
        stmt = (
            sa.update(OUTBOX)
            .where(o.status == "dead")
            .values(
                status="pending",
                attempts=0,
                next_at=now,
                claimed_by=None,
                lease_until=None,
                claim=None,
            )
        )
        if keys is not None:
            stmt = stmt.where(o.key.in_(list(keys)))
        with self._outbox_tx() as conn:
            return int(conn.execute(stmt).rowcount)
