"""Grouped figures on a cached SQLite analytics book (``bench_analytics.py``'s), as they are
and, for the grouping by salesperson, with a covering index of its own: the index is
created in a transaction that is rolled back, so the book is left as it was.

    python bench/bench_grouped_index.py /tmp/arflow-bench/analytics-n1000000-c10000-s7.db
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_analytics

AS_OF = bench_analytics.AS_OF
AGING_BY_SALESPERSON = (
    "SELECT currency, salesperson, CASE WHEN due_date >= ? THEN 0 WHEN due_date >= ? THEN 1 "
    "WHEN due_date >= ? THEN 2 WHEN due_date >= ? THEN 3 ELSE 4 END AS k, sum(amount), "
    "sum(open_delta) FROM ar_movement WHERE on_date <= ? GROUP BY currency, salesperson, k"
)
PARAMS = (
    AS_OF.isoformat(),
    *(str(AS_OF - timedelta(days=d)) for d in (30, 60, 90)),
    AS_OF.isoformat(),
)


def median_time(f: Callable[[], Any], n: int = 2) -> float:
    f()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    from arflow import Analytics
    from arflow.store.sql import SqlStore

    store = SqlStore(f"sqlite:///{sys.argv[1]}")
    a = Analytics(store)
    cases: dict[str, Callable[[], Any]] = {
        "aging by salesperson": lambda: a.aging(AS_OF, by=("salesperson",)),
        "aging by customer": lambda: a.aging(AS_OF, by=("customer",)),
        "customers ranked by overdue": lambda: a.ranking("overdue", "customer", AS_OF),
        "salespeople ranked by DSO": lambda: a.ranking("dso", "salesperson", AS_OF),
        "teams ranked by cash collected": lambda: a.ranking("cash_collected", "team", AS_OF),
    }
    for name, f in cases.items():
        print(f"as is: {name} {median_time(f):.2f} s", flush=True)
    conn = store.engine.raw_connection()
    cur = conn.cursor()
    plan = "EXPLAIN QUERY PLAN " + AGING_BY_SALESPERSON
    print("plan as is:", cur.execute(plan, PARAMS).fetchall())
    sql_alone = median_time(lambda: cur.execute(AGING_BY_SALESPERSON, PARAMS).fetchall())
    print(f"as is: aging by salesperson, the SQL alone {sql_alone:.2f} s", flush=True)
    cur.execute("BEGIN")
    t0 = time.perf_counter()
    cur.execute(
        "CREATE INDEX ix_tmp_salesperson ON ar_movement "
        "(salesperson, currency, due_date, on_date, kind, amount, open_delta)"
    )
    print(f"creating the index: {time.perf_counter() - t0:.1f} s")
    print("plan with the index:", cur.execute(plan, PARAMS).fetchall())
    indexed = median_time(lambda: cur.execute(AGING_BY_SALESPERSON, PARAMS).fetchall())
    print(f"with the index: aging by salesperson, the SQL alone {indexed:.2f} s", flush=True)
    cur.execute("ROLLBACK")
    conn.close()
    store.close()


if __name__ == "__main__":
    main()
