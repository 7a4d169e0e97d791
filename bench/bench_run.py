"""Benchmark: a day's ``Engine.run(as_of)`` with the shipped default pack on a SQLite book,
beside a naive durable-rules peer.

The targets (issue #engine-speed): ``run(as_of)`` on a book of 1M open receivables over 100k
customers under 10 s wall and 1.5 GB peak RSS on a 2-core machine, at least 20x faster than
the same book posted through durable-rules one receivable at a time; and the cost of a day
as a function of book size (100k, 300k, 1M) at a fixed number of due steps.

Books (generated once with ``Ledger.apply_all``, cached under ``--cache-dir`` by size, core,
customers and seed, reused when present):

* the *spread* book (``--book``, default 1M): every receivable open, due dates spread evenly
  over 548 days (~18 months) centred on ``as_of`` (days past due -274 .. +273, each day
  holding ``size / 548`` items), so each day brings the same number of due steps;
* the *fixed-steps* series (``--sizes``): the first ``--core`` receivables (default: the
  smallest size) spread as above; every further receivable is an open retention
  instalment due 400-899 days after ``as_of``, which no step, alert or lock can reach on the
  day, so the number of due steps stays the same while the book grows.

Customers (``--customers``, default 100k) have a contact (time zone, locale), salesperson,
sales manager, credit grade, limit and terms and a company profile; receivables go to them
round-robin.

Per book, each in a fresh subprocess (so ``ru_maxrss`` is per measurement) on a fresh copy
of the cached file:

* ``first``: ``engine.run(as_of - 1, first_run=True)`` on the untouched book (timed); the
  resulting file is cached as the book's "day 0";
* ``steady``: ``engine.run(as_of)`` on a copy of day 0 (timed): a normal day's run;
* ``peer``: durable-rules (``durable_rules`` 2.x): the dunning ladder's conditions as one
  ruleset, one ``post`` per open receivable read from the same SQLite file, facts computed in
  Python per receivable; counts what matched.

    python bench/bench_run.py --sizes 100000,300000,1000000
    python bench/bench_run.py --quick
    python bench/bench_run.py --sizes 100000,300000,1000000 --profile
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
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from books import (  # the books every bench shares
    AS_OF,
    CLOCK,
    CURRENCY,
    PRODUCT_LINES,
    RETENTION_DAYS,
    RETENTION_FROM,
    build_sqlite,
    checkpoint,
    customer_events,
    customer_id,
    remove_db,
)

SPAN = 548  # days of due dates in the spread part of a book (~18 months)
FIRST_OFFSET = -(SPAN // 2)  # days *before* as_of of the earliest due date in the spread
TARGET_SECONDS = 10.0
TARGET_RSS_MIB = 1536.0
TARGET_RATIO = 20.0
BOOK_FORMAT = 1  # bump when the generator changes: cached books are keyed by it

#: The default ladder ("standard" in rules/default/dunning.yaml) as days past due at which each
#: step fires; the peer's rules are written from it, and it is checked against the loaded pack.
LADDER_DAYS: dict[str, tuple[int, ...]] = {
    "before-due": (-7,),
    "due-day": (0,),
    "formal-notice": (1, 8, 15),
    "sms-3": (3,),
    "call-16": (16,),
    "escalate-31": (31,),
    "legal-91": (91,),
}
LADDER_MIN_BALANCE = 100
LIVE = ("open", "partially_paid", "disputed", "promised")


# -- the book --------------------------------------------------------------------------------------
def book_path(cache: Path, size: int, core: int, customers: int, seed: int) -> Path:
    core = min(core, size)
    return cache / f"book-v{BOOK_FORMAT}-n{size}-core{core}-c{customers}-s{seed}.db"


def day0_path(book: Path, mode: str = "first") -> Path:
    tag = "" if mode == "first" else f"-{mode}"
    return book.with_name(f"{book.stem}-day0{tag}-{AS_OF - timedelta(1)}.db")


def due_offsets(size: int, core: int, seed: int) -> list[int]:
    """Days past due on ``AS_OF`` of receivable ``i``: the first ``core`` spread evenly over
    ``SPAN`` days (shuffled), the rest retention items far in the future (negative)."""
    core = min(core, size)
    spread = [FIRST_OFFSET + k % SPAN for k in range(core)]
    random.Random(f"due-{seed}").shuffle(spread)
    future = [-(RETENTION_FROM + k % RETENTION_DAYS) for k in range(size - core)]
    return [-o for o in spread] + future


def expected_due_steps(offsets: list[int], as_of: date = AS_OF) -> int:
    """(receivable, step) pairs of the default ladder that fall due on ``as_of``."""
    shift = (as_of - AS_OF).days
    days = Counter(o + shift for o in offsets)
    return sum(days[d] for ds in LADDER_DAYS.values() for d in ds)


def expected_first_decisions(offsets: list[int], customers: int) -> int:
    """About how many decisions the first run (on ``AS_OF - 1``) makes: every ladder step
    already due (the stale ones recorded as skipped), the 30-day alert, a lock per customer."""
    per_item = Counter(o - 1 for o in offsets if o - 1 >= -7)
    days = sorted(d for ds in LADDER_DAYS.values() for d in ds)
    steps = sum(n * sum(1 for d in days if d <= p) for p, n in per_item.items())
    alerts = sum(n for p, n in per_item.items() if p > 30)
    return steps + alerts + min(customers, alerts)


def invoice_events(size: int, core: int, customers: int, seed: int) -> Iterator[Any]:
    from arflow import events as ev
    from arflow.money import Money

    rng = random.Random(f"invoices-{seed}")
    offsets = due_offsets(size, core, seed)
    for i, past_due in enumerate(offsets):
        due = AS_OF - timedelta(past_due)
        retention = i >= core
        if retention:
            issued = AS_OF - timedelta(rng.randrange(1, 90))
            cents = rng.randrange(100_000, 2_000_000)
        else:
            issued = due - timedelta(rng.choice((30, 30, 60, 90)))
            # 2% below the ladder's minimum balance (100 CNY): their steps are skipped
            small = rng.randrange(50) == 0
            cents = rng.randrange(1_000, 9_999) if small else rng.randrange(50_000, 10_000_000)
        yield ev.InvoiceIssued(
            event_id=f"inv-{i}",
            occurred_at=CLOCK,
            actor="bench",
            number=f"INV{i:08d}",
            customer_id=customer_id(i % customers),
            issue_date=issued,
            due_date=due,
            amount=Money.of(Decimal(cents).scaleb(-2), CURRENCY),
            product_line=PRODUCT_LINES[i % len(PRODUCT_LINES)],
            tags=("retention",) if retention else (),
        )


def build_book(args: argparse.Namespace) -> dict[str, Any]:
    from itertools import chain

    events = chain(
        customer_events(args.customers, args.seed),
        invoice_events(args.size, args.core, args.customers, args.seed),
    )
    return build_sqlite(Path(args.db), events, args.customers + args.size)


# -- measurements (in the child process) ------------------------------------------------------------
def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (``ru_maxrss`` is KiB on Linux)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes there
        kib //= 1024
    return kib / 1024


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def helpers_peak_rss_mib() -> float:
    """Peak RSS of the largest finished child process (the run's helpers)."""
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if sys.platform == "darwin":
        kib //= 1024
    return kib / 1024


class Timer:
    """Wall and CPU time of the measured region; with ``profile_to``, a cProfile of it."""

    def __init__(self, profile_to: str | None) -> None:
        self.profile_to = profile_to
        self.seconds = self.cpu = self.helpers_cpu = 0.0
        self._prof: cProfile.Profile | None = None

    def __enter__(self) -> Timer:
        gc.collect()
        if self.profile_to:
            self._prof = cProfile.Profile()
            self._prof.enable()
        self._c0 = cpu_seconds()
        self._k0 = cpu_seconds(resource.RUSAGE_CHILDREN)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self.cpu = cpu_seconds() - self._c0
        self.helpers_cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - self._k0
        if self._prof is not None:
            self._prof.disable()
            self._prof.dump_stats(str(self.profile_to))


def check_ladder(pack: Any) -> None:
    """The peer's hard-coded ladder must be the pack's: same steps, same days past due."""
    (ladder,) = [lad for lad in pack.ladders if lad.id == "standard"]
    anchors = {"due": AS_OF, "issue": AS_OF - timedelta(30)}
    got = {
        st.id: tuple(
            (occ - AS_OF).days
            for occ in st.schedule.occurrences(
                anchors, pack.calendar, start=AS_OF - timedelta(30), end=AS_OF + timedelta(200)
            )
        )
        for st in ladder.steps
    }
    if got != LADDER_DAYS or ladder.min_balance != LADDER_MIN_BALANCE:
        raise SystemExit(f"the default ladder changed: {got}, min {ladder.min_balance}")


def run_engine(args: argparse.Namespace, timer: Timer) -> dict[str, Any]:
    from arflow import Ledger
    from arflow.engine import Engine
    from arflow.rules import default_pack_path

    as_of = date.fromisoformat(args.as_of)
    t0 = time.perf_counter()
    ledger = Ledger(f"sqlite:///{args.db}")
    engine = Engine(ledger, default_pack_path(), workers=args.engine_workers)
    setup = time.perf_counter() - t0
    check_ladder(engine.pack)
    if args.locks_only:
        # day 0 of a daily operator: the locks every earlier day placed are in place
        engine.pack.ladders, engine.pack.alerts, engine.pack.patterns = [], [], []
    since = date.fromisoformat(args.since) if args.since else None
    with timer:
        result = engine.run(as_of, first_run=args.first_run, since=since)
    # the run returns before SQLite's checkpoint of the day's pages, which the store's
    # checkpoint thread does meanwhile: how much longer that took
    t1 = time.perf_counter()
    ledger.store.wait_for_checkpoint()  # type: ignore[attr-defined]
    checkpoint_after = time.perf_counter() - t1
    plan = result.plan
    kinds = Counter(f"{d.kind}/{d.status}" for d in plan.decisions + plan.skipped)
    steps_today = sum(
        1 for d in plan.decisions + plan.skipped if d.kind == "dunning" and d.occurrence == as_of
    )
    if plan.slices > 1:  # a run in slices keeps its decisions in the decision ledger only
        kinds, steps_today = ledger_counts(Path(args.db), as_of)
    ledger.store.close()  # type: ignore[attr-defined]
    checkpoint(Path(args.db))  # so the parent can keep this file as the next day's book
    return {
        "setup_s": round(setup, 2),
        "checkpoint_after_s": round(checkpoint_after, 2),
        "slices": plan.slices,
        "candidates": plan.candidates,
        "recorded": result.recorded,
        "skipped": result.skipped,
        "failures": len(result.failures),
        "due_steps": steps_today,
        "decisions": dict(sorted(kinds.items())),
    }


def ledger_counts(db: Path, as_of: date) -> tuple[Counter[str], int]:
    """Decisions of ``as_of`` by kind/status, and the dunning steps due on the day, counted
    in SQL (a large first run's millions of decisions would not fit in memory)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT kind, status, count(*) FROM ar_decision WHERE as_of = ? GROUP BY 1, 2",
            (str(as_of),),
        ).fetchall()
        (today,) = conn.execute(
            "SELECT count(*) FROM ar_decision WHERE as_of = ? AND kind = 'dunning' AND key LIKE ?",
            (str(as_of), f"%:{as_of}"),
        ).fetchone()
    finally:
        conn.close()
    return Counter({f"{k}/{s}": n for k, s, n in rows}), int(today)


def durable_ladder(matched: Counter[str]) -> Any:
    """The default ladder's conditions as one durable-rules ruleset, ``"ladder"``, each step's
    action counting into ``matched``; returns durable's host."""
    from durable.lang import get_host, m, ruleset, when_all

    def counter(step: str) -> Any:
        def action(c: Any) -> None:
            matched[step] += 1

        action.__name__ = step.replace("-", "_")
        return action

    with ruleset("ladder"):
        for step, days in LADDER_DAYS.items():
            for d in days:
                when_all(
                    (m.days_past_due == d)
                    & (m.undisputed_balance >= LADDER_MIN_BALANCE)
                    & (m.dunning_block == False)  # noqa: E712  (durable's DSL needs ==)
                    & (m.promised == False)  # noqa: E712
                )(counter(step))
    return get_host()


def peer_facts(db: str, as_of: date) -> Iterator[dict[str, Any]]:
    """A peer's facts of every live receivable in the book ``db``, computed in Python from the
    stored JSON: what the ladder's conditions read."""
    live = ",".join(f"'{s}'" for s in LIVE)
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(f"SELECT data FROM ar_receivable WHERE state IN ({live})")
        for n, (data,) in enumerate(rows):
            r = json.loads(data)
            balance = Decimal(r["open_balance"]["amount"])
            undisputed = balance - min(balance, Decimal(r["disputed_amount"]["amount"]))
            yield {
                "sid": str(n % 8),  # a few sessions: durable allows at most 1024
                "id": r["id"],
                "customer_id": r["customer_id"],
                "days_past_due": (as_of - date.fromisoformat(r["due_date"])).days,
                "balance": float(balance),
                "undisputed_balance": float(undisputed),
                "dunning_level": r["dunning_level"],
                "dunning_block": r["dunning_block"],
                "promised": r["state"] == "promised",
                "state": r["state"],
            }
    finally:
        conn.close()


def run_peer(args: argparse.Namespace, timer: Timer) -> dict[str, Any]:
    """durable-rules, naively: facts per receivable in Python, one ``post`` each."""
    from durable.engine import MessageNotHandledException

    as_of = date.fromisoformat(args.as_of)
    matched: Counter[str] = Counter()
    t0 = time.perf_counter()
    host = durable_ladder(matched)
    setup = time.perf_counter() - t0
    posted = unhandled = 0
    post_s = 0.0
    with timer:
        for message in peer_facts(args.db, as_of):
            p0 = time.perf_counter()
            try:
                host.post("ladder", message)
            except MessageNotHandledException:
                unhandled += 1
            post_s += time.perf_counter() - p0
            posted += 1
    return {
        "setup_s": round(setup, 2),
        "posted": posted,
        "unhandled": unhandled,
        "matched": sum(matched.values()),
        "matched_by_step": dict(sorted(matched.items())),
        "post_s": round(post_s, 2),
    }


def child(args: argparse.Namespace) -> None:
    if args.mem_cap_gib:
        cap = int(args.mem_cap_gib * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    if args.child == "build":
        print(json.dumps(build_book(args)))
        return
    import arflow.engine  # noqa: F401  (imports and model building stay out of the timings)

    timer = Timer(args.profile_to)
    out = run_peer(args, timer) if args.child == "peer" else run_engine(args, timer)
    out.update(
        what=args.child,
        loadavg_1m=round(os.getloadavg()[0], 2),
        seconds=round(timer.seconds, 3),
        cpu_s=round(timer.cpu, 2),
        helpers_cpu_s=round(timer.helpers_cpu, 2),
        peak_rss_mib=round(peak_rss_mib(), 1),
        helpers_peak_rss_mib=round(helpers_peak_rss_mib(), 1),
    )
    print(json.dumps(out))


# -- the parent: one subprocess per measurement, then the report -------------------------------------
def run_child(args: argparse.Namespace, what: str, extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", what, "--mem-cap-gib", str(args.mem_cap_gib)]
    print(f"[{time.strftime('%H:%M:%S')}] {what} {' '.join(extra)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    err = None if what == "build" else subprocess.PIPE  # a build's progress shows as it goes
    try:
        proc = subprocess.run(
            cmd + extra, stdout=subprocess.PIPE, stderr=err, text=True, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout:.0f} s"}
    if proc.stderr:
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        last = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        failed = {"error": last[0][:120], "after_s": round(time.perf_counter() - t0)}
        print(f"  FAILED {failed}", file=sys.stderr, flush=True)
        return failed
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def upgrade_schema(db: Path) -> None:
    """Bring a cached book to this arflow's schema in place, once and outside any timing (a
    new schema step can take a while on a 1M book), so that each copy starts current."""
    from arflow.store.sql import SqlStore

    SqlStore(f"sqlite:///{db}").close()
    checkpoint(db)


def fresh_copy(src: Path, work: Path, name: str) -> Path:
    """A copy of a book, on disk before the measurement starts: left as dirty pages in the
    OS cache, the copy would be written out by the run's first checkpoint (its fsync), and
    the run would be charged for gigabytes it never wrote."""
    dst = work / name
    remove_db(dst)
    shutil.copyfile(src, dst)
    with dst.open("rb+") as fh:
        os.fsync(fh.fileno())
    return dst


def profile_summary(path: Path, top: int) -> str:
    """The functions the time goes to: own time (tottime) and, for arflow's own code and the
    store, inclusive time (cumtime), each as a share of the profiled total."""
    out = io.StringIO()
    st = pstats.Stats(str(path), stream=out)
    total = st.total_tt  # type: ignore[attr-defined]
    rows = st.stats  # type: ignore[attr-defined]

    def name(func: tuple[str, int, str]) -> str:
        file, line, fn = func
        short = file.split("site-packages/")[-1].split("src/")[-1]
        return f"{short}:{line}({fn})" if line else fn

    lines = [f"profiled total {total:.2f} s (cProfile inflates pure-Python code)"]
    lines.append("  own time (tottime):")
    by_tt = sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for func, (_cc, nc, tt, _ct, _callers) in by_tt:
        lines.append(f"    {100 * tt / total:5.1f}%  {tt:7.2f} s  {nc:>9}  {name(func)}")
    lines.append("  inclusive time (cumtime), arflow code:")
    ours = [kv for kv in rows.items() if "arflow" in kv[0][0]]
    by_ct = sorted(ours, key=lambda kv: kv[1][3], reverse=True)[:top]
    for func, (_cc, nc, _tt, ct, _callers) in by_ct:
        lines.append(f"    {100 * ct / total:5.1f}%  {ct:7.2f} s  {nc:>9}  {name(func)}")
    return "\n".join(lines)


def measure_book(
    args: argparse.Namespace, label: str, size: int, core: int, work: Path
) -> dict[str, Any]:
    cache = Path(args.cache_dir)
    book = book_path(cache, size, core, args.customers, args.seed)
    offsets = due_offsets(size, core, args.seed)
    row: dict[str, Any] = {
        "label": label,
        "size": size,
        "core": min(core, size),
        "customers": args.customers,
        "book": str(book),
        "due_steps_expected": expected_due_steps(offsets),
        "candidates_expected": sum(1 for o in offsets if o in _steady_window_days()),
        "first_decisions_expected": expected_first_decisions(offsets, args.customers),
    }
    common = ["--customers", str(args.customers), "--seed", str(args.seed)]
    if not book.exists():
        extra = ["--db", str(book), "--size", str(size), "--core", str(core), *common]
        row["build"] = run_child(args, "build", extra)
        if "error" in row["build"]:
            return row
    row["db_mib"] = round(book.stat().st_size / 2**20)
    day0 = day0_path(book, args.day0)
    day_before = str(AS_OF - timedelta(1))

    if args.day0 == "previous":
        # (b') the book as a daily operator leaves it: the previous day was run as a normal
        # day (since = that day, nothing to catch up); the steady day follows it
        if not day0.exists():
            db = fresh_copy(book, work, "previous.db")
            locks = ["--db", str(db), "--as-of", day_before, "--first-run", "--locks-only"]
            row["locks"] = run_child(args, "first", locks)
            prev = ["--db", str(db), "--as-of", day_before, "--since", day_before]
            row["previous"] = run_child(args, "first", prev)
            if "error" not in row["previous"]:
                db.rename(day0)
            remove_db(db)
        return _steady_and_peer(args, row, book, day0, work)

    # (b) the first run on the whole book, the day before: its result is the steady day's
    # book (a run with more than Engine.slice_candidates candidates plans in slices)
    first = ["--as-of", day_before, "--first-run"]
    db = fresh_copy(book, work, "first.db")
    row["first"] = run_child(args, "first", ["--db", str(db), *first])
    if "error" not in row["first"] and not day0.exists():
        db.rename(day0)
    remove_db(db)
    return _steady_and_peer(args, row, book, day0, work)


def _steady_and_peer(
    args: argparse.Namespace, row: dict[str, Any], book: Path, day0: Path, work: Path
) -> dict[str, Any]:
    if not day0.exists():
        return row
    upgrade_schema(day0)

    # (a) the steady-state day, in one process and in --workers processes, and the peer;
    # each --repeat times, interleaved, the median kept (this machine's speed drifts)
    measures = [("steady", day0, [])]
    if args.workers > 1:
        measures.append(("steady_workers", day0, ["--engine-workers", str(args.workers)]))
    if not args.no_peer:
        measures.append(("peer", book, []))
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key, _src, _extra in measures}
    for _ in range(args.repeat):
        for key, src, extra in measures:
            what = "peer" if key == "peer" else "steady"
            db = fresh_copy(src, work, f"{key}.db")
            runs[key].append(
                run_child(args, what, ["--db", str(db), "--as-of", str(AS_OF), *extra])
            )
            remove_db(db)
    for key, got in runs.items():
        row[key] = _median(got)
        row[f"{key}_runs_s"] = [x.get("seconds") for x in got]

    if args.profile and row["label"] == args.profile_label:
        for what, src, extra in (("steady", day0, ["--as-of", str(AS_OF)]),):
            prof = Path(args.cache_dir) / f"{book.stem}-{what}.prof"
            db = fresh_copy(src, work, f"profile-{what}.db")
            got = run_child(args, what, ["--db", str(db), *extra, "--profile-to", str(prof)])
            remove_db(db)
            if "error" not in got:
                row[f"profile_{what}"] = {"file": str(prof), "seconds": got["seconds"]}
                row[f"profile_{what}"]["summary"] = profile_summary(prof, args.top)
    return row


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time (the first failure, if any run failed)."""
    failed = [x for x in runs if "error" in x]
    if failed:
        return failed[0]
    return sorted(runs, key=lambda x: x["seconds"])[len(runs) // 2]


def _steady_window_days() -> set[int]:
    """Days past due on ``AS_OF`` of the receivables the steady day's run reads as candidates
    (the default pack's windows: ladder steps, the 30-day alert and lock thresholds)."""
    return {-7, 0, *range(1, 17), 31, 91}


def fmt_s(x: dict[str, Any] | None) -> str:
    if not x:
        return "-"
    if "error" in x:
        return x["error"]
    return f"{x['seconds']:.2f}"


def fmt_rss(x: dict[str, Any] | None) -> str:
    if not x or "error" in x:
        return "-"
    return f"{x['peak_rss_mib']:.0f}"


def source_state() -> str:
    """The commit measured, and whether src/ had uncommitted changes."""
    here = Path(__file__).resolve().parent.parent

    def git(*a: str) -> str:
        proc = subprocess.run(["git", *a], cwd=here, capture_output=True, text=True, check=False)
        return proc.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    dirty = git("status", "--porcelain", "--", "src")
    return f"commit {head}" + (f" (src/ modified: {dirty.replace(chr(10), '; ')})" if dirty else "")


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    out = [
        f"arflow {args.version} {source_state()}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"as_of {AS_OF} (steady day); day 0 ({AS_OF - timedelta(1)}): "
        + (
            "the locks earlier days placed, then a normal previous day (--day0 previous)"
            if args.day0 == "previous"
            else "a whole-book first run with catch-up (--day0 first)"
        ),
        "",
        "| book | receivables | due steps | candidates | steady wall s | steady CPU s "
        f"| steady RSS MiB | {args.workers} processes: wall s | CPU s | RSS MiB "
        "| day-0 wall s | day-0 RSS MiB | peer wall s (post s) "
        "| peer RSS MiB | peer / steady |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        st, fi, pe = r.get("steady"), r.get("first") or r.get("previous"), r.get("peer")
        ok = st and "error" not in st
        first_s, first_rss = fmt_s(fi), fmt_rss(fi)
        if fi and "error" in fi:
            first_s = f"failed after {fi.get('after_s')} s"
        ratio = "-"
        sw = r.get("steady_workers")
        sw_ok = sw and "error" not in sw
        if ok and pe and "error" not in pe:
            ratio = f"{pe['seconds'] / st['seconds']:.1f}x"
            if sw_ok:
                ratio += f" / {pe['seconds'] / sw['seconds']:.1f}x"
        sw_cols = (
            f"{sw['seconds']:.2f} | {sw['cpu_s']} + {sw['helpers_cpu_s']} "
            f"| {sw['peak_rss_mib']:.0f} + {sw['helpers_peak_rss_mib']:.0f}"
            if sw_ok
            else f"{fmt_s(sw)} | - | -"
        )
        peer = fmt_s(pe)
        if pe and "error" not in pe:
            peer += f" ({pe['post_s']:.1f})"
        out.append(
            f"| {r['label']} | {r['size']:,} | "
            f"{st['due_steps'] if ok else r['due_steps_expected']:,} | "
            f"{st['candidates'] if ok else '-'} | {fmt_s(st)} | "
            f"{st['cpu_s'] if ok else '-'} | {fmt_rss(st)} | {sw_cols} | {first_s} | {first_rss} | "
            f"{peer} | {fmt_rss(pe)} | {ratio} |"
        )
    out.append("")
    for r in rows:
        st, pe = r.get("steady") or {}, r.get("peer") or {}
        out.append(
            f"{r['label']}: {r['size']:,} receivables ({r['core']:,} spread over {SPAN} days), "
            f"{r['customers']:,} customers, {r.get('db_mib', '?')} MiB; "
            f"expected due steps {r['due_steps_expected']:,}"
        )
        if "decisions" in st:
            out.append(f"  steady decisions: {st['decisions']}")
        for key in ("steady_runs_s", "steady_workers_runs_s", "peer_runs_s"):
            if r.get(key):
                out.append(f"  {key.removesuffix('_runs_s')} runs (s): {r[key]}")
        if "matched" in pe:
            out.append(
                f"  peer: posted {pe['posted']:,}, matched {pe['matched']:,} "
                f"{pe['matched_by_step']}, unhandled {pe['unhandled']:,}"
            )
        lk = r.get("locks") or {}
        if "decisions" in lk:
            out.append(f"  day 0, locks placed: {lk['decisions']}, CPU {lk['cpu_s']} s")
        fi = r.get("first") or r.get("previous") or {}
        if "decisions" in fi:
            out.append(f"  day-0 decisions: {fi['decisions']}, CPU {fi['cpu_s']} s")
        if "error" in fi:
            out.append(f"  first run failed: {fi}")
        if fi.get("slices", 1) > 1:
            out.append(f"  day-0 run planned in {fi['slices']} slices of the customers")
        if "build" in r:
            out.append(f"  built: {r['build']}")
    for r in rows:
        for what in ("steady", "first"):
            p = r.get(f"profile_{what}")
            if p:
                out += ["", f"profile of {r['label']} {what} ({p['file']}):", p["summary"]]
    verdict = []
    for r in rows:
        for key, how in (("steady", "1 process"), ("steady_workers", f"{args.workers} processes")):
            st = r.get(key)
            if st and "error" not in st and r["size"] >= 1_000_000:
                rss = st["peak_rss_mib"] + st.get("helpers_peak_rss_mib", 0)
                verdict.append(
                    f"{r['label']}, {how}: steady {st['seconds']:.2f} s (target < "
                    f"{TARGET_SECONDS:.0f} s: "
                    f"{'met' if st['seconds'] < TARGET_SECONDS else 'MISSED'}), peak RSS "
                    f"{rss:.0f} MiB (target < {TARGET_RSS_MIB:.0f}: "
                    f"{'met' if rss < TARGET_RSS_MIB else 'MISSED'})"
                )
    if not verdict:
        verdict = ["(the targets are for 1M receivables; no such book in this run)"]
    return "\n".join([*out, "", *verdict])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", help="fixed-steps series sizes (100000,300000,1000000)")
    p.add_argument("--book", type=int, help="spread book size (1000000; 0: none)")
    p.add_argument("--core", type=int, default=0, help="spread part of the series (min size)")
    p.add_argument("--customers", type=int, help="customers (100000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--quick", action="store_true", help="5k book, 500 customers, 1k-5k series: < 1 min"
    )
    p.add_argument("--no-peer", action="store_true")
    p.add_argument(
        "--day0",
        choices=["previous", "first"],
        default="previous",
        help="how the book reaches the day before the steady day: a normal previous day "
        "(default) or a whole-book first run with catch-up (timed; needs much memory)",
    )
    p.add_argument("--since", default="", help=argparse.SUPPRESS)
    p.add_argument("--locks-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--profile", action="store_true", help="cProfile steady and first run too")
    p.add_argument("--profile-label", default="", help="which book to profile (spread-N)")
    p.add_argument("--top", type=int, default=18, help="profile lines to show")
    p.add_argument("--cache-dir", default="/tmp/arflow-bench")
    p.add_argument("--out", default="", help="results JSON (default: in --cache-dir)")
    p.add_argument("--timeout", type=float, default=7200, help="seconds per measurement")
    p.add_argument("--mem-cap-gib", type=float, default=14, help="address-space cap per child")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each steady day and of the peer, interleaved; the median is reported",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also measure the steady day with Engine(workers=N) (1: one process only)",
    )
    # child-only
    p.add_argument("--engine-workers", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    p.add_argument("--db", default="", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--as-of", default="", help=argparse.SUPPRESS)
    p.add_argument("--first-run", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--profile-to", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    quick = {"sizes": "1000,5000", "book": 5_000, "customers": 500}
    full = {"sizes": "100000,300000,1000000", "book": 1_000_000, "customers": 100_000}
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    core = args.core or (min(sizes) if sizes else args.book)
    args.profile_label = args.profile_label or f"spread-{args.book}"
    import arflow

    args.version = getattr(arflow, "__version__", "?")
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f"work-{os.getpid()}"
    work.mkdir()
    books = [(f"fixed-{s}", s, core) for s in sizes]
    if args.book:
        books.append((f"spread-{args.book}", args.book, args.book))
    rows = []
    t0 = time.perf_counter()
    out = Path(args.out) if args.out else cache / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    try:
        for label, size, c in books:
            rows.append(measure_book(args, label, size, c, work))
            out.write_text(json.dumps(rows, indent=1, default=str))  # partial results survive
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(rows, args)
    print(text)
    print(f"\n(total {time.perf_counter() - t0:.0f} s; results in {out})", file=sys.stderr)


if __name__ == "__main__":
    main()
