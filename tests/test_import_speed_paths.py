"""The fast paths of a bulk import give the same book as the general, per-event path.

``Ledger.apply_all`` (which ``import_files`` feeds) reads events ahead and looks up what a
chunk needs in a few queries, applies an InvoiceIssued without contract, payment node or
order through ``Ledger._issue_plain`` (no per-event undo log), writes new objects with a
plain INSERT and flushes in small batches. Everything here compares such imports with
the general path on the same generated files (a ledger whose InvoiceIssued handler is its
own, so the fast path is off) and with a replay applied one event at a time through
``Ledger.batch`` (no read-ahead either): identical ``dump_book``, event logs and audit
trails, on memory, SQLite and PostgreSQL. Then the refusals: a bad row or a refused event
in the middle of the files imports nothing and names file:row:column.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import arflow.importer._reader as reader_module
import arflow.ledger._core as ledger_module
from arflow import (
    ArflowError,
    ImportRejected,
    InvoiceIssued,
    Ledger,
    Money,
    OverAllocation,
    Store,
    dump_book,
)
from arflow.domain import Customer, Receivable
from arflow.events import (
    AllocationRequest,
    CustomerRegistered,
    CustomerUpdated,
    PaymentReceived,
    parse_event,
)
from arflow.importer import import_files
from arflow.store.base import BufferedTx, json_of
from arflow.store.sql import SqlStore
from arflow.testing import BookBuilder

NOW = datetime(2026, 1, 2, 8, 30, tzinfo=UTC)
BASE = date(2025, 11, 1)
CURRENCIES = [("CNY", 2), ("JPY", 0), ("KWD", 3)]


class GeneralLedger(Ledger):
    """A ledger with its own InvoiceIssued handler (the same one): ``apply_all`` then takes
    the general per-event path (``_apply_event``, undo log) for every invoice."""

    def _invoice_issued(self, ctx: Any, e: InvoiceIssued) -> None:
        super()._invoice_issued(ctx, e)


def _amount(i: int, digits: int) -> str:
    units = 1 + (i * 7_919) % 900_000
    if digits == 0:
        return str(units)
    whole, frac = divmod(units, 10**digits)
    text = f"{whole}.{frac:0{digits}d}"
    return f"{int(whole):,}.{frac:0{digits}d}" if i % 11 == 0 and whole >= 1000 else text


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def make_files(folder: Path, invoices: int = 2_400, customers: int = 37) -> list[Path]:
    """Customers, two contracts, invoices (mostly plain; some on a contract's payment node
    or an order made before the import) and payments, in every currency digit count."""
    cust = [
        [
            f"C{c:03d}",
            f"客户{c:03d}有限公司" if c % 2 else f'Customer {c} "quoted" \\ Ltd',
            "" if c % 5 == 0 else ("华东" if c % 2 else "EU"),
            "" if c % 4 == 0 else f"S{c % 7}",
            str((c * 13) % 91),
            "vip;制造业" if c % 3 == 0 else "",
        ]
        for c in range(customers)
    ]
    paths = [
        _write_csv(
            folder / "customers.csv",
            ["id", "name", "region", "salesperson", "payment_terms_days", "tags"],
            cust,
        ),
        _write_csv(
            folder / "contracts.csv",
            [
                "contract_id",
                "customer_id",
                "signed_on",
                "amount",
                "currency",
                "salesperson",
                "node_id",
                "node_percent",
                "due_days",
            ],
            [
                ["K1", "C001", "2025-10-01", "1000000.00", "CNY", "合同销售", "N1", "30", "10"],
                ["K1", "", "", "", "", "", "N2", "70", "45"],
            ],
        ),
    ]
    header = [
        "number",
        "customer_id",
        "issue_date",
        "due_date",
        "amount",
        "currency",
        "contract_id",
        "payment_node_id",
        "order_id",
        "salesperson",
        "region",
        "product_line",
        "tags",
        "occurred_at",
    ]
    rows = []
    for i in range(invoices):
        currency, digits = CURRENCIES[i % len(CURRENCIES)]
        issued = BASE + timedelta(days=i % 200)
        row = {
            "number": f"INV-{i:05d}",
            "customer_id": f"C{i % customers:03d}",
            "issue_date": issued.isoformat() if i % 13 else issued.strftime("%Y/%m/%d"),
            "due_date": (issued + timedelta(days=i % 60)).isoformat() if i % 3 == 0 else "",
            "amount": _amount(i, digits),
            "currency": currency if i % 17 else currency.lower(),
            "salesperson": f"SP{i % 3}" if i % 5 == 0 else "",
            "region": "华南" if i % 7 == 0 else "",
            "product_line": "设备 ✓" if i % 4 == 0 else "",
            "tags": " erp ; q1 ;" if i % 6 == 0 else "",
            "occurred_at": "2025-12-05T09:30:00.250000+08:00" if i % 29 == 0 else "",
        }
        if i in (10, 20):
            row.update(
                customer_id="C001",
                currency="CNY",
                amount="1000.00",
                contract_id="K1",
                payment_node_id="N1" if i == 10 else "N2",
                due_date="",
            )
        if i == 30:
            row.update(customer_id="CX", currency="CNY", amount="500.00", order_id="O1")
        rows.append([row.get(h, "") for h in header])
    paths.append(_write_csv(folder / "invoices.csv", header, rows))
    paths.append(
        _write_csv(
            folder / "payments.csv",
            ["payment_id", "customer_id", "amount", "currency", "received_on", "allocate_to"],
            [
                ["PAY-1", "C003", "50.00", "CNY", "2026-01-05", "INV-00003:20.00"],
                ["PAY-2", "C001", "100000.00", "CNY", "2026-01-06", ""],
                ["PAY-3", "C004", "1000", "JPY", "2026-01-07", ""],
                ["PAY-4", "C002", "1.000", "KWD", "2026-01-07", "-"],
            ],
        )
    )
    return paths


def setup_book(ledger: Ledger) -> BookBuilder:
    """What the book holds before the import (the same events on every store)."""
    b = BookBuilder(ledger)
    b.customer("CX", name="已有客户", terms=15, region="华北", salesperson="老王")
    b.order("O1", "CX", "500.00")
    b.approve("O1")
    return b


def audit_trails(store: Store) -> dict[tuple[str, str], list[Any]]:
    return {
        (kind, oid): store.audit_trail(kind, oid)
        for kind, objects in dump_book(store).items()
        for oid in objects
    }


def book_of(store: Store) -> tuple[Any, ...]:
    """Everything an import leaves behind, comparable across stores."""
    return (
        dump_book(store),
        list(store.event_log()),
        store.event_count(),
        store.audit_count(),
        audit_trails(store),
    )


def replay_one_by_one(source: Store, target: Store) -> None:
    """The source's log applied to ``target`` event by event, general path, no read-ahead."""
    ledger = GeneralLedger(target)
    with ledger.batch() as b:
        for _type, body in source.event_log():
            b.apply(parse_event(body))


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return make_files(tmp_path)


