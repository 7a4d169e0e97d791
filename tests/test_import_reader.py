"""The import's reader process (``arflow.importer._reader``): a large import reads and
checks its files in a second process while the first applies them. Whichever way the files
are read, the book, the event log, the audit trail and every refusal must be the same."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import arflow
import arflow.importer._pipeline as importer
import arflow.importer._reader as reader
from arflow import ArflowError, ImportRejected, Ledger, Store, dump_book
from arflow.cli import main
from arflow.importer import import_files

from .test_importer import (
    CONTRACTS_CSV,
    CUSTOMERS_CSV,
    INVOICES_CSV,
    INVOICES_JSONL,
    NOW,
    PAYMENTS_CSV,
    PAYMENTS_JSON,
    csv_files,
    write,
    write_json,
)


def many_invoices(count: int) -> str:
    """Invoices of every shape the reader hands over: plain ones (due by terms or on a
    date, with and without salesperson, region, product line, tags, Chinese text) and
    ones with a contract and payment node, which go over as JSON."""
    lines = [INVOICES_CSV.rstrip("\n")]
    for i in range(count):
        customer = "C1" if i % 3 else "C2"
        due = "" if i % 4 == 0 else f"2026-04-{1 + i % 28:02d}"
        extra = ["", "", "", "", ""]
        if i % 5 == 0:
            extra = ["王伟", "华南", "设备", "季度;重点", ""]
        elif i % 7 == 0:
            extra = ["", "EU", "", "", ""]
        amount = f'"{1 + i:,}.{i % 100:02d}"'
        lines.append(
            f"BULK-{i:05d},{customer},2026-03-{1 + i % 28:02d},{due},{amount},CNY,,,,"
            + ",".join(extra[:4])
        )
    return "\n".join(lines) + "\n"


def book_files(folder: Path, invoices: int = 0) -> list[Path]:
    return [
        write(folder, "customers.csv", CUSTOMERS_CSV),
        write(folder, "contracts.csv", CONTRACTS_CSV),
        write(folder, "invoices.csv", many_invoices(invoices) if invoices else INVOICES_CSV),
        write(folder, "payments.csv", PAYMENTS_CSV),
    ]


def sqlite_tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a SQLite book, ordered: what 'the same book' means."""
    conn = sqlite3.connect(path)
    try:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"'), key=repr) for n in names}
    finally:
        conn.close()


def test_the_same_sqlite_book_byte_for_byte_whichever_way_the_files_are_read(
    tmp_path: Path,
) -> None:
    files = book_files(tmp_path, invoices=2500)
    reports = []
    for how in (False, True):
        ledger = Ledger(f"sqlite:///{tmp_path / f'book-{how}.db'}")
        reports.append(str(import_files(ledger, files, now=NOW, reader_process=how)))
        ledger.store.close()
    assert reports[0] == reports[1]
    assert "2503 invoice(s)" in reports[0]
    inline = sqlite_tables(tmp_path / "book-False.db")
    assert inline["ar_event"] and inline["ar_audit"]
    assert sqlite_tables(tmp_path / "book-True.db") == inline


def test_the_same_book_on_every_store(store: Store, tmp_path: Path) -> None:
    files = [
        write(tmp_path, "customers.csv", CUSTOMERS_CSV),
        write(tmp_path, "contracts.csv", CONTRACTS_CSV),
        write(tmp_path, "invoices.jsonl", INVOICES_JSONL),
        write_json(tmp_path, "payments.json", PAYMENTS_JSON),
    ]
    ledger = Ledger(store)
    report = import_files(ledger, files, now=NOW, reader_process=True)
    assert report.applied == 2 + 1 + 3 + 2
    expected = Ledger("memory://")
    import_files(expected, files, now=NOW, reader_process=False)
    assert dump_book(store) == dump_book(expected.store)
    assert list(store.event_log()) == list(expected.store.event_log())
    assert store.audit_count() == expected.store.audit_count()
    # importing again is a no-op both ways
    assert import_files(ledger, files, now=NOW, reader_process=True).applied == 0


def _bad_rows(folder: Path) -> list[Path]:
    files = csv_files(folder)
    bad = (
        INVOICES_CSV + "INV-4,C1,2026-13-01,,12.00,CNY,,,,,,,\nINV-5,C1,2026-02-01,,x,CNY,,,,,,,\n"
    )
    files[1] = write(folder, "invoices-2026-02.csv", bad)
    return files


