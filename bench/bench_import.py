"""Benchmark: ``arflow import`` of N invoices from CSV into a fresh SQLite book.

Writes ``customers.csv`` (``--customers`` rows) and ``invoices.csv`` (``--rows`` rows,
round-robin over the customers) into a temporary folder, then measures, each in its own
subprocess so that peak RSS (``ru_maxrss``) is its own:

* ``import``: ``arflow.importer.import_files`` of both files into a new SQLite file, as it
  runs by default on files this large: a second process reads and checks the files while
  this one applies the events (its CPU time and peak RSS are reported beside the main
  process's);
* ``import-inline``: the same with ``reader_process=False``, everything in one process
  (skip it with ``--no-inline``);
* ``floor``: the cheapest way to land the same rows: ``csv.reader`` plus
  ``sqlite3.executemany`` into a bare table, one transaction, the pragmas arflow uses;
* ``stored``: what SQLite alone takes to store what arflow stores per invoice (the
  receivable, the event and the audit record, taken from a 10k-row sample import and
  copied with fresh ids) into arflow's schema and indexes, rows prebuilt in memory: the
  floor for arflow's stored form, whatever the Python side does.

The target (issue #import): 1M invoices in under 60 s and under 1 GB peak RSS.

    python bench/bench_import.py --rows 1000000 --db /tmp/book.db
    python bench/bench_import.py --rows 50000 --profile import.prof
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import os
import platform
import pstats
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

BASE_DAY = date(2025, 1, 1)
TARGET_SECONDS = 60
TARGET_RSS_MIB = 1024


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (``ru_maxrss`` is KiB on Linux)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes there
        kib //= 1024
    return kib / 1024


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU time of this process (or of its finished children): on a shared
    machine, steadier than wall time."""
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def children_peak_rss_mib() -> float:
    """Peak RSS of the largest finished child (the importer's reader process)."""
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if sys.platform == "darwin":
        kib //= 1024
    return kib / 1024