#: Invoices in the books that three whole imports compare. The databases' are smaller (their
#: writes make 2,400 take a minute on PostgreSQL), yet still span three read-ahead chunks
#: (``_READ_AHEAD`` = 500) and two reader batches (``_BATCH`` = 1,000), with every kind of
#: row of ``make_files``: the same fast path, flushes and boundaries as the larger book.
BOOK_INVOICES = {"memory": 2_400, "sqlite": 1_100, "postgres": 1_100}


@pytest.fixture
def book_files(tmp_path: Path, backend: str) -> tuple[list[Path], int]:
    """``make_files`` sized for the backend, with its number of invoices."""
    assert BOOK_INVOICES[backend] > max(2 * ledger_module._READ_AHEAD, reader_module._BATCH)
    return make_files(tmp_path, BOOK_INVOICES[backend]), BOOK_INVOICES[backend]


def test_fast_import_equals_general_path_and_replay(
    store_factory: Callable[[], Store],
    book_files: tuple[list[Path], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files, n = book_files
    plain: list[str] = []
    issue_plain = Ledger._issue_plain

    def counted(self: Ledger, tx: BufferedTx, e: InvoiceIssued, *rest: Any) -> bool:
        plain.append(type(self).__name__)
        return issue_plain(self, tx, e, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "_issue_plain", counted)
    fast, general, replayed = store_factory(), store_factory(), store_factory()
    setup_book(Ledger(fast))
    setup_book(Ledger(general))
    report = import_files(Ledger(fast), files, now=NOW)
    assert report.invoices == n and report.applied == report.events == n + 37 + 1 + 4
    import_files(GeneralLedger(general), files, now=NOW)
    replay_one_by_one(fast, replayed)
    # the fast path took every invoice but the two on a contract and the one on an order
    assert plain == ["Ledger"] * (n - 3)

    book = book_of(fast)
    assert book == book_of(general)
    assert book == book_of(replayed)
    # and what the fast path made is what it should be
    r: Receivable = Ledger(fast).receivable("INV-00040")
    assert (r.customer_id, r.region, r.salesperson) == ("C003", "华东", "SP1")
    assert r.due_date == BASE + timedelta(days=40 + 39)  # C003's terms: 39 days
    assert r.amount == Money.of("316761", "JPY")
    assert Ledger(fast).receivable("INV-00001").amount == Money.of("7920", "JPY")
    assert Ledger(fast).receivable("INV-00002").amount == Money.of("15.839", "KWD")
    (trail,) = fast.audit_trail("receivable", "INV-00029")
    assert trail.occurred_at == datetime(2025, 12, 5, 1, 30, 0, 250000, tzinfo=UTC)
    assert trail.summary.startswith("issued ")


def test_reimport_is_a_no_op(
    store_factory: Callable[[], Store], book_files: tuple[list[Path], int]
) -> None:
    files, _n = book_files
    store = store_factory()
    setup_book(Ledger(store))
    import_files(Ledger(store), files, now=NOW)
    before = book_of(store)
    again = import_files(Ledger(store), files, now=NOW)
    assert again.applied == 0 and again.already_imported == again.events
    assert book_of(store) == before


def test_replay_rebuilds_the_imported_book(
    store_factory: Callable[[], Store], book_files: tuple[list[Path], int]
) -> None:
    files, _n = book_files
    source, target = store_factory(), store_factory()
    setup_book(Ledger(source))
    import_files(Ledger(source), files, now=NOW)
    Ledger(target).replay(source)
    assert book_of(target) == book_of(source)


# -- refusals --------------------------------------------------------------------------------
def _rejected(store: Store, paths: list[Path]) -> list[tuple[str, int, str, str]]:
    before = book_of(store)
    with pytest.raises(ImportRejected) as info:
        import_files(Ledger(store), paths, now=NOW)
    assert book_of(store) == before  # nothing imported
    return info.value.problems


def _edit_invoices(path: Path, edits: dict[int, dict[str, str]]) -> Path:
    """Change cells of data rows (1-based among the data rows) of an invoices file."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    for n, cells in edits.items():
        for col, value in cells.items():
            rows[n][header.index(col)] = value
    return _write_csv(path, header, rows[1:])


def test_bad_row_in_the_middle_imports_nothing(
    store_factory: Callable[[], Store], files: list[Path]
) -> None:
    store = store_factory()
    setup_book(Ledger(store))
    invoices = _edit_invoices(files[2], {1500: {"amount": "12,5"}})
    problems = _rejected(store, files)
    assert problems == [
        (
            str(invoices),
            1501,
            "amount",
            "'12,5' is ambiguous: ',' is accepted only as a thousands separator in groups of "
            "three (1,234,567.89); write the decimal point as '.'",
        )
    ]


@pytest.mark.parametrize(
    ("cells", "column", "reason"),
    [
        ({"customer_id": "C999"}, "customer_id", "unknown customer 'C999'"),
        ({"number": "DUP-1"}, "number", "receivable 'DUP-1' already exists"),
        (
            {"issue_date": "2025-12-01", "due_date": "2025-11-30", "number": "LATE-1"},
            "due_date",
            "invoice LATE-1: due date 2025-11-30 is before issue date 2025-12-01",
        ),
    ],
)
def test_refused_invoice_in_the_middle_imports_nothing(
    store_factory: Callable[[], Store],
    files: list[Path],
    cells: dict[str, str],
    column: str,
    reason: str,
) -> None:
    """The ledger refuses a plain invoice read ahead in the middle of a chunk: the refusal
    is mapped back to its row, and a bad row further down is reported too."""
    store = store_factory()
    setup_book(Ledger(store)).invoice("DUP-1", "CX", "1.00")  # not from an import
    invoices = _edit_invoices(files[2], {1234: cells, 2000: {"issue_date": "2025-02-30"}})
    problems = _rejected(store, files)
    assert problems == [
        (str(invoices), 1235, column, reason),
        (
            str(invoices),
            2001,
            "issue_date",
            "'2025-02-30' is not a date: day is out of range for month",
        ),
    ]


def test_refusals_on_the_general_path_name_the_same_rows(
    store_factory: Callable[[], Store], files: list[Path]
) -> None:
    fast, general = store_factory(), store_factory()
    _edit_invoices(files[2], {777: {"customer_id": "C999"}})
    problems = []
    for store, cls in ((fast, Ledger), (general, GeneralLedger)):
        setup_book(Ledger(store))
        with pytest.raises(ImportRejected) as info:
            import_files(cls(store), files, now=NOW)
        problems.append(info.value.problems)
        assert store.event_count() == 3  # the setup's
    assert problems[0] == problems[1] == [(str(files[2]), 778, "customer_id", problems[0][0][3])]


# -- apply_all across flushes and read-ahead chunks -----------------------------------------
def _customer(cid: str, salesperson: str, n: int) -> CustomerRegistered:
    return CustomerRegistered(
        event_id=f"c-{n}",
        occurred_at=NOW,
        actor="t",
        customer=Customer(id=cid, name=cid, salesperson=salesperson),
    )


def _invoice(number: str, cid: str, n: int, **kw: Any) -> InvoiceIssued:
    return InvoiceIssued(
        event_id=f"i-{n}",
        occurred_at=NOW,
        actor="t",
        number=number,
        customer_id=cid,
        issue_date=date(2026, 1, 1),
        amount=Money.of("10.00", "CNY"),
        **kw,
    )


def _events() -> list[Any]:
    """A customer changed between two of its invoices, a duplicate event id after a flush,
    and a payment that reads what came before."""
    return [
        _customer("A", "S1", 1),
        _invoice("I1", "A", 1),
        CustomerUpdated(
            event_id="u-1", occurred_at=NOW, actor="t", customer_id="A", salesperson="S2"
        ),
        _invoice("I2", "A", 2),
        _invoice("I1", "A", 1),  # the same event again: skipped
        PaymentReceived(
            event_id="p-1",
            occurred_at=NOW,
            actor="t",
            payment_id="P1",
            customer_id="A",
            amount=Money.of("15.00", "CNY"),
            received_on=date(2026, 1, 2),
        ),
        _invoice("I3", "A", 3),
    ]


@pytest.mark.parametrize("flush_every", [1, 2, 3, 250])
@pytest.mark.parametrize("read_ahead", [1, 2, 5, 500])
def test_apply_all_across_flushes_equals_one_by_one(
    store_factory: Callable[[], Store],
    monkeypatch: pytest.MonkeyPatch,
    flush_every: int,
    read_ahead: int,
) -> None:
    monkeypatch.setattr(ledger_module, "_READ_AHEAD", read_ahead)
    bulk, single = store_factory(), store_factory()
    assert Ledger(bulk).apply_all(_events(), flush_every=flush_every) == 6
    one = Ledger(single)
    for event in _events():
        one.apply(event)
    assert book_of(bulk) == book_of(single)
    assert Ledger(bulk).receivable("I1").salesperson == "S1"
    assert Ledger(bulk).receivable("I2").salesperson == "S2"
    assert Ledger(bulk).receivable("I2").paid == Money.of("5.00", "CNY")


def test_refusal_names_its_event_and_the_stream_error_comes_after(
    store_factory: Callable[[], Store],
) -> None:
    store = store_factory()
    ledger = Ledger(store)
    with pytest.raises(ArflowError) as info:
        ledger.apply_all([_customer("A", "S1", 1), _invoice("I1", "B", 7), _invoice("I2", "A", 8)])
    assert info.value.event_id == "i-7"  # type: ignore[attr-defined]
    assert store.event_count() == 0

    def stream() -> Iterator[Any]:
        yield _customer("A", "S1", 1)
        yield _invoice("I1", "B", 7)  # refused before the stream's own error surfaces
        raise RuntimeError("the reader broke")

    with pytest.raises(ArflowError, match="unknown customer 'B'"):
        ledger.apply_all(stream())

    def broken() -> Iterator[Any]:
        yield _customer("A", "S1", 1)
        raise RuntimeError("the reader broke")

    with pytest.raises(RuntimeError, match="the reader broke"):
        ledger.apply_all(broken())
    assert store.event_count() == 0 and dump_book(store) == dump_book(Ledger().store)


def test_a_refused_event_in_a_batch_leaves_the_others(store_factory: Callable[[], Store]) -> None:
    """The undo log: a payment refused after it reduced one invoice leaves that invoice,
    the staged writes and the audit as they were, inside the same transaction."""
    store, expected = store_factory(), store_factory()
    for s in (store, expected):
        b = BookBuilder(Ledger(s))
        b.customer("A")
        b.invoice("I1", "A", "100.00")
        b.invoice("I2", "A", "100.00")
    ledger = Ledger(store)
    good = PaymentReceived(
        event_id="p-ok",
        occurred_at=NOW,
        actor="t",
        payment_id="P2",
        customer_id="A",
        amount=Money.of("30.00", "CNY"),
        received_on=date(2026, 1, 3),
    )
    bad = good.model_copy(
        update={
            "event_id": "p-bad",
            "payment_id": "P1",
            "amount": Money.of("300.00", "CNY"),
            "allocations": (
                AllocationRequest(receivable_id="I1", amount=Money.of("50.00", "CNY")),
                AllocationRequest(receivable_id="I2", amount=Money.of("150.00", "CNY")),
            ),
        }
    )
    with ledger.batch() as batch:
        before = batch.tx.get("receivable", "I1")
        with pytest.raises(OverAllocation):
            batch.apply(bad)
        assert batch.tx.get("receivable", "I1") == before
        assert not batch.tx.has_event("p-bad")
        assert isinstance(batch.tx, BufferedTx)
        assert {r.id for r in batch.tx.find("receivable", customer_id="A")} == {"I1", "I2"}
        batch.apply(good)
    Ledger(expected).apply(good)
    assert book_of(store) == book_of(expected)


# -- pieces ----------------------------------------------------------------------------------
def test_json_of_is_model_dump_json_without_nones(files: list[Path]) -> None:
    store = Ledger("memory://").store
    setup_book(Ledger(store))
    import_files(Ledger(store), files, now=NOW)
    objects = [
        o for kind in ("customer", "receivable", "payment", "contract") for o in store.all(kind)
    ]
    audits = [a for o in objects[:50] for a in store.audit_trail(type(o).__name__.lower(), o.id)]
    events = [parse_event(body) for _t, body in store.event_log()]
    for obj in [*objects, *audits, *events, Money.of(Decimal("-0.5"), "CNY")]:
        assert json_of(obj) == obj.model_dump_json(exclude_none=True)
        assert type(obj).model_validate_json(json_of(obj)) == obj


def test_sqlite_page_cache_is_back_after_apply_all(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'book.db'}")
    seen: list[int] = []

    class Spy(Ledger):
        def _customer_registered(self, ctx: Any, e: CustomerRegistered) -> None:
            seen.append(ctx.tx._conn.exec_driver_sql("PRAGMA cache_size").scalar())
            super()._customer_registered(ctx, e)

    Spy(store).apply_all([_customer("A", "S1", 1), _customer("B", "S1", 2)])
    assert seen == [-256 * 1024] * 2
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
        assert conn.execute(sa.text("select count(*) from ar_event")).scalar() == 2
