"""The render context: what a template sees, built from the book as plain records by
:func:`build_context`, and the complete sample lint renders against."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..domain import (
    Contact,
    Contract,
    CreditProfile,
    Customer,
    DueRule,
    Milestone,
    Order,
    PaymentNode,
    Receivable,
)
from ..money import Money
from ._record import _Record

# -- the context ---------------------------------------------------------------------------------------


def build_context(
    customer: Customer,
    receivables: Iterable[Receivable] = (),
    *,
    as_of: date,
    company_name: str,
    contact: Contact | None = None,
    contract: Contract | None = None,
    node: PaymentNode | None = None,
    milestone: Milestone | None = None,
    amount: Money | None = None,
    order: Order | None = None,
    exposure_ratio: Decimal | None = None,
    approval: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables a template sees, as plain records (never the domain objects, whose
    methods a template has no business calling).

    ``customer``, ``invoices``, ``total``, ``totals``, ``company`` and ``as_of`` are always
    there; ``contact`` when the customer has one (or one is given); ``contract``, ``node``,
    ``milestone``, ``amount``, ``order``, ``exposure_percent`` and ``approval`` only when
    given, so a template that uses one where it does not belong fails instead of printing a
    blank. ``approval`` (a request to approvers) has ``rule``, ``reason``, ``approvers``
    (roles), ``asked`` (what is asked, as text) and ``allowed`` (what applies without an
    approval), and for terms ``grade``, ``asked_days`` (the longest asked) and
    ``allowed_days``, for a limit raise ``current_limit`` and ``proposed_limit``: each
    None when the request does not say.
    """
    invoices = [
        _Record(
            "invoice",
            {
                "number": r.id,
                "issue_date": r.issue_date,
                "due_date": r.due_date,
                "amount": r.amount,
                "balance": r.open_balance,
                "disputed": r.disputed_amount,
                "currency": r.currency,
                "days_past_due": (as_of - r.due_date).days,
            },
        )
        for r in sorted(receivables, key=lambda r: (r.due_date, r.id))
    ]
    sums: dict[str, Money] = {}
    for inv in invoices:
        bal: Money = inv["balance"]
        sums[bal.currency] = sums[bal.currency] + bal if bal.currency in sums else bal
    totals = [sums[c] for c in sorted(sums)]
    credit: CreditProfile = customer.credit
    ctx: dict[str, Any] = {
        "customer": _Record(
            "customer",
            {
                "id": customer.id,
                "name": customer.name,
                "region": customer.region,
                "salesperson": customer.salesperson,
                "sales_manager": customer.sales_manager,
                "grade": credit.grade,
                "credit_limit": credit.credit_limit,
                "payment_terms_days": credit.payment_terms_days,
                "tags": tuple(customer.tags),
            },
        ),
        "invoices": invoices,
        "total": None if not totals else totals[0] if len(totals) == 1 else totals,
        "totals": totals,
        "company": _Record("company", {"name": company_name}),
        "as_of": as_of,
    }
    person = contact or (customer.contacts[0] if customer.contacts else None)
    if person is not None:
        ctx["contact"] = _Record(
            "contact",
            {
                "name": person.name,
                "email": person.email,
                "phone": person.phone,
                "locale": person.locale,
                "timezone": person.timezone,
                "role": person.role,
            },
        )
    if contract is not None:
        ctx["contract"] = _Record(
            "contract",
            {
                "id": contract.id,
                "title": contract.title,
                "signed_on": contract.signed_on,
                "amount": contract.amount,
                "project_id": contract.project_id,
                "salesperson": contract.salesperson,
            },
        )
    if node is not None:
        node_amount = contract.node_amount(node) if contract is not None else node.amount
        ctx["node"] = _Record(
            "node",
            {"id": node.id, "label": node.label, "amount": node_amount, "percent": node.percent},
        )
        if amount is None:
            amount = node_amount
    if milestone is not None:
        ctx["milestone"] = _Record(
            "milestone",
            {
                "id": milestone.id,
                "name": milestone.name,
                "planned_date": milestone.planned_date,
                "actual_date": milestone.actual_date,
                "status": milestone.status,
            },
        )
    if amount is not None:
        ctx["amount"] = amount
    if order is not None:
        ctx["order"] = _Record(
            "order",
            {
                "id": order.id,
                "amount": order.amount,
                "submitted_on": order.submitted_on,
                "order_type": order.order_type,
                "contract_id": order.contract_id,
                "state": order.state.value,
            },
        )
    if approval is not None:
        ctx["approval"] = _Record(
            "approval",
            {
                "rule": approval.get("rule"),
                "reason": approval.get("reason"),
                "approvers": tuple(approval.get("approvers") or ()),
                "asked": approval.get("asked"),
                "allowed": approval.get("allowed"),
                "grade": approval.get("grade"),
                "asked_days": approval.get("asked_days"),
                "allowed_days": approval.get("allowed_days"),
                "current_limit": approval.get("current_limit"),
                "proposed_limit": approval.get("proposed_limit"),
            },
        )
    if exposure_ratio is not None:
        ctx["exposure_percent"] = (Decimal(exposure_ratio) * 100).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP
        )
    return ctx


