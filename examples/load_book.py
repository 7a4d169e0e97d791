"""Load a small book and print each customer's balance, exposure and credit available.

Run: python examples/load_book.py [STORE_URL]   (default: an in-memory book)
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime

from arflow import (
    CreditProfile,
    Customer,
    CustomerRegistered,
    InvoiceIssued,
    Ledger,
    Money,
    OrderApproved,
    OrderSubmitted,
    PaymentReceived,
)


def main(url: str = "memory://") -> Ledger:
    book = Ledger(url)
    t = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    book.apply_all(
        [
            CustomerRegistered(
                event_id="ex-c1",
                occurred_at=t,
                actor="erp",
                customer=Customer(
                    id="C1",
                    name="上海远航物流",
                    credit=CreditProfile(credit_limit=Money.of(100_000, "CNY")),
                ),
            ),
            InvoiceIssued(
                event_id="ex-i1",
                occurred_at=t,
                actor="erp",
                number="INV-1",
                customer_id="C1",
                issue_date=date(2026, 9, 1),
                amount=Money.of("48000.00", "CNY"),
            ),
            InvoiceIssued(
                event_id="ex-i2",
                occurred_at=t,
                actor="erp",
                number="INV-2",
                customer_id="C1",
                issue_date=date(2026, 10, 1),
                amount=Money.of("30000.00", "CNY"),
            ),
            PaymentReceived(
                event_id="ex-p1",
                occurred_at=t,
                actor="bank",
                payment_id="B-1",
                customer_id="C1",
                amount=Money.of("50000.00", "CNY"),
                received_on=date(2026, 11, 1),
            ),
            OrderSubmitted(
                event_id="ex-o1",
                occurred_at=t,
                actor="sales",
                order_id="SO-1",
                customer_id="C1",
                amount=Money.of(25_000, "CNY"),
                submitted_on=date(2026, 11, 1),
            ),
            OrderApproved(
                event_id="ex-o1a",
                occurred_at=t,
                actor="sales",
                order_id="SO-1",
                approver="credit.manager",
            ),
        ]
    )
    for r in book.open_items("C1"):
        print(f"{r.id}: due {r.due_date}, {r.state}, open {r.open_balance}")
    print("balance:", book.balance("C1")["CNY"])
    print("exposure:", book.exposure("C1")["CNY"])
    print("credit available:", book.credit_available("C1"))
    return book


if __name__ == "__main__":
    main(*sys.argv[1:2])
