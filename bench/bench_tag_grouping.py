"""Grouping by tag against grouping by customer and by team, on a SQLite book made as
``bench_analytics.py`` makes it, whose customers then get 0..3 tags each (one
``CustomerUpdated`` per customer through the ledger).

A sum grouped by tag is asked grouped by customer and added up per tag in Python, so its
cost is the per-customer sum plus one pass over the customer rows per tag they carry.

    python bench/bench_tag_grouping.py --size 200000 --customers 10000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_analytics
import books

TAGS = ("vip", "gov", "export", "new", "watch")


def median_time(f: Callable[[], Any], n: int) -> float:
    f()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=200_000, help="receivables")
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    from arflow import Analytics, CustomerUpdated, Ledger

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/book.db"
        bench_analytics.build(url, args.size, args.customers, args.seed)
        ledger = Ledger(url)
        rng = random.Random(args.seed)
        at = datetime(2026, 1, 1, tzinfo=UTC)
        ledger.apply_all(
            CustomerUpdated(
                occurred_at=at,
                actor="bench",
                customer_id=books.customer_id(c),
                tags=tuple(rng.sample(TAGS, rng.randrange(4))),
            )
            for c in range(args.customers)
        )
        a = Analytics(ledger.store)
        day = bench_analytics.AS_OF
        print(f"{args.size} receivables, {args.customers} customers with 0..3 of {len(TAGS)} tags")
        for by in ((), ("team",), ("customer",), ("tag",)):
            aging = median_time(lambda by=by: a.aging(day, by=by), args.repeat)
            dso = median_time(lambda by=by: a.dso(day, by=by), args.repeat)
            print(f"by={by!s:14} aging {aging:.3f} s   dso {dso:.3f} s (medians of {args.repeat})")
        ledger.store.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
