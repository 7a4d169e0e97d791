"""The host's own tables, with its own Alembic migrations (../migrations). arflow's tables
live in the same database and are not declared here: arflow creates and upgrades them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The host's models; ``Base.metadata`` is Alembic's ``target_metadata``."""


class CustomerRow(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    credit_limit: Mapped[Decimal] = mapped_column(sa.Numeric(18, 2))
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: set and cleared by a callback when arflow places or lifts an order lock
    on_hold: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class SalesOrderRow(Base):
    __tablename__ = "sales_orders"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 2))
    entered_on: Mapped[date] = mapped_column(sa.Date)
    #: arflow's decision at entry: approved, pending_approval or rejected
    status: Mapped[str] = mapped_column(sa.String(20))


class InvoiceRow(Base):
    __tablename__ = "invoices"

    number: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"))
    order_id: Mapped[str | None] = mapped_column(sa.ForeignKey("sales_orders.id"))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 2))
    issue_date: Mapped[date] = mapped_column(sa.Date)
    due_date: Mapped[date] = mapped_column(sa.Date)


class PaymentRow(Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 2))
    received_on: Mapped[date] = mapped_column(sa.Date)


class NotificationRow(Base):
    """What the host's screens show of arflow's decisions, written by its callbacks."""

    __tablename__ = "notifications"
    __table_args__ = (sa.Index("ix_notifications_key", "key", unique=True),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    #: the notice's kind, event id and subject: a notice told twice is written once
    key: Mapped[str] = mapped_column(sa.String(300))
    kind: Mapped[str] = mapped_column(sa.String(40))
    customer_id: Mapped[str | None] = mapped_column(sa.String(40))
    text: Mapped[str] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
