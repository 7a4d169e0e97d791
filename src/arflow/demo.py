"""A small sample book: three customers, a contract with milestones, invoices, cash,
a dispute, a promise and an order. ``arflow demo`` loads it and prints the book.

The events have fixed ids, so loading the sample twice changes nothing the second time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from . import events as ev
from .domain import (
    Contact,
    Contract,
    CreditProfile,
    Customer,
    DueRule,
    Milestone,
    PaymentNode,
    Person,
    PersonAddress,
    Project,
)
from .money import Money


def _at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 9, 0, tzinfo=UTC)


def sample_events() -> list[ev.Event]:
    """The sample book's events, in the order they happened."""
    cny = "CNY"
    out: list[ev.Event] = []

    def add(e: ev.Event) -> None:
        out.append(e)

    # the people the internal messages go to (an ERP syncs its staff the same way)
    for pid, name, roles, email, locale in (
        ("zhang.min", "Zhang Min", ("sales_manager",), "zhang.min@example.cn", "zh_CN"),
        ("li.wei", "Li Wei", ("salesperson",), "li.wei@example.cn", "zh_CN"),
        ("amy.chen", "Amy Chen", ("salesperson",), "amy.chen@example.com", "en"),
    ):
        add(
            ev.PersonAdded(
                event_id=f"demo-person-{pid}",
                occurred_at=_at(date(2026, 5, 1)),
                actor="hr-sync",
                person=Person(
                    id=pid,
                    name=name,
                    roles=roles,
                    manager=None if pid == "zhang.min" else "zhang.min",
                    addresses=(PersonAddress(channel="email", address=email),),
                    locale=locale,
                ),
            )
        )
    d = date(2026, 6, 1)
    add(
        ev.CustomerRegistered(
            event_id="demo-c1",
            occurred_at=_at(d),
            actor="import",
            customer=Customer(
                id="C001",
                name="华东精密机械有限公司",
                region="East",
                salesperson="li.wei",
                sales_manager="zhang.min",
                contacts=[
                    Contact(
                        name="王芳",
                        email="wang.fang@example.cn",
                        phone="+8613800000001",
                        locale="zh_CN",
                        timezone="Asia/Shanghai",
                    )
                ],
                credit=CreditProfile(
                    grade="A", credit_limit=Money.of(500_000, cny), payment_terms_days=90
                ),
            ),
        )
    )
    add(
        ev.CustomerRegistered(
            event_id="demo-c2",
            occurred_at=_at(d),
            actor="import",
            customer=Customer(
                id="C002",
                name="Northwind Trading Ltd",
                region="Export",
                salesperson="amy.chen",
                sales_manager="zhang.min",
                contacts=[
                    Contact(
                        name="Tom Baker",
                        email="ap@northwind.example",
                        locale="en",
                        timezone="Europe/London",
                        preferred_channel="email",
                    )
                ],
                credit=CreditProfile(
                    grade="B", credit_limit=Money.of(200_000, cny), payment_terms_days=60
                ),
            ),
        )
    )
    add(
        ev.CustomerRegistered(
            event_id="demo-c3",
            occurred_at=_at(d),
            actor="import",
            customer=Customer(
                id="C003",
                name="西南新能源科技",
                region="West",
                salesperson="li.wei",
                contacts=[
                    Contact(
                        name="陈刚",
                        phone="+8613900000003",
                        preferred_channel="sms",
                        locale="zh_CN",
                        timezone="Asia/Shanghai",
                    )
                ],
                credit=CreditProfile(
                    grade="C",
                    credit_limit=Money.of(50_000, cny),
                    payment_terms_days=30,
                    prepayment_percent=Decimal(30),
                ),
            ),
        )
    )
    add(
        ev.ContractSigned(
            event_id="demo-k1",
            occurred_at=_at(date(2026, 6, 10)),
            actor="sales",
            contract=Contract(
                id="K-2026-001",
                customer_id="C001",
                title="Production line retrofit",
                signed_on=date(2026, 6, 10),
                amount=Money.of(600_000, cny),
                project_id="P-RETRO",
                salesperson="li.wei",
                payment_nodes=[
                    PaymentNode(
                        id="advance", label="30% advance", percent=Decimal(30), due=DueRule(days=15)
                    ),
                    PaymentNode(
                        id="delivery",
                        label="60% on acceptance",
                        percent=Decimal(60),
                        due=DueRule(basis="milestone", milestone_id="M-ACCEPT", days=30),
                    ),
                    PaymentNode(
                        id="retention",
                        label="10% retention",
                        percent=Decimal(10),
                        due=DueRule(days=365),
                    ),
                ],
            ),
            project=Project(id="P-RETRO", customer_id="C001", name="Retrofit line 3"),
            milestones=[
                Milestone(
                    id="M-ACCEPT",
                    contract_id="K-2026-001",
                    name="Site acceptance",
                    planned_date=date(2026, 9, 30),
                ),
            ],
        )
    )
    add(
        ev.InvoiceIssued(
            event_id="demo-i1",
            occurred_at=_at(date(2026, 6, 12)),
            actor="finance",
            number="INV-1001",
            customer_id="C001",
            issue_date=date(2026, 6, 12),
            amount=Money.of(180_000, cny),
            contract_id="K-2026-001",
            payment_node_id="advance",
            product_line="retrofit",
        )
    )
    add(
        ev.PaymentReceived(
            event_id="demo-p1",
            occurred_at=_at(date(2026, 6, 26)),
            actor="bank-feed",
            payment_id="BANK-7781",
            customer_id="C001",
            amount=Money.of(180_000, cny),
            received_on=date(2026, 6, 26),
            reference="INV-1001",
        )
    )
    add(
        ev.MilestoneCompleted(
            event_id="demo-m1",
            occurred_at=_at(date(2026, 10, 8)),
            actor="pm.zhao",
            milestone_id="M-ACCEPT",
            completed_on=date(2026, 10, 8),
        )
    )
    add(
        ev.InvoiceIssued(
            event_id="demo-i2",
            occurred_at=_at(date(2026, 10, 9)),
            actor="finance",
            number="INV-1002",
            customer_id="C001",
            issue_date=date(2026, 10, 9),
            amount=Money.of(360_000, cny),
            contract_id="K-2026-001",
            payment_node_id="delivery",
            product_line="retrofit",
        )
    )
    for n, (num, issued, amount) in enumerate(
        [
            ("INV-2001", date(2026, 8, 3), 45_000),
            ("INV-2002", date(2026, 9, 1), 62_500),
            ("INV-2003", date(2026, 10, 2), 38_200),
        ]
    ):
        add(
            ev.InvoiceIssued(
                event_id=f"demo-i2{n}",
                occurred_at=_at(issued),
                actor="finance",
                number=num,
                customer_id="C002",
                issue_date=issued,
                amount=Money.of(amount, cny),
                product_line="spares",
            )
        )
    add(
        ev.PaymentReceived(
            event_id="demo-p2",
            occurred_at=_at(date(2026, 10, 15)),
            actor="bank-feed",
            payment_id="BANK-7790",
            customer_id="C002",
            amount=Money.of(50_000, cny),
            received_on=date(2026, 10, 15),
        )
    )
    add(
        ev.DisputeOpened(
            event_id="demo-d1",
            occurred_at=_at(date(2026, 10, 20)),
            actor="amy.chen",
            dispute_id="D-01",
            receivable_id="INV-2002",
            amount=Money.of(12_500, cny),
            reason_code="short-delivery",
            opened_on=date(2026, 10, 20),
            note="2 of 10 pallets missing",
        )
    )
    add(
        ev.InvoiceIssued(
            event_id="demo-i3",
            occurred_at=_at(date(2026, 9, 15)),
            actor="finance",
            number="INV-3001",
            customer_id="C003",
            issue_date=date(2026, 9, 15),
            amount=Money.of(41_000, cny),
        )
    )
    add(
        ev.PromiseMade(
            event_id="demo-pr1",
            occurred_at=_at(date(2026, 10, 20)),
            actor="li.wei",
            promise_id="PTP-01",
            customer_id="C003",
            receivable_ids=["INV-3001"],
            amount=Money.of(41_000, cny),
            promised_date=date(2026, 11, 30),
            promised_by="陈刚",
            made_on=date(2026, 10, 20),
        )
    )
    add(
        ev.OrderSubmitted(
            event_id="demo-o1",
            occurred_at=_at(date(2026, 11, 2)),
            actor="amy.chen",
            order_id="SO-501",
            customer_id="C002",
            amount=Money.of(80_000, cny),
            submitted_on=date(2026, 11, 2),
        )
    )
    add(
        ev.OrderApproved(
            event_id="demo-o1a",
            occurred_at=_at(date(2026, 11, 3)),
            actor="zhang.min",
            order_id="SO-501",
            approver="zhang.min",
        )
    )
    return out