def _duplicate(folder: Path) -> list[Path]:
    files = csv_files(folder)
    files.append(write(folder, "invoices-again.csv", INVOICES_CSV.replace("INV-1,", "INV-9,")))
    return files


def _unknown_customer_then_bad_row(folder: Path) -> list[Path]:
    files = csv_files(folder)
    text = INVOICES_CSV.replace("INV-3,C2", "INV-3,C9") + "INV-4,C1,2026-02-01,,-5,CNY,,,,,,,\n"
    files[1] = write(folder, "invoices-2026-02.csv", text)
    return files


def _over_allocation(folder: Path) -> list[Path]:
    files = csv_files(folder)
    files[0] = write(folder, "payments.csv", PAYMENTS_CSV.replace("INV-2:1200.50", "INV-2:9200"))
    return files


@pytest.mark.parametrize(
    "make", [_bad_rows, _duplicate, _unknown_customer_then_bad_row, _over_allocation]
)
def test_refusals_are_reported_alike_and_change_nothing(
    tmp_path: Path, make: Callable[[Path], list[Path]]
) -> None:
    files = make(tmp_path)
    found = []
    for how in (False, True):
        ledger = Ledger(f"sqlite:///{tmp_path / f'book-{how}.db'}")
        with pytest.raises(ImportRejected) as info:
            import_files(ledger, files, now=NOW, reader_process=how)
        assert ledger.store.event_count() == 0
        assert dump_book(ledger.store) == dump_book(Ledger("memory://").store)
        found.append(info.value.problems)
        ledger.store.close()
    assert found[0]
    assert found[1] == found[0]


def test_large_files_go_to_the_reader_process_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []
    real = reader.messages

    def spy(spec: dict[str, Any]) -> Any:
        started.append(spec)
        return real(spec)

    monkeypatch.setattr(reader, "messages", spy)
    files = csv_files(tmp_path)
    size = sum(p.stat().st_size for p in files)
    monkeypatch.setattr(importer, "READER_PROCESS_BYTES", size)  # not larger: in-process
    import_files(Ledger("memory://"), files, now=NOW)
    assert started == []
    monkeypatch.setattr(importer, "READER_PROCESS_BYTES", size - 1)
    report = import_files(Ledger("memory://"), files, now=NOW)
    assert report.applied == 2 + 1 + 3 + 2
    (spec,) = started
    assert [kind for _n, _p, kind, _f in spec["plan"]] == [
        "customers",
        "contracts",
        "invoices",
        "payments",
    ]


def fake_python(folder: Path, script: str) -> str:
    """An executable standing in for ``sys.executable`` that runs ``script`` instead of
    the child process arflow starts (the import's reader, the run's helpers)."""
    path = folder / "fake-python"
    path.write_text(f"#!{sys.executable}\n{script}")
    path.chmod(0o755)
    return str(path)


def test_a_reader_that_dies_fails_the_import_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = fake_python(
        tmp_path, "import sys\nsys.stderr.write('killed: out of memory')\nsys.exit(3)\n"
    )
    monkeypatch.setattr(sys, "executable", exe)
    ledger = Ledger(f"sqlite:///{tmp_path / 'book.db'}")
    with pytest.raises(reader.ReaderFailed, match=r"exit code 3\): killed: out of memory"):
        import_files(ledger, csv_files(tmp_path), now=NOW, reader_process=True)
    assert ledger.store.event_count() == 0


