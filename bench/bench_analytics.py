"""Benchmark: arflow.analytics' figures over a large book, on SQLite and PostgreSQL, beside
loading the same rows into pandas and computing there.

The target (issue 13): aging, DSO (standard and countback) and the collection rate over 1M
receivables, each under 1 s, on SQLite and on PostgreSQL.

The book is made the way ``bench_run.py`` makes its books (its customers and its *spread*
invoices, through ``Ledger.apply_all``'s bulk path), plus one payment in ten invoices
(explicit allocations, received 20 days after the issue date). It is cached: the SQLite file
under ``--cache-dir``, the PostgreSQL book in the schema ``--pg-schema`` (both reused when
they hold the same book).

Each figure is timed ``--repeat`` times, the backends and the pandas peer interleaved, and
the median is reported. The pandas peer reads the movement journal's rows the figures need
(``pandas.read_sql`` through the same SQLAlchemy engine) and computes the figure with
``groupby``; its time is the read plus the computation. Without pandas the peer is skipped
with a note.

    python bench/bench_analytics.py                 # 1M receivables, 10k customers
    python bench/bench_analytics.py --size 20000    # a quick look
    python bench/bench_analytics.py --case report --before --repeat 3   # the whole report
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_run
import books

AS_OF = bench_run.AS_OF
PG_URL = os.environ.get(
    "ARFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def payments(size: int, customers: int, seed: int) -> Iterator[Any]:
    """One payment in ten invoices, in full, 20 days after the issue date (up to AS_OF)."""
    from arflow import AllocationRequest, PaymentReceived

    at = datetime(2026, 1, 1, tzinfo=UTC)
    for i, inv in enumerate(bench_run.invoice_events(size, size, customers, seed)):
        on = inv.issue_date + timedelta(days=20)
        if i % 10 or on > AS_OF:
            continue
        yield PaymentReceived(
            event_id=f"pay-{i}",
            occurred_at=at,
            actor="bench",
            payment_id=f"PAY{i:08d}",
            customer_id=inv.customer_id,
            amount=inv.amount,
            received_on=on,
            allocations=(AllocationRequest(receivable_id=inv.number, amount=inv.amount),),
        )


def build(store_url: str | Any, size: int, customers: int, seed: int) -> dict[str, Any]:
    from itertools import chain

    from arflow import Ledger

    ledger = Ledger(store_url)
    events = chain(
        bench_run.customer_events(customers, seed),
        bench_run.invoice_events(size, size, customers, seed),
        payments(size, customers, seed),
    )
    got = books.apply_in_chunks(ledger, events)
    if isinstance(store_url, str):
        ledger.store.close()  # type: ignore[attr-defined]
    return got


def open_sqlite(args: argparse.Namespace) -> tuple[Any, dict[str, Any] | None]:
    from arflow.store.sql import SqlStore

    path = Path(args.cache_dir) / f"analytics-n{args.size}-c{args.customers}-s{args.seed}.db"
    built = None
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".building")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
        built = build(f"sqlite:///{tmp}", args.size, args.customers, args.seed)
        bench_run.checkpoint(tmp)
        tmp.rename(path)
    return SqlStore(f"sqlite:///{path}"), built


def open_postgres(args: argparse.Namespace) -> tuple[Any, dict[str, Any] | None]:
    import sqlalchemy as sa

    from arflow.store.sql import SqlStore

    schema = f"{args.pg_schema}_n{args.size}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM information_schema.tables WHERE table_schema = :s "
                    "AND table_name = 'ar_movement'"),
            {"s": schema},
        ).first()  # fmt: skip
        if exists is not None:
            count = conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".ar_receivable')).scalar()
            if count != args.size:
                exists = None
        if exists is None:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    built = None
    if exists is None:
        built = build(SqlStore(engine), args.size, args.customers, args.seed)
        # what autovacuum does to a freshly written table, at once: statistics for the
        # planner and the visibility map that lets it read from the indexes alone
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    return SqlStore(engine), built


# -- the figures, by arflow and by pandas ---------------------------------------------------------
#: The period of DSO and the collection rate: the year to AS_OF (the spread book's open
#: receivables were issued up to a year before it, so a countback over a shorter period
#: would be undefined).
START = AS_OF - timedelta(days=364)
DAYS = (AS_OF - START).days + 1


def arflow_figures(store: Any) -> dict[str, Callable[[], Any]]:
    from arflow import Analytics

    a = Analytics(store)
    return {
        "aging": lambda: a.aging(AS_OF),
        "dso": lambda: a.dso(AS_OF, start=START),
        "dso_countback": lambda: a.dso(AS_OF, start=START, method="countback"),
        "collection_rate": lambda: a.collection_rate(AS_OF, start=START),
    }


def pandas_figures(store: Any) -> dict[str, Callable[[], Any]]:
    import pandas as pd

    engine = store.engine
    day = AS_OF.isoformat() if engine.dialect.name == "sqlite" else AS_OF

    def frame(columns: str) -> Any:
        df = pd.read_sql(
            sa_text(f"SELECT {columns} FROM ar_movement WHERE on_date <= :d"), engine,
            params={"d": day},
        )  # fmt: skip
        for c in ("on_date", "due_date"):
            if c in df:
                df[c] = pd.to_datetime(df[c])
        return df

    as_of = pd.Timestamp(AS_OF)
    start = pd.Timestamp(START)

    def aging() -> Any:
        df = frame("currency, due_date, amount, open_delta")
        days = (as_of - df["due_date"]).dt.days
        band = pd.cut(days, [-(10**9), 0, 30, 60, 90, 10**9], labels=False)
        return df.groupby(["currency", band])[["amount", "open_delta"]].sum()

    def dso() -> Any:
        df = frame("currency, kind, on_date, amount")
        ar = df.groupby("currency")["amount"].sum()
        s = df[(df["kind"] == "invoiced") & (df["on_date"] >= start)]
        sales = s.groupby("currency")["amount"].sum()
        return ar / sales * DAYS

    def countback() -> Any:
        df = frame("currency, kind, on_date, amount")
        ar = df.groupby("currency")["amount"].sum()
        s = df[(df["kind"] == "invoiced") & (df["on_date"] >= start)]
        monthly = s.groupby(["currency", s["on_date"].dt.to_period("M")])["amount"].sum()
        out = {}
        for cur, left in ar.items():
            days = 0.0
            for month, sales in monthly[cur].sort_index(ascending=False).items():
                first = max(month.start_time, start)
                last = min(month.end_time, as_of)
                span = (last - first).days + 1
                if left >= sales:
                    days, left = days + span, left - sales
                else:
                    days, left = days + left / sales * span, 0
                    break
            out[cur] = days if left <= 0 else None
        return out

    def collection() -> Any:
        df = frame("currency, kind, on_date, amount")
        before = df[df["on_date"] < start].groupby("currency")["amount"].sum()
        period = df[df["on_date"] >= start]
        sales = period[period["kind"] == "invoiced"].groupby("currency")["amount"].sum()
        paid = period[period["kind"].isin(["paid", "reversed"])].groupby("currency")["amount"]
        return -paid.sum() / (before + sales)

    return {"aging": aging, "dso": dso, "dso_countback": countback, "collection_rate": collection}


def sa_text(sql: str) -> Any:
    import sqlalchemy as sa

    return sa.text(sql)


def measure(stores: dict[str, Any], repeat: int, peer: bool) -> dict[str, dict[str, float]]:
    runs: dict[str, list[float]] = {}
    calls: dict[str, Callable[[], Any]] = {}
    for backend, store in stores.items():
        for name, f in arflow_figures(store).items():
            calls[f"{backend}/arflow/{name}"] = f
        if peer:
            for name, f in pandas_figures(store).items():
                calls[f"{backend}/pandas/{name}"] = f
    answers = {label: f() for label, f in calls.items()}  # warm up, and the answers
    for _ in range(repeat):
        for label, f in calls.items():  # interleaved
            t0 = time.perf_counter()
            f()
            runs.setdefault(label, []).append(time.perf_counter() - t0)
    for backend in stores:
        (dso,) = answers[f"{backend}/arflow/dso"]
        (aging,) = answers[f"{backend}/arflow/aging"]
        print(f"# {backend}: aging total {aging.total}, DSO {dso.value}", file=sys.stderr)
        if peer:
            print(f"#   pandas: DSO {answers[f'{backend}/pandas/dso'].to_dict()}", file=sys.stderr)
    out: dict[str, dict[str, float]] = {}
    for label, times in runs.items():
        backend, who, name = label.split("/")
        out.setdefault(f"{backend} {name}", {})[who] = round(statistics.median(times), 3)
    return out


# -- the whole report ----------------------------------------------------------------------------
def report_parts(store: Any) -> dict[str, Callable[[], Any]]:
    """``build_report``'s parts, each timed alone (what the report's total is made of)."""
    from arflow.analytics import Analytics, falling_due, forecasts, high_risk
    from arflow.analytics._build import REPORT_RANKINGS, REPORT_TRENDS, _contracts

    a = Analytics(store)
    start = AS_OF.replace(day=1) - timedelta(days=330)

    def figures() -> Any:
        out = [a.headline(AS_OF), a.aging(AS_OF), a.grades()]
        out += [a.dso(AS_OF), a.dso(AS_OF, method="countback"), a.art(AS_OF), a.add(AS_OF)]
        out += [a.cei(AS_OF), a.overdue_rate(AS_OF), a.collection_rate(AS_OF)]
        out += [a.collection_rate_mtd(AS_OF), a.on_time_rate(AS_OF), a.written_off_ratio(AS_OF)]
        return out

    return {
        "figures": figures,
        "trends": lambda: [a.trend(m, start, AS_OF) for m in REPORT_TRENDS],
        "rankings": lambda: [a.ranking(m, by, AS_OF) for m, by in REPORT_RANKINGS],
        # the same, their sums asked together (as build_report asks them)
        "trends, prefetched": lambda: a.together(
            lambda: [a.trend(m, start, AS_OF) for m in REPORT_TRENDS]
        ),
        "rankings, prefetched": lambda: a.together(
            lambda: [a.ranking(m, by, AS_OF) for m, by in REPORT_RANKINGS]
        ),
        "forecast": lambda: forecasts(store, AS_OF),
        "falling_due": lambda: falling_due(store, AS_OF, limit=500),  # as build_report
        "high_risk": lambda: high_risk(store, AS_OF, limit=500),
        "contracts": lambda: _contracts(store, AS_OF, None, 200),
    }


def measure_report(
    stores: dict[str, Any], repeat: int, before: bool
) -> dict[str, dict[str, float]]:
    """``build_report`` + ``render_html`` per backend (interleaved), then each part alone.

    With ``before``, each repeat also builds the report the way it was built before its sums
    were asked together (``Analytics.prefetch`` off: one query per sum, each grouping its
    own scan), interleaved with the new way. Each time is the wall time and the CPU time of
    this process (the database's own work is in it on SQLite, not on PostgreSQL)."""
    from arflow.analytics import Analytics, build_report
    from arflow.report import render_html

    prefetch = Analytics.prefetch
    ways = {"": prefetch}
    if before:
        ways["before "] = lambda self, make: None
    runs: dict[str, list[float]] = {}
    for _ in range(repeat):
        for backend, store in stores.items():
            for way, method in ways.items():
                Analytics.prefetch = method  # type: ignore[method-assign]
                try:
                    t0, c0 = time.perf_counter(), time.process_time()
                    report = build_report(store, AS_OF)
                    t1, c1 = time.perf_counter(), time.process_time()
                    html = render_html(report)
                    t2, c2 = time.perf_counter(), time.process_time()
                finally:
                    Analytics.prefetch = prefetch  # type: ignore[method-assign]
                runs.setdefault(f"{backend}/{way}build_report", []).append(t1 - t0)
                runs.setdefault(f"{backend}/{way}render_html", []).append(t2 - t1)
                runs.setdefault(f"{backend}/{way}total", []).append(t2 - t0)
                runs.setdefault(f"{backend}/{way}build_report, CPU", []).append(c1 - c0)
                runs.setdefault(f"{backend}/{way}total, CPU", []).append(c2 - c0)
                print(f"# {backend}: {way}report {t2 - t0:.1f} s (CPU {c2 - c0:.1f} s), "
                      f"html {len(html)} chars, load {os.getloadavg()[0]:.1f}", file=sys.stderr)  # fmt: skip
    for backend, store in stores.items():
        for name, f in report_parts(store).items():
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            runs.setdefault(f"{backend}/part {name}", []).append(time.perf_counter() - t0)
            runs.setdefault(f"{backend}/part {name}, CPU", []).append(time.process_time() - c0)
    out: dict[str, dict[str, float]] = {}
    for label, times in runs.items():
        backend, name = label.split("/")
        out.setdefault(name, {})[backend] = round(statistics.median(times), 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1_000_000, help="receivables")
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--cache-dir", default="/tmp/arflow-bench")
    p.add_argument("--pg-schema", default="bench_analytics")
    p.add_argument("--no-postgres", action="store_true")
    p.add_argument("--no-sqlite", action="store_true")
    p.add_argument("--json", help="also write the results here")
    p.add_argument(
        "--case", choices=["figures", "report", "both"], default="figures",
        help="the figures beside pandas, the whole report (build_report + render_html), or both",
    )  # fmt: skip
    p.add_argument(
        "--before", action="store_true",
        help="with --case report: also build the report one query per sum, interleaved",
    )  # fmt: skip
    args = p.parse_args()
    try:
        import pandas  # noqa: F401

        peer = True
    except ImportError:
        peer = False
        print("note: pandas is not installed: the pandas peer is skipped", file=sys.stderr)
    stores: dict[str, Any] = {}
    builds: dict[str, Any] = {}
    if not args.no_sqlite:
        stores["sqlite"], builds["sqlite"] = open_sqlite(args)
    if not args.no_postgres:
        stores["postgresql"], builds["postgresql"] = open_postgres(args)
    results = measure(stores, args.repeat, peer) if args.case != "report" else {}
    report = measure_report(stores, args.repeat, args.before) if args.case != "figures" else {}
    journal = {}
    for backend, store in stores.items():
        import sqlalchemy as sa

        with store.engine.connect() as conn:
            journal[backend] = conn.execute(sa.text("SELECT count(*) FROM ar_movement")).scalar()
    print(f"# {args.size} receivables, {args.customers} customers, as of {AS_OF}")
    print(f"# {platform.platform()}, {platform.python_version()}, {os.cpu_count()} cores")
    print(f"# load average {os.getloadavg()}")
    print(f"# movement rows: {journal}; built: {builds}")
    print("| figure | arflow (s) | pandas: read + compute (s) |")
    print("|---|---|---|")
    for label, got in results.items():
        print(f"| {label} | {got['arflow']:.3f} | {got.get('pandas', float('nan')):.3f} |")
    if report:
        print(f"| report | {' (s) | '.join(stores)} (s) |")
        print("|---|" + "---|" * len(stores))
        for name, got in report.items():
            print(f"| {name} | " + " | ".join(f"{got[b]:.2f}" for b in stores) + " |")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"results": results, "report": report, "builds": builds}, indent=1)
        )
    for store in stores.values():
        store.close()


if __name__ == "__main__":
    main()
