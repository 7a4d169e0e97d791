"""Benchmark: what applying events inside the host's transaction costs (issue 16).

``--events`` InvoiceIssued events for one customer, on an SQLite file or PostgreSQL, four ways:

* ``own``: ``Ledger(url).apply(event)``, each event its own transaction (the book's own);
* ``host-each``: per event, a host transaction on an ORM ``Session`` that inserts the host's
  invoice row and applies the event (``Ledger(session)``), then commits: what an ERP does;
* ``host-one``: every event in one host transaction, a savepoint per ``apply``;
* ``host-all``: ``Ledger(session).apply_all(events)`` in one host transaction.

Events are made inside the timed loop. One run per mode, in this process.

    python bench/bench_joined.py --events 2000 --backend sqlite
    python bench/bench_joined.py --events 2000 --backend postgres
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from arflow import (
    CreditProfile,
    Customer,
    CustomerRegistered,
    InvoiceIssued,
    Ledger,
    Money,
    SqlStore,
    prepare_sqlite,
)

AT = datetime(2026, 3, 1, tzinfo=UTC)
HOST = sa.MetaData()
ROWS = sa.Table(
    "host_invoice",
    HOST,
    sa.Column("number", sa.String(40), primary_key=True),
    sa.Column("amount", sa.Numeric(18, 2)),
)
PG = os.environ.get("ARFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def issued(number: str) -> InvoiceIssued:
    return InvoiceIssued(
        event_id=f"erp:{number}",
        occurred_at=AT,
        actor="erp",
        number=number,
        customer_id="C1",
        issue_date=date(2026, 3, 1),
        due_date=date(2026, 3, 31),
        amount=Money.of("100.00", "CNY"),
    )


def fresh(backend: str, folder: str) -> tuple[sa.Engine, Callable[[], None]]:
    """A host's engine on a new book holding customer C1, and what drops it."""
    if backend == "sqlite":
        url = f"sqlite:///{folder}/{uuid.uuid4().hex[:8]}.db"
        store = SqlStore(url)
        engine = prepare_sqlite(sa.create_engine(url))
        drop = engine.dispose
    else:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine = sa.create_engine(PG, connect_args={"options": f"-csearch_path={schema}"})
        store = SqlStore(engine)

        def drop() -> None:
            engine.dispose()
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    Ledger(store).apply(
        CustomerRegistered(
            event_id="reg-C1",
            occurred_at=AT,
            actor="crm",
            customer=Customer(id="C1", name="C1", credit=CreditProfile(grade="B")),
        )
    )
    if backend == "sqlite":
        store.close()
    HOST.create_all(engine)
    return engine, drop


def own(engine: sa.Engine, n: int) -> None:
    book = Ledger(SqlStore(engine, upgrade=False))
    for i in range(n):
        book.apply(issued(f"I{i}"))


def host_each(engine: sa.Engine, n: int) -> None:
    with Session(engine) as session:
        book = Ledger(session)
        for i in range(n):
            session.execute(ROWS.insert().values(number=f"I{i}", amount=100))
            book.apply(issued(f"I{i}"))
            session.commit()


def host_one(engine: sa.Engine, n: int) -> None:
    with Session(engine) as session:
        book = Ledger(session)
        for i in range(n):
            session.execute(ROWS.insert().values(number=f"I{i}", amount=100))
            book.apply(issued(f"I{i}"))
        session.commit()


def host_all(engine: sa.Engine, n: int) -> None:
    with Session(engine) as session:
        session.execute(ROWS.insert(), [{"number": f"I{i}", "amount": 100} for i in range(n)])
        Ledger(session).apply_all(issued(f"I{i}") for i in range(n))
        session.commit()


MODES = {"own": own, "host-each": host_each, "host-one": host_one, "host-all": host_all}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for name, mode in MODES.items():
            engine, drop = fresh(args.backend, folder)
            try:
                start = time.perf_counter()
                mode(engine, args.events)
                took = time.perf_counter() - start
            finally:
                drop()
            print(f"{args.backend:8} {name:10} {args.events / took:10,.0f} events/s")


if __name__ == "__main__":
    main()
