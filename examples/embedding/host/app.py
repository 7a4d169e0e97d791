"""The host's wiring: its engine, its sessions, and arflow on each session.

One ``App`` per process. The rule pack is loaded once (checking every rule file at start-up)
and shared; a ``Ledger`` and an ``Engine`` are made per transaction on the host's own
``Session``, which is cheap: they share the one joined store kept with the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from arflow import Engine, Ledger, RulePack, default_pack_path, load_pack, prepare_sqlite

from .reactions import KINDS, Reactions


class App:
    """The host application: ``url`` is its own database, which holds arflow's tables too
    (made by the deployment, ``deploy.py``). On PostgreSQL, ``arflow_schema`` names a schema
    of arflow's own, which the URL's search path must name after the host's
    (``options=-csearch_path=erp,arflow``): the host's session finds arflow's tables there."""

    def __init__(
        self, url: str, pack: RulePack | None = None, *, arflow_schema: str | None = None
    ) -> None:
        self.url = url
        self.arflow_schema = arflow_schema
        self.db = sa.create_engine(url)
        # SQLite: every transaction begins in the database when SQLAlchemy begins it, so
        # arflow's savepoints are savepoints of the host's transaction (PostgreSQL: nothing)
        prepare_sqlite(self.db)
        self.sessions = sessionmaker(self.db, expire_on_commit=False)
        self.pack = pack if pack is not None else load_pack(default_pack_path())
        #: what the host does when arflow tells it of a decision (after the commit)
        self.reactions = Reactions(self.db)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One host transaction: commits at the end of the block, rolls back on an error."""
        with self.sessions() as session, session.begin():
            yield session

    def arflow(self, session: Session) -> Engine:
        """arflow inside ``session``'s transaction, with the host's reactions subscribed."""
        ledger = Ledger(session)
        ledger.subscribe(self.reactions, *KINDS)
        return Engine(ledger, self.pack)

    def close(self) -> None:
        self.db.dispose()
