"""Issue 12 item 2: the same order check whichever call the host makes.

A host that gives its events to ``Ledger.apply`` gets the order check of ``Engine.handle``
once an engine is attached (``Engine.attach()``): the same sequence of events, given to
``Engine.handle`` on one book and to ``Ledger.apply`` on another with the engine attached,
leaves the same book, audit trail, event log, decision ledger and outbox, and the same
refusals. Events other than ``OrderSubmitted`` and ``OrderApproved`` go to ``Ledger.apply``
on both books (the policy decides orders only). Run on memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arflow import (
    ArflowError,
    Contact,
    CreditProfile,
    Customer,
    CustomerRegistered,
    Engine,
    InvoiceIssued,
    Ledger,
    Money,
    OrderApproved,
    OrderSubmitted,
    PaymentReceived,
    Store,
    dump_book,
)
from arflow.rules import default_pack_path
from arflow.rules.loader import RulePack, load_pack

START = date(2026, 3, 2)
#: customers: id -> (grade, limit, prepayment percent, payment terms)
CUSTOMERS = {
    "CA": ("A", 50_000, 0, 30),
    "CB": ("B", 100_000, 0, 30),
    "CD": ("D", 20_000, 100, 0),
}
PEOPLE = ["intern", "li.wei", "zhang.min", "finance.manager@example.com"]

_PACK: list[RulePack] = []


def pack() -> RulePack:
    if not _PACK:
        _PACK.append(load_pack(default_pack_path()))
    return _PACK[0]


def cny(x: int) -> Money:
    return Money.of(x, "CNY")


Step = tuple[Any, ...]

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("submit"),
            st.sampled_from(sorted(CUSTOMERS)),
            st.integers(1, 60).map(lambda k: k * 1_000),
        ),
        st.tuples(st.just("approve"), st.integers(0, 20), st.sampled_from(PEOPLE)),
        st.tuples(
            st.just("invoice"),
            st.sampled_from(sorted(CUSTOMERS)),
            st.integers(1, 50).map(lambda k: k * 1_000),
            st.integers(-45, 30),
        ),
        st.tuples(
            st.just("pay"),
            st.sampled_from(sorted(CUSTOMERS)),
            st.integers(1, 50).map(lambda k: k * 1_000),
        ),
        st.tuples(st.just("day"), st.integers(1, 40)),
    ),
    min_size=1,
    max_size=10,
)


class Host:
    """One book and its engine; ``attached``: the host gives every event to
    ``Ledger.apply`` with the engine attached, else orders go to ``Engine.handle``."""

    def __init__(self, store: Store, attached: bool) -> None:
        self.ledger = Ledger(store)
        self.engine = Engine(self.ledger, pack())
        self.attached = attached
        self.today = START
        self.seq = 0
        self.orders: list[str] = []
        self.outcomes: list[str] = []
        for cid, (grade, limit, prepay, terms) in CUSTOMERS.items():
            self.engine.handle(
                CustomerRegistered(
                    **self._meta(),
                    customer=Customer(
                        id=cid,
                        name=f"Customer {cid}",
                        salesperson="li.wei",
                        sales_manager="zhang.min",
                        contacts=[Contact(name="AP", email=f"ap@{cid.lower()}.example")],
                        credit=CreditProfile(
                            grade=grade,
                            credit_limit=cny(limit),
                            prepayment_percent=Decimal(prepay),
                            payment_terms_days=terms,
                        ),
                    ),
                )
            )
        if attached:
            assert self.engine.attach() is self.engine
            assert self.ledger.order_policy is self.engine

    def _meta(self, actor: str = "erp") -> dict[str, Any]:
        self.seq += 1
        at = datetime(self.today.year, self.today.month, self.today.day, 10, tzinfo=UTC)
        return {"event_id": f"ev-{self.seq}", "occurred_at": at, "actor": actor}

    def _give(self, event: Any, order: bool) -> None:
        try:
            if order and not self.attached:
                self.engine.handle(event)
            else:
                self.ledger.apply(event)
        except ArflowError as exc:
            self.outcomes.append(type(exc).__name__)
        else:
            self.outcomes.append("ok")

    def step(self, s: Step) -> None:
        kind = s[0]
        if kind == "submit":
            oid = f"SO-{self.seq + 1}"
            self.orders.append(oid)
            e: Any = OrderSubmitted(
                **self._meta("sales"),
                order_id=oid,
                customer_id=s[1],
                amount=cny(s[2]),
                submitted_on=self.today,
            )
            self._give(e, order=True)
        elif kind == "approve":
            if not self.orders:
                return
            oid = self.orders[s[1] % len(self.orders)]
            self._give(OrderApproved(**self._meta(s[2]), order_id=oid, approver=s[2]), True)
        elif kind == "invoice":
            issued = self.today + timedelta(min(s[3], 0))
            e = InvoiceIssued(
                **self._meta(),
                number=f"INV-{self.seq + 1}",
                customer_id=s[1],
                issue_date=issued,
                due_date=self.today + timedelta(s[3]),
                amount=cny(s[2]),
            )
            self._give(e, order=False)
        elif kind == "pay":
            e = PaymentReceived(
                **self._meta("bank"),
                payment_id=f"P-{self.seq + 1}",
                customer_id=s[1],
                amount=cny(s[2]),
                received_on=self.today,
            )
            self._give(e, order=False)
        else:
            self.today += timedelta(s[1])

    def book(self) -> dict[str, Any]:
        store = self.ledger.store
        objects = dump_book(store)
        return {
            "book": objects,
            "log": list(store.event_log()),
            "audit": {
                (kind, oid): [r.model_dump(mode="json") for r in store.audit_trail(kind, oid)]
                for kind, objs in objects.items()
                for oid in objs
            },
            "decisions": sorted(asdict(d).items() for d in store.decisions()),
            "outbox": sorted(
                (o.key, o.channel, o.customer_id, o.body, o.status, o.next_at)
                for o in store.outbox()
            ),
            "outcomes": self.outcomes,
        }


def same_book(make: Callable[[], Store], sequence: list[Step]) -> dict[str, Any]:
    engine_host, ledger_host = Host(make(), attached=False), Host(make(), attached=True)
    for s in sequence:
        engine_host.step(s)
        ledger_host.step(s)
    got, want = ledger_host.book(), engine_host.book()
    for part in want:
        assert got[part] == want[part], part
    return want


_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "database": None,
}


@pytest.mark.parametrize(
    ("backend", "examples"),
    [
        ("memory", 50),
        ("sqlite", 12),
        pytest.param("postgres", 3, marks=pytest.mark.postgres),
    ],
)
def test_ledger_apply_with_the_engine_attached_leaves_the_book_engine_handle_leaves(
    store_factory: Callable[[], Store], examples: int
) -> None:
    @settings(max_examples=examples, **_SETTINGS)
    @given(sequence=steps)
    def check(sequence: list[Step]) -> None:
        same_book(store_factory, sequence)

    check()


def test_a_sequence_that_locks_and_refuses_is_the_same_both_ways(
    store_factory: Callable[[], Store],
) -> None:
    """By hand: an invoice recorded with ``Ledger.apply`` takes CA to 90% of its limit (no
    lock yet); the next order is held by the lock settled before it, an approval by the
    intern is refused and the manager's passes; a D-grade order waits for its prepayment."""
    want = same_book(
        store_factory,
        [
            ("invoice", "CA", 45_000, 20),
            ("submit", "CA", 1_000),
            ("approve", 0, "intern"),
            ("approve", 0, "zhang.min"),
            ("submit", "CD", 5_000),
            ("approve", 1, "intern"),
            ("day", 1),
            ("submit", "CB", 10_000),
        ],
    )
    assert want["outcomes"] == ["ok", "ok", "NotAuthorized", "ok", "ok", "NotAuthorized", "ok"]
    states = {k: o["state"] for k, o in want["book"]["order"].items()}
    assert states == {"SO-5": "approved", "SO-8": "pending_approval", "SO-10": "approved"}
    assert want["decisions"]  # the lock and the orders' decisions were recorded
    assert want["outbox"]  # with their messages


def test_a_replay_into_a_ledger_with_an_engine_attached_decides_nothing_again(
    store_factory: Callable[[], Store],
) -> None:
    """``replay`` (``apply_all``) never consults the policy: the log holds the decisions'
    own events already, and the replayed book is the book."""
    host = Host(store_factory(), attached=True)
    for s in [("invoice", "CA", 45_000, 20), ("submit", "CA", 1_000), ("submit", "CB", 5_000)]:
        host.step(s)
    target = Ledger(store_factory())
    Engine(target, pack()).attach()
    assert target.replay(host.ledger.store) == host.ledger.store.event_count()
    assert dump_book(target.store) == dump_book(host.ledger.store)
    assert target.store.decisions() == []  # nothing decided again
