"""The fact context a day is planned in: each customer's facts read once (a few queries for
many customers), with the customer and its receivables beside them as typed fields, and
the day itself (date, plan, rules, addressing) that every planner reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from ..domain import ROLE_HOLDERS, AuditRecord, Customer, Person, PromiseToPay, Receivable
from ..errors import ArflowError, UnknownObject
from ..ledger import Ledger
from ..messages import person
from ..rules.facts import customer_facts, receivable_facts
from ..rules.loader import RulePack
from ..rules.schema import Action, Settings
from ..store.base import UNAPPLIED, RunRecord, Store, StoreTx
from ..summary import ReceivableSummary, summary_of
from ._address import SendTimes, _recipients
from ._results import Plan


class DayBook(Protocol):
    """What planners read the book through (``day.store``): the committed :class:`Store`
    when a day is planned, a :class:`TxBook` over the open transaction when an event is
    (``Engine.handle``). Every :class:`Store` is one."""

    def get(self, kind: str, object_id: str) -> Any | None: ...
    def find(
        self, kind: str, *, customer_id: str | None = None, states: Iterable[str] | None = None
    ) -> list[Any]: ...
    def get_many(self, kind: str, ids: Iterable[str]) -> dict[str, Any]: ...
    def find_for_customers(
        self, kind: str, customer_ids: Iterable[str], *, states: Iterable[str] | None = None
    ) -> dict[str, list[Any]]: ...
    def receivable_summaries(
        self, customer_ids: Iterable[str]
    ) -> dict[str, list[ReceivableSummary]]: ...
    def known_decisions(self, keys: Iterable[str]) -> set[str]: ...
    def all(self, kind: str) -> Iterator[Any]: ...
    def find_due(
        self,
        due_from: date,
        due_to: date,
        states: Iterable[str],
        *,
        customers: Callable[[str], bool] | None = None,
    ) -> list[Any]: ...
    def customers_changed_since(self, mark: int, ignore: Iterable[str] = ()) -> set[str]: ...
    def runs(self) -> list[RunRecord]: ...
    def audit_trail(self, kind: str, object_id: str) -> list[AuditRecord]: ...


class TxBook:
    """The book as an open transaction sees it, for the planners of ``Engine.handle``:
    the event and the decisions recorded so far are not committed yet, and the planners
    must decide on them. Reads of objects by id and by customer go through the
    transaction (``StoreTx.get``/``find``: its own writes, then the committed book); the
    day-wide sweeps a day's run makes (every object of a kind, objects by state alone, due
    dates, changes since a mark, runs) read the committed book, which an event planner
    does not need: it reads the customers the event touched."""

    __slots__ = ("store", "tx")

    def __init__(self, tx: StoreTx, store: Store) -> None:
        self.tx, self.store = tx, store

    def get(self, kind: str, object_id: str) -> Any | None:
        return self.tx.get(kind, object_id)

    def find(
        self, kind: str, *, customer_id: str | None = None, states: Iterable[str] | None = None
    ) -> list[Any]:
        if customer_id is None:
            return self.store.find(kind, states=states)
        return self.tx.find(kind, customer_id=customer_id, states=states)

    def get_many(self, kind: str, ids: Iterable[str]) -> dict[str, Any]:
        wanted = list(ids)
        self.tx.prefetch([], {kind: wanted})
        return {i: o for i in wanted if (o := self.tx.get(kind, i)) is not None}

    def find_for_customers(
        self, kind: str, customer_ids: Iterable[str], *, states: Iterable[str] | None = None
    ) -> dict[str, list[Any]]:
        wanted = list(customer_ids)
        self.tx.prefetch([], {}, {kind: wanted})
        chosen = None if states is None else list(states)
        return {
            c: found for c in wanted if (found := self.tx.find(kind, customer_id=c, states=chosen))
        }

    def receivable_summaries(
        self, customer_ids: Iterable[str]
    ) -> dict[str, list[ReceivableSummary]]:
        found = self.find_for_customers("receivable", customer_ids)
        return {c: [summary_of(r) for r in rs] for c, rs in found.items()}

    def known_decisions(self, keys: Iterable[str]) -> set[str]:
        return self.tx.known_decisions(keys)

    def all(self, kind: str) -> Iterator[Any]:
        return self.store.all(kind)

    def audit_trail(self, kind: str, object_id: str) -> list[AuditRecord]:
        # the committed trail: what a lock decision's key counts (past placements and lifts)
        return self.store.audit_trail(kind, object_id)

    def find_due(
        self,
        due_from: date,
        due_to: date,
        states: Iterable[str],
        *,
        customers: Callable[[str], bool] | None = None,
    ) -> list[Any]:
        return self.store.find_due(due_from, due_to, states, customers=customers)

    def customers_changed_since(self, mark: int, ignore: Iterable[str] = ()) -> set[str]:
        return self.store.customers_changed_since(mark, ignore)

    def runs(self) -> list[RunRecord]:
        return self.store.runs()


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """One customer as of a day: its facts (``customer.*``), the customer, and a summary of
    every receivable it has (closed ones feed the payment behaviour facts)."""

    customer: Customer
    facts: dict[str, Any]
    receivables: Sequence[ReceivableSummary]


class FactCache:
    """Customer facts as of ``as_of``, read on first use or prefetched in chunks."""

    def __init__(self, store: DayBook, settings: Settings, as_of: date) -> None:
        self.store = store
        self.settings = settings
        self.as_of = as_of
        self._by_id: dict[str, CustomerFacts] = {}

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._by_id

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, customer_id: str) -> CustomerFacts:
        """The customer's facts (read now if not read yet)."""
        got = self._by_id.get(customer_id)
        if got is None:
            self.prefetch([customer_id])
            got = self._by_id[customer_id]
        return got

    def prefetch(self, customer_ids: Iterable[str]) -> None:
        """Customer facts for many customers with a handful of queries, not three each."""
        ids = sorted({c for c in customer_ids if c not in self._by_id})
        store, settings = self.store, self.settings
        for start in range(0, len(ids), 2000):
            chunk = ids[start : start + 2000]
            customers = store.get_many("customer", chunk)
            objs: dict[str, dict[str, list[Any]]] = {
                k: store.find_for_customers(k, chunk) for k in ("order", "promise")
            }
            # only the payments and credit notes with money left to apply (an indexed
            # state): what ``customer.unapplied_credit`` sums; most are applied long ago
            for k in ("payment", "credit_note"):
                objs[k] = store.find_for_customers(k, chunk, states=(UNAPPLIED,))
            # the done tasks: the calls among them feed the contact facts
            objs["task"] = store.find_for_customers("task", chunk, states=("done",))
            # every receivable of the customer (closed ones feed the payment behaviour
            # facts): summaries, not models
            objs["receivable"] = dict(store.receivable_summaries(chunk))
            for cid in chunk:
                c = customers.get(cid)
                if c is None:
                    raise ArflowError(f"unknown customer {cid!r}")
                summaries = objs["receivable"].get(cid, [])
                facts = customer_facts(
                    c,
                    summaries,
                    objs["order"].get(cid, []),
                    objs["promise"].get(cid, []),
                    self.as_of,
                    base_currency=settings.base_currency,
                    min_balance=settings.min_balance,
                    credits=[*objs["payment"].get(cid, []), *objs["credit_note"].get(cid, [])],
                    calls=objs["task"].get(cid, []),
                )
                self._by_id[cid] = CustomerFacts(c, facts, summaries)

    def contract_facts(self, customer: Customer, contract_id: str) -> dict[str, Any]:
        """Customer facts computed from one contract's receivables and orders only."""
        store = self.store
        return customer_facts(
            customer,
            [
                r
                for r in store.find("receivable", customer_id=customer.id)
                if r.contract_id == contract_id
            ],
            [
                o
                for o in store.find("order", customer_id=customer.id)
                if o.contract_id == contract_id
            ],
            [],
            self.as_of,
            base_currency=self.settings.base_currency,
            min_balance=self.settings.min_balance,
        )


