"""The reference embedding's command line.

python main.py --db sqlite:///erp.db deploy          # arflow's schema + the host's migrations
python main.py --db sqlite:///erp.db story           # a short scripted story, printed
python main.py --db sqlite:///erp.db daily --as-of 2026-12-05   # arflow's day (cron)
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from host.app import App
from host.daily import run_day
from host.deploy import deploy
from host.models import CustomerRow, NotificationRow, SalesOrderRow
from host.services import (
    enter_sales_order,
    post_invoice,
    record_payment,
    register_customer,
)


def story(app: App) -> None:
    """A customer, two orders within the limit, one held for approval, one refused, the
    invoice and the payment that release the customer, an overdue invoice and the day's run
    that suspends the customer again; what arflow decided and what the host's callbacks did."""
    heard = app.reactions.heard

    def tell(what: str) -> None:
        print(what)
        for h in heard:
            print(f"  callback: {h.kind} {h.subject_id}")
        heard.clear()

    with app.transaction() as s:
        register_customer(
            app, s, "C1", "ACME Trading", "ap@acme.example", "50000", "CNY", date(2026, 10, 1)
        )
    tell("C1 registered, credit limit 50,000.00 CNY")

    for order_id, amount, day in (
        ("SO-1", "30000", 2),
        ("SO-2", "16000", 3),
        ("SO-3", "10000", 4),
        ("SO-4", "40000", 5),
    ):
        with app.transaction() as s:
            status = enter_sales_order(app, s, order_id, "C1", amount, date(2026, 10, day))
        tell(f"{order_id} {amount} CNY entered: {status}")

    try:
        with app.transaction() as s:
            post_invoice(
                app,
                s,
                "INV-1",
                "C1",
                "30000",
                date(2026, 10, 5),
                date(2026, 11, 4),
                order_id="SO-1",
            )
            raise RuntimeError("the printer jammed")  # the host's own failure, before commit
    except RuntimeError as exc:
        tell(f"INV-1 not posted ({exc}): rolled back, no callback")

    with app.transaction() as s:
        post_invoice(
            app, s, "INV-1", "C1", "30000", date(2026, 10, 5), date(2026, 11, 4), order_id="SO-1"
        )
        post_invoice(
            app, s, "INV-2", "C1", "16000", date(2026, 10, 6), date(2026, 10, 31), order_id="SO-2"
        )
    tell("INV-1 30,000.00 and INV-2 16,000.00 CNY posted")

    with app.transaction() as s:
        record_payment(app, s, "PAY-1", "C1", "30000", date(2026, 10, 20))
    tell("PAY-1 30,000.00 CNY received")

    for as_of in (date(2026, 11, 20), date(2026, 12, 5), date(2026, 12, 5)):
        result = run_day(app, as_of)
        tell(f"daily run {as_of}: {result.recorded} recorded, {result.skipped} skipped")

    with app.sessions() as s:
        book = app.arflow(s).ledger
        for order in s.query(SalesOrderRow).order_by(SalesOrderRow.id):
            print(f"{order.id}: entered {order.status}, now {book.get('order', order.id).state}")
        for number in ("INV-1", "INV-2"):
            r = book.receivable(number)
            print(f"{number}: {r.state}, open {r.open_balance}")
        customer = s.get_one(CustomerRow, "C1")
        print(f"C1 on hold: {customer.on_hold}")
        for note in s.query(NotificationRow).order_by(NotificationRow.id):
            print(f"  notice: {note.text}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite:///erp.db", help="the host's database URL")
    parser.add_argument(
        "--arflow-schema", default=None, help="PostgreSQL: arflow's own schema, on the search path"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("deploy", help="upgrade arflow's schema, then the host's")
    sub.add_parser("story", help="run the scripted story")
    daily = sub.add_parser("daily", help="run arflow's day (what cron runs)")
    daily.add_argument("--as-of", type=date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    if args.command == "deploy":
        before, after = deploy(args.db, args.arflow_schema)
        print(f"arflow schema {before} -> {after}; host migrations at head")
        return
    app = App(args.db, arflow_schema=args.arflow_schema)
    try:
        if args.command == "story":
            story(app)
        else:
            as_of = args.as_of or date.today()  # the clock at the edge
            result = run_day(app, as_of)
            print(f"{as_of}: {result.recorded} recorded, {len(result.failures)} failed")
    finally:
        app.close()


if __name__ == "__main__":
    main()
