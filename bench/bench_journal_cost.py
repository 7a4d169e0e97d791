"""What writing 100,000 rows of the movement journal costs SQLite, with its indexes and
without (random due dates, as the spread book's; ``sqlite3``'s ``executemany`` in two
50,000-row transactions, WAL):

    python bench/bench_journal_cost.py
"""

from __future__ import annotations

import random
import sqlite3
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "src"))

import sqlalchemy as sa

from arflow.store.sql._schema import MOVEMENTS


def rows(n: int) -> list[tuple[object, ...]]:
    rnd = random.Random(7)
    out = []
    for i in range(n):
        due = date(2025, 9, 17) + timedelta(rnd.randint(-274, 273))
        issued = (due - timedelta(30)).isoformat()
        out.append(
            (f"INV{i:08d}", f"C{i % 10000:06d}", "CNY", "invoiced", issued,
             rnd.randint(1, 10**7), 1, issued, due.isoformat(), f"S{i % 50}", "R", "P",
             None, None)
        )  # fmt: skip
    return out


def main() -> None:
    data = rows(100_000)
    cols = [c.name for c in MOVEMENTS.columns if c.name != "seq"]
    sql = f"INSERT INTO ar_movement ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    cases = [
        ("the three indexes", None),
        ("no index", set()),
        ("the due and kind indexes", {"ix_ar_movement_due", "ix_ar_movement_kind"}),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for label, keep in cases * 2:
            path = Path(tmp) / f"journal-{time.monotonic_ns()}.db"
            engine = sa.create_engine(f"sqlite:///{path}")
            with engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                MOVEMENTS.create(conn)
                for ix in MOVEMENTS.indexes:
                    if keep is not None and ix.name not in keep:
                        conn.exec_driver_sql(f"DROP INDEX {ix.name}")
            engine.dispose()
            con = sqlite3.connect(path)
            t0 = time.perf_counter()
            for k in range(0, len(data), 50_000):
                con.executemany(sql, data[k : k + 50_000])
                con.commit()
            print(f"{label}: {time.perf_counter() - t0:.2f} s per 100,000 rows", flush=True)
            con.close()


if __name__ == "__main__":
    main()
