"""Issue 16 item 4: the concurrency contract (docs/embedding.md#threads-processes-and-asyncio).

One ``Ledger`` and one ``Engine`` shared by the threads of a process, on every backend
(memory, SQLite file, PostgreSQL); processes each with their own ``Ledger`` and ``Engine``
on one book (an SQLite file, PostgreSQL); an asyncio host calling arflow through a bounded thread pool. Every
test is bounded in threads, processes, events and time (``join`` with a timeout), and
asserts invariants, never timings:

* every event is applied exactly once, whichever thread or process sent it and however
  often (a duplicate by event id is one application);
* money is conserved: open balances less unapplied credit equal invoiced less paid;
* nothing is lost or applied twice: the event log replayed into an empty book gives the
  same book and as many audit records (the writers were serialised);
* concurrent approvals never take a customer past its credit limit (the write lock
  serialises each order's read-validate-write).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
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
    Dispatcher,
    Engine,
    InvoiceIssued,
    Ledger,
    MemoryStore,
    Message,
    Money,
    OrderSubmitted,
    PaymentReceived,
    Store,
    dump_book,
)
from arflow.events import parse_event
from arflow.rules import default_pack_path
from arflow.rules.loader import RulePack, load_pack
from arflow.store.base import OutboxRecord
from arflow.store.sql import SqlStore

from .conftest import POSTGRES_URL, _drop_schema, _postgres_engine

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SHARED = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
THREADS = 8
#: no test waits longer than this for its threads or processes
TIMEOUT = 120.0
AT = datetime(2026, 10, 1, 9, tzinfo=UTC)
DAY = date(2026, 10, 1)
LIMIT = 50_000

_PACK: list[RulePack] = []


def pack() -> RulePack:
    if not _PACK:
        _PACK.append(load_pack(default_pack_path()))
    return _PACK[0]


def cny(x: int | str | Decimal) -> Money:
    return Money.of(x, "CNY")


def customer(cid: str, limit: int | None = None) -> CustomerRegistered:
    c = Customer(
        id=cid,
        name=f"Customer {cid}",
        salesperson="li.wei",
        contacts=[Contact(name="AP", email=f"ap@{cid.lower()}.example")],
        credit=CreditProfile(grade="B", credit_limit=None if limit is None else cny(limit)),
    )
    return CustomerRegistered(event_id=f"crm:{cid}", occurred_at=AT, actor="crm", customer=c)


def invoice(cid: str, i: int, amount: int) -> InvoiceIssued:
    return InvoiceIssued(
        event_id=f"erp:{cid}-INV-{i}",
        occurred_at=AT,
        actor="erp",
        number=f"{cid}-INV-{i}",
        customer_id=cid,
        issue_date=DAY,
        due_date=DAY + timedelta(30 + i),
        amount=cny(amount),
    )


def payment(cid: str, i: int, amount: int) -> PaymentReceived:
    return PaymentReceived(
        event_id=f"bank:{cid}-PAY-{i}",
        occurred_at=AT,
        actor="bank",
        payment_id=f"{cid}-PAY-{i}",
        customer_id=cid,
        amount=cny(amount),
        received_on=DAY,
    )


def order(cid: str, i: int, amount: int) -> OrderSubmitted:
    return OrderSubmitted(
        event_id=f"shop:{cid}-SO-{i}",
        occurred_at=AT,
        actor="shop",
        order_id=f"{cid}-SO-{i}",
        customer_id=cid,
        amount=cny(amount),
        submitted_on=DAY,
    )


def money_events(customers: Sequence[str], invoices: int = 6, payments: int = 4) -> list[Any]:
    """Invoices and payments of each customer, interleaved: in whatever order threads apply
    them, each is accepted (a payment before any invoice is kept as unapplied credit)."""
    out: list[Any] = []
    for cid in customers:
        out += [invoice(cid, i, 1_000 * (i + 1)) for i in range(invoices)]
        out += [payment(cid, i, 2_500 + 100 * i) for i in range(payments)]
    return out


def in_threads(
    work: Callable[[Any], Any], items: Sequence[Any], threads: int = THREADS
) -> list[Any]:
    """``work`` of every item on a bounded pool of threads, the first ``threads`` of them
    started together; the results in the items' order (an exception is returned in its
    item's place)."""
    go = threading.Event()

    def one(item: Any) -> Any:
        go.wait(TIMEOUT)
        try:
            return work(item)
        except Exception as exc:  # returned, so the test says which item failed
            return exc

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(one, item) for item in items]
        go.set()
        return [f.result(timeout=TIMEOUT) for f in futures]


