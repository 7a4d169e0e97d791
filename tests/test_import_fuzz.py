"""Fuzz of the CSV and JSON readers: random bytes, mutated exports and random rows in the
known columns. Whatever the file, an import either succeeds or raises ImportRejected whose
every problem has a file:row:column; nothing else is raised, a refused import leaves the
book as it was, and no example takes long."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arflow import ImportRejected, Ledger, MemoryStore, Store, dump_book
from arflow.importer import COLUMNS, import_files
from arflow.store.sql import SqlStore

from .test_importer import (
    CONTRACTS_CSV,
    CONTRACTS_JSON,
    CUSTOMERS_CSV,
    INVOICES_CSV,
    INVOICES_JSONL,
    NOW,
    PAYMENTS_CSV,
    PAYMENTS_JSON,
)

#: A generous bound on one import of a small file (the issue asks for under a second).
SECONDS = 5.0

VALID: dict[str, str] = {
    "customers.csv": CUSTOMERS_CSV,
    "contracts.csv": CONTRACTS_CSV,
    "contracts.json": json.dumps(CONTRACTS_JSON, ensure_ascii=False),
    "invoices.csv": INVOICES_CSV,
    "invoices.jsonl": INVOICES_JSONL,
    "payments.csv": PAYMENTS_CSV,
    "payments.json": json.dumps(PAYMENTS_JSON, ensure_ascii=False),
}
NAMES = st.sampled_from(sorted(VALID))

# Values that have broken readers before, beside random text.
HOSTILE = [
    "",
    " ",
    "0",
    "-1",
    "1" * 27,
    "9" * 16,
    "1" * 5000,
    "1e400",
    "NaN",
    "Infinity",
    "1,000",
    "1,0000.5",
    "0.30000000000000004",
    "9999-12-31",
    "0001-01-01",
    "2026-02-30",
    "2026-01-05",
    "2026-01-05T09:00:00+08:00",
    "9999-12-31T23:59:59-10:00",
    "C1",
    "C2",
    "K1",
    "N1",
    "N2",
    "M1",
    "INV-1",
    "INV-2",
    "CNY",
    "RMB",
    "KWD",
    "a@x.com, b@y.com",
    "a@x.com",
    "x\x00y",
    "x\ny",
    "x\r\ny",
    "x\u2028y",
    "\ud800",
    "INV-2:1200.50;INV-1:8000",
    "INV-1:" + "1" * 30,
    "-",
    "yes",
    "true",
    "3650",
    "99999",
    "Asia/Shanghai",
    "Mars/Olympus",
    "key;制造业",
    "x" * 300,
]
TEXT = st.text(max_size=20)
VALUE = st.one_of(st.sampled_from(HOSTILE), TEXT)
JSON_SCALAR = st.one_of(
    VALUE,
    st.none(),
    st.booleans(),
    st.integers(-(10**45), 10**45),
    st.decimals(allow_nan=False, allow_infinity=False, places=6),
)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(VALUE, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid export with random bytes replaced, inserted or cut."""
    name = draw(NAMES)
    data = bytearray(VALID[name].encode())
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        junk = draw(
            st.binary(max_size=8) | st.sampled_from([b"\x00", b'"', b",", b"\n", b"[", b"{"])
        )
        cut = draw(st.integers(0, 4))
        data[at : at + cut] = junk
    return name, bytes(data)


@st.composite
def random_rows(draw: st.DrawFn) -> tuple[str, bytes]:
    """Rows with random values in the columns of a kind, as CSV, JSON or JSON lines."""
    kind = draw(st.sampled_from(sorted(COLUMNS)))
    fmt = draw(st.sampled_from(["csv", "json", "jsonl"]))
    required, optional = COLUMNS[kind]
    columns = list(required) + draw(st.lists(st.sampled_from(optional), max_size=6, unique=True))
    if draw(st.booleans()):
        columns = draw(st.permutations(columns))
    rows = draw(st.lists(st.lists(VALUE, min_size=len(columns), max_size=len(columns)), max_size=5))
    name = f"{kind}.{fmt}"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
        return name, out.getvalue().encode("utf-8", "surrogatepass")
    records: list[Any] = []
    for row in rows:
        record: dict[str, Any] = dict(zip(columns, row, strict=True))
        for col in draw(st.lists(st.sampled_from(columns), max_size=2)):
            record[col] = draw(JSON_VALUE)  # any JSON type where text is expected
        records.append(record)
    if draw(st.integers(0, 9)) == 0:
        records.append(draw(JSON_VALUE))  # a record that is not an object
    if fmt == "json":
        text = json.dumps(records, default=str, ensure_ascii=draw(st.booleans()))
    else:
        text = "\n".join(json.dumps(r, default=str) for r in records) + "\n"
    return name, text.encode("utf-8", "surrogatepass")


