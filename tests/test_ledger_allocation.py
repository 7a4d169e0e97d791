"""Allocation alone: where a payment goes among open receivables, as pure functions.

``arflow.ledger._allocation`` reads no store: these tests hand it receivables and amounts
directly. Examples pin the order of its refusals (the ledger's handlers depend on it);
hypothesis properties check that money is conserved, that no receivable's balance goes
negative, that allocations beyond a balance are refused, and that the result depends on
nothing but the inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arflow.domain import Receivable, ReceivableState
from arflow.errors import (
    ClosedItem,
    CurrencyMismatch,
    InvalidAmount,
    OverAllocation,
    UnknownObject,
    ValidationError,
)
from arflow.events import AllocationRequest
from arflow.ledger._allocation import (
    Plan,
    allocate_explicit,
    allocate_oldest_first,
    apply_credit_oldest_first,
    check_application,
    check_reduction,
    check_refund,
    unapplied,
)
from arflow.money import Money, minor_unit, total

R = ReceivableState
DAY = date(2026, 3, 1)
CURRENCIES = ("CNY", "JPY", "KWD")


def money(units: int, currency: str = "CNY") -> Money:
    """``units`` minor units of ``currency`` (fen, yen, fils)."""
    return Money(amount=Decimal(units).scaleb(-minor_unit(currency)), currency=currency)


def receivable(
    rid: str,
    amount: int,
    *,
    open_: int | None = None,
    disputed: int = 0,
    currency: str = "CNY",
    customer: str = "C1",
    state: R | None = None,
    due: int = 0,
) -> Receivable:
    """A receivable of ``amount`` minor units with ``open_`` of it still open."""
    left = amount if open_ is None else open_
    if state is None:
        state = R.DISPUTED if disputed else (R.PARTIALLY_PAID if left < amount else R.OPEN)
    return Receivable(
        id=rid,
        customer_id=customer,
        issue_date=DAY,
        due_date=DAY + timedelta(days=due),
        amount=money(amount, currency),
        paid=money(amount - left, currency),
        credited=money(0, currency),
        written_off=money(0, currency),
        disputed_amount=money(disputed, currency),
        open_balance=money(left, currency),
        state=state,
    )


def ask(rid: str, units: int, currency: str = "CNY") -> AllocationRequest:
    return AllocationRequest(receivable_id=rid, amount=money(units, currency))


def explicit(amount: Money, requests: list[AllocationRequest], items: list[Receivable]) -> Plan:
    return allocate_explicit("P1", "C1", amount, requests, {r.id: r for r in items})


def amounts(plan: Plan) -> list[tuple[str, Money]]:
    return [(r.id, a) for r, a in plan]


# -- oldest first -------------------------------------------------------------------------------
def test_oldest_first_fills_items_in_the_order_given_and_keeps_the_rest() -> None:
    items = [receivable("A", 300), receivable("B", 500, open_=200), receivable("C", 900)]
    plan = allocate_oldest_first(money(600), items)
    assert amounts(plan) == [("A", money(300)), ("B", money(200)), ("C", money(100))]
    assert unapplied(money(600), plan) == money(0)
    assert unapplied(money(2_000), allocate_oldest_first(money(2_000), items)) == money(600)


def test_oldest_first_skips_other_currencies_and_disputed_amounts() -> None:
    items = [
        receivable("USD", 100, currency="JPY"),
        receivable("D", 500, disputed=500),
        receivable("P", 500, disputed=200),
        receivable("O", 100),
    ]
    plan = allocate_oldest_first(money(450), items)
    assert amounts(plan) == [("P", money(300)), ("O", money(100))]
    assert plan[0][0] is items[2]  # the receivable as it was handed in
    assert unapplied(money(450), plan) == money(50)


def test_oldest_first_reads_open_items_only_as_far_as_the_payment_reaches() -> None:
    """One item past the last it pays (the store's cursor is left there), no further."""
    read: list[str] = []

    def items() -> Iterator[Receivable]:
        for r in (receivable(rid, 100) for rid in "ABCD"):
            read.append(r.id)
            yield r

    assert amounts(allocate_oldest_first(money(150), items())) == [
        ("A", money(100)),
        ("B", money(50)),
    ]
    assert read == ["A", "B", "C"]


def test_oldest_first_with_nothing_open_leaves_it_all_unapplied() -> None:
    assert allocate_oldest_first(money(100), []) == []
    assert unapplied(money(100), []) == money(100)


# -- explicit allocations -----------------------------------------------------------------------
def test_explicit_allocations_go_where_they_say_in_their_order() -> None:
    items = [receivable("A", 300), receivable("B", 500)]
    plan = explicit(money(1_000), [ask("B", 500), ask("A", 100)], items)
    assert amounts(plan) == [("B", money(500)), ("A", money(100))]
    assert unapplied(money(1_000), plan) == money(400)


@pytest.mark.parametrize(
    ("requests", "error", "message"),
    [
        (
            [ask("A", 10), ask("A", 10)],
            ValidationError,
            "payment P1: receivable A allocated twice",
        ),
        ([ask("Z", 10)], UnknownObject, None),
        (
            [ask("X", 10)],
            ValidationError,
            "payment P1: receivable X belongs to customer 'C2', not 'C1'",
        ),
        ([ask("PAID", 10)], ClosedItem, None),
        ([ask("A", 10, "JPY")], CurrencyMismatch, None),
        ([ask("A", 0)], InvalidAmount, "allocation to A must be positive, got 0.00 CNY"),
        (
            [ask("A", 300), ask("B", 800)],
            OverAllocation,
            "payment P1: allocations 11.00 CNY exceed the payment 10.00 CNY",
        ),
        ([ask("Y", 10)], CurrencyMismatch, None),
        (
            [ask("A", 301)],
            OverAllocation,
            "receivable A: 3.01 CNY is more than its open balance 3.00 CNY",
        ),
    ],
)
def test_explicit_allocations_are_refused(
    requests: list[AllocationRequest], error: type[Exception], message: str | None
) -> None:
    items = [
        receivable("A", 300),
        receivable("B", 900),
        receivable("X", 100, customer="C2"),
        receivable("Y", 100, currency="JPY"),
        receivable("PAID", 100, open_=0, state=R.PAID),
    ]
    with pytest.raises(error) as info:
        explicit(money(1_000), requests, items)
    if message is not None:
        assert str(info.value) == message


def test_explicit_refusals_come_request_by_request_then_the_sum_then_the_balances() -> None:
    items = [receivable("A", 300), receivable("X", 100, customer="C2")]
    # the first request's refusal wins over a later unknown one
    with pytest.raises(ValidationError):
        explicit(money(1_000), [ask("X", 10), ask("Z", 10)], items)
    with pytest.raises(UnknownObject):
        explicit(money(1_000), [ask("Z", 10), ask("X", 10)], items)
    # a sum beyond the payment is refused before a balance is looked at
    with pytest.raises(OverAllocation, match="exceed the payment"):
        explicit(money(500), [ask("A", 600)], items)


def test_check_reduction_refuses_another_currency_and_more_than_the_balance() -> None:
    r = receivable("A", 500, open_=200)
    check_reduction(r, money(200))
    with pytest.raises(OverAllocation):
        check_reduction(r, money(201))
    with pytest.raises(CurrencyMismatch):
        check_reduction(r, money(1, "JPY"))


# -- properties ---------------------------------------------------------------------------------
@st.composite
def open_items(draw: st.DrawFn, currencies: tuple[str, ...] = ("CNY",)) -> list[Receivable]:
    """Live receivables of customer C1, in the order to pay them."""
    n = draw(st.integers(0, 8))
    items = []
    for i in range(n):
        amount = draw(st.integers(1, 10**9))
        left = draw(st.integers(1, amount))
        disputed = draw(st.sampled_from([0, 0, left, draw(st.integers(0, left))]))
        cur = draw(st.sampled_from(currencies))
        items.append(receivable(f"R{i}", amount, open_=left, disputed=disputed, currency=cur))
    return items


def check_plan(amount: Money, plan: Plan, items: list[Receivable]) -> None:
    """What every plan keeps to: money conserved, no balance below zero, each item once."""
    left = unapplied(amount, plan)
    assert total((a for _r, a in plan), amount.currency) + left == amount
    assert not left.amount < 0
    ids = [r.id for r, _a in plan]
    assert len(ids) == len(set(ids))
    by_id = {r.id: r for r in items}
    for r, a in plan:
        assert r is by_id[r.id]
        assert a.is_positive and a.currency == amount.currency
        assert (r.open_balance - a).amount >= 0


@settings(max_examples=300, deadline=None)
@given(items=open_items(CURRENCIES), units=st.integers(1, 10**10), cur=st.sampled_from(CURRENCIES))
def test_oldest_first_conserves_money_and_keeps_balances_from_going_negative(
    items: list[Receivable], units: int, cur: str
) -> None:
    amount = money(units, cur)
    plan = allocate_oldest_first(amount, items)
    check_plan(amount, plan, items)
    for r, a in plan:
        assert a <= r.undisputed_balance  # disputed money is not paid by default
    # only what the payment could not place is left: every live same-currency item it
    # skipped or part-paid means the payment ran out
    if unapplied(amount, plan).is_positive:
        taken = dict(amounts(plan))
        for r in items:
            if r.currency == cur:
                assert taken.get(r.id, money(0, cur)) == r.undisputed_balance


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[list[Receivable], list[AllocationRequest]]:
    items = draw(open_items())
    chosen = draw(
        st.lists(st.sampled_from(items), unique_by=lambda r: r.id) if items else st.just([])
    )
    requests = [
        ask(r.id, draw(st.integers(1, int(r.open_balance.amount.scaleb(2))))) for r in chosen
    ]
    return items, requests


@settings(max_examples=300, deadline=None)
@given(case=valid_requests(), extra=st.integers(0, 10**9))
def test_explicit_allocations_within_balances_conserve_money(
    case: tuple[list[Receivable], list[AllocationRequest]], extra: int
) -> None:
    items, requests = case
    asked = total((q.amount for q in requests), "CNY")
    amount = asked + money(extra) if asked or extra else money(1)
    plan = explicit(amount, requests, items)
    check_plan(amount, plan, items)
    assert [(r.id, a) for r, a in plan] == [(q.receivable_id, q.amount) for q in requests]
    assert unapplied(amount, plan) == amount - asked


@settings(max_examples=300, deadline=None)
@given(
    case=valid_requests(),
    over=st.integers(1, 10**6),
    which=st.integers(0, 100),
    extra=st.integers(0, 10**9),
)
def test_explicit_allocations_beyond_a_balance_are_refused(
    case: tuple[list[Receivable], list[AllocationRequest]], over: int, which: int, extra: int
) -> None:
    items, requests = case
    if not requests:
        return
    i = which % len(requests)
    r = next(r for r in items if r.id == requests[i].receivable_id)
    requests[i] = AllocationRequest(receivable_id=r.id, amount=r.open_balance + money(over))
    amount = total((q.amount for q in requests), "CNY") + money(extra)  # the sum is fine
    with pytest.raises(OverAllocation, match=f"receivable {r.id}: .* more than its open balance"):
        explicit(amount, requests, items)
    # and a payment too small for the allocations is refused as such
    short = total((q.amount for q in requests), "CNY") - money(1)
    if short.is_positive:
        with pytest.raises(OverAllocation, match="exceed the payment"):
            explicit(short, requests, items)


@settings(max_examples=200, deadline=None)
@given(case=valid_requests(), units=st.integers(1, 10**10))
def test_allocation_depends_on_nothing_but_its_inputs(
    case: tuple[list[Receivable], list[AllocationRequest]], units: int
) -> None:
    items, requests = case
    before = [r.model_dump() for r in items]
    amount = money(units)
    first = allocate_oldest_first(amount, items)
    copies = [r.model_copy() for r in items]
    assert amounts(allocate_oldest_first(amount, copies)) == amounts(first)
    assert amounts(allocate_oldest_first(amount, iter(items))) == amounts(first)
    big = total((q.amount for q in requests), "CNY") + amount
    once = explicit(big, requests, items)
    assert amounts(explicit(big, list(requests), copies)) == amounts(once)
    # the inputs are left as they were
    assert [r.model_dump() for r in items] == before


# -- the customer's credit applied to an invoice (issue 12) ----------------------------------

_cents = st.integers(0, 100_000).map(lambda c: Money.of(Decimal(c) / 100, "CNY"))


@settings(max_examples=200, deadline=None)
@given(
    balance=_cents,
    credits=st.lists(st.tuples(_cents, st.sampled_from(["CNY", "CNY", "USD"])), max_size=8),
)
def test_credit_applied_oldest_first_conserves_money(
    balance: Money, credits: list[tuple[Money, str]]
) -> None:
    """Each credit gives at most its unapplied amount, the invoice takes at most its
    balance, oldest first (a credit gives only once the ones before it are used up, or the
    balance is), other currencies give nothing; what is applied plus what is left of each
    credit is what it had."""
    given_ = [(f"K{i}", Money.of(m.amount, cur)) for i, (m, cur) in enumerate(credits)]
    plan = apply_credit_oldest_first(balance, given_)
    have = dict(given_)
    taken = dict(plan)
    assert len(taken) == len(plan)
    assert all(a.is_positive and a <= have[k] and a.currency == "CNY" for k, a in plan)
    applied = total(taken.values(), "CNY")
    assert applied <= balance
    same = [(k, m) for k, m in given_ if m.currency == "CNY" and m.is_positive]
    assert applied == balance.min(total((m for _k, m in same), "CNY"))
    # oldest first: every credit before the last one used gave all it had
    used = [k for k, _m in same if k in taken]
    assert used == [k for k, _m in same][: len(used)]
    for k in used[:-1]:
        assert taken[k] == have[k]


def test_check_application_and_refund_refusals() -> None:
    r = receivable("I1", 10_000)
    check_application("payment P", Money.of(50, "CNY"), r, Money.of(50, "CNY"))
    with pytest.raises(OverAllocation):
        check_application("payment P", Money.of(50, "CNY"), r, Money.of("50.01", "CNY"))
    with pytest.raises(OverAllocation):
        check_application("payment P", Money.of(500, "CNY"), r, Money.of("100.01", "CNY"))
    with pytest.raises(CurrencyMismatch):
        check_application("payment P", Money.of(50, "USD"), r, Money.of(5, "USD"))
    with pytest.raises(InvalidAmount):
        check_application("payment P", Money.of(50, "CNY"), r, Money.of(0, "CNY"))
    check_refund("payment P", Money.of(50, "CNY"), Money.of(50, "CNY"))
    with pytest.raises(OverAllocation):
        check_refund("payment P", Money.of(50, "CNY"), Money.of("50.01", "CNY"))
    with pytest.raises(CurrencyMismatch):
        check_refund("payment P", Money.of(50, "CNY"), Money.of(1, "USD"))
