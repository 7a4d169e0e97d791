"""The host's business actions. Each writes the host's own row and hands arflow the
matching event on the same ``Session``, inside the caller's transaction (``App.transaction``):
both commit together or neither does. Event ids come from the host's own keys, so a retried
request is applied once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from sqlalchemy.orm import Session

from arflow import (
    Contact,
    CreditProfile,
    Customer,
    CustomerRegistered,
    InvoiceIssued,
    Money,
    OrderSubmitted,
    PaymentReceived,
)

from .app import App
from .models import CustomerRow, InvoiceRow, PaymentRow, SalesOrderRow

ACTOR = "host-erp"


def _at(day: date) -> datetime:
    """When a business action of ``day`` happened (the host's clock would give it)."""
    return datetime.combine(day, time(9), tzinfo=UTC)


def register_customer(
    app: App,
    session: Session,
    customer_id: str,
    name: str,
    email: str,
    credit_limit: str,
    currency: str,
    on: date,
) -> None:
    """A new customer: the host's row, and arflow's customer with its credit limit."""
    session.add(
        CustomerRow(
            id=customer_id,
            name=name,
            credit_limit=Decimal(credit_limit),
            currency=currency,
            on_hold=False,
        )
    )
    app.arflow(session).ledger.apply(
        CustomerRegistered(
            event_id=f"erp:customer:{customer_id}",
            occurred_at=_at(on),
            actor=ACTOR,
            customer=Customer(
                id=customer_id,
                name=name,
                salesperson="li.wei",
                contacts=[Contact(name="Accounts payable", email=email)],
                credit=CreditProfile(grade="B", credit_limit=Money.of(credit_limit, currency)),
            ),
        )
    )


def enter_sales_order(
    app: App, session: Session, order_id: str, customer_id: str, amount: str, on: date
) -> str:
    """A sales order, checked by arflow's credit rules as it is entered (``Engine.handle``:
    the decision exists when the call returns); the host keeps arflow's answer on its row.
    Returns it: approved, pending_approval or rejected."""
    customer = session.get_one(CustomerRow, customer_id)
    ar = app.arflow(session)
    ar.handle(
        OrderSubmitted(
            event_id=f"erp:order:{order_id}",
            occurred_at=_at(on),
            actor=ACTOR,
            order_id=order_id,
            customer_id=customer_id,
            amount=Money.of(amount, customer.currency),
            submitted_on=on,
        )
    )
    status = str(ar.ledger.get("order", order_id).state)
    session.add(
        SalesOrderRow(
            id=order_id,
            customer_id=customer_id,
            amount=Decimal(amount),
            entered_on=on,
            status=status,
        )
    )
    return status


def post_invoice(
    app: App,
    session: Session,
    number: str,
    customer_id: str,
    amount: str,
    issued: date,
    due: date,
    order_id: str | None = None,
) -> None:
    """An invoice: the host's row and arflow's receivable (``Ledger.apply``: a fact the
    rules need no answer to now; the daily run reads it)."""
    customer = session.get_one(CustomerRow, customer_id)
    session.add(
        InvoiceRow(
            number=number,
            customer_id=customer_id,
            order_id=order_id,
            amount=Decimal(amount),
            issue_date=issued,
            due_date=due,
        )
    )
    app.arflow(session).ledger.apply(
        InvoiceIssued(
            event_id=f"erp:invoice:{number}",
            occurred_at=_at(issued),
            actor=ACTOR,
            number=number,
            customer_id=customer_id,
            order_id=order_id,
            issue_date=issued,
            due_date=due,
            amount=Money.of(amount, customer.currency),
        )
    )


def record_payment(
    app: App, session: Session, payment_id: str, customer_id: str, amount: str, on: date
) -> None:
    """Cash received: the host's row, and arflow applies it to the oldest open invoices.
    ``Engine.handle``, so that a lock the payment clears is lifted now, not at the next run."""
    customer = session.get_one(CustomerRow, customer_id)
    session.add(
        PaymentRow(id=payment_id, customer_id=customer_id, amount=Decimal(amount), received_on=on)
    )
    app.arflow(session).handle(
        PaymentReceived(
            event_id=f"erp:payment:{payment_id}",
            occurred_at=_at(on),
            actor=ACTOR,
            payment_id=payment_id,
            customer_id=customer_id,
            amount=Money.of(amount, customer.currency),
            received_on=on,
        )
    )
