"""What a distributed day's run keeps in PostgreSQL (``arflow.engine.distributed``): the
claim of a date by one coordinator (a session advisory lock), and each shard's row in
``ar_run_shard``, written in the transaction that records the shard's decisions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ...errors import StoreError
from ._errors import _Edge
from ._naming import schema_of
from ._schema import RUN_SHARDS, RUNS

_CLAIM = "hashtext('arflow-run:' || coalesce(:schema, current_schema()) || ':' || :day)"


def shard_recorded(conn: Connection, run_id: str, shard: int) -> bool:
    """Whether shard ``shard`` of run ``run_id`` is recorded (in the book as ``conn`` sees
    it)."""
    q = sa.select(RUN_SHARDS.c.shard).where(
        RUN_SHARDS.c.run_id == run_id, RUN_SHARDS.c.shard == shard
    )
    return conn.execute(q).first() is not None


def add_shard(
    conn: Connection, run_id: str, shard: int, shards: int, as_of: date, body: str
) -> None:
    """Record shard ``shard`` of ``shards`` of run ``run_id``: what it did, as JSON."""
    conn.execute(
        RUN_SHARDS.insert().values(
            run_id=run_id, shard=shard, shards=shards, as_of=as_of, body=body
        )
    )


def shard_rows(engine: Engine, run_id: str) -> dict[int, str]:
    """The shards of run ``run_id`` recorded so far: shard number to body."""
    with _Edge(engine.url)("reading a run's shards"), engine.connect() as conn:
        q = sa.select(RUN_SHARDS.c.shard, RUN_SHARDS.c.body).where(RUN_SHARDS.c.run_id == run_id)
        return {int(s): str(b) for s, b in conn.execute(q)}


def last_run_seq(conn: Connection, as_of: date) -> int:
    """The sequence number of the latest run recorded for ``as_of`` (0: none)."""
    q = sa.select(sa.func.max(RUNS.c.seq)).where(RUNS.c.as_of == as_of)
    return int(conn.execute(q).scalar() or 0)


def run_body(conn: Connection, seq: int) -> str:
    """The body of run record ``seq``."""
    return str(conn.execute(sa.select(RUNS.c.body).where(RUNS.c.seq == seq)).scalar_one())


@dataclass
class Claim:
    """A coordinator's claim of a date: its connection, whether it waited for another
    coordinator's, and the latest run recorded for the date before it asked."""

    conn: Connection
    waited: bool
    before: int
    as_of: date

    def recorded_meanwhile(self) -> str | None:
        """The body of the run another coordinator recorded for the date while this one
        waited for the claim (None: none)."""
        if not self.waited:
            return None
        seq = last_run_seq(self.conn, self.as_of)
        return run_body(self.conn, seq) if seq > self.before else None


@contextmanager
def claim_day(engine: Engine, as_of: date, wait_s: float) -> Iterator[Claim]:
    """Hold the claim of ``as_of``'s distributed run (one coordinator at a time per date
    and schema) while the block runs, waiting at most ``wait_s`` seconds for it. The lock
    is the session's: a coordinator that dies lets go of it with its connection."""
    if engine.dialect.name != "postgresql":
        raise StoreError(
            f"a distributed run needs PostgreSQL, not {engine.dialect.name} (docs/distributed.md)"
        )
    day = as_of.isoformat()
    edge = _Edge(engine.url)
    with edge("claiming the run of " + day), engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        before = last_run_seq(conn, as_of)
        got = conn.execute(
            sa.text(f"SELECT pg_try_advisory_lock({_CLAIM})"),
            {"day": day, "schema": schema_of(conn)},
        )
        waited = not got.scalar()
        if waited:
            conn.execute(sa.text(f"SET lock_timeout = {max(1, int(wait_s * 1000))}"))
            try:
                conn.execute(
                    sa.text(f"SELECT pg_advisory_lock({_CLAIM})"),
                    {"day": day, "schema": schema_of(conn)},
                )
            finally:
                conn.execute(sa.text("RESET lock_timeout"))
        try:
            yield Claim(conn, waited, before, as_of)
        finally:
            conn.execute(
                sa.text(f"SELECT pg_advisory_unlock({_CLAIM})"),
                {"day": day, "schema": schema_of(conn)},
            )