STRUCTURED: dict[str, Any] = {
    "contracts.json": CONTRACTS_JSON,
    "payments.json": PAYMENTS_JSON,
    "invoices.json": [json.loads(line) for line in INVOICES_JSONL.splitlines() if line],
}


@st.composite
def mutated_json(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid JSON export (contracts in their nested form too) with random values put
    in place of some of its values, at any depth."""
    name = draw(st.sampled_from(sorted(STRUCTURED)))
    data = json.loads(json.dumps(STRUCTURED[name]))
    for _ in range(draw(st.integers(1, 4))):
        node: Any = data
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, dict | list) and child and draw(st.booleans()):
                node = child
                continue
            node[key] = draw(JSON_VALUE)
            break
    text = json.dumps(data, default=str)
    return name, text.encode("utf-8", "surrogatepass")


def import_once(ledger: Ledger, folder: Path, name: str, data: bytes) -> None:
    """Import a good customers file and ``data``: success, or a located refusal that
    changed nothing; never another exception, never long."""
    good = folder / "customers-base.csv"
    good.write_text(CUSTOMERS_CSV)
    path = folder / name
    path.write_bytes(data)
    paths = [good, path] if not name.startswith("customers") else [path]
    before = dump_book(ledger.store), ledger.store.event_count(), ledger.store.audit_count()
    start = time.monotonic()
    try:
        import_files(ledger, paths, now=NOW)
    except ImportRejected as exc:
        after = dump_book(ledger.store), ledger.store.event_count(), ledger.store.audit_count()
        assert after == before, "a refused import changed the book"
        assert exc.problems
        for file, row, column, reason in exc.problems:
            assert file in {str(p) for p in paths}
            assert isinstance(row, int) and row >= 0
            assert column and isinstance(column, str)
            assert reason
            assert f"{file}:{row}:{column}: " in str(exc) or len(exc.problems) > 50
    assert time.monotonic() - start < SECONDS


FUZZ = settings(
    max_examples=int(os.environ.get("ARFLOW_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(params=["memory", "sqlite"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    store: Store = (
        MemoryStore() if request.param == "memory" else SqlStore(f"sqlite:///{tmp_path / 'b.db'}")
    )
    yield Ledger(store)
    store.close()


@FUZZ
@given(name=NAMES, data=st.binary(max_size=600))
def test_random_bytes(ledger: Ledger, tmp_path: Path, name: str, data: bytes) -> None:
    import_once(ledger, tmp_path, name, data)


@FUZZ
@given(case=mutated())
def test_mutated_exports(ledger: Ledger, tmp_path: Path, case: tuple[str, bytes]) -> None:
    import_once(ledger, tmp_path, *case)


@FUZZ
@given(case=random_rows())
def test_random_rows_in_the_known_columns(
    ledger: Ledger, tmp_path: Path, case: tuple[str, bytes]
) -> None:
    import_once(ledger, tmp_path, *case)


@FUZZ
@given(case=mutated_json())
def test_random_values_in_json_structures(
    ledger: Ledger, tmp_path: Path, case: tuple[str, bytes]
) -> None:
    import_once(ledger, tmp_path, *case)


def test_the_fuzz_values_cover_the_known_breakers() -> None:
    """The hostile values above are each what an earlier version failed on."""
    assert "1" * 27 in HOSTILE and "9999-12-31" in HOSTILE and "x\x00y" in HOSTILE
    assert Decimal("1e400")  # read as a Decimal, never a float