def check_book(store: Store, events: Sequence[Any], before: Sequence[Any] = ()) -> None:
    """Each event logged once; money conserved (over ``before`` and ``events``: every
    invoice and payment of the book); the log replayed gives the same book."""
    ids = [json.loads(body)["event_id"] for _t, body in store.event_log()]
    assert len(ids) == len(set(ids))
    assert {e.event_id for e in events} <= set(ids)
    money = [*before, *events]
    invoiced = sum((e.amount.amount for e in money if isinstance(e, InvoiceIssued)), Decimal(0))
    paid = sum((e.amount.amount for e in money if isinstance(e, PaymentReceived)), Decimal(0))
    open_ = sum((r.open_balance.amount for r in store.all("receivable")), Decimal(0))
    unapplied = sum((p.unapplied.amount for p in store.all("payment") if p.unapplied), Decimal(0))
    assert open_ - unapplied == invoiced - paid
    again = Ledger(MemoryStore())
    again.replay(store)
    assert dump_book(again.store) == dump_book(store)
    assert again.store.audit_count() == store.audit_count()
    for e in events:  # each subject's trail: its event's records, as a replay writes them
        kind, oid = subject_of(e)
        trail = [r.event_id for r in store.audit_trail(kind, oid)]
        assert e.event_id in trail
        assert trail == [r.event_id for r in again.store.audit_trail(kind, oid)]


def subject_of(e: Any) -> tuple[str, str]:
    if isinstance(e, InvoiceIssued):
        return "receivable", e.number
    if isinstance(e, PaymentReceived):
        return "payment", e.payment_id
    if isinstance(e, OrderSubmitted):
        return "order", e.order_id
    return "customer", e.customer.id


# -- threads through one Ledger -----------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_threads_apply_through_one_ledger_each_event_once(
    store_factory: Callable[[], Store],
) -> None:
    """8 threads apply 40 events through one Ledger, each event sent twice (a retry from
    another thread): 40 applications, 40 duplicates, a consistent book."""
    ledger = Ledger(store_factory())
    customers = ["C1", "C2", "C3", "C4"]
    for cid in customers:
        ledger.apply(customer(cid))
    events = money_events(customers)
    sent = events + events[::-1]  # every event twice, the copies in another order
    results = in_threads(ledger.apply, sent)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    fresh = [r.event_id for r in results if not r.duplicate]
    assert sorted(fresh) == sorted(e.event_id for e in events)
    assert sum(r.duplicate for r in results) == len(events)
    check_book(ledger.store, events)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_event_from_many_threads_is_applied_once(store_factory: Callable[[], Store]) -> None:
    """The same payment, sent by 8 threads at the same moment: one application."""
    ledger = Ledger(store_factory())
    ledger.apply(customer("C1"))
    ledger.apply(invoice("C1", 0, 10_000))
    results = in_threads(ledger.apply, [payment("C1", 0, 4_000)] * THREADS)
    assert [r.duplicate for r in results].count(False) == 1
    assert ledger.balance("C1") == {"CNY": cny("6000.00")}
    assert len(ledger.audit_trail("payment", "C1-PAY-0")) == 1


# -- threads through one Engine ------------------------------------------------------------------

amounts = st.lists(st.integers(1, 30).map(lambda k: k * 1_000), min_size=4, max_size=16)


def approved_within_limit(store: Store, customers: Sequence[str]) -> None:
    """No customer's approved orders exceed its credit limit; every order is decided."""
    for cid in customers:
        orders = store.find("order", customer_id=cid)
        assert {str(o.state) for o in orders} <= {"approved", "pending_approval", "rejected"}
        approved = sum((o.amount.amount for o in orders if o.state == "approved"), Decimal(0))
        assert approved <= LIMIT


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=4, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=amounts)
def test_threads_handling_orders_never_pass_the_credit_limit(
    store_factory: Callable[[], Store], sizes: list[int]
) -> None:
    """Orders for two customers submitted through one Engine by 8 threads at once: each is
    decided once, and the approved ones of a customer never exceed its credit limit."""
    ledger = Ledger(store_factory())
    engine = Engine(ledger, pack())
    for cid in ("C1", "C2"):
        ledger.apply(customer(cid, LIMIT))
    orders = [order(("C1", "C2")[i % 2], i, n) for i, n in enumerate(sizes)]
    results = in_threads(engine.handle, orders)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert all(not applied.duplicate and decisions for applied, decisions in results)
    approved_within_limit(ledger.store, ["C1", "C2"])
    keys = [d.key for _a, decisions in results for d in decisions]
    assert len(keys) == len(set(keys))
    check_book(ledger.store, orders)