def write_files(folder: Path, rows: int, customers: int) -> tuple[Path, Path]:
    """The ERP export: customers with Chinese names, invoices with every usual column."""
    cust_path = folder / "customers.csv"
    with cust_path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name", "region", "salesperson", "credit_limit", "currency", "grade"])
        for c in range(customers):
            w.writerow(
                [
                    f"C{c:05d}",
                    f"客户{c:05d}有限公司",
                    "华东",
                    f"S{c % 50:02d}",
                    "500000",
                    "CNY",
                    "B",
                ]
            )
    inv_path = folder / "invoices.csv"
    with inv_path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["number", "customer_id", "issue_date", "due_date", "amount", "currency", "tags"]
        )
        for i in range(rows):
            issued = BASE_DAY + timedelta(days=(i // customers) % 700)
            cents = 100_000 + (i * 7_919) % 900_000
            w.writerow(
                [
                    f"INV-{i:07d}",
                    f"C{i % customers:05d}",
                    issued.isoformat(),
                    (issued + timedelta(days=30)).isoformat(),
                    f"{cents // 100}.{cents % 100:02d}",
                    "CNY",
                    "erp;q1" if i % 3 == 0 else "",
                ]
            )
    return cust_path, inv_path


def run_import(args: argparse.Namespace) -> dict[str, Any]:
    from arflow import Ledger
    from arflow.importer import import_files

    folder = Path(args.workdir)
    ledger = Ledger(f"sqlite:///{args.db}")
    paths = [folder / "invoices.csv", folder / "customers.csv"]
    prof = cProfile.Profile() if args.profile_to else None
    c0 = cpu_seconds()
    k0 = cpu_seconds(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    if prof is not None:
        prof.enable()
    report = import_files(ledger, paths, reader_process=args.child == "import")
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile_to)
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    reader_cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - k0
    # the import returns before SQLite's checkpoint of what it wrote, which the store's
    # checkpoint thread does meanwhile: how much longer that took
    t1 = time.perf_counter()
    ledger.store.wait_for_checkpoint()  # type: ignore[attr-defined]
    checkpoint_after = time.perf_counter() - t1
    logged = ledger.store.event_count()
    if report.applied != args.rows + args.customers or logged != report.applied:
        raise SystemExit(f"check failed: {report} / {logged} events in the book")
    return {
        "seconds": seconds,
        "checkpoint_after_s": round(checkpoint_after, 2),
        "cpu_s": round(cpu, 2),
        "reader_cpu_s": round(reader_cpu, 2),
        "reader_peak_rss_mib": round(children_peak_rss_mib(), 1),
        "report": str(report),
    }


FLOOR_SCHEMA = """
CREATE TABLE customer (id TEXT PRIMARY KEY, name TEXT NOT NULL, data TEXT);
CREATE TABLE invoice (
    number TEXT PRIMARY KEY, customer_id TEXT NOT NULL, issue_date TEXT NOT NULL,
    due_date TEXT, amount TEXT NOT NULL, currency TEXT NOT NULL, tags TEXT
);
"""


def run_floor(args: argparse.Namespace) -> dict[str, Any]:
    """The least work that lands the rows: no validation, no events, no audit."""
    folder = Path(args.workdir)
    conn = sqlite3.connect(args.db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(FLOOR_SCHEMA)
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    with (folder / "customers.csv").open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        conn.executemany(
            "INSERT INTO customer VALUES (?, ?, ?)", ((r[0], r[1], json.dumps(r)) for r in reader)
        )
    with (folder / "invoices.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        conn.executemany("INSERT INTO invoice VALUES (?, ?, ?, ?, ?, ?, ?)", reader)
    return _commit_and_check(conn, t0, c0, "invoice", args.rows)


def _commit_and_check(
    conn: sqlite3.Connection, t0: float, c0: float, table: str, rows: int
) -> dict[str, Any]:
    """Commit a floor's transaction, stop its clocks, and check that ``table`` holds
    ``rows`` rows."""
    conn.execute("COMMIT")
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    conn.close()
    if n != rows:
        raise SystemExit(f"check failed: {n} rows in the floor's {table} table, not {rows}")
    return {"seconds": seconds, "cpu_s": round(cpu, 2)}


#: Invoices imported (untimed) to take the stored rows from for ``run_stored_floor``.
SAMPLE_ROWS = 10_000


def run_stored_floor(args: argparse.Namespace) -> dict[str, Any]:
    """What SQLite alone takes to store what arflow stores per invoice: the same three rows
    (receivable, event, audit record, as the import wrote them) into arflow's own schema
    and indexes, in one transaction with arflow's pragmas and bulk page cache, from rows
    already built in memory. No parsing, validation or JSON building is timed."""
    from arflow import Ledger
    from arflow.importer import import_files
    from arflow.store.sql import BULK_CACHE_KIB

    folder = Path(args.workdir)
    sample_dir = folder / "sample"
    sample_dir.mkdir(exist_ok=True)
    with (folder / "invoices.csv").open(encoding="utf-8", newline="") as src:
        head = [line for _, line in zip(range(SAMPLE_ROWS + 1), src, strict=False)]
    (sample_dir / "invoices.csv").write_text("".join(head), encoding="utf-8")
    sample_db = sample_dir / "sample.db"
    ledger = Ledger(f"sqlite:///{sample_db}")
    import_files(ledger, [folder / "customers.csv", sample_dir / "invoices.csv"])
    ledger.store.close()  # type: ignore[attr-defined]
    Ledger(f"sqlite:///{args.db}").store.close()  # type: ignore[attr-defined]  (schema)
    conn = sqlite3.connect(args.db, isolation_level=None)
    conn.execute(f"ATTACH DATABASE '{sample_db}' AS sample")
    receivables = conn.execute(
        "SELECT id, customer_id, state, due_date, data FROM sample.ar_receivable ORDER BY id"
    ).fetchall()
    events = conn.execute(
        "SELECT event_id, event_type, body FROM sample.ar_event "
        "WHERE event_type = 'InvoiceIssued' ORDER BY seq"
    ).fetchall()
    audits = conn.execute(
        "SELECT subject_kind, subject_id, event_id, body FROM sample.ar_audit "
        "WHERE subject_kind = 'receivable' ORDER BY seq"
    ).fetchall()
    conn.execute("DETACH DATABASE sample")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    n = len(receivables)
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    done = 0
    copy = 0
    while done < args.rows:
        p = f"{copy}/"  # every copy of the sample gets ids of its own
        for i in range(0, n, 250):
            part = min(250, args.rows - done)
            if part <= 0:
                break
            conn.executemany(
                "INSERT INTO ar_receivable (id, customer_id, state, due_date, data) "
                "VALUES (?, ?, ?, ?, ?)",
                [(p + a, b, c, d, e) for a, b, c, d, e in receivables[i : i + part]],
            )
            conn.executemany(
                "INSERT INTO ar_event (event_id, event_type, body) VALUES (?, ?, ?)",
                [(p + a, b, c) for a, b, c in events[i : i + part]],
            )
            conn.executemany(
                "INSERT INTO ar_audit (subject_kind, subject_id, event_id, body) "
                "VALUES (?, ?, ?, ?)",
                [(a, p + b, p + c, d) for a, b, c, d in audits[i : i + part]],
            )
            done += part
        copy += 1
    return _commit_and_check(conn, t0, c0, "ar_receivable", args.rows)


def child(args: argparse.Namespace) -> None:
    if args.child in ("import", "import-inline"):
        import arflow.importer  # noqa: F401  (imports and model building stay out of the timing)

        out = run_import(args)
    elif args.child == "stored":
        out = run_stored_floor(args)
    else:
        out = run_floor(args)
    rows = args.rows + (0 if args.child == "stored" else args.customers)
    out.update(
        what=args.child,
        rows=rows,
        rows_per_s=round(rows / out["seconds"]),
        seconds=round(out["seconds"], 2),
        peak_rss_mib=round(peak_rss_mib(), 1),
    )
    print(json.dumps(out))


def run_child(args: argparse.Namespace, what: str, workdir: Path, db: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--rows",
        str(args.rows),
        "--customers",
        str(args.customers),
        "--child",
        what,
        "--workdir",
        str(workdir),
        "--db",
        str(db),
    ]
    if args.profile and what == "import":
        cmd += ["--profile-to", str(Path(args.profile).resolve())]
    print(f"running {what} ...", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{what} failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {result}", file=sys.stderr, flush=True)
    return result


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPU(s), {platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, load average {load:.1f} at the start"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="invoices to import")
    p.add_argument("--customers", type=int, default=10_000, help="customers they belong to")
    p.add_argument(
        "--db",
        help="the SQLite file for the arflow book (must not exist; default: in the temp "
        "folder); the floor writes PATH.floor.db beside it",
    )
    p.add_argument("--profile", help="profile the import with cProfile, write the stats here")
    p.add_argument("--profile-lines", type=int, default=35, help="rows per pstats listing")
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument("--no-inline", action="store_true", help="skip the one-process import")
    p.add_argument(
        "--child", choices=["import", "import-inline", "floor", "stored"], help=argparse.SUPPRESS
    )
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rows < 1 or args.customers < 1:
        p.error("--rows and --customers must be at least 1")
    if args.child:
        child(args)
        return
    header = machine()
    with tempfile.TemporaryDirectory(prefix="arflow-bench-import-") as tmp:
        workdir = Path(tmp)
        db = Path(args.db).resolve() if args.db else workdir / "book.db"
        floor_db = db.with_name(db.name + ".floor.db")
        stored_db = db.with_name(db.name + ".stored.db")
        for path in (db, floor_db, stored_db):
            if path.exists():
                p.error(f"{path} exists: the benchmark needs a fresh file")
        t0 = time.perf_counter()
        write_files(workdir, args.rows, args.customers)
        size = sum(f.stat().st_size for f in workdir.glob("*.csv"))
        print(
            f"wrote {args.rows:,} invoices + {args.customers:,} customers "
            f"({size / 2**20:.0f} MiB of CSV) in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        inline_db = db.with_name(db.name + ".inline.db")
        results = [
            run_child(args, "floor", workdir, floor_db),
            run_child(args, "stored", workdir, stored_db),
            run_child(args, "import", workdir, db),
        ]
        if not args.no_inline:
            results.append(run_child(args, "import-inline", workdir, inline_db))
        if not args.db:
            db.unlink(missing_ok=True)
        for path in (floor_db, stored_db, inline_db):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    floor, stored, imp = results[:3]
    inline = results[3] if len(results) > 3 else None
    rss = imp["peak_rss_mib"] + imp["reader_peak_rss_mib"]  # both at their peaks at once
    ok = imp["seconds"] < TARGET_SECONDS and rss < TARGET_RSS_MIB
    verdict = ("met" if ok else "MISSED") if args.rows >= 1_000_000 else "applies to 1M rows"
    lines = [
        f"{args.rows:,} invoices + {args.customers:,} customers from CSV into SQLite; {header}",
        "",
        "| what | wall time (s) | CPU time (s) | rows/s (wall) | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
        f"| arflow import_files (reader process) | {imp['seconds']:.1f} "
        f"| {imp['cpu_s']:.1f} + {imp['reader_cpu_s']:.1f} | {imp['rows_per_s']:,} "
        f"| {imp['peak_rss_mib']:.0f} + {imp['reader_peak_rss_mib']:.0f} |",
        *(
            [
                f"| arflow import_files (one process) | {inline['seconds']:.1f} "
                f"| {inline['cpu_s']:.1f} | {inline['rows_per_s']:,} "
                f"| {inline['peak_rss_mib']:.0f} |"
            ]
            if inline
            else []
        ),
        f"| floor: SQLite storing arflow's rows, prebuilt | {stored['seconds']:.1f} "
        f"| {stored['cpu_s']:.1f} | {stored['rows_per_s']:,} | {stored['peak_rss_mib']:.0f} |",
        f"| floor: csv + sqlite3.executemany | {floor['seconds']:.1f} | {floor['cpu_s']:.1f} "
        f"| {floor['rows_per_s']:,} | {floor['peak_rss_mib']:.0f} |",
        "",
        "the imports return before SQLite's checkpoint of what they wrote, which a thread "
        f"of the store finished {imp['checkpoint_after_s']} s later (reader process)"
        + (f" and {inline['checkpoint_after_s']} s later (one process)" if inline else "")
        + "; the floors' commits checkpoint before they return",
        "",
        f"import is {imp['seconds'] / stored['seconds']:.1f}x what SQLite takes to store its "
        f"rows and {imp['seconds'] / floor['seconds']:.0f}x the bare floor; the CPU and RSS "
        "figures of the reader-process import are the main process + the reader; target "
        f"(1M rows in < {TARGET_SECONDS} s, < {TARGET_RSS_MIB} MiB): {verdict}",
    ]
    print("\n".join(lines))
    if args.profile:
        for key in ("cumulative", "tottime"):
            buf = io.StringIO()
            pstats.Stats(args.profile, stream=buf).sort_stats(key).print_stats(args.profile_lines)
            print(buf.getvalue())
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
