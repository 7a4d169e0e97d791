"""Payments and credit notes with money left to apply are in the state ``unapplied`` (issue
12): the day's customer facts read only those, through the (customer, state) index, and get
the same ``customer.unapplied_credit`` as from every payment and credit note. Schema step 8
fills the state in for a book an older arflow wrote. Memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from arflow import ArflowError, CashApplied, Ledger, MemoryStore, Money, RefundIssued, Store
from arflow.engine._context import FactCache
from arflow.rules import default_pack_path
from arflow.rules.facts import customer_facts
from arflow.rules.loader import load_pack
from arflow.store import KINDS
from arflow.store.sql import SCHEMA, SCHEMA_VERSION, SqlStore
from arflow.store.sql._schema import MIGRATIONS
from arflow.testing import BookBuilder

ON = date(2026, 2, 10)
AS_OF = date(2026, 3, 1)
SETTINGS = load_pack(default_pack_path()).settings
CREDIT_KINDS = ("payment", "credit_note")


def cny(x: int | str) -> Money:
    return Money.of(x, "CNY")


def apply_cash(b: BookBuilder, invoice: str, amount: int, **credit: str) -> None:
    b.apply(
        CashApplied(
            **b._meta(ON),
            receivable_id=invoice,
            amount=cny(amount),
            applied_on=ON,
            payment_id=credit.get("payment"),
            credit_note_id=credit.get("note"),
        )
    )


def refund(b: BookBuilder, payment: str, amount: int) -> None:
    b.apply(
        RefundIssued(
            **b._meta(ON), payment_id=payment, amount=cny(amount), refunded_on=ON, reason="asked"
        )
    )


def credits_book(store: Store) -> BookBuilder:
    """Every way a payment or credit note ends up: all applied, partly applied, untouched,
    refunded, reversed, in another currency; cash left unapplied on purpose
    (allocations given, none or some), application of credit to new invoices off."""
    b = BookBuilder(Ledger(store, apply_unapplied_cash=False))
    for cid in ("C1", "C2", "C3"):
        b.customer(cid)
    b.invoice("I1", "C1", 300, issued="2026-01-05", due="2026-02-04")
    b.invoice("I2", "C1", 500, issued="2026-01-05", due="2026-02-04")
    b.pay("P-ALL", "C1", 300, on=ON, to=[("I1", 300)])  # applied in full
    b.pay("P-PART", "C1", 400, on=ON, to=[("I2", 150)])  # 250 left
    b.pay("P-PRE", "C1", 1_000, on=ON, to=[])  # a prepayment, untouched
    b.pay("P-REF", "C1", 200, on=ON, to=[])
    refund(b, "P-REF", 200)  # paid back in full
    b.pay("P-REV", "C1", 90, on=ON, to=[])
    b.reverse("P-REV", on=ON)  # bounced
    b.pay("P-USD", "C1", Money.of(70, "USD"), on=ON, to=[])  # unapplied, not in the credit currency
    b.credit("N-ACCT", "C1", 60, on=ON)  # on account, untouched
    b.credit("N-USED", "C1", 40, on=ON)
    apply_cash(b, "I2", 40, note="N-USED")  # then applied in full
    b.credit("N-INV", "C1", 100, invoice="I2", on=ON)  # against an invoice at once
    b.pay("P-C2", "C2", 80, on=ON, to=[])  # another customer's credit; C3 has none
    return b


UNAPPLIED = {"payment": {"P-PART", "P-PRE", "P-USD", "P-C2"}, "credit_note": {"N-ACCT"}}


def facts_from_every_credit(store: Store, customer_ids: list[str]) -> dict[str, Any]:
    """Customer facts as the run computed them before: from every payment and credit note."""
    customers = store.get_many("customer", customer_ids)
    objs = {
        k: store.find_for_customers(k, customer_ids) for k in ("order", "promise", *CREDIT_KINDS)
    }
    summaries = store.receivable_summaries(customer_ids)
    return {
        cid: customer_facts(
            customers[cid],
            summaries.get(cid, []),
            objs["order"].get(cid, []),
            objs["promise"].get(cid, []),
            AS_OF,
            base_currency=SETTINGS.base_currency,
            min_balance=SETTINGS.min_balance,
            credits=[*objs["payment"].get(cid, []), *objs["credit_note"].get(cid, [])],
        )
        for cid in customer_ids
    }


def facts_of_the_day(store: Store, customer_ids: list[str]) -> dict[str, Any]:
    cache = FactCache(store, SETTINGS, AS_OF)
    cache.prefetch(customer_ids)
    return {cid: cache.get(cid).facts for cid in customer_ids}


def state_column(store: Store) -> dict[str, dict[str, str | None]]:
    """The stored ``state`` of every payment and credit note (the memory store: derived)."""
    if isinstance(store, MemoryStore):
        return {k: {o.id: KINDS[k].state(o) for o in store.all(k)} for k in CREDIT_KINDS}
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        return {
            k: dict(conn.execute(sa.text(f"SELECT id, state FROM ar_{k}")).all())
            for k in CREDIT_KINDS
        }


def test_the_state_says_whether_money_is_left(store: Store) -> None:
    credits_book(store)
    states = state_column(store)
    assert states["payment"] == {
        "P-ALL": "applied",
        "P-PART": "unapplied",
        "P-PRE": "unapplied",
        "P-REF": "applied",
        "P-REV": "reversed",
        "P-USD": "unapplied",
        "P-C2": "unapplied",
    }
    assert states["credit_note"] == {"N-ACCT": "unapplied", "N-USED": "applied", "N-INV": "applied"}
    for kind in CREDIT_KINDS:
        found = store.find_for_customers(kind, ["C1", "C2", "C3"], states=["unapplied"])
        assert {o.id for objs in found.values() for o in objs} == UNAPPLIED[kind]
        assert "C3" not in found  # customers without any are left out
        assert all(o.customer_id == cid for cid, objs in found.items() for o in objs)
        assert store.find_for_customers(kind, ["C1", "C2"], states=[]) == {}
        every = store.find_for_customers(kind, ["C1", "C2"])
        assert {o.id for o in every["C1"]} >= {o.id for o in found["C1"]}


def test_the_days_facts_are_those_from_every_credit(store: Store) -> None:
    b = credits_book(store)
    ids = ["C1", "C2", "C3"]
    got = facts_of_the_day(store, ids)
    assert got == facts_from_every_credit(store, ids)
    assert got["C1"]["customer.unapplied_credit"] == Decimal(250 + 1_000 + 60)
    assert got["C2"]["customer.unapplied_credit"] == Decimal(80)
    assert got["C3"]["customer.unapplied_credit"] == Decimal(0)
    assert b.ledger.unapplied_credit("C1") == {"CNY": cny(1_310), "USD": Money.of(70, "USD")}


def test_applying_the_last_of_a_credit_moves_it_out_of_unapplied(store: Store) -> None:
    b = credits_book(store)
    b.invoice("I3", "C1", 5_000, issued="2026-01-05", due="2026-02-04")
    apply_cash(b, "I3", 1_000, payment="P-PRE")
    apply_cash(b, "I3", 60, note="N-ACCT")
    refund(b, "P-PART", 100)
    states = state_column(store)
    assert (states["payment"]["P-PRE"], states["credit_note"]["N-ACCT"]) == ("applied",) * 2
    assert states["payment"]["P-PART"] == "unapplied"  # 150 of its 250 left
    got = facts_of_the_day(store, ["C1"])
    assert got == facts_from_every_credit(store, ["C1"])
    assert got["C1"]["customer.unapplied_credit"] == Decimal(150)


# -- any history of credits: the same facts ------------------------------------------------------

_step = st.one_of(
    st.tuples(st.just("pay"), st.integers(1, 500)),
    st.tuples(st.just("note"), st.integers(1, 500)),
    st.tuples(st.just("invoice"), st.integers(1, 500)),
    st.tuples(st.just("refund"), st.integers(1, 600)),
    st.tuples(st.just("apply"), st.integers(1, 600)),
    st.tuples(st.just("reverse"), st.integers(0, 50)),
)


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(_step, max_size=20), auto=st.booleans())
def test_any_history_gives_the_same_facts(steps: list[tuple[str, int]], auto: bool) -> None:
    """Whatever is paid, credited, issued, refunded, applied or reversed (refusals
    included), the day's facts read from the unapplied credits alone are the facts read
    from all of them, and the unapplied ones are exactly those with money left."""
    store = MemoryStore()
    b = BookBuilder(Ledger(store, apply_unapplied_cash=auto))
    b.customer("C1")
    pays: list[str] = []
    notes: list[str] = []
    invoices: list[str] = []
    for i, (what, x) in enumerate(steps):
        try:
            if what == "pay":
                b.pay(f"P{i}", "C1", x)
                pays.append(f"P{i}")
            elif what == "note":
                b.credit(f"N{i}", "C1", x)
                notes.append(f"N{i}")
            elif what == "invoice":
                b.invoice(f"I{i}", "C1", x)
                invoices.append(f"I{i}")
            elif what == "refund" and pays:
                refund(b, pays[x % len(pays)], x)
            elif what == "reverse" and pays:
                b.reverse(pays[x % len(pays)])
            elif what == "apply" and invoices and (pays or notes):
                credit = (pays + notes)[x % len(pays + notes)]
                kw = {"payment": credit} if credit in pays else {"note": credit}
                apply_cash(b, invoices[x % len(invoices)], x, **kw)
        except ArflowError:
            pass
    assert facts_of_the_day(store, ["C1"]) == facts_from_every_credit(store, ["C1"])
    for kind in CREDIT_KINDS:
        left = {
            o.id
            for o in store.all(kind)
            if o.unapplied.amount > 0 and not getattr(o, "reversed", False)
        }
        found = store.find_for_customers(kind, ["C1"], states=["unapplied"]).get("C1", [])
        assert {o.id for o in found} == left


# -- a book from before step 8 -------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_v7_book_gets_the_unapplied_state_on_upgrade(backend: str, tmp_path: Path) -> None:
    """A book at schema version 7 (payments ``applied`` unless reversed, credit notes with
    no state) is upgraded by step 8: each row's state then is what this arflow writes, and
    the day's facts read from it are the facts from every credit."""
    from tests.conftest import _drop_schema, _postgres_engine

    schema = None
    if backend == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'v7.db'}")
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        engine = _postgres_engine(schema)
    try:
        with engine.begin() as conn:
            SCHEMA.create(conn)
            for version in range(1, 8):
                MIGRATIONS[version - 1](conn)
                conn.execute(SCHEMA.insert().values(version=version))
            # the tables of step 11 (the figures' journal), which this arflow's writes fill
            # whatever the book's version: the v7 book below is written by it
            MIGRATIONS[10](conn)
        credits_book(SqlStore(engine, upgrade=False, _unchecked=True))
        with engine.begin() as conn:  # the states version 7 wrote
            conn.execute(
                sa.text("UPDATE ar_payment SET state = 'applied' WHERE state <> 'reversed'")
            )
            conn.execute(sa.text("UPDATE ar_credit_note SET state = NULL"))
        old = SqlStore(engine, upgrade=False, _unchecked=True)
        assert state_column(old)["payment"]["P-PRE"] == "applied"
        assert set(state_column(old)["credit_note"].values()) == {None}

        upgraded = SqlStore(engine)  # runs step 8
        with engine.connect() as conn:
            versions = conn.execute(sa.select(SCHEMA.c.version)).scalars().all()
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        states = state_column(upgraded)
        for kind in CREDIT_KINDS:
            derived = {o.id: KINDS[kind].state(o) for o in upgraded.all(kind)}
            assert states[kind] == derived
            assert {i for i, s in states[kind].items() if s == "unapplied"} == UNAPPLIED[kind]
        ids = ["C1", "C2", "C3"]
        assert facts_of_the_day(upgraded, ids) == facts_from_every_credit(upgraded, ids)
        assert Ledger(upgraded).unapplied_credit("C1")["CNY"] == cny(1_310)
    finally:
        engine.dispose()
        if schema is not None:
            _drop_schema(schema)
