"""The small book of ``docs/analytics_views.md``: every number the views and the forecast
show for it is computed by hand there, and checked by the tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

from arflow import (
    Contract,
    ContractSigned,
    DueRule,
    Milestone,
    MilestoneCompleted,
    Money,
    PaymentNode,
    Project,
    Store,
)
from arflow.testing import BookBuilder

AS_OF = date(2026, 3, 16)  # a Monday


def cny(v: int | str) -> Money:
    return Money.of(v, "CNY")


def usd(v: int | str) -> Money:
    return Money.of(v, "USD")


def build(store: Store) -> BookBuilder:
    b = BookBuilder(store)
    b.customer("C1", name="Acme")
    b.customer("C2", name="Beta")
    b.customer("C3", name="Gamma")
    # history: C1 paid 10 and 4 days late (mean 7), C3 2 days early (-2); pooled 12/3 = 4
    b.invoice("H1", "C1", 600, issued="2025-12-11", due="2026-01-10")
    b.invoice("H2", "C1", 400, issued="2025-12-21", due="2026-01-20")
    b.invoice("H3", "C3", usd(500), issued="2026-01-02", due="2026-02-01")
    b.pay("PAY1", "C1", 600, on="2026-01-20", to=[("H1", 600)])
    b.pay("PAY2", "C1", 400, on="2026-01-24", to=[("H2", 400)])
    b.pay("PAY3", "C3", usd(500), on="2026-01-30", to=[("H3", usd(500))])
    # the contract: 20% on signing, 500 thirty days after acceptance, the rest at the end
    b.apply(
        ContractSigned(
            event_id="sign-K1",
            occurred_at=datetime(2026, 2, 10, 9, tzinfo=UTC),
            actor="test",
            contract=Contract(
                id="K1",
                customer_id="C1",
                title="Line 3 upgrade",
                signed_on=date(2026, 2, 10),
                amount=cny(5000),
                project_id="PRJ1",
                payment_nodes=(
                    PaymentNode(id="N1", label="advance", percent=20),
                    PaymentNode(
                        id="N2",
                        label="acceptance",
                        amount=cny(500),
                        due=DueRule(basis="milestone", milestone_id="M1", days=30),
                    ),
                    PaymentNode(id="N3", label="final", amount=cny(3500)),
                ),
            ),
            project=Project(id="PRJ1", customer_id="C1", name="Plant 2"),
            milestones=(
                Milestone(
                    id="M1", contract_id="K1", name="acceptance", planned_date=date(2026, 2, 28)
                ),
            ),
        )
    )
    b.invoice("A1", "C1", 1000, issued="2026-02-18", contract_id="K1", payment_node_id="N1")
    b.apply(
        MilestoneCompleted(
            event_id="done-M1",
            occurred_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
            actor="test",
            milestone_id="M1",
            completed_on=date(2026, 3, 2),
        )
    )
    b.invoice("A2", "C1", 500, issued="2026-03-02", contract_id="K1", payment_node_id="N2")
    b.pay("PAY4", "C1", 100, on="2026-03-02", to=[("A1", 100)])
    b.promise("P1", "C1", ["A2"], 300, by="2026-03-18", on="2026-03-10")
    # C2: one far overdue, one overdue with a broken promise, one later, one disputed
    b.invoice("B0", "C2", 300, issued="2025-12-01", due="2025-12-31")
    b.invoice("B1", "C2", 800, issued="2026-02-07", due="2026-03-09")
    b.invoice("B2", "C2", 2000, issued="2026-03-01", due="2026-07-01")
    b.invoice("B3", "C2", 400, issued="2026-03-01", due="2026-03-30")
    b.promise("P2", "C2", ["B1"], 800, by="2026-03-12", on="2026-03-10")
    b.break_promise("P2", on="2026-03-15")
    b.dispute("D1", "B3", 150, on="2026-03-12")
    # C3 in dollars
    b.invoice("U1", "C3", usd(1000), issued="2026-02-23", due="2026-03-25")
    return b