@dataclass(eq=False)
class Day:
    """What planners read and write while one day (or one event) is planned: the date,
    the plan their decisions go into, the rules, the book and the customers' facts."""

    as_of: date
    since: date | None
    plan: Plan
    facts: FactCache
    pack: RulePack
    settings: Settings
    calendar: Any
    ledger: Ledger
    window: Any = None
    send_times: SendTimes = field(default_factory=SendTimes)
    #: whether a customer is in the slice being planned (None: every customer)
    mine: Any = None
    #: the audit mark the latest run recorded (None: look at every locked customer)
    last_mark: int | None = None
    #: promises read for the receivables of the day, by id
    promises: dict[str, PromiseToPay | None] = field(default_factory=dict)
    #: the date of the book's latest run, once read (see :meth:`latest_run`)
    _latest_run: tuple[date | None] | None = None
    #: the time zone of each person id or role:NAME value read so far (None: no person)
    _zones: dict[str, str | None] = field(default_factory=dict)
    #: per customer, what its older open items take of its unapplied credit, by receivable
    #: (the dunning planner's, made once a day for a customer with credit)
    credit_before: dict[str, dict[str, Any]] = field(default_factory=dict)

    def latest_run(self) -> date | None:
        """The date of the book's latest recorded run (None: none yet), read once a day."""
        if self._latest_run is None:
            self._latest_run = (max((r.as_of for r in self.store.runs()), default=None),)
        return self._latest_run[0]

    @property
    def store(self) -> DayBook:
        """The book the day is planned on (see :class:`DayBook`)."""
        return self.facts.store

    def get(self, kind: str, object_id: str) -> Any:
        """An object of the book the day reads; :class:`~arflow.errors.UnknownObject` if
        there is none."""
        obj = self.facts.store.get(kind, object_id)
        if obj is None:
            raise UnknownObject(kind, object_id)
        return obj

    def send_at(self, customer: Customer, actions: Iterable[Action] = ()) -> datetime | None:
        """When a message of the day about ``customer`` may go out (None: at once): in the
        time zone of its customer's contact, or, when ``actions`` address people of the
        company only, in that of the first person they reach (``Person.timezone``)."""
        if self.window is None:
            return None
        tz = self.internal_zone(customer, actions)
        return self.send_times.at(customer, self.as_of, self.window, self.calendar, tz=tz)

    def internal_zone(self, customer: Customer, actions: Iterable[Action]) -> str | None:
        """The time zone of the first person of the directory ``actions`` reach, when none
        of them is addressed to the customer (None: the customer's contact's zone)."""
        acts = list(actions)
        if not acts or any("customer" in (*a.to, *a.cc) for a in acts):
            return None
        for a in acts:
            for role in a.to:
                value = person(customer, role) or self.pack.roles.get(role)
                if value:
                    tz = self._zone_of(value)
                    if tz is not None:
                        return tz
        return None

    def _zone_of(self, value: str) -> str | None:
        """The time zone of the person (or first active role holder) ``value`` names."""
        if value not in self._zones:
            found: Person | None = None
            if value.startswith(ROLE_HOLDERS):
                role = value[len(ROLE_HOLDERS) :]
                found = min(
                    (p for p in self.store.all("person") if p.active and role in p.roles),
                    key=lambda p: p.id,
                    default=None,
                )
            else:
                got = self.store.get("person", value)
                found = got if isinstance(got, Person) and got.active else None
            self._zones[value] = None if found is None else found.timezone
        return self._zones[value]

    def recipients(self, customer: Customer, actions: Iterable[Action]) -> dict[str, str | None]:
        return _recipients(customer, actions, self.pack.roles)

    def receivable_facts(self, r: Receivable) -> tuple[CustomerFacts, dict[str, Any]]:
        """The receivable's customer and the receivable's facts (its customer's merged in)."""
        cf = self.facts.get(r.customer_id)
        promise = None
        if r.promise_id is not None:
            promise = self.promises.get(r.promise_id) or self.store.get("promise", r.promise_id)
            self.promises[r.promise_id] = promise
        return cf, receivable_facts(r, cf.facts, self.as_of, self.calendar, promise=promise)
