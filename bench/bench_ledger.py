"""Benchmark: applying PaymentReceived events to the book, on memory and SQLite.

The book holds ``--customers`` customers and one open invoice per payment to come, spread
round-robin over the customers, so every payment (automatic allocation, oldest due first)
settles exactly one invoice. Then ``--events`` PaymentReceived events are applied:

* ``apply``: one ``ledger.apply(event)`` per event, each its own transaction (a service
  receiving a bank feed);
* ``apply_all``: ``ledger.apply_all(events)``, one transaction (a batch import).

Beside them, floors that show how far arflow is from the cheapest way to do the same work:

* ``events``: constructing and validating the N pydantic events, no ledger (``events-json``:
  parsing them from their JSON form, as a service would receive them);
* ``sqlite3``: a hand-written ``sqlite3`` loop per payment (select the oldest open invoice of
  the customer, update it, insert a payment row) with the pragmas arflow uses (WAL,
  synchronous=NORMAL), one transaction per payment and all in one transaction.

Each measurement runs in a fresh subprocess, so peak RSS (``ru_maxrss``) is its own. Events
are made one at a time inside the timed loop, as a feed delivers them (so events/s includes
making each event: the ``events`` floor says how much that is). The book is built with
``apply_all`` and not timed: in the measuring process for memory, once in a separate process
for SQLite (then copied per mode), so the build's own peak does not count.

    python bench/bench_ledger.py --events 100000 --customers 1000 --backend all
    python bench/bench_ledger.py --events 100000 --profile sqlite/apply
"""

from __future__ import annotations

import argparse
import cProfile
import gc
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
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

CURRENCY = "CNY"
BASE_DAY = date(2025, 1, 1)
CLOCK = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

#: Every measurement, in the order the report lists them: (backend, mode).
RUNS: list[tuple[str, str]] = [
    ("floor", "events"),
    ("floor", "events-json"),
    ("memory", "apply"),
    ("memory", "apply_all"),
    ("sqlite", "apply"),
    ("sqlite3-floor", "apply"),
    ("sqlite", "apply_all"),
    ("sqlite3-floor", "apply_all"),
]


# -- the workload ------------------------------------------------------------------------------
def customer_id(c: int) -> str:
    return f"C{c:05d}"


def invoice_amount(i: int) -> Decimal:
    """Invoice ``i``'s amount: 1,000.00 .. 9,999.99, exact, spread by a fixed stride."""
    cents = 100_000 + (i * 7_919) % 900_000
    return Decimal(cents).scaleb(-2)