def sample_context(*, mixed_currencies: bool = False) -> dict[str, Any]:
    """A complete, realistic context for lint and previews, built by :func:`build_context`
    from real domain objects so that lint and sending cannot disagree on the variables."""
    as_of = date(2024, 6, 17)
    cny = "CNY"

    def receivable(number: str, due: date, amount: str, paid: str, cur: str = cny) -> Receivable:
        total, got = Money.of(amount, cur), Money.of(paid, cur)
        zero = Money.zero(cur)
        return Receivable(
            id=number,
            customer_id="C-1001",
            contract_id="CT-2024-007",
            issue_date=due - timedelta(30),
            due_date=due,
            amount=total,
            paid=got,
            credited=zero,
            written_off=zero,
            disputed_amount=zero,
            open_balance=total - got,
            salesperson="li.na@example.com",
        )

    customer = Customer(
        id="C-1001",
        name="Acme Trading (Shanghai) Co., Ltd.",
        region="East",
        salesperson="li.na@example.com",
        sales_manager="zhao.lei@example.com",
        contacts=(
            Contact(
                name="Wang Fang",
                email="wang.fang@acme.example.com",
                phone="+86 138 0000 0000",
                locale="zh_CN",
                timezone="Asia/Shanghai",
                role="accounts payable",
            ),
        ),
        credit=CreditProfile(grade="B", credit_limit=Money.of("200000", cny)),
    )
    receivables = [
        receivable("INV-2024-0107", date(2024, 6, 1), "12500.00", "0"),
        receivable("INV-2024-0131", date(2024, 6, 10), "8000.00", "3000.00"),
    ]
    if mixed_currencies:
        receivables.append(receivable("INV-2024-0140", date(2024, 6, 12), "1800.00", "0", "USD"))
    contract = Contract(
        id="CT-2024-007",
        customer_id="C-1001",
        title="Warehouse automation, phase 1",
        signed_on=date(2024, 1, 15),
        amount=Money.of("480000", cny),
        salesperson="li.na@example.com",
        payment_nodes=(
            PaymentNode(
                id="acceptance",
                label="Site acceptance",
                percent=Decimal(30),
                due=DueRule(days=30),
            ),
        ),
    )
    return build_context(
        customer,
        receivables,
        as_of=as_of,
        company_name="Example Industrial Co., Ltd.",
        contract=contract,
        node=contract.payment_nodes[0],
        milestone=Milestone(
            id="acceptance",
            contract_id="CT-2024-007",
            name="Site acceptance",
            planned_date=date(2024, 6, 10),
            actual_date=date(2024, 6, 14),
            status="done",
        ),
        order=Order(
            id="SO-2024-0310",
            customer_id="C-1001",
            amount=Money.of("65000", cny),
            submitted_on=as_of,
            order_type="standard",
            contract_id="CT-2024-007",
        ),
        exposure_ratio=Decimal("0.925"),
        approval={
            "rule": "contract-terms",
            "reason": "contract CT-2024-007: payment terms longer than grade B allows",
            "approvers": ("finance_manager",),
            "asked": "payment terms of 120 days",
            "allowed": "60 days (grade B)",
            "grade": "B",
            "asked_days": 120,
            "allowed_days": 60,
            "current_limit": "200,000.00 CNY",
            "proposed_limit": "240,000.00 CNY",
        },
    )
