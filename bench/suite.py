"""The benchmark suite: every headline figure of arflow beside its peer or floor, in one run.

    python bench/suite.py --size 1000000 --repeats 3          # the issue's size
    python bench/suite.py --size 200000 --repeats 3           # a shared machine's size
    python bench/suite.py --size 200000 --only feed           # one group of rows alone

Books (``bench/books.py``, seeded, cached under ``--cache-dir``): the *spread* book holds
``--size`` realistic receivables (grades, several currencies, due dates over the last 180
days and the next 90, partial payments, disputes, promises) over ``size / 10`` customers
(at most 100,000); the *fixed* book as many receivables, of which only ``--fixed-core``
(default ``size / 10``) can reach a step on the day, the rest retention items years out.
Each book's day 0 is its whole-book first run on the day before (``first_run=True``).

Groups (``--only``), every measurement a fresh subprocess (``ru_maxrss`` is its own), the
groups' measurements interleaved ``--repeats`` times (the median is reported, every run
shown), the 1-minute load average taken before and after each:

* ``spread``: the day's run on a copy of day 0, one process and ``Engine(workers=N)``;
  beside it durable-rules ``post`` and ``post_batch`` of every live receivable and the
  same ladder as a GoRules zen-engine decision table (``ZenEngine.evaluate(key)``, the
  shared-engine path), each reading its facts from the same SQLite book;
* ``first``: the spread book's first run (once per repeat; ``--first-repeats``);
* ``fixed``: the fixed book's day, one process, beside the same three peers;
* ``feed``: a bank feed, ``Ledger.apply_all`` of ``--feed-events`` PaymentReceived on SQLite
  (``bench/bench_ledger.py``'s workload and its bare ``sqlite3`` floor);
* ``handle``: ``Engine.handle(PaymentReceived)`` latency, each of ``--handle-payments``
  calls timed on a copy of the spread book's day 0, beside ``Ledger.apply`` of the same
  payments (the ledger alone, no engine).

Celery scale-out (1, 2 and 4 worker processes) is a TODO row: there is no distributed run
in this tree yet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_ledger  # noqa: E402  (the bench's own modules, beside this file)
import bench_run  # noqa: E402
import books  # noqa: E402

AS_OF = books.AS_OF
BOOK_FORMAT = 1  # bump when books.realistic_events changes: cached books are keyed by it
GROUPS = ("spread", "first", "fixed", "feed", "handle")
PEERS = ("post", "post_batch", "zen")
PEER_MODULES = {"post": "durable", "post_batch": "durable", "zen": "zen"}
BATCH = 1_000  # facts per durable post_batch

#: The issue's targets (issue 17), for 1M receivables on this 2-core machine.
TARGETS = {
    "spread_workers": "< 3 s at 1M",
    "spread_post": ">= 6x post at 1M",
    "first": "< 120 s at 1M",
    "fixed_post": ">= 30x post at 1M",
    "fixed_post_batch": ">= 30x post_batch at 1M",
    "feed": ">= 10,000 events/s",
    "handle": "p99 < 5 ms on a 1M book",
}


# -- the peers' and the handle measurement's children -------------------------------------------------
def zen_ladder() -> str:
    """The default ladder (``bench_run.LADDER_DAYS``) as a zen-engine JDM decision table:
    one row per step and day past due, first hit wins."""
    inputs = [
        {"id": "dpd", "name": "days past due", "field": "days_past_due"},
        {"id": "bal", "name": "undisputed balance", "field": "undisputed_balance"},
        {"id": "blk", "name": "dunning block", "field": "dunning_block"},
        {"id": "prm", "name": "promised", "field": "promised"},
    ]
    rules = [
        {
            "_id": f"{step}-{d}",
            "dpd": str(d),
            "bal": f">= {bench_run.LADDER_MIN_BALANCE}",
            "blk": "false",
            "prm": "false",
            "step": json.dumps(step),
        }
        for step, days in bench_run.LADDER_DAYS.items()
        for d in days
    ]
    table = {
        "hitPolicy": "first",
        "inputs": inputs,
        "outputs": [{"id": "step", "name": "step", "field": "step"}],
        "rules": rules,
    }
    pos = {"x": 0, "y": 0}
    return json.dumps(
        {
            "nodes": [
                {"id": "in", "type": "inputNode", "name": "Request", "position": pos},
                {"id": "dt", "type": "decisionTableNode", "name": "ladder", "position": pos,
                 "content": table},
                {"id": "out", "type": "outputNode", "name": "Response", "position": pos},
            ],
            "edges": [
                {"id": "e1", "sourceId": "in", "targetId": "dt", "type": "edge"},
                {"id": "e2", "sourceId": "dt", "targetId": "out", "type": "edge"},
            ],
        }
    )  # fmt: skip


def run_post_batch(args: argparse.Namespace, timer: Any) -> dict[str, Any]:
    """durable-rules ``post_batch``: the facts in batches of BATCH, one session each.
    durable raises MessageNotHandledException for a batch in which any fact matches no
    rule, and then runs no action of that batch: this peer does less than ``post``."""
    from durable.engine import MessageNotHandledException

    as_of = date.fromisoformat(args.as_of)
    matched: Counter[str] = Counter()
    host = bench_run.durable_ladder(matched)
    posted = unhandled_batches = 0
    with timer:
        batch: list[dict[str, Any]] = []
        for message in bench_run.peer_facts(args.db, as_of):
            message["sid"] = "0"
            batch.append(message)
            if len(batch) == BATCH:
                unhandled_batches += _post_batch(host, batch, MessageNotHandledException)
                posted += len(batch)
                batch = []
        if batch:
            unhandled_batches += _post_batch(host, batch, MessageNotHandledException)
            posted += len(batch)
    return {
        "posted": posted,
        "batches_with_unmatched": unhandled_batches,
        "matched": sum(matched.values()),
    }


def _post_batch(host: Any, batch: list[dict[str, Any]], unhandled: type[Exception]) -> int:
    try:
        host.post_batch("ladder", batch)
    except unhandled:
        return 1
    return 0


def run_zen(args: argparse.Namespace, timer: Any) -> dict[str, Any]:
    """GoRules zen-engine: one shared ``ZenEngine`` whose loader hands it the ladder's
    decision table; ``evaluate("ladder", facts)`` per receivable (the engine keeps the
    decision it loaded)."""
    import zen

    as_of = date.fromisoformat(args.as_of)
    content = zen_ladder()
    engine = zen.ZenEngine({"loader": lambda key: content})
    matched: Counter[str] = Counter()
    posted = 0
    with timer:
        for facts in bench_run.peer_facts(args.db, as_of):
            step = engine.evaluate("ladder", facts)["result"].get("step")
            if step is not None:
                matched[step] += 1
            posted += 1
    return {
        "posted": posted,
        "matched": sum(matched.values()),
        "matched_by_step": dict(sorted(matched.items())),
    }


def handle_payments(db: str, n: int) -> list[Any]:
    """``n`` payments, each of half the open balance of a live receivable of the book (spread
    evenly over them, in id order), received on AS_OF and allocated to it."""
    import sqlite3

    from arflow import AllocationRequest, Money, PaymentReceived

    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT id, customer_id, data FROM ar_receivable "
        "WHERE state IN ('open', 'partially_paid') ORDER BY id"
    ).fetchall()
    conn.close()
    step = max(1, len(rows) // n)
    at = datetime.combine(AS_OF, datetime.min.time(), UTC) + timedelta(hours=10)
    out = []
    for k, (rid, cust, data) in enumerate(rows[::step][:n]):
        bal = json.loads(data)["open_balance"]
        half = (Decimal(bal["amount"]) / 2).quantize(Decimal("0.01"))
        amount = Money.of(max(half, Decimal("0.01")), bal["currency"])
        out.append(
            PaymentReceived(
                event_id=f"feed-{k}",
                occurred_at=at + timedelta(milliseconds=k),
                actor="bank-feed",
                payment_id=f"FEED{k:07d}",
                customer_id=cust,
                amount=amount,
                received_on=AS_OF,
                reference=f"BANK-FEED-{k}",
                allocations=(AllocationRequest(receivable_id=rid, amount=amount),),
            )
        )
    return out


def run_handle(args: argparse.Namespace, timer: Any) -> dict[str, Any]:
    """Each payment's ``Engine.handle`` (``--child handle``) or ``Ledger.apply``
    (``--child apply``) timed alone, on a copy of the book."""
    from arflow import Ledger
    from arflow.engine import Engine
    from arflow.rules import default_pack_path

    payments = handle_payments(args.db, args.payments)
    ledger = Ledger(f"sqlite:///{args.db}")
    call = Engine(ledger, default_pack_path()).handle if args.child == "handle" else ledger.apply
    times: list[float] = []
    decisions = 0
    with timer:
        for p in payments:
            t0 = time.perf_counter()
            got = call(p)
            times.append(time.perf_counter() - t0)
            if args.child == "handle":
                decisions += len(got[1])  # type: ignore[index]
    ledger.store.close()  # type: ignore[attr-defined]
    times.sort()
    ms = [t * 1000 for t in times]
    return {
        "calls": len(ms),
        "decisions": decisions,
        "p50_ms": round(ms[len(ms) // 2], 2),
        "p99_ms": round(ms[min(len(ms) - 1, (99 * len(ms)) // 100)], 2),
        "max_ms": round(ms[-1], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


def child(args: argparse.Namespace) -> None:
    if args.child == "build":
        core = args.core or None
        events = books.realistic_events(args.size, args.customers, args.seed, core)
        out = books.build_sqlite(Path(args.db), events, args.customers + args.size)
        print(json.dumps({**out, "peak_rss_mib": round(bench_run.peak_rss_mib(), 1)}))
        return
    import arflow.engine  # noqa: F401  (imports stay out of the timings)

    timer = bench_run.Timer(None)
    runs = {"post_batch": run_post_batch, "zen": run_zen, "handle": run_handle}
    out = runs.get(args.child, run_handle)(args, timer)
    out.update(
        what=args.child,
        seconds=round(timer.seconds, 3),
        cpu_s=round(timer.cpu, 2),
        peak_rss_mib=round(bench_run.peak_rss_mib(), 1),
    )
    print(json.dumps(out))


# -- the parent ---------------------------------------------------------------------------------------
class Suite:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cache = Path(args.cache_dir)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.work = self.cache / f"work-{os.getpid()}"
        self.work.mkdir()
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.notes: dict[str, str] = {}

    # a measurement: one subprocess, the load average before and after it
    def measure(self, key: str, cmd: list[str]) -> dict[str, Any]:
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        print(f"[{time.strftime('%H:%M:%S')}] {key}: {' '.join(cmd[1:])}", file=sys.stderr)
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=self.args.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            got: dict[str, Any] = {"error": f"timed out after {self.args.timeout:.0f} s"}
        else:
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
                got = {"error": last[:200]}
                sys.stderr.write(proc.stderr[-3000:])
            else:
                got = json.loads(proc.stdout.strip().splitlines()[-1])
        got["load_start"] = round(load0, 2)
        got["load_end"] = round(os.getloadavg()[0], 2)
        got["wall_with_setup_s"] = round(time.perf_counter() - t0, 1)
        print(f"  {json.dumps(got)}", file=sys.stderr, flush=True)
        self.results.setdefault(key, []).append(got)
        return got

    def suite_child(self, what: str, *extra: str) -> list[str]:
        return [sys.executable, __file__, "--child", what, *extra]

    def run_child(self, what: str, *extra: str) -> list[str]:
        cap = ["--mem-cap-gib", str(self.args.mem_cap_gib)]
        return [sys.executable, bench_run.__file__, "--child", what, *cap, *extra]

    # the books and their day 0
    def book(self, label: str, core: int) -> Path:
        a = self.args
        path = self.cache / (
            f"realistic-v{BOOK_FORMAT}-{label}-n{a.size}-core{core}-c{a.customers}-s{a.seed}.db"
        )
        if not path.exists():
            extra = ["--db", str(path), "--size", str(a.size), "--core", str(core)]
            extra += ["--customers", str(a.customers), "--seed", str(a.seed)]
            got = self.measure(f"build_{label}", self.suite_child("build", *extra))
            if "error" in got:
                raise SystemExit(f"building the {label} book failed: {got['error']}")
        bench_run.upgrade_schema(path)
        return path

    def day0(self, label: str, book: Path, key: str | None) -> Path:
        """The book after its first run on the day before (measured as ``key`` when given,
        else only made, once, and cached)."""
        day0 = book.with_name(f"{book.stem}-day0.db")
        if key is None and day0.exists():
            return day0
        db = bench_run.fresh_copy(book, self.work, f"first-{label}.db")
        day_before = str(AS_OF - timedelta(1))
        got = self.measure(
            key or f"first_{label}",
            self.run_child("first", "--db", str(db), "--as-of", day_before, "--first-run"),
        )
        if "error" not in got and not day0.exists():
            db.rename(day0)
        books.remove_db(db)
        if not day0.exists():
            raise SystemExit(f"the {label} book's first run failed: {got['error']}")
        bench_run.upgrade_schema(day0)
        return day0

    def day(self, key: str, day0: Path, workers: int = 1) -> None:
        db = bench_run.fresh_copy(day0, self.work, f"{key}.db")
        extra = ["--engine-workers", str(workers)] if workers > 1 else []
        self.measure(key, self.run_child("steady", "--db", str(db), "--as-of", str(AS_OF), *extra))
        books.remove_db(db)

    def peer(self, key: str, what: str, book: Path) -> None:
        # the peers only read the book: no copy
        args = ["--db", str(book), "--as-of", str(AS_OF)]
        cmd = self.run_child("peer", *args) if what == "post" else self.suite_child(what, *args)
        self.measure(key, cmd)

    def handle(self, key: str, what: str, day0: Path) -> None:
        db = bench_run.fresh_copy(day0, self.work, f"{key}.db")
        self.measure(
            key, self.suite_child(what, "--db", str(db), "--payments", str(self.args.payments))
        )
        books.remove_db(db)

    def peers(self) -> list[str]:
        """The peers whose library is installed (``pip install -e '.[bench]'``); a missing
        one is left out, and the report says so."""
        import importlib.util

        got = [p for p in PEERS if importlib.util.find_spec(PEER_MODULES[p]) is not None]
        for p in sorted(set(PEERS) - set(got)):
            self.notes[p] = f"{PEER_MODULES[p]} is not installed: the {p} peer is left out"
        return got

    def run(self) -> None:
        a = self.args
        peers = self.peers()
        only = set(a.only.split(",")) if a.only else set(GROUPS)
        plan: list[tuple[str, Any]] = []
        if only & {"spread", "first", "handle"}:
            spread = self.book("spread", a.size)
            if "first" in only:
                # the first repeat's result is day 0 of the rest
                for _ in range(a.first_repeats):
                    spread0 = self.day0("spread", spread, "first")
            else:
                spread0 = self.day0("spread", spread, None)
        if "spread" in only:
            plan.append(("spread_day", lambda: self.day("spread_day", spread0)))
            plan.append(("spread_workers", lambda: self.day("spread_workers", spread0, a.workers)))
            for p in peers:
                plan.append((f"spread_{p}", lambda p=p: self.peer(f"spread_{p}", p, spread)))
        if "fixed" in only:
            fixed = self.book("fixed", a.fixed_core)
            fixed0 = self.day0("fixed", fixed, None)
            plan.append(("fixed_day", lambda: self.day("fixed_day", fixed0)))
            for p in peers:
                plan.append((f"fixed_{p}", lambda p=p: self.peer(f"fixed_{p}", p, fixed)))
        if "handle" in only:
            plan.append(("handle", lambda: self.handle("handle", "handle", spread0)))
            plan.append(("handle_apply", lambda: self.handle("handle_apply", "apply", spread0)))
        if "feed" in only:
            ns = argparse.Namespace(events=a.feed_events, customers=a.feed_customers)
            feed_books = bench_ledger.SqliteBooks(ns, str(self.work))
            common = ["--events", str(a.feed_events), "--customers", str(a.feed_customers)]
            common += ["--workdir", str(self.work)]
            ledger_py = [sys.executable, bench_ledger.__file__, *common]

            def feed() -> None:
                book = feed_books.copy_for("sqlite/apply_all")
                self.measure("feed", [*ledger_py, "--child", "sqlite/apply_all", "--book", book])
                books.remove_db(Path(book))

            def floor() -> None:
                books.remove_db(self.work / "floor-apply_all.db")  # the floor makes its own
                self.measure("feed_floor", [*ledger_py, "--child", "sqlite3-floor/apply_all"])

            plan.append(("feed", feed))
            plan.append(("feed_floor", floor))
        for r in range(a.repeats):
            print(f"# repeat {r + 1} of {a.repeats}", file=sys.stderr, flush=True)
            for _key, go in plan:
                go()

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.work, ignore_errors=True)


# -- the report -----------------------------------------------------------------------------------------
def median_run(runs: list[dict[str, Any]], field: str = "seconds") -> dict[str, Any] | None:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return None
    return sorted(ok, key=lambda r: r[field])[len(ok) // 2]


def command(args: argparse.Namespace, group: str) -> str:
    parts = ["python bench/suite.py", f"--size {args.size}", f"--repeats {args.repeats}"]
    if group == "feed":
        parts.append(f"--feed-events {args.feed_events}")
    if group == "handle":
        parts.append(f"--payments {args.payments}")
    return f"`{' '.join(parts)} --only {group}`"


def load(r: dict[str, Any] | None) -> str:
    return "-" if r is None else f"{r['load_start']:.1f} → {r['load_end']:.1f}"


def report(
    args: argparse.Namespace, results: dict[str, list[dict[str, Any]]], notes: dict[str, str]
) -> str:
    med = {k: median_run(v) for k, v in results.items()}

    def cpu(r: dict[str, Any]) -> float:
        own = r.get("cpu_s", r.get("cpu_seconds", 0))
        return float(own) + float(r.get("helpers_cpu_s", 0))

    def s(key: str) -> str:
        r = med.get(key)
        return "-" if r is None else f"{r['seconds']:.2f} / {cpu(r):.2f} s"

    def rss(*keys: str) -> str:
        got = [med.get(k) for k in keys]
        return " / ".join("-" if r is None else f"{r['peak_rss_mib']:.0f}" for r in got)

    def ratio(peer: str, ours: str) -> str:
        p, o = med.get(peer), med.get(ours)
        if p is None or o is None:
            return "-"
        by_cpu = f" (CPU {cpu(p) / cpu(o):.1f}x)" if cpu(o) else ""
        return f"{p['seconds'] / o['seconds']:.1f}x{by_cpu}"

    size = f"{args.size:,}"
    names = {"post": "durable `post`", "post_batch": "durable `post_batch`", "zen": "zen-engine"}
    rows = []
    for day, label, group, cmp in (
        ("spread_workers", f"spread day, `workers={args.workers}`", "spread", ("post",)),
        ("spread_day", "spread day, one process", "spread", PEERS),
        ("fixed_day", "fixed day, one process", "fixed", PEERS),
    ):
        if day not in med:
            continue
        book = day.split("_")[0]
        got = [p for p in cmp if med.get(f"{book}_{p}") is not None]
        peer = "; ".join(f"{names[p]} {s(f'{book}_{p}')}" for p in got) or "-"
        ratios = "; ".join(f"{ratio(f'{book}_{p}', day)} {names[p]}" for p in got) or "-"
        target = {
            "spread_workers": f"{TARGETS['spread_workers']}; {TARGETS['spread_post']}",
            "spread_day": TARGETS["spread_post"],
            "fixed_day": f"{TARGETS['fixed_post']} and post_batch",
        }[day]
        rows.append(
            [label, size, s(day), peer, ratios, target,
             rss(day, *(f"{book}_{p}" for p in got)), load(med.get(day)), command(args, group)]
        )  # fmt: skip
    if "first" in med:
        rows.append(
            ["first run of the spread book", size, s("first"), "-", "-", TARGETS["first"],
             rss("first"), load(med.get("first")), command(args, "first")]
        )  # fmt: skip
    feed = median_run(results.get("feed", []))
    floor = median_run(results.get("feed_floor", []))
    if feed is not None:
        f_rate = f"{feed['events_per_s']:,} / {feed['events_per_cpu_s']:,} events/s"
        fl = "-"
        rat = "-"
        if floor is not None:
            fl = f"bare `sqlite3` {floor['events_per_s']:,} / {floor['events_per_cpu_s']:,}/s"
            rat = (
                f"{floor['events_per_s'] / feed['events_per_s']:.1f}x (CPU "
                f"{floor['events_per_cpu_s'] / feed['events_per_cpu_s']:.1f}x)"
            )
        rows.append(
            ["bank feed: `apply_all` of PaymentReceived, SQLite", f"{args.feed_events:,} "
             f"events", f_rate, fl, f"the floor is {rat} faster", TARGETS["feed"],
             rss("feed", "feed_floor"), load(feed), command(args, "feed")]
        )  # fmt: skip
    hd = median_run(results.get("handle", []), "p99_ms")
    ap = median_run(results.get("handle_apply", []), "p99_ms")
    if hd is not None:

        def lat(r: dict[str, Any]) -> str:
            per_call = 1000 * cpu(r) / r["calls"]
            return f"p50 {r['p50_ms']} / p99 {r['p99_ms']} ms (CPU {per_call:.1f} ms a call)"

        peer = "-" if ap is None else f"`Ledger.apply` {lat(ap)}"
        rat = "-" if ap is None else f"{hd['p99_ms'] / ap['p99_ms']:.1f}x the ledger's p99"
        rows.append(
            ["`Engine.handle(PaymentReceived)` latency", f"{size} book, {hd['calls']:,} calls",
             lat(hd), peer, rat, TARGETS["handle"],
             rss("handle", "handle_apply"), load(hd), command(args, "handle")]
        )  # fmt: skip
    rows.append(
        ["Celery scale-out, 1 / 2 / 4 worker processes", "-", "TODO: no distributed run "
         "in this tree yet (`arflow run --celery`, issue 17 item 1)", "-", "-",
         "throughput grows with workers", "-", "-", "-"]
    )  # fmt: skip
    head = [
        "| what | size | arflow (wall / CPU) | peer / floor (wall / CPU) | peer / arflow "
        "| issue 17's target | peak RSS MiB "
        "(arflow / peer) | load 1 min (start → end) | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines = [
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {bench_run.source_state()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; medians of "
        f"{args.repeats} interleaved repeats, every run below; CPU counts the helper "
        "processes of `workers=N`",
        "",
        *head,
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        "Every run (wall / CPU seconds, or the rate or latency; load average 1 min at start → "
        "end; peak RSS MiB):",
        "",
    ]
    for key, runs in results.items():
        cells = []
        for r in runs:
            if "error" in r:
                cells.append(f"error: {r['error']}")
                continue
            fig = f"{r['seconds']} / {cpu(r):.2f}"
            if "p99_ms" in r:
                fig = f"p50 {r['p50_ms']} / p99 {r['p99_ms']} ms"
            elif "events_per_s" in r and key.startswith("feed"):
                fig = f"{r['events_per_s']:,} / {r['events_per_cpu_s']:,} events/s"
            cells.append(
                f"{fig} (load {r['load_start']:.1f} → {r['load_end']:.1f}, "
                f"{r.get('peak_rss_mib', 0):.0f} MiB)"
            )
        lines.append(f"- {key}: " + "; ".join(cells))
    if notes:
        lines += ["", *(f"Note: {n}" for n in notes.values())]
    facts = []
    for key in ("spread_day", "fixed_day", "spread_post", "spread_zen", "fixed_post", "handle"):
        r = med.get(key)
        if r is None:
            continue
        what = {k: r[k] for k in ("decisions", "candidates", "posted", "matched") if k in r}
        facts.append(f"- {key}: {what}")
    if facts:
        lines += ["", "What each did (median run):", "", *facts]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=200_000, help="receivables per book (200000)")
    p.add_argument("--customers", type=int, default=0, help="customers (size / 10, <= 100k)")
    p.add_argument("--fixed-core", type=int, default=0, help="the fixed book's live part")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--first-repeats", type=int, default=1, help="first runs (slow at 1M)")
    p.add_argument("--workers", type=int, default=2, help="Engine(workers=N) of the spread day")
    p.add_argument("--feed-events", type=int, default=100_000)
    p.add_argument("--feed-customers", type=int, default=1_000)
    p.add_argument("--payments", type=int, default=2_000, help="Engine.handle calls timed")
    p.add_argument("--only", default="", help=f"groups, comma-separated: {','.join(GROUPS)}")
    p.add_argument("--cache-dir", default="/tmp/arflow-bench/suite")
    p.add_argument("--json", default="", help="also write every run here")
    p.add_argument("--timeout", type=float, default=7200, help="seconds per measurement")
    p.add_argument("--mem-cap-gib", type=float, default=14)
    p.add_argument("--from-json", default="", help="only report the runs a --json file holds")
    # child-only
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    p.add_argument("--db", default="", help=argparse.SUPPRESS)
    p.add_argument("--core", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--as-of", default=str(AS_OF), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    unknown = set(filter(None, args.only.split(","))) - set(GROUPS)
    if unknown:
        p.error(f"unknown groups {sorted(unknown)}: choose from {', '.join(GROUPS)}")
    args.customers = args.customers or books.default_customers(args.size)
    args.fixed_core = min(args.size, args.fixed_core or max(1, args.size // 10))
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        print(report(args, saved.get("results", saved), saved.get("notes", {})))
        return
    suite = Suite(args)
    t0 = time.perf_counter()
    try:
        suite.run()
    finally:
        suite.close()
        if args.json:
            saved = {"args": vars(args), "results": suite.results, "notes": suite.notes}
            Path(args.json).write_text(json.dumps(saved, indent=1, default=str))
    print(report(args, suite.results, suite.notes))
    print(f"\n(total {time.perf_counter() - t0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
