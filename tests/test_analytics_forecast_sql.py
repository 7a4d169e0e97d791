"""The cash forecast in SQL (set-based, ``_forecast._Sql``) is the Python reference
(``_forecasts_reference``: the journal, one receivable at a time) on random books with
reversed payments, cash applied after it arrived (``CashApplied``), credit notes,
write-offs, promises (open, kept, broken), disputes and two currencies, on SQLite and on
PostgreSQL; and the dating the forecast and the journal share, by hand
(``docs/analytics_views.md``, "How cash is dated")."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from arflow import Ledger, MemoryStore, Money, Store
from arflow.analytics import forecast, forecasts
from arflow.analytics._forecast import _forecasts_reference
from arflow.errors import ArflowError
from arflow.events import CashApplied
from arflow.testing import BookBuilder

START = date(2026, 1, 1)
DAYS = 120
CUSTOMERS = ("C1", "C2", "C3")
CURRENCIES = ("CNY", "USD")

day = st.integers(0, DAYS)
money = st.integers(1, 40).map(lambda n: n * 25)
invoice_ops = st.tuples(
    st.just("invoice"),
    st.integers(0, 80),
    st.sampled_from(CUSTOMERS),
    st.sampled_from(CURRENCIES),
    money,
    st.integers(0, 60),
)
_by_kind = {
    "pay": st.tuples(st.just("pay"), day, st.integers(0, 30), money, st.booleans()),
    "apply": st.tuples(st.just("apply"), day, st.integers(0, 30), st.integers(0, 30), money),
    "reverse": st.tuples(st.just("reverse"), day, st.integers(0, 30)),
    "promise": st.tuples(st.just("promise"), day, st.integers(0, 30), money, st.integers(-5, 40)),
    "break": st.tuples(st.just("break"), day, st.integers(0, 30)),
    "dispute": st.tuples(st.just("dispute"), day, st.integers(0, 30), st.one_of(st.none(), money)),
    "resolve": st.tuples(st.just("resolve"), day, st.integers(0, 30)),
    "credit": st.tuples(st.just("credit"), day, st.integers(0, 30), money),
    "write_off": st.tuples(st.just("write_off"), day, st.integers(0, 30)),
}
# payments, cash applied later and reversals three times as often as the rest
ops = st.sampled_from(
    [*("pay", "apply", "reverse") * 3, "promise", "break", "dispute", "resolve", "credit",
     "write_off"]
).flatmap(lambda k: _by_kind[k])  # fmt: skip


def _build(store: Store, plan: list[tuple]) -> None:  # type: ignore[type-arg]
    """Apply ``plan`` in the order of its days; what the ledger refuses changes nothing
    and is skipped (a reversal of a payment already reversed, cash beyond what is open)."""
    b = BookBuilder(Ledger(store, apply_unapplied_cash=False))
    for c in CUSTOMERS:
        b.customer(c)
    invoices: list[tuple[str, str, str]] = []  # number, customer, currency
    payments: list[tuple[str, str, str]] = []  # id, customer, currency
    promises: list[str] = []
    disputes: list[str] = []

    def pick(xs: list, i: int):  # type: ignore[no-untyped-def,type-arg]
        return xs[i % len(xs)] if xs else None

    def open_of(number: str) -> Money:
        return store.get("receivable", number).open_balance  # type: ignore[no-any-return]

    def unapplied(payment_id: str) -> Money:
        p = store.get("payment", payment_id)
        return Money.zero(p.amount.currency) if p.reversed else p.unapplied  # type: ignore[no-any-return]

    def payable(i: int, of: tuple[str, str] | None = None):  # type: ignore[no-untyped-def]
        """An invoice with something open (cash beyond it would be refused), of the
        customer and currency ``of`` if given."""
        got = [x for x in invoices if open_of(x[0]).is_positive and of in (None, x[1:])]
        return pick(got, i)

    for n, op in enumerate(sorted(plan, key=lambda o: o[1])):
        on = START + timedelta(op[1])
        kind = op[0]
        with contextlib.suppress(ArflowError):
            if kind == "invoice":
                _k, _d, cid, cur, amount, terms = op
                number = f"INV-{n:03d}"
                b.invoice(number, cid, Money.of(amount, cur), issued=on, due=on + timedelta(terms))
                invoices.append((number, cid, cur))
            elif kind == "pay" and (inv := payable(op[2])):
                number, cid, cur = inv
                pid = f"PAY-{n:03d}"
                # allocated to the invoice, or left unapplied (applied later, or never)
                part = Money.of(op[3], cur).min(open_of(number))
                to = [(number, part)] if op[4] else []
                b.pay(pid, cid, Money.of(op[3], cur), on=on, to=to)
                payments.append((pid, cid, cur))
            elif kind == "reverse" and (p := pick(payments, op[2])):
                b.reverse(p[0], on=on)
            elif (
                kind == "apply"
                and (p := pick([x for x in payments if unapplied(x[0]).is_positive], op[2]))
                and (i := payable(op[3], p[1:]))
            ):
                left = unapplied(p[0])
                b.apply(
                    CashApplied(
                        **b._meta(on),
                        payment_id=p[0],
                        receivable_id=i[0],
                        amount=Money.of(op[4], i[2]).min(open_of(i[0])).min(left),
                        applied_on=on,
                    )
                )
            elif kind == "promise" and (inv := payable(op[2])):
                number, cid, cur = inv
                more = [x[0] for x in invoices if x[1] == cid and x[2] == cur and x[0] != number]
                pid = f"PTP-{n:03d}"
                b.promise(pid, cid, [number, *more[:1]], Money.of(op[3], cur),
                          by=on + timedelta(op[4]), on=on)  # fmt: skip
                promises.append(pid)
            elif kind == "break" and (pid := pick(promises, op[2])):
                b.break_promise(pid, on=on)
            elif kind == "dispute" and (inv := pick(invoices, op[2])):
                did = f"DSP-{n:03d}"
                amount = None if op[3] is None else Money.of(op[3], inv[2])
                b.dispute(did, inv[0], amount, on=on)
                disputes.append(did)
            elif kind == "resolve" and (did := pick(disputes, op[2])):
                b.resolve(did, on=on)
            elif kind == "credit" and (inv := pick(invoices, op[2])):
                b.credit(f"CN-{n:03d}", inv[1], Money.of(op[3], inv[2]), invoice=inv[0], on=on)
            elif kind == "write_off" and (inv := pick(invoices, op[2])):
                b.write_off(inv[0], on=on)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    plan=st.tuples(
        st.lists(invoice_ops, min_size=1, max_size=12), st.lists(ops, min_size=5, max_size=35)
    ).map(lambda t: t[0] + t[1]),
    offset=st.integers(-10, DAYS + 60),
    weeks=st.integers(1, 14),
)
def test_sql_forecast_is_the_reference(
    store_factory: Callable[[], Store],
    plan: list,  # type: ignore[type-arg]
    offset: int,
    weeks: int,
) -> None:
    sql = store_factory()
    try:
        _same(sql, plan, offset, weeks)
    finally:
        sql.close()  # its connections back now (PostgreSQL's are few), not after the test


def _same(sql: Store, plan: list, offset: int, weeks: int) -> None:  # type: ignore[type-arg]
    memory = MemoryStore()
    _build(sql, plan)
    _build(memory, plan)
    on = START + timedelta(offset)
    expected = _forecasts_reference(memory, on, weeks)
    assert _forecasts_reference(sql, on, weeks) == expected
    assert forecasts(memory, on, weeks) == expected
    assert forecasts(sql, on, weeks) == expected
    for f in expected:
        assert forecast(sql, on, weeks, currency=f.currency) == f
    if offset >= DAYS:  # after every event: each open balance is placed exactly once
        for f in expected:
            placed = sum((w.expected.amount for w in f.weeks), Decimal(0))
            assert f.later is not None
            open_now = sum(
                (r.open_balance.amount for r in sql.all("receivable") if r.currency == f.currency),
                Decimal(0),
            )
            assert placed + f.later.amount == open_now


def _dated(store: Store) -> None:
    """The example of ``docs/analytics_views.md``, "How cash is dated"."""
    b = BookBuilder(Ledger(store, apply_unapplied_cash=False))
    b.customer("K")
    b.invoice("R1", "K", 1000, issued="2026-01-05", due="2026-01-31")
    b.invoice("R2", "K", 500, issued="2026-01-10", due="2026-02-09")
    b.pay("PAY1", "K", 1000, on="2026-01-20", to=[])  # unapplied until 10 Feb
    b.pay("PAY2", "K", 500, on="2026-02-05", to=[("R2", 500)])
    b.apply(
        CashApplied(
            **b._meta(date(2026, 2, 10)),
            payment_id="PAY1",
            receivable_id="R1",
            amount=Money.of(1000, "CNY"),
            applied_on=date(2026, 2, 10),
        )
    )
    b.reverse("PAY2", on="2026-02-20")


def _cny(v: int) -> Money:
    return Money.of(v, "CNY")


def test_cash_is_dated_as_the_journal_dates_it(store: Store) -> None:
    _dated(store)
    # 2 Feb: the cash of 20 Jan is not applied yet, R1 is open; nothing closed, 0 days
    f = forecast(store, date(2026, 2, 2), weeks=4, currency="CNY")
    assert [w.expected for w in f.weeks] == [_cny(1000), _cny(500), _cny(0), _cny(0)]
    assert f.lateness == (("K", 0),)
    # 16 Feb: R1 closed by the cash applied on 10 Feb (10 days late), R2 closed on 5 Feb
    # (4 days early) and not yet reversed: nothing open, lateness (10 - 4) / 2 = 3
    f = forecast(store, date(2026, 2, 16), weeks=4, currency="CNY")
    assert all(w.expected == _cny(0) for w in f.weeks) and f.lateness == ()
    # 23 Feb: the reversal of 20 Feb opened R2 again: due 9 Feb + 3 days, expected now;
    # its closing of 5 Feb stays a sample
    f = forecast(store, date(2026, 2, 23), weeks=4, currency="CNY")
    assert [w.expected for w in f.weeks] == [_cny(500), _cny(0), _cny(0), _cny(0)]
    assert f.lateness == (("K", 3),)
    # its backtest, from 26 Jan: the cash as the journal holds it, a reversal negative
    assert [(w.week_start, w.expected, w.actual) for w in f.backtest] == [
        (date(2026, 1, 26), _cny(1000), _cny(0)),
        (date(2026, 2, 2), _cny(0), _cny(500)),
        (date(2026, 2, 9), _cny(500), _cny(1000)),
        (date(2026, 2, 16), _cny(0), _cny(-500)),
    ]
    assert _forecasts_reference(store, date(2026, 2, 23), 4) == (f,)
