"""The bulk import of ``bench_run.py`` (its customers and spread invoices through
``Ledger.apply_all``, SQLite) with the arflow and the ``bench_run.py`` of a given source
tree, so that two commits can be run alternately in fresh processes:

    git archive 7019f1f src bench | tar -x -C /tmp/old
    python bench/bench_import_tree.py /tmp/old 100000 10000 /tmp/imp.db
    python bench/bench_import_tree.py . 100000 10000 /tmp/imp.db
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    tree, size, customers, db = (
        str(Path(sys.argv[1]).resolve()),
        int(sys.argv[2]),
        int(sys.argv[3]),
        sys.argv[4],
    )
    sys.path[:0] = [f"{tree}/src", f"{tree}/bench"]
    import bench_run

    import arflow

    if not str(Path(arflow.__file__).resolve()).startswith(tree):
        raise SystemExit(f"arflow came from {arflow.__file__}, not {tree}")
    args = argparse.Namespace(db=db, customers=customers, size=size, core=size, seed=7)
    bench_run.remove_db(Path(db))
    got = bench_run.build_book(args)
    Path(db).unlink(missing_ok=True)
    print(json.dumps({"tree": tree, **got}))


if __name__ == "__main__":
    main()