@pytest.mark.parametrize("backend", SHARED)
def test_a_run_planning_in_one_thread_while_others_handle_events(
    store_factory: Callable[[], Store],
) -> None:
    """A day's run (in slices, its pattern matcher busy) in one thread, payments and orders
    handled by others through the same Engine: nothing fails, each event is applied once,
    and the events see every customer (the run's slice is its own thread's)."""
    ledger = Ledger(store_factory())
    engine = Engine(ledger, pack())
    engine.slice_candidates = 4  # the run plans slice after slice
    customers = [f"C{i}" for i in range(6)]
    invoices = [invoice(cid, i, 2_000) for cid in customers for i in range(3)]
    for cid in customers:
        ledger.apply(customer(cid, LIMIT))
    for e in invoices:
        ledger.apply(e)
    events: list[Any] = [payment(cid, 0, 1_000) for cid in customers]
    events += [order(cid, 0, 60_000) for cid in customers]  # over the limit: approval
    runs: list[Any] = []

    def run_days() -> None:
        for n in range(3):
            runs.append(engine.run(DAY + timedelta(45 + n)))

    runner = threading.Thread(target=run_days)
    runner.start()
    results = in_threads(engine.handle, events, threads=4)
    runner.join(TIMEOUT)
    assert not runner.is_alive()
    assert [r for r in results if isinstance(r, Exception)] == []
    assert len(runs) == 3 and all(r.failures == [] for r in runs)
    for cid in customers:
        assert ledger.get("order", f"{cid}-SO-0").state == "pending_approval"
    check_book(ledger.store, events, before=invoices)


def test_a_runs_slice_is_its_own_threads() -> None:
    """What a run plans for (its slice, the customers planned again) is per thread."""
    engine = Engine(Ledger(), pack())
    engine._slice, engine._only = (0, 2), frozenset({"C1"})
    seen: list[Any] = []
    t = threading.Thread(target=lambda: seen.append((engine._slice, engine._only)))
    t.start()
    t.join(TIMEOUT)
    assert seen == [(None, None)]
    assert engine._slice == (0, 2) and engine._slice_filter() is not None


# -- one Dispatcher shared by threads -------------------------------------------------------------


class _FirstWaits:
    """An adapter whose first delivery waits until the test lets it go; the rest go
    straight through. Keeps every key it delivered, in order (from any thread)."""

    def __init__(self) -> None:
        self.entered, self.go = threading.Event(), threading.Event()
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def deliver(self, message: Message) -> str | None:
        with self._lock:
            first = not self.entered.is_set()
            self.entered.set()
        if first:
            assert self.go.wait(TIMEOUT)
        with self._lock:
            self.sent.append(message.key)
        return None


def test_a_dispatcher_shared_by_threads_keeps_each_batch_its_own_claims() -> None:
    """Thread A's batch stalls on its first message past the lease; thread B, through the
    same Dispatcher, takes the batch over and sends it. A then sends none of the rest: the
    claims B renewed are B's batch's, not A's (each run_once keeps its own)."""
    store = MemoryStore()
    with store.transaction() as tx:
        for i in range(3):
            m = Message(
                key=f"m{i}", channel="email", action="email", customer_id="C1",
                to=("ap@c1.example",), subject=f"Reminder {i}", text="Overdue.",
            )  # fmt: skip
            tx.add_outbox(
                OutboxRecord(key=m.key, channel="email", customer_id="C1", body=m.model_dump_json())
            )
    now = [AT]
    adapter = _FirstWaits()
    dispatcher = Dispatcher(
        store, {"email": adapter}, batch=3, lease=timedelta(seconds=60), clock=lambda: now[0]
    )
    a = threading.Thread(target=dispatcher.run_once)
    a.start()
    assert adapter.entered.wait(TIMEOUT)
    now[0] = AT + timedelta(minutes=5)  # A's lease is long over: its batch may be taken
    b = dispatcher.run_once()
    assert b.sent == 3
    adapter.go.set()
    a.join(TIMEOUT)
    assert not a.is_alive()
    # m0 was being handed over by A when B took it (the documented repeat, same key);
    # m1 and m2 are sent by B alone
    assert Counter(adapter.sent) == {"m0": 2, "m1": 1, "m2": 1}
    assert store.outbox_counts()["sent"] == 3


# -- processes, each with its own Ledger, on one database --------------------------------------