def test_a_reader_exception_is_raised_in_the_importing_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What went wrong in the reader (here an OSError it sent) is raised as itself; the
    items sent before it are not kept."""
    script = (
        "import pickle, struct, sys\n"
        "sys.stdin.read()\n"
        "def send(m):\n"
        "    data = pickle.dumps(m)\n"
        "    sys.stdout.buffer.write(struct.pack('<I', len(data)) + data)\n"
        "send(('items', []))\n"
        "send(('error', OSError(5, 'disk went away')))\n"
    )
    monkeypatch.setattr(sys, "executable", fake_python(tmp_path, script))
    ledger = Ledger(f"sqlite:///{tmp_path / 'book.db'}")
    with pytest.raises(OSError, match="disk went away"):
        import_files(ledger, csv_files(tmp_path), now=NOW, reader_process=True)
    assert ledger.store.event_count() == 0


def test_no_interpreter_to_start_fails_the_import_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    ledger = Ledger(f"sqlite:///{tmp_path / 'book.db'}")
    with pytest.raises(FileNotFoundError):
        import_files(ledger, csv_files(tmp_path), now=NOW, reader_process=True)
    assert ledger.store.event_count() == 0


_FRAMES = (
    "import os, pickle, signal, struct, sys\n"
    "sys.stdin.read()\n"
    "def frame(m):\n"
    "    data = pickle.dumps(m)\n"
    "    return struct.pack('<I', len(data)) + data\n"
)


@pytest.mark.parametrize(
    ("script", "words"),
    [
        # killed while it wrote a message: the frame's length says more than came
        (
            _FRAMES + "sys.stdout.buffer.write(frame(('items', []))[:9]); sys.stdout.flush()\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n",
            r"stopped \(exit code -9\)",
        ),
        # a frame that is not a pickle (was _pickle.UnpicklingError)
        (
            _FRAMES + "sys.stdout.buffer.write(struct.pack('<I', 5) + b'abcde')\n",
            "sent a broken message",
        ),
        # a pickle that is not a message
        (_FRAMES + "sys.stdout.buffer.write(frame(42))\n", "sent a broken message"),
        # the child said it failed with a WorkerFailed of its own
        (
            _FRAMES + "from arflow._child import WorkerFailed\n"
            "sys.stdout.buffer.write(frame(('error', WorkerFailed('another arflow'))))\n",
            "another arflow",
        ),
    ],
    ids=["killed-mid-frame", "not-a-pickle", "not-a-message", "worker-failed"],
)
def test_a_broken_reader_gives_reader_failed_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, words: str
) -> None:
    """A reader killed mid-message raised ``_pickle.UnpicklingError``; a dead one raised
    ``WorkerFailed``, which was no ArflowError: both printed tracebacks in the CLI."""
    monkeypatch.setattr(sys, "executable", fake_python(tmp_path, script))
    ledger = Ledger(f"sqlite:///{tmp_path / 'book.db'}")
    with pytest.raises(reader.ReaderFailed, match=words) as info:
        import_files(ledger, csv_files(tmp_path), now=NOW, reader_process=True)
    assert isinstance(info.value, ArflowError)
    assert ledger.store.event_count() == 0


def test_worker_failed_is_an_arflow_error() -> None:
    from arflow._child import WorkerFailed

    assert issubclass(WorkerFailed, ArflowError)
    assert issubclass(reader.ReaderFailed, WorkerFailed)


def test_the_cli_says_the_reader_failed_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exe = fake_python(tmp_path, "import sys\nsys.stderr.write('Killed')\nsys.exit(137)\n")
    monkeypatch.setattr(sys, "executable", exe)
    monkeypatch.setattr(importer, "READER_PROCESS_BYTES", 0)  # every import uses the reader
    db = f"sqlite:///{tmp_path / 'book.db'}"
    assert main(["init", "--db", db]) == 0
    capsys.readouterr()
    # a helper process failed: exit code 6 (docs/cli.md)
    assert main(["import", "--db", db, *map(str, csv_files(tmp_path))]) == 6
    err = capsys.readouterr().err
    assert err == "arflow: the import's reader process stopped (exit code 137): Killed\n"
    assert Ledger(db).store.event_count() == 0


def test_the_real_reader_killed_mid_message_gives_reader_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real reader process, SIGKILLed while it writes its second message (half of it
    sent): ReaderFailed, and nothing imported."""
    root = Path(arflow.__file__).resolve().parent.parent
    script = (
        "import os, pickle, signal, struct, sys\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "import arflow._child as child\n"
        "real, calls = child._write, []\n"
        "def write(out, message):\n"
        "    calls.append(message[0])\n"
        "    if len(calls) == 2:\n"
        "        data = pickle.dumps(message)\n"
        "        out.write(struct.pack('<I', len(data)) + data[: len(data) // 2])\n"
        "        out.flush()\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real(out, message)\n"
        "child._write = write\n"
        "exec(sys.argv[2])\n"
    )
    monkeypatch.setattr(sys, "executable", fake_python(tmp_path, script))
    ledger = Ledger(f"sqlite:///{tmp_path / 'book.db'}")
    paths = book_files(tmp_path, invoices=1500)  # 1,500 invoices: two messages of items
    with pytest.raises(reader.ReaderFailed, match=r"stopped \(exit code -9\)"):
        import_files(ledger, paths, now=NOW, reader_process=True)
    assert ledger.store.event_count() == 0
