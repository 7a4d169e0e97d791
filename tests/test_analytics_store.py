"""The movement journal behind arflow.analytics: kept by the ledger on every write path the
same way on every backend, rebuilt identically by the schema upgrade, and summed by SQL
exactly as the Python reference sums it (generated books, memory vs SQLite vs PostgreSQL)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from arflow import Analytics, ClosedItem, Ledger, MemoryStore, PaymentReversed, Store
from arflow.store.sql import MIGRATIONS, SCHEMA, SqlStore
from arflow.store.sql._schema import backfill_movements
from arflow.strategies import event_sequences

from .test_analytics import worked_book

SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
DAYS = (date(2026, 1, 15), date(2026, 2, 28), date(2026, 3, 31), date(2026, 6, 30))


def _book(store: Store, events: list, reverse: bool) -> None:  # type: ignore[type-arg]
    ledger = Ledger(store)
    ledger.apply_all(events[:3])  # the general path for some, then the bulk path
    ledger.apply_all(events[3:])
    if reverse:
        paid = [p for p in store.all("payment") if p.allocations and not p.reversed]
        for pid in sorted(p.id for p in paid)[:1]:
            with contextlib.suppress(ClosedItem):  # a receivable it paid was written off
                ledger.apply(
                    PaymentReversed(
                        occurred_at=datetime(2026, 5, 1, tzinfo=UTC),
                        actor="t",
                        payment_id=pid,
                        reversed_on=date(2026, 5, 1),
                    )
                )


def _figures(a: Analytics, by: tuple[str, ...]) -> list[object]:
    out: list[object] = []
    for day in DAYS:
        out += [
            a.aging(day, by=by),
            a.dso(day, by=by),
            a.dso(day, by=by, method="countback"),
            a.art(day, by=by),
            a.add(day, by=by),
            a.cei(day, by=by),
            a.collection_rate(day, by=by),
            a.written_off_ratio(day, by=by),
            a.on_time_rate(day, by=by),
        ]
    return out


def _conserved(store: Store) -> None:
    """Money is conserved: the journal's open balances are the receivables' own."""
    (late,) = [DAYS[-1] + timedelta(days=3650)]
    open_by_currency: dict[str, Decimal] = {}
    open_count = 0
    for r in store.all("receivable"):
        open_by_currency[r.currency] = open_by_currency.get(r.currency, Decimal(0)) + (
            r.open_balance.amount
        )
        open_count += bool(r.open_balance)
    aging = Analytics(store).aging(late)
    assert {a.currency: a.total.amount for a in aging} == {
        c: v for c, v in open_by_currency.items() if v or open_count
    }
    assert sum(b.count for a in aging for b in a.buckets) == open_count


#: generated books per backend: PostgreSQL makes a schema per book, and a few books show
#: that its SQL agrees; SQLite, the cheaper SQL backend, searches wider
GENERATED_BOOKS = {"sqlite": 12, "postgres": 5}


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_sql_figures_equal_the_reference_on_generated_books(
    backend: str, store_factory: Callable[[], Store]
) -> None:
    @settings(
        max_examples=GENERATED_BOOKS[backend],
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    @given(
        events=event_sequences(n_customers=(1, 3), n_events=(5, 40), opening=(0, 4)),
        reverse=st.booleans(),
    )
    def check(events: list, reverse: bool) -> None:  # type: ignore[type-arg]
        _figures_agree(store_factory(), events, reverse)

    check()


def _figures_agree(sql: Store, events: list, reverse: bool) -> None:  # type: ignore[type-arg]
    memory = MemoryStore()
    _book(sql, events, reverse)
    _book(memory, events, reverse)
    journal = sorted(sql.movements())
    assert journal == sorted(memory.movements())
    _conserved(sql)
    for by in ((), ("customer",), ("grade", "salesperson")):
        expected = _figures(Analytics(memory), by)
        assert _figures(Analytics(sql), by) == expected
        assert _figures(Analytics(sql, reference=True), by) == expected
    # the upgrade's backfill rebuilds the very journal the ledger kept
    assert isinstance(sql, SqlStore)
    with sql.engine.begin() as conn:
        backfill_movements(conn)
    assert sorted(sql.movements()) == journal


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_v7_book_gets_its_journal_on_upgrade(store_factory: Callable[[], Store]) -> None:
    """A book of schema version 7 (before the journal) upgraded to 8 gives the figures of a
    book that had the journal from the start."""
    reference = store_factory()
    worked_book(reference)
    expected = [_figures(Analytics(reference), by) for by in ((), ("team", "customer"))]
    ranks = Analytics(reference).ranking("dso", "team", DAYS[2])

    store = store_factory()
    assert isinstance(store, SqlStore)
    # the tables of version 7, made by its own steps, then the book a v7 arflow writes
    made = [t for t in _tables(store.engine) if t != "arflow_schema"]
    with store.engine.begin() as conn:
        for table in made:
            conn.execute(sa.text(f"DROP TABLE {table}"))
        conn.execute(SCHEMA.delete())
        for version, step in enumerate(MIGRATIONS[:7], start=1):
            step(conn)
            conn.execute(SCHEMA.insert().values(version=version))
    v7_tables = _tables(store.engine)
    assert "ar_movement" not in v7_tables and "ar_receivable" in v7_tables
    assert isinstance(reference, SqlStore)
    # what the v7 book holds: the reference's rows of those tables, copied row for row
    with store.engine.begin() as conn, reference.engine.connect() as source:
        for table in sorted(v7_tables - {"arflow_schema"}):
            rows = [dict(r._mapping) for r in source.execute(sa.text(f"SELECT * FROM {table}"))]
            if rows:
                conn.execute(sa.table(table, *(sa.column(c) for c in rows[0])).insert(), rows)
    upgraded = SqlStore(store.engine)
    with upgraded.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(SCHEMA.c.version))).scalar() == len(MIGRATIONS)
    assert sorted(upgraded.movements()) == sorted(reference.movements())
    got = [_figures(Analytics(upgraded), by) for by in ((), ("team", "customer"))]
    assert got == expected
    assert Analytics(upgraded).ranking("dso", "team", DAYS[2]) == ranks


def test_cash_applied_later_and_a_reversal_are_in_the_journal(store: Store) -> None:
    """Cash and a credit note held on account, applied later with CashApplied (a ledger
    that does not apply them itself), then the payment reversed: each balance change is a
    movement on its business date, and the upgrade's rebuild agrees."""
    from arflow import CashApplied, CreditNoteIssued, InvoiceIssued, Money, PaymentReceived

    from .test_analytics import AT, worked_book

    worked_book(store)
    ledger = Ledger(store, apply_unapplied_cash=False)
    cny = Money.of(300, "CNY")
    ledger.apply(
        PaymentReceived(occurred_at=AT, actor="t", payment_id="P9", customer_id="C1",
                        amount=cny, received_on=date(2026, 4, 1), allocations=())
    )  # fmt: skip
    ledger.apply(
        CreditNoteIssued(occurred_at=AT, actor="t", credit_note_id="CN9", customer_id="C1",
                         amount=cny, issued_on=date(2026, 4, 2))
    )  # fmt: skip
    ledger.apply(
        InvoiceIssued(occurred_at=AT, actor="t", number="I9", customer_id="C1",
                      issue_date=date(2026, 4, 3), due_date=date(2026, 5, 3),
                      amount=Money.of(1000, "CNY"))
    )  # fmt: skip
    for kw in ({"payment_id": "P9"}, {"credit_note_id": "CN9"}):
        ledger.apply(
            CashApplied(occurred_at=AT, actor="t", receivable_id="I9", amount=cny,
                        applied_on=date(2026, 4, 10), **kw)  # type: ignore[arg-type]
        )  # fmt: skip
    ledger.apply(
        PaymentReversed(occurred_at=AT, actor="t", payment_id="P9", reversed_on=date(2026, 4, 20))
    )
    mine = [(m[3], m[4], m[5], m[6]) for m in store.movements() if m[0] == "I9"]
    assert mine == [
        ("invoiced", date(2026, 4, 3), 100000, 1),
        ("paid", date(2026, 4, 10), -30000, 0),
        ("credited", date(2026, 4, 10), -30000, 0),
        ("reversed", date(2026, 4, 20), 30000, 0),
    ]
    (figure,) = Analytics(store).collection_rate(date(2026, 4, 30), start=date(2026, 4, 1))
    assert figure.value == Decimal(0)  # 300 paid, 300 reversed: nothing collected
    if isinstance(store, SqlStore):
        journal = sorted(store.movements())
        with store.engine.begin() as conn:
            backfill_movements(conn)
        assert sorted(store.movements()) == journal


@pytest.mark.parametrize("reader_process", [False, True])
def test_an_import_writes_the_journal(store: Store, tmp_path: Path, reader_process: bool) -> None:
    """The importer (its bulk path, in this process or from its reader process) keeps the
    journal as the ledger's events do: the same rows as a memory book fed the same files,
    money conserved, and what the upgrade would rebuild."""
    from arflow import import_files

    from .test_importer import NOW, csv_files

    files = csv_files(tmp_path)
    import_files(Ledger(store), files, now=NOW, reader_process=reader_process)
    reference = MemoryStore()
    import_files(Ledger(reference), files, now=NOW, reader_process=False)
    journal = sorted(store.movements())
    assert journal == sorted(reference.movements())
    assert {m[3] for m in journal} >= {"invoiced", "paid"}
    _conserved(store)
    if isinstance(store, SqlStore):
        with store.engine.begin() as conn:
            backfill_movements(conn)
        assert sorted(store.movements()) == journal
