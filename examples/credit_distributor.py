"""A distributor's credit control, as seed 004 asks for it: orders are checked against the
customer's available credit when sales enters them; an order over the limit goes to a
higher level for approval, one within it goes straight on to finance; a D-grade customer
pays before delivery, and its prepayment is applied to the invoice.

Run it: ``python examples/credit_distributor.py`` (an in-memory book; nothing to set up).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from arflow import (
    Contact,
    CreditProfile,
    Customer,
    CustomerRegistered,
    Engine,
    InvoiceIssued,
    Ledger,
    Money,
    NotAuthorized,
    OrderApproved,
    OrderSubmitted,
    PaymentReceived,
    default_pack_path,
)

DAY = date(2026, 3, 5)
AT = datetime(2026, 3, 5, 10, tzinfo=UTC)
META = {"occurred_at": AT, "actor": "erp"}


def cny(amount: int) -> Money:
    return Money.of(amount, "CNY")


def customer(cid: str, grade: str, limit: int, prepayment: int = 0) -> CustomerRegistered:
    return CustomerRegistered(
        event_id=f"reg-{cid}",
        **META,
        customer=Customer(
            id=cid,
            name=f"Dealer {cid}",
            salesperson="li.wei",
            sales_manager="zhang.min",
            contacts=[Contact(name="AP", email=f"ap@{cid.lower()}.example")],
            credit=CreditProfile(
                grade=grade, credit_limit=cny(limit), prepayment_percent=prepayment
            ),
        ),
    )


def order(engine: Engine, order_id: str, cid: str, amount: int) -> str:
    """Submit an order as sales enters it; the engine checks it at once."""
    engine.handle(
        OrderSubmitted(
            event_id=f"sub-{order_id}",
            **META,
            order_id=order_id,
            customer_id=cid,
            amount=cny(amount),
            submitted_on=DAY,
        )
    )
    state = str(engine.ledger.get("order", order_id).state)
    print(f"{order_id} ({cid}, {amount:,} CNY): {state}")
    return state


def main() -> dict[str, str]:
    ledger = Ledger("memory://")
    engine = Engine(ledger, default_pack_path())
    for event in (
        customer("A1", "A", 500_000),
        customer("B1", "B", 100_000),
        customer("C1", "C", 50_000),
        customer("D1", "D", 30_000, prepayment=100),
    ):
        engine.handle(event)
    # B1 owes 95,000 of its 100,000: at 90% of the limit, orders need a manager
    engine.handle(
        InvoiceIssued(
            event_id="inv-B1",
            **META,
            number="INV-B1",
            customer_id="B1",
            issue_date=DAY - timedelta(10),
            due_date=DAY + timedelta(20),
            amount=cny(95_000),
        )
    )
    # C1 has an invoice 40 days overdue: suspended, its orders are refused
    engine.handle(
        InvoiceIssued(
            event_id="inv-C1",
            **META,
            number="INV-C1",
            customer_id="C1",
            issue_date=DAY - timedelta(70),
            due_date=DAY - timedelta(40),
            amount=cny(8_000),
        )
    )
    # D1 pays cash before delivery
    engine.handle(
        PaymentReceived(
            event_id="pay-D1",
            **META,
            payment_id="PAY-D1",
            customer_id="D1",
            amount=cny(20_000),
            received_on=DAY,
        )
    )

    states = {
        "A1": order(engine, "SO-A1", "A1", 50_000),  # within limit: on to finance
        "B1": order(engine, "SO-B1", "B1", 4_000),  # over 90% of the limit: approval
        "C1": order(engine, "SO-C1", "C1", 1_000),  # suspended: refused
        "D1": order(engine, "SO-D1", "D1", 20_000),  # prepaid: on to finance
    }
    (*_, refusal) = engine.ledger.store.audit_trail("order", "SO-C1")
    print(f"  SO-C1 refused by {refusal.actor}: {refusal.reason}")

    try:  # only a holder of the tier's role may approve
        engine.handle(OrderApproved(event_id="ok-1", **META, order_id="SO-B1", approver="intern"))
    except NotAuthorized as exc:
        print(f"  intern: {exc}")
    engine.handle(OrderApproved(event_id="ok-2", **META, order_id="SO-B1", approver="zhang.min"))
    states["B1 after approval"] = str(engine.ledger.get("order", "SO-B1").state)
    print(f"SO-B1 after the sales manager's approval: {states['B1 after approval']}")

    # the goods ship and D1's invoice is issued: the prepayment pays it
    engine.handle(
        InvoiceIssued(
            event_id="inv-D1",
            **META,
            number="INV-D1",
            customer_id="D1",
            issue_date=DAY,
            due_date=DAY,
            amount=cny(20_000),
        )
    )
    invoice = engine.ledger.receivable("INV-D1")
    states["INV-D1"] = str(invoice.state)
    print(f"INV-D1: {invoice.state}, paid {invoice.paid}, open {invoice.open_balance}")
    return states


if __name__ == "__main__":
    main()
