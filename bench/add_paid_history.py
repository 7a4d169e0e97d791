"""Give a cached ``bench_run.py`` book a history of payments: ``--per-customer`` payments
for each customer, each applied in full to one of its receivables, received ten days before
that receivable's due date (on time: no late-payment pattern fires), none of it unapplied.

What a book some years old holds: far more payments applied long ago than cash waiting to be
applied. The rows are written straight into the SQLite file, as this arflow stores them
(``json_of``, the state its ``KINDS`` derive: ``applied``); the receivables are left as they
are (a read benchmark: the day's run reads the payments, it does not reconcile them).

    python bench/add_paid_history.py BOOK.db --per-customer 10
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from datetime import date, timedelta
from decimal import Decimal


def main() -> None:
    from arflow.domain import Allocation, Payment
    from arflow.money import Money
    from arflow.store.base import KINDS, json_of

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("db")
    p.add_argument("--per-customer", type=int, default=10)
    args = p.parse_args()
    t0 = time.perf_counter()
    conn = sqlite3.connect(args.db)
    (already,) = conn.execute("SELECT count(*) FROM ar_payment").fetchone()
    if already:
        raise SystemExit(f"{args.db} holds {already} payments already")
    taken: dict[str, int] = {}
    rows = []
    state = KINDS["payment"].state
    query = "SELECT id, customer_id, due_date FROM ar_receivable ORDER BY id"
    for rid, cid, due in conn.execute(query):
        n = taken.get(cid, 0)
        if n >= args.per_customer:
            continue
        taken[cid] = n + 1
        amount = Money.of(Decimal(1000 + 37 * n), "CNY")
        pay = Payment(
            id=f"PH-{rid}",
            customer_id=cid,
            amount=amount,
            received_on=date.fromisoformat(due) - timedelta(10),
            reference=f"bank {rid}",
            allocations=(Allocation(payment_id=f"PH-{rid}", receivable_id=rid, amount=amount),),
            unapplied=Money.of(0, "CNY"),
        )
        rows.append((pay.id, cid, state(pay), None, json_of(pay)))
    with conn:
        conn.executemany(
            "INSERT INTO ar_payment (id, customer_id, state, due_date, data) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(
        f"{len(rows)} payments for {len(taken)} customers in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
