"""arflow's day, run on a schedule: dunning, overdue locks, reviews, alerts fall due with
the passing of time, not with a business action.

It runs in a transaction of its own, on a book opened by URL, not inside a host
transaction: it is no business action of the host's, it may record many decisions and
would hold arflow's writer lock (and on SQLite the database's one write lock) for as long as
the host's transaction stays open; a crash halfway loses nothing (a run records each
decision under its key, so running the day again records only what is missing); and a run
on several processes (``Engine(..., workers=4)``) cannot share one transaction anyway.

cron, at 06:30 every day, deciding that day::

    30 6 * * *  cd /srv/erp && python main.py --db "$ERP_DB" daily

or, in a long-running host process with APScheduler (not a dependency of this example)::

    from apscheduler.schedulers.background import BackgroundScheduler
    scheduler = BackgroundScheduler(timezone="Asia/Shanghai")
    scheduler.add_job(lambda: run_day(app, date.today()), "cron", hour=6, minute=30,
                      max_instances=1, coalesce=True)
    scheduler.start()
"""

from __future__ import annotations

from datetime import date

from arflow import Engine, Ledger, RunResult, SqlStore

from .app import App
from .reactions import KINDS


def run_day(app: App, as_of: date) -> RunResult:
    """Decide ``as_of`` and queue its messages in arflow's outbox, in one transaction of its
    own; the host's reactions hear of the locks it placed once it committed."""
    # the deployment upgraded the schema; the same book the host's sessions find
    store = SqlStore(app.url, schema=app.arflow_schema, upgrade=False)
    try:
        ledger = Ledger(store)
        ledger.subscribe(app.reactions, *KINDS)
        return Engine(ledger, app.pack).run(as_of)
    finally:
        store.close()
