"""Benchmark: a day's run on Celery workers (``arflow.engine.distributed``) beside the same
day in one process, on a PostgreSQL book.

The book is bench_run.py's spread book (``--size`` receivables over ``--customers``
customers, due dates spread over 18 months around its ``AS_OF``), built into a fresh
PostgreSQL schema for each measurement; its first run (``AS_OF - 1``, one process) settles
every stale step; then the steady day ``AS_OF`` is timed: by ``Engine.run`` in this process,
and by ``run_on_celery`` in ``--shards`` shards on one ``celery worker`` of 1, 2 and 4
processes (``--workers``). Each row says the decisions recorded, which must be equal.

    python bench/bench_celery_run.py --size 20000 --customers 2000 --broker redis://127.0.0.1:6379/0

Needs PostgreSQL (``ARFLOW_TEST_POSTGRES_URL`` or ``--pg``) and a broker.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from itertools import chain, islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402
from bench_run import AS_OF, customer_events, invoice_events  # noqa: E402

from arflow import Engine, Ledger  # noqa: E402
from arflow.rules import default_pack_path  # noqa: E402

PG = os.environ.get("ARFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def fresh_book(args: argparse.Namespace, admin: sa.Engine) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.pg else "?"
    url = f"{args.pg}{sep}options=-csearch_path%3D{schema}"
    ledger = Ledger(url)
    events = chain(
        customer_events(args.customers, args.seed),
        invoice_events(args.size, args.size, args.customers, args.seed),
    )
    while chunk := list(islice(events, 20_000)):
        ledger.apply_all(chunk)
    from datetime import timedelta

    Engine(ledger, default_pack_path()).run(AS_OF - timedelta(1), first_run=True)
    ledger.store.close()  # type: ignore[attr-defined]
    return schema, url


def start_worker(args: argparse.Namespace, url: str, queue: str, processes: int) -> Any:
    env = dict(os.environ, ARFLOW_CELERY_BROKER=args.broker, ARFLOW_DB=url)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "celery", "-A", "arflow.engine.distributed", "worker"]
    argv += ["-Q", queue, "--concurrency", str(processes), "-l", "warning"]
    argv += ["--without-mingle", "--without-gossip", "-n", f"{queue}@%h"]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(args: argparse.Namespace, admin: sa.Engine, workers: int) -> dict[str, Any]:
    from arflow.engine.distributed import celery_app, run_on_celery

    schema, url = fresh_book(args, admin)
    queue = f"bench-{schema}"
    worker = start_worker(args, url, queue, workers) if workers else None
    engine = Engine(Ledger(url), default_pack_path())
    try:
        if worker is not None:  # warm: the workers load the rules and open the book
            app = celery_app(args.broker, queue=queue)
            warm = AS_OF.replace(year=AS_OF.year - 3)
            run_on_celery(engine, warm, app=app, shards=workers, since=warm)
        t0 = time.perf_counter()
        if worker is None:
            recorded = engine.run(AS_OF).recorded
        else:
            done = run_on_celery(engine, AS_OF, app=app, shards=args.shards)
            recorded = done.result.recorded
            app.close()
        seconds = time.perf_counter() - t0
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        engine.store.close()  # type: ignore[attr-defined]
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    return {"workers": workers or "one process", "recorded": recorded, "seconds": round(seconds, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=20_000)
    p.add_argument("--customers", type=int, default=2_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--workers", default="0,1,2,4", help="0: one process, no Celery")
    p.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    p.add_argument("--pg", default=PG)
    args = p.parse_args()
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    rows = [measure(args, admin, int(w)) for w in args.workers.split(",")]
    load = os.getloadavg()
    print(
        json.dumps(
            {
                "size": args.size,
                "customers": args.customers,
                "shards": args.shards,
                "loadavg": [round(x, 2) for x in load],
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