def _worker(url: str, bodies: list[str], handle: bool) -> tuple[int, int, int]:
    """A worker process: its own Ledger (and Engine) on the shared book; applies or handles
    the events given as JSON. Returns (applied, duplicates, errors)."""
    ledger = Ledger(url)
    engine = Engine(ledger, load_pack(default_pack_path())) if handle else None
    applied = duplicates = errors = 0
    try:
        for body in bodies:
            event = parse_event(body)
            try:
                if engine is not None and isinstance(event, OrderSubmitted):
                    got = engine.handle(event)[0]
                else:
                    got = ledger.apply(event)
            except ArflowError:
                errors += 1
                continue
            duplicates += got.duplicate
            applied += not got.duplicate
    finally:
        ledger.store.close()
    return applied, duplicates, errors


@pytest.fixture(params=SHARED)
def shared_book(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[str, SqlStore]]:
    """A book other processes can open by its URL: an SQLite file, or PostgreSQL in a
    schema of its own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'book.db'}"
        store = SqlStore(url)
        yield url, store
        store.close()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    store = SqlStore(_postgres_engine(schema))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}", store
    store.close()
    _drop_schema(schema)


def test_worker_processes_each_with_their_own_ledger(
    shared_book: tuple[str, SqlStore],
) -> None:
    """4 processes (a web app's workers), each with its own Ledger and Engine on one book
    (an SQLite file, PostgreSQL), share invoices, payments and orders, every event sent by
    two of them: each applied once, the limit kept, the book consistent."""
    url, store = shared_book
    ledger = Ledger(store)
    customers = ["C1", "C2", "C3"]
    for cid in customers:
        ledger.apply(customer(cid, LIMIT))
    events = money_events(customers, invoices=3, payments=2)
    events += [order(cid, i, 12_000) for cid in customers for i in range(5)]
    bodies = [e.model_dump_json() for e in events]
    k = 4
    # worker w sends slice w and, as a retry, slice w+1: every event comes from two workers
    parts = [bodies[w::k] + bodies[(w + 1) % k :: k] for w in range(k)]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=k, mp_context=spawn) as pool:
        futures = [pool.submit(_worker, url, part, True) for part in parts]
        counts = [f.result(timeout=TIMEOUT) for f in futures]
    assert sum(c[2] for c in counts) == 0
    assert sum(c[0] for c in counts) == len(events)
    assert sum(c[1] for c in counts) == len(events)
    # each customer's orders: 12,000 each under a 50,000 limit, after invoices of 6,000
    approved_within_limit(store, customers)
    check_book(store, events)


# -- an asyncio host ---------------------------------------------------------------------------


async def _serve_and_post(engine: Engine, events: Sequence[Any], clients: int) -> list[str]:
    """A tiny asyncio server taking one event per connection (a JSON line) and answering
    with the state of its subject; arflow runs on a bounded pool of 4 threads
    (``loop.run_in_executor``), the loop never blocks on it. ``clients`` connections post
    the events concurrently, in a task group."""
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="arflow")
    ledger = engine.ledger

    def post(event: Any) -> str:
        if isinstance(event, OrderSubmitted):
            engine.handle(event)
            return str(ledger.get("order", event.order_id).state)
        applied = ledger.apply(event)
        return "duplicate" if applied.duplicate else "applied"

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        try:
            answer = await loop.run_in_executor(executor, post, parse_event(line.decode()))
        except ArflowError as exc:
            answer = f"refused: {exc}"
        writer.write(answer.encode() + b"\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limit = asyncio.Semaphore(clients)

    async def client(event: Any) -> str:
        async with limit:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(event.model_dump_json().encode() + b"\n")
            await writer.drain()
            answer = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return answer.decode().strip()

    try:
        async with asyncio.timeout(TIMEOUT), server:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(client(e)) for e in events]
            return [t.result() for t in tasks]
    finally:
        executor.shutdown(wait=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_asyncio_host_posts_events_through_a_thread_pool(
    store_factory: Callable[[], Store],
) -> None:
    """An asyncio server, 10 clients at a time, 34 events (some twice): each applied once,
    orders decided within the limit, the book consistent."""
    ledger = Ledger(store_factory())
    engine = Engine(ledger, pack())
    for cid in ("C1", "C2"):
        ledger.apply(customer(cid, LIMIT))
    events = money_events(["C1", "C2"], invoices=4, payments=3)
    events += [order(cid, i, 9_000) for cid in ("C1", "C2") for i in range(5)]
    answers = asyncio.run(_serve_and_post(engine, events + events[:10], clients=10))
    assert not [a for a in answers if a.startswith("refused")]
    assert answers.count("duplicate") == 10  # events[:10] are invoices and payments
    approved_within_limit(ledger.store, ["C1", "C2"])
    check_book(ledger.store, events)