def invoice_plan(n: int, customers: int) -> Iterator[tuple[int, str, date, date, Decimal]]:
    """Invoice ``i`` goes to customer ``i % customers``; its rank ``i // customers`` orders its
    due date, so payment ``i`` (same customer, same amount) settles the oldest open one."""
    for i in range(n):
        issued = BASE_DAY + timedelta(days=i // customers)
        yield i, customer_id(i % customers), issued, issued + timedelta(days=30), invoice_amount(i)


def payment_plan(n: int, customers: int) -> Iterator[tuple[int, str, Decimal, date]]:
    for i in range(n):
        received = BASE_DAY + timedelta(days=30 + i // customers)
        yield i, customer_id(i % customers), invoice_amount(i), received


def book_events(n: int, customers: int) -> Iterator[Any]:
    from arflow import events as ev
    from arflow.domain import Customer
    from arflow.money import Money

    for c in range(customers):
        yield ev.CustomerRegistered(
            event_id=f"cust-{c}",
            occurred_at=CLOCK,
            actor="bench",
            customer=Customer(id=customer_id(c), name=f"Customer {c}"),
        )
    for i, cust, issued, due, amount in invoice_plan(n, customers):
        yield ev.InvoiceIssued(
            event_id=f"inv-{i}",
            occurred_at=CLOCK + timedelta(seconds=i),
            actor="bench",
            number=f"INV-{i:07d}",
            customer_id=cust,
            issue_date=issued,
            due_date=due,
            amount=Money.of(amount, CURRENCY),
        )


def payment_events(n: int, customers: int) -> Iterator[Any]:
    """The payments, made one at a time (a list of 100k events alone holds ~250 MiB)."""
    from arflow import events as ev
    from arflow.money import Money

    return (
        ev.PaymentReceived(
            event_id=f"pay-{i}",
            occurred_at=CLOCK + timedelta(days=30, seconds=i),
            actor="bank-feed",
            payment_id=f"PAY-{i:07d}",
            customer_id=cust,
            amount=Money.of(amount, CURRENCY),
            received_on=received,
            reference=f"BANK-{i}",
        )
        for i, cust, amount, received in payment_plan(n, customers)
    )


# -- measurements (in the child process) -----------------------------------------------------------
def rss_now_mib() -> float:
    """Resident set size of this process now (Linux; elsewhere the peak so far)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (``ru_maxrss`` is KiB on Linux)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes there
        kib //= 1024
    return kib / 1024


class Timer:
    """Times (and with ``profile_to`` set, profiles) the measured region only: wall-clock
    seconds, and CPU seconds of this process (what a busy, shared machine distorts least)."""

    def __init__(self, profile_to: str | None) -> None:
        self.profile_to = profile_to
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.load: list[float] = []
        self._prof: cProfile.Profile | None = None

    def __enter__(self) -> Timer:
        gc.collect()
        if self.profile_to:
            self._prof = cProfile.Profile()
            self._prof.enable()
        self.load.append(os.getloadavg()[0])
        self._c0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self.cpu_seconds = time.process_time() - self._c0
        self.load.append(os.getloadavg()[0])
        if self._prof is not None:
            self._prof.disable()
            self._prof.dump_stats(str(self.profile_to))


def run_events_floor(args: argparse.Namespace, timer: Timer, as_json: bool) -> dict[str, Any]:
    if as_json:
        from arflow.events import parse_event

        bodies = [e.model_dump_json() for e in payment_events(args.events, args.customers)]
        with timer:
            count = sum(1 for b in bodies if parse_event(b) is not None)
    else:
        with timer:
            count = sum(1 for e in payment_events(args.events, args.customers) if e is not None)
    return {"count": count}


def build_sqlite_book(args: argparse.Namespace) -> dict[str, Any]:
    """Build the SQLite book once, in its own process; each mode then gets a copy."""
    from arflow import Ledger

    ledger = Ledger(f"sqlite:///{args.book}")
    t0 = time.perf_counter()
    ledger.apply_all(book_events(args.events, args.customers))
    setup = time.perf_counter() - t0
    ledger.store.close()
    return {"setup_s": round(setup, 2), "peak_rss_mib": round(peak_rss_mib(), 1)}


def run_ledger(args: argparse.Namespace, timer: Timer, backend: str, mode: str) -> dict[str, Any]:
    from arflow import Ledger

    out: dict[str, Any] = {"count": args.events}
    if backend == "sqlite":
        ledger = Ledger(f"sqlite:///{args.book}")  # a copy of the book built beforehand
    else:
        ledger = Ledger("memory://")
        t0 = time.perf_counter()
        ledger.apply_all(book_events(args.events, args.customers))
        out["setup_s"] = round(time.perf_counter() - t0, 2)
    out["rss_start_mib"] = round(rss_now_mib(), 1)
    if mode == "apply":
        with timer:
            for e in payment_events(args.events, args.customers):
                ledger.apply(e)
    else:
        with timer:
            ledger.apply_all(payment_events(args.events, args.customers))
    # Check the work was done: every payment logged, every invoice settled.
    logged = ledger.store.event_count()
    expected = args.customers + 2 * args.events
    open_left = sum(
        (m.amount for c in range(args.customers) for m in ledger.balance(customer_id(c)).values()),
        Decimal(0),
    )
    if logged != expected or open_left != 0:
        raise SystemExit(f"check failed: {logged} events (want {expected}), {open_left} open")
    return out


FLOOR_SCHEMA = """
CREATE TABLE invoice (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, due_date TEXT NOT NULL,
    amount TEXT NOT NULL, open_balance TEXT NOT NULL, state TEXT NOT NULL
);
CREATE INDEX ix_invoice_open ON invoice (customer_id, state, due_date, id);
CREATE TABLE payment (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, invoice_id TEXT,
    amount TEXT NOT NULL, applied TEXT NOT NULL, received_on TEXT NOT NULL
);
"""
OLDEST_OPEN = (
    "SELECT id, open_balance FROM invoice WHERE customer_id = ? "
    "AND state IN ('open', 'partially_paid') ORDER BY due_date, id LIMIT 1"
)


def run_sqlite_floor(args: argparse.Namespace, timer: Timer, mode: str) -> dict[str, Any]:
    """The least SQL a payment needs, by hand: the floor under arflow's SQLite path."""
    path = Path(args.workdir) / f"floor-{mode}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript(FLOOR_SCHEMA)
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO invoice VALUES (?, ?, ?, ?, ?, 'open')",
        (
            (f"INV-{i:07d}", cust, due.isoformat(), str(amt), str(amt))
            for i, cust, _issued, due, amt in invoice_plan(args.events, args.customers)
        ),
    )
    conn.execute("COMMIT")
    setup = time.perf_counter() - t0
    payments = payment_plan(args.events, args.customers)
    rss_start = rss_now_mib()

    def pay(i: int, cust: str, amount: Decimal, received: date) -> None:
        row = conn.execute(OLDEST_OPEN, (cust,)).fetchone()
        applied = Decimal(0)
        invoice_id = None
        if row is not None:
            invoice_id, open_text = row
            open_balance = Decimal(open_text)
            applied = min(amount, open_balance)
            left = open_balance - applied
            conn.execute(
                "UPDATE invoice SET open_balance = ?, state = ? WHERE id = ?",
                (str(left), "paid" if not left else "partially_paid", invoice_id),
            )
        conn.execute(
            "INSERT INTO payment VALUES (?, ?, ?, ?, ?, ?)",
            (f"PAY-{i:07d}", cust, invoice_id, str(amount), str(applied), received.isoformat()),
        )

    if mode == "apply":
        with timer:
            for p in payments:
                conn.execute("BEGIN IMMEDIATE")
                pay(*p)
                conn.execute("COMMIT")
    else:
        with timer:
            conn.execute("BEGIN IMMEDIATE")
            for p in payments:
                pay(*p)
            conn.execute("COMMIT")
    (open_left,) = conn.execute("SELECT count(*) FROM invoice WHERE state != 'paid'").fetchone()
    conn.close()
    if open_left:
        raise SystemExit(f"check failed: {open_left} invoices left open")
    return {"count": args.events, "setup_s": round(setup, 2), "rss_start_mib": round(rss_start, 1)}


def child(args: argparse.Namespace) -> None:
    backend, mode = args.child.split("/")
    import arflow.ledger  # noqa: F401  (import and model building stay out of the timings)

    timer = Timer(args.profile_to)
    if mode == "build":
        print(json.dumps(build_sqlite_book(args)))
        return
    if backend == "floor":
        out = run_events_floor(args, timer, as_json=mode == "events-json")
    elif backend == "sqlite3-floor":
        out = run_sqlite_floor(args, timer, mode)
    else:
        out = run_ledger(args, timer, backend, mode)
    out.update(
        backend=backend,
        mode=mode,
        seconds=round(timer.seconds, 3),
        cpu_seconds=round(timer.cpu_seconds, 3),
        events_per_s=round(out["count"] / timer.seconds),
        events_per_cpu_s=round(out["count"] / timer.cpu_seconds),
        load_1min=timer.load,
        peak_rss_mib=round(peak_rss_mib(), 1),
    )
    print(json.dumps(out))


# -- the parent: one subprocess per measurement, then the report -------------------------------------
def run_child(
    args: argparse.Namespace, run: str, workdir: str, book: str = "", profile_to: str = ""
) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--events",
        str(args.events),
        "--customers",
        str(args.customers),
        "--child",
        run,
        "--workdir",
        workdir,
    ]
    if book:
        cmd += ["--book", book]
    if profile_to:
        cmd += ["--profile-to", profile_to]
    print(f"running {run} ...", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{run} failed with exit code {proc.returncode}")
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {result}", file=sys.stderr, flush=True)
    return result


def machine() -> str:
    return (
        f"{os.cpu_count()} CPU(s), {platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def report(args: argparse.Namespace, results: list[dict]) -> str:
    """A markdown table: each arflow row with its floor beside it (SQLite: the hand-written
    sqlite3 loop in the same mode; memory: making the events alone)."""
    by = {(r["backend"], r["mode"]): r for r in results}
    lines = [
        f"{args.events:,} PaymentReceived events, {args.customers:,} customers; {machine()}",
        "",
        "| backend | mode | events/s wall | events/s CPU | µs CPU/event | RSS at start MiB "
        "| peak RSS MiB | floor | floor events/s wall / CPU | floor peak RSS MiB "
        "| x floor (CPU) | load 1 min |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        floor = None
        if r["backend"] == "sqlite":
            floor = by.get(("sqlite3-floor", r["mode"]))
        elif r["backend"] == "memory":
            floor = by.get(("floor", "events"))
        start = r.get("rss_start_mib")
        cells = [
            r["backend"],
            r["mode"],
            f"{r['events_per_s']:,}",
            f"{r['events_per_cpu_s']:,}",
            f"{1e6 / r['events_per_cpu_s']:.0f}",
            "" if start is None else f"{start:.0f}",
            f"{r['peak_rss_mib']:.0f}",
        ]
        if floor is None:
            cells += ["", "", "", ""]
        else:
            cells += [
                f"{floor['backend']}/{floor['mode']}",
                f"{floor['events_per_s']:,} / {floor['events_per_cpu_s']:,}",
                f"{floor['peak_rss_mib']:.0f}",
                f"{floor['events_per_cpu_s'] / r['events_per_cpu_s']:.0f}x",
            ]
        cells.append("-".join(f"{x:.1f}" for x in r["load_1min"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


class SqliteBooks:
    """Builds the SQLite book once (in its own process) and hands each run a fresh copy."""

    def __init__(self, args: argparse.Namespace, workdir: str) -> None:
        self.args, self.workdir = args, workdir
        self.master = str(Path(workdir) / "book.db")
        self.built: dict | None = None

    def copy_for(self, run: str) -> str:
        if self.built is None:
            self.built = run_child(self.args, "sqlite/build", self.workdir, book=self.master)
        path = str(Path(self.workdir) / f"{run.replace('/', '-')}.db")
        with sqlite3.connect(self.master) as src, sqlite3.connect(path) as dst:
            src.backup(dst)
        src.close()
        dst.close()
        return path


def parent(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="arflow-bench-") as workdir:
        books = SqliteBooks(args, workdir)
        if args.profile:
            out = str(Path(args.profile_out).resolve())
            book = books.copy_for(args.profile) if args.profile.startswith("sqlite/") else ""
            result = run_child(args, args.profile, workdir, book=book, profile_to=out)
            for key in ("cumulative", "tottime"):
                buf = io.StringIO()
                pstats.Stats(out, stream=buf).sort_stats(key).print_stats(args.profile_lines)
                print(buf.getvalue())
            print(
                f"profiled {args.profile}: {result['events_per_s']:,} events/s (wall), "
                f"{result['events_per_cpu_s']:,} events/s (CPU) under cProfile"
            )
            print(f"stats saved to {out} (python -m pstats {out})")
            return
        wanted = {"memory", "sqlite"} if args.backend == "all" else {args.backend}
        results = []
        for backend, mode in RUNS:
            if backend == "floor" or backend in wanted:
                book = books.copy_for(f"{backend}/{mode}") if backend == "sqlite" else ""
                results.append(run_child(args, f"{backend}/{mode}", workdir, book=book))
            elif backend == "sqlite3-floor" and "sqlite" in wanted:
                results.append(run_child(args, f"{backend}/{mode}", workdir))
        if books.built is not None:
            print(f"SQLite book built in {books.built['setup_s']} s", file=sys.stderr)
    text = report(args, results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000, help="PaymentReceived events")
    p.add_argument("--customers", type=int, default=1_000, help="customers in the book")
    p.add_argument("--backend", choices=["memory", "sqlite", "all"], default="all")
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument(
        "--profile",
        choices=[f"{b}/{m}" for b, m in RUNS],
        help="profile this one measurement with cProfile instead of running the benchmark",
    )
    p.add_argument("--profile-out", default="bench_ledger.prof", help="where the stats go")
    p.add_argument("--profile-lines", type=int, default=40, help="rows per pstats listing")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--profile-to", help=argparse.SUPPRESS)
    p.add_argument("--book", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.events < 1 or args.customers < 1:
        p.error("--events and --customers must be at least 1")
    if args.child:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
