"""Benchmark: delivering the outbox. Throughput (actions/s) to the memory adapter and to a local
SMTP server, with one and with two dispatchers, and the outbox's overhead per action against
calling the same adapter directly (the peer measured in the same run).

Each measurement runs in a fresh child process (its own timing, CPU seconds and peak RSS):

* ``direct``: the child reads the N queued messages and calls ``adapter.deliver`` for each;
* ``dispatch x1``: one ``Dispatcher`` delivers the N messages (claim, deliver, settle);
* ``dispatch x2``: two dispatcher processes at once over the same outbox (PostgreSQL:
  ``FOR UPDATE SKIP LOCKED``; SQLite: claims serialised); wall time from the first start to the
  last finish.

The SMTP server is aiosmtpd's ``Sink`` in a process of its own (it accepts and discards).

``--limiters REDIS_URL`` measures the rate limiter instead: one dispatcher to the memory
adapter with no limiter, the in-process one and the Redis one shared by every dispatcher,
each at a rate too high to ever wait (so what is left is the limiter's own cost), and the
bare ``reserve`` call of each.

    python bench/bench_dispatch.py --n 5000
    python bench/bench_dispatch.py --n 5000 --limiters redis://127.0.0.1:6379/0
    python bench/bench_dispatch.py --n 5000 --db postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_store(db: str, schema: str | None) -> Any:
    import sqlalchemy as sa

    from arflow.store.sql import SqlStore

    if schema:
        return SqlStore(sa.create_engine(db, connect_args={"options": f"-csearch_path={schema}"}))
    return SqlStore(db)


def seed(db: str, schema: str | None, n: int) -> None:
    from arflow import Message
    from arflow.store.base import OutboxRecord

    store = open_store(db, schema)
    with store.transaction() as tx:
        for i in range(n):
            m = Message(
                key=f"notice:C{i % 997}:email:formal_notice:{i:06d}",
                channel="email",
                action="email",
                customer_id=f"C{i % 997}",
                to=(f"ap{i}@example.com",),
                subject=f"Payment reminder {i}",
                text=f"Dear customer,\n\ninvoice INV-{i} of 12,500.00 CNY is 16 days overdue.\n",
                html=f"<!DOCTYPE html><p>Invoice <b>INV-{i}</b> is 16 days overdue.</p>",
            )
            tx.add_outbox(
                OutboxRecord(
                    key=m.key, channel="email", customer_id=m.customer_id, body=m.model_dump_json()
                )
            )
    store.close()


def child(args: argparse.Namespace) -> None:
    from arflow import Dispatcher, Message, adapter_from_url

    store = open_store(args.db, args.schema or None)
    adapter = adapter_from_url(args.adapter)
    t0, c0 = time.perf_counter(), time.process_time()
    if args.child == "direct":
        messages = [Message.model_validate_json(r.body) for r in store.outbox()]
        t0, c0 = time.perf_counter(), time.process_time()
        for m in messages:
            adapter.deliver(m)
        done = len(messages)
    else:
        stats = Dispatcher(
            store, adapter, batch=args.batch, worker=args.worker, **limiter_options(args)
        ).run()
        done = stats.sent
    out = {
        "delivered": done,
        "seconds": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "start": t0,
    }
    print(json.dumps(out))


#: a rate no limiter ever makes a dispatcher wait at: what is measured is the limiter's cost
NEVER_WAITS = 1e9


def limiter_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Dispatcher's rate limit options for ``--limiter`` (none, inprocess or a Redis URL)."""
    if args.limiter == "inprocess":
        return {"rate_limits": {"email": NEVER_WAITS}}
    if args.limiter.startswith("redis"):
        from arflow.adapters.ratelimit import RedisRateLimiter

        prefix = f"bench:{uuid.uuid4().hex[:8]}:"
        return {
            "rate_limiter": RedisRateLimiter(args.limiter, {"email": NEVER_WAITS}, prefix=prefix)
        }
    return {}


def bare_reserve(redis_url: str, n: int) -> list[dict[str, Any]]:
    """The cost of one ``reserve`` of each limiter, called ``n`` times in a row."""
    from arflow import InProcessRateLimiter
    from arflow.adapters.ratelimit import RedisRateLimiter

    rows = []
    shared = RedisRateLimiter(
        redis_url, {"email": NEVER_WAITS}, prefix=f"bench:{uuid.uuid4().hex[:8]}:"
    )
    for name, limiter in (
        ("in-process", InProcessRateLimiter({"email": NEVER_WAITS})),
        ("Redis", shared),
    ):
        t0 = time.perf_counter()
        for _ in range(n):
            limiter.reserve("email")
        seconds = time.perf_counter() - t0
        rows.append({"limiter": name, "calls": n, "us_per_call": seconds / n * 1e6})
    shared.close()
    return rows


def spawn(args: argparse.Namespace, what: str, adapter: str, schema: str, worker: str) -> Any:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        what,
        "--db",
        args.db,
        "--schema",
        schema,
        "--adapter",
        adapter,
        "--batch",
        str(args.batch),
        "--worker",
        worker,
        "--limiter",
        args.limiter,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


