"""The facts a rule can read, and the plain code that derives them from the book.

Every fact has a name, a type and a description in one catalogue per subject (receivable,
customer, order). The catalogue is what conditions are type-checked against at load time
and what ``docs/rules.md`` lists; the functions below compute the values as of a date.
Customer facts appear under ``customer.`` in receivable and order rules.

Money facts are plain numbers in one currency: a receivable's in its own currency; a
customer's in its credit currency (the credit limit's, else the engine's base currency),
leaving items in other currencies out of the customer's sums.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from ..domain import (
    CreditNote,
    Customer,
    Order,
    Payment,
    PromiseStatus,
    PromiseToPay,
    Receivable,
    Task,
)
from ..lifecycle import EXPOSURE_ORDER_STATES
from ..summary import CLOSED_STATES, ReceivableSummary, summary_of
from .expr import Type

T = Type
ZERO = Decimal(0)


class BusinessDays(Protocol):
    def business_days_between(self, a: date, b: date) -> int: ...


@dataclass(frozen=True)
class FactSpec:
    type: Type
    description: str


def _spec(entries: Iterable[tuple[str, Type, str]]) -> dict[str, FactSpec]:
    return {name: FactSpec(t, desc) for name, t, desc in entries}


RECEIVABLE_FACTS = _spec(
    [
        ("as_of", T.DATE, "the day the rules are evaluated for"),
        ("number", T.STRING, "the invoice number"),
        ("currency", T.STRING, "ISO currency of the invoice"),
        ("amount", T.NUMBER, "invoiced amount"),
        ("balance", T.NUMBER, "open balance"),
        ("undisputed_balance", T.NUMBER, "open balance less the disputed part: what can be dunned"),
        ("disputed_amount", T.NUMBER, "the part under open dispute"),
        ("paid", T.NUMBER, "amount paid so far"),
        (
            "state",
            T.STRING,
            "open, partially_paid, disputed, promised, paid, credited, written_off",
        ),
        ("issue_date", T.DATE, "invoice date"),
        ("due_date", T.DATE, "due date"),
        ("days_past_due", T.NUMBER, "calendar days since the due date (negative before it)"),
        ("days_to_due", T.NUMBER, "calendar days until the due date (negative after it)"),
        ("business_days_past_due", T.NUMBER, "business days since the due date, by the calendar"),
        ("days_since_issue", T.NUMBER, "calendar days since the invoice date"),
        ("dunning_level", T.NUMBER, "highest dunning level reached so far"),
        ("dunning_block", T.BOOL, "dunning blocked on the item or on its customer"),
        ("disputed", T.BOOL, "an open dispute covers part or all of it"),
        ("promised", T.BOOL, "under an open promise to pay"),
        ("promise_date", T.DATE, "date of the open promise to pay (null if none)"),
        ("salesperson", T.STRING, "salesperson of the invoice"),
        ("region", T.STRING, "region of the invoice"),
        ("product_line", T.STRING, "product line of the invoice"),
        ("contract_id", T.STRING, "contract the invoice belongs to (null if none)"),
        ("tags", T.STRING_LIST, "free tags of the invoice"),
    ]
)

CUSTOMER_FACTS = _spec(
    [
        ("id", T.STRING, "customer id"),
        ("name", T.STRING, "customer name"),
        ("region", T.STRING, "region"),
        ("salesperson", T.STRING, "salesperson"),
        ("tags", T.STRING_LIST, "free tags of the customer"),
        (
            "grade",
            T.STRING,
            "credit grade, one the pack's scoring defines (A to D by default; null if not graded)",
        ),
        ("currency", T.STRING, "the customer's credit currency, in which its money facts are"),
        ("credit_limit", T.NUMBER, "credit limit (null if none)"),
        ("payment_terms_days", T.NUMBER, "granted payment terms in days"),
        ("prepayment_percent", T.NUMBER, "required prepayment, percent"),
        ("order_block", T.BOOL, "new orders blocked"),
        ("dunning_block", T.BOOL, "dunning blocked for the whole customer"),
        ("open_balance", T.NUMBER, "open balance of all its invoices"),
        ("overdue_balance", T.NUMBER, "open balance of its invoices past due"),
        ("overdue_count", T.NUMBER, "number of open invoices past due"),
        ("overdue_max_days", T.NUMBER, "days past due of its oldest overdue invoice (0 if none)"),
        ("exposure", T.NUMBER, "open balance plus orders not refused and not yet invoiced"),
        ("exposure_ratio", T.NUMBER, "exposure / credit limit (null without a limit)"),
        ("credit_available", T.NUMBER, "credit limit minus exposure (null without a limit)"),
        ("open_disputes", T.NUMBER, "number of invoices with an open dispute"),
        ("open_promises", T.NUMBER, "number of open promises to pay"),
        ("broken_promises_180d", T.NUMBER, "promises broken in the last 180 days"),
        (
            "late_payments_180d",
            T.NUMBER,
            "invoices closed after their due date in the last 180 days",
        ),
        ("paid_invoices", T.NUMBER, "invoices paid in full, ever"),
        (
            "on_time_rate",
            T.NUMBER,
            "share of paid invoices paid by the due date, 0..1 (null if none)",
        ),
        ("average_days_to_pay", T.NUMBER, "mean days from invoice to payment (null if none)"),
        ("average_days_late", T.NUMBER, "mean days past due at payment, late ones only (null)"),
        ("enterprise_type", T.STRING, "state_owned, listed, private, foreign or individual"),
        ("registered_capital", T.NUMBER, "registered capital (null if unknown)"),
        ("years_established", T.NUMBER, "whole years since establishment (null if unknown)"),
        ("industry", T.STRING, "industry"),
        ("industry_risk", T.NUMBER, "industry risk rating 1 (low) .. 5 (high)"),
        ("third_party_rating", T.STRING, "rating from an agency (text as given)"),
        ("bank_reference", T.STRING, "good, fair or poor"),
        (
            "unapplied_credit",
            T.NUMBER,
            "unapplied cash and open credit notes, in the credit currency: money of the "
            "customer's not yet applied to an invoice",
        ),
        (
            "call_attempts_30d",
            T.NUMBER,
            "calls to the customer completed in the last 30 days, whatever their outcome",
        ),
        (
            "last_contact_outcome",
            T.STRING,
            "outcome of the latest completed call: reached, no_answer, wrong_contact, "
            "promise or dispute (null if none)",
        ),
    ]
)

ORDER_FACTS = _spec(
    [
        ("id", T.STRING, "order id"),
        ("amount", T.NUMBER, "order amount"),
        ("currency", T.STRING, "ISO currency of the order"),
        ("state", T.STRING, "submitted, pending_approval, approved, rejected, shipped, invoiced"),
        ("type", T.STRING, "order type (null if none)"),
        ("contract_id", T.STRING, "contract of the order (null if none)"),
        ("submitted_on", T.DATE, "day the order was submitted"),
        (
            "prepaid",
            T.BOOL,
            "the customer's unapplied credit covers the order (same currency): what a "
            "prepayment (cash-on-delivery) customer needs before its order is approved",
        ),
        ("discount_percent", T.NUMBER, "the order's discount off its list price, in % (0: none)"),
    ]
)

SUBJECTS = ("receivable", "customer", "order")


def fact_types(subject: str) -> dict[str, Type]:
    """The facts a condition on ``subject`` may read, with their types."""
    own = {"receivable": RECEIVABLE_FACTS, "customer": {}, "order": ORDER_FACTS}[subject]
    prefix = "order." if subject == "order" else ""
    out = {prefix + k: v.type for k, v in own.items()}
    out.update({"customer." + k: v.type for k, v in CUSTOMER_FACTS.items()})
    out["as_of"] = T.DATE
    return out


# -- computing -------------------------------------------------------------------------------


def _years(start: date, as_of: date) -> int:
    return as_of.year - start.year - ((as_of.month, as_of.day) < (start.month, start.day))


def customer_facts(
    customer: Customer,
    receivables: Iterable[Receivable | ReceivableSummary],
    orders: Iterable[Order],
    promises: Iterable[PromiseToPay],
    as_of: date,
    *,
    base_currency: str = "CNY",
    min_balance: Decimal = ZERO,
    credits: Iterable[Payment | CreditNote] = (),
    calls: Iterable[Task] = (),
) -> dict[str, Any]:
    """Facts about one customer as of ``as_of``, keyed ``customer.<name>``.

    ``receivables`` should be all the customer's receivables (closed ones feed the payment
    behaviour facts); ``orders`` and ``promises`` likewise. An item whose open amount is
    under ``min_balance`` (the pack's small balance) is not counted as overdue.
    ``credits`` are the customer's payments and credit notes (for ``unapplied_credit``);
    ``calls`` its completed tasks (the calls among them feed the contact facts).
    """
    credit = customer.credit
    limit = credit.credit_limit
    cur = limit.currency if limit is not None else base_currency
    open_balance = overdue_balance = ZERO
    overdue_count = open_disputes = paid_count = on_time = late_180 = 0
    oldest_due: date | None = None
    days_to_pay: list[int] = []
    days_late: list[int] = []
    for item in receivables:
        r = summary_of(item)
        if r.currency != cur:
            continue
        if r.state not in CLOSED_STATES:
            open_balance += r.open_amount
            if r.due_date < as_of and r.open_amount >= min_balance:
                overdue_balance += r.open_amount
                overdue_count += 1
                oldest_due = r.due_date if oldest_due is None else min(oldest_due, r.due_date)
            if r.disputed:
                open_disputes += 1
        elif r.state == "paid" and r.closed_on is not None:
            paid_count += 1
            days_to_pay.append((r.closed_on - r.issue_date).days)
            if r.closed_on <= r.due_date:
                on_time += 1
            else:
                days_late.append((r.closed_on - r.due_date).days)
                if (as_of - r.closed_on).days <= 180:
                    late_180 += 1
    uninvoiced = sum(
        (
            o.amount.amount
            for o in orders
            if o.amount.currency == cur and o.state in EXPOSURE_ORDER_STATES
        ),
        ZERO,
    )
    exposure = open_balance + uninvoiced
    open_promises = broken_180 = 0
    for p in promises:
        if p.status == PromiseStatus.OPEN:
            open_promises += 1
        elif (
            p.status in (PromiseStatus.BROKEN, PromiseStatus.PARTIALLY_KEPT)
            and (as_of - p.promised_date).days <= 180
        ):
            broken_180 += 1
    prof = customer.profile
    facts: dict[str, Any] = {
        "id": customer.id,
        "name": customer.name,
        "region": customer.region,
        "salesperson": customer.salesperson,
        "tags": customer.tags,
        "grade": credit.grade,
        "currency": cur,
        "credit_limit": None if limit is None else limit.amount,
        "payment_terms_days": Decimal(credit.payment_terms_days),
        "prepayment_percent": credit.prepayment_percent,
        "order_block": credit.order_block,
        "dunning_block": credit.dunning_block,
        "open_balance": open_balance,
        "overdue_balance": overdue_balance,
        "overdue_count": Decimal(overdue_count),
        "overdue_max_days": Decimal((as_of - oldest_due).days if oldest_due else 0),
        "exposure": exposure,
        "exposure_ratio": (exposure / limit.amount) if limit is not None and limit.amount else None,
        "credit_available": None if limit is None else limit.amount - exposure,
        "open_disputes": Decimal(open_disputes),
        "open_promises": Decimal(open_promises),
        "broken_promises_180d": Decimal(broken_180),
        "late_payments_180d": Decimal(late_180),
        "paid_invoices": Decimal(paid_count),
        "on_time_rate": Decimal(on_time) / paid_count if paid_count else None,
        "average_days_to_pay": (
            Decimal(sum(days_to_pay)) / len(days_to_pay) if days_to_pay else None
        ),
        "average_days_late": Decimal(sum(days_late)) / len(days_late) if days_late else None,
        "enterprise_type": prof.enterprise_type,
        "registered_capital": (
            prof.registered_capital.amount if prof.registered_capital is not None else None
        ),
        "years_established": (
            Decimal(_years(prof.established_on, as_of)) if prof.established_on else None
        ),
        "industry": prof.industry,
        "industry_risk": None if prof.industry_risk is None else Decimal(prof.industry_risk),
        "third_party_rating": prof.third_party_rating,
        "bank_reference": prof.bank_reference,
        "unapplied_credit": unapplied_credit(credits, cur),
        **contact_facts(calls, as_of),
    }
    return {"customer." + k: v for k, v in facts.items()}


def contact_facts(tasks: Iterable[Task], as_of: date) -> dict[str, Any]:
    """``call_attempts_30d`` and ``last_contact_outcome`` from the customer's done tasks:
    calls completed on or before ``as_of``, the count in the 30 days up to it and the
    outcome of the latest (by completion day, then id)."""
    calls = sorted(
        (
            t
            for t in tasks
            if t.kind == "call" and t.status == "done" and t.closed_on and t.closed_on <= as_of
        ),
        key=lambda t: (t.closed_on, t.id),
    )
    recent = sum(1 for t in calls if t.closed_on and (as_of - t.closed_on).days < 30)
    return {
        "call_attempts_30d": Decimal(recent),
        "last_contact_outcome": calls[-1].outcome if calls else None,
    }


def unapplied_credit(credits: Iterable[Payment | CreditNote], currency: str) -> Decimal:
    """What is left unapplied of the customer's payments (not reversed) and credit notes
    in ``currency``: credit that covers its invoices before any reminder is due."""
    left = ZERO
    for c in credits:
        if c.unapplied.currency == currency and not getattr(c, "reversed", False):
            left += c.unapplied.amount
    return left


def receivable_facts(
    r: Receivable,
    customer: Mapping[str, Any],
    as_of: date,
    calendar: BusinessDays,
    *,
    promise: PromiseToPay | None = None,
) -> dict[str, Any]:
    """Facts about one receivable as of ``as_of``, with its customer's facts merged in."""
    open_promise = promise if promise is not None and promise.status == "open" else None
    # r.undisputed_balance by Decimal arithmetic: its Money operations cost more than all
    # the other facts of the receivable together
    balance, disputed = r.open_balance.amount, r.disputed_amount.amount
    facts: dict[str, Any] = dict(customer)
    facts.update(
        {
            "as_of": as_of,
            "number": r.id,
            "currency": r.currency,
            "amount": r.amount.amount,
            "balance": balance,
            "undisputed_balance": balance - min(balance, disputed),
            "disputed_amount": disputed,
            "paid": r.paid.amount,
            "state": str(r.state),
            "issue_date": r.issue_date,
            "due_date": r.due_date,
            "days_past_due": Decimal((as_of - r.due_date).days),
            "days_to_due": Decimal((r.due_date - as_of).days),
            "business_days_past_due": Decimal(calendar.business_days_between(r.due_date, as_of)),
            "days_since_issue": Decimal((as_of - r.issue_date).days),
            "dunning_level": Decimal(r.dunning_level),
            "dunning_block": r.dunning_block or bool(customer.get("customer.dunning_block")),
            "disputed": bool(r.disputed_amount) and not r.is_closed,
            # by the promise, not the state: a dispute moves a promised item to 'disputed'
            # while its promise stays open, and the promise still pauses dunning
            "promised": open_promise is not None and r.promise_id == open_promise.id,
            "promise_date": open_promise.promised_date if open_promise is not None else None,
            "salesperson": r.salesperson,
            "region": r.region,
            "product_line": r.product_line,
            "contract_id": r.contract_id,
            "tags": r.tags,
        }
    )
    return facts


def _discount_percent(o: Order) -> Decimal:
    """The order's discount in % of its list price (derived from its amount when only the
    amount is given); 0 without a discount."""
    if o.discount_percent is not None:
        return o.discount_percent
    if o.discount_amount is None:
        return Decimal(0)
    gross = o.amount.amount + o.discount_amount.amount
    return (
        (o.discount_amount.amount * 100 / gross).quantize(Decimal("0.01")) if gross else Decimal(0)
    )


def order_facts(o: Order, customer: Mapping[str, Any], as_of: date) -> dict[str, Any]:
    """Facts about one order, keyed ``order.<name>``, with its customer's facts merged in."""
    facts: dict[str, Any] = dict(customer)
    facts.update(
        {
            "as_of": as_of,
            "order.id": o.id,
            "order.amount": o.amount.amount,
            "order.currency": o.amount.currency,
            "order.state": str(o.state),
            "order.type": o.order_type,
            "order.contract_id": o.contract_id,
            "order.submitted_on": o.submitted_on,
            "order.discount_percent": _discount_percent(o),
            "order.prepaid": (
                customer.get("customer.currency") == o.amount.currency
                and customer.get("customer.unapplied_credit", ZERO) >= o.amount.amount
            ),
        }
    )
    return facts