def measure(args: argparse.Namespace, what: str, adapter: str, workers: int) -> dict[str, Any]:
    schema = ""
    db = args.db
    if db.startswith("sqlite"):
        path = Path(args.workdir) / f"outbox-{uuid.uuid4().hex[:8]}.db"
        db = f"sqlite:///{path}"
    else:
        import sqlalchemy as sa

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(db, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
    seed(db, schema or None, args.n)
    sub = argparse.Namespace(**{**vars(args), "db": db})
    t0 = time.perf_counter()
    procs = [spawn(sub, what, adapter, schema, f"w{i}") for i in range(workers)]
    results = [json.loads(p.communicate()[0]) for p in procs]
    wall = time.perf_counter() - t0
    delivered = sum(r["delivered"] for r in results)
    inner = max(r["start"] + r["seconds"] for r in results) - min(r["start"] for r in results)
    if schema:
        import sqlalchemy as sa

        admin = sa.create_engine(args.db, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return {
        "what": what,
        "workers": workers,
        "adapter": adapter.split(":")[0],
        "delivered": delivered,
        "seconds": inner,
        "wall_with_startup": wall,
        "per_s": delivered / inner if inner else 0.0,
        "us_per_action": inner / delivered * 1e6 if delivered else 0.0,
        "cpu_s": sum(r["cpu_s"] for r in results),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
        "loadavg_1m": os.getloadavg()[0],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=5000, help="actions queued per measurement")
    p.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL URL")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--schema", default="", help=argparse.SUPPRESS)
    p.add_argument("--adapter", default="", help=argparse.SUPPRESS)
    p.add_argument("--worker", default="w", help=argparse.SUPPRESS)
    p.add_argument("--limiter", default="none", help=argparse.SUPPRESS)
    p.add_argument("--limiters", help="a Redis URL: measure the rate limiters instead")
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if args.limiters:
        limiters(args)
        return
    port = free_port()
    smtp = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Sink",
            "-l",
            f"127.0.0.1:{port}",
        ]
    )
    time.sleep(1.0)
    try:
        rows = []
        for adapter in ("memory://", f"smtp://127.0.0.1:{port}?from=ar@example.com"):
            for what, workers in (("direct", 1), ("dispatch", 1), ("dispatch", 2)):
                r = measure(args, what, adapter, workers)
                print(json.dumps(r), flush=True)
                rows.append(r)
    finally:
        smtp.terminate()
        smtp.wait()
    backend = "SQLite" if args.db.startswith("sqlite") else "PostgreSQL"
    print(f"\n{args.n:,} e-mail actions, outbox on {backend}, batch {args.batch}\n")
    print(
        "| adapter | how | actions/s | µs per action | CPU s | peak RSS MiB | outbox overhead µs/action |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    direct = {r["adapter"]: r["us_per_action"] for r in rows if r["what"] == "direct"}
    for r in rows:
        how = "adapter called directly" if r["what"] == "direct" else f"dispatcher x{r['workers']}"
        over = "" if r["what"] == "direct" else f"{r['us_per_action'] - direct[r['adapter']]:,.0f}"
        print(
            f"| {r['adapter']} | {how} | {r['per_s']:,.0f} | {r['us_per_action']:,.0f} | "
            f"{r['cpu_s']:.1f} | {r['peak_rss_mib']:.0f} | {over} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def limiters(args: argparse.Namespace) -> None:
    """One dispatcher to the memory adapter with each limiter, and each bare ``reserve``."""
    rows = []
    for limiter in ("none", "inprocess", args.limiters):
        sub = argparse.Namespace(**{**vars(args), "limiter": limiter})
        r = measure(sub, "dispatch", "memory://", 1)
        r["limiter"] = "Redis" if limiter.startswith("redis") else limiter
        print(json.dumps(r), flush=True)
        rows.append(r)
    bare = bare_reserve(args.limiters, args.n)
    for b in bare:
        print(json.dumps(b), flush=True)
    backend = "SQLite" if args.db.startswith("sqlite") else "PostgreSQL"
    print(f"\n{args.n:,} e-mail actions, one dispatcher, memory adapter, outbox on {backend}\n")
    print("| limiter | actions/s | µs per action | limiter µs/action | bare reserve µs |")
    print("|---|---:|---:|---:|---:|")
    base = rows[0]["us_per_action"]
    cost = {b["limiter"]: b["us_per_call"] for b in bare}
    for r in rows:
        name = {"none": "none", "inprocess": "in-process"}.get(r["limiter"], r["limiter"])
        over = "" if name == "none" else f"{r['us_per_action'] - base:,.0f}"
        bare_us = f"{cost[name]:,.1f}" if name in cost else ""
        print(f"| {name} | {r['per_s']:,.0f} | {r['us_per_action']:,.0f} | {over} | {bare_us} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"dispatch": rows, "reserve": bare}, indent=2))


if __name__ == "__main__":
    main()
