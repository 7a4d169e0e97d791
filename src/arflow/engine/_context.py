"""The fact context a day is planned in: each customer's facts read once (a few queries for
many customers), with the customer and its receivables beside them as typed fields, and
the day itself (date, plan, rules, addressing) that every planner reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ..domain import Customer, PromiseToPay, Receivable
from ..errors import ArflowError
from ..ledger import Ledger
from ..rules.facts import customer_facts, receivable_facts
from ..rules.loader import RulePack
from ..rules.schema import Action, Settings
from ..store.base import UNAPPLIED, Store
from ..summary import ReceivableSummary
from ._address import SendTimes, _recipients
from ._results import Plan


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """One customer as of a day: its facts (``customer.*``), the customer, and a summary of
    every receivable it has (closed ones feed the payment behaviour facts)."""

    customer: Customer
    facts: dict[str, Any]
    receivables: Sequence[ReceivableSummary]


class FactCache:
    """Customer facts as of ``as_of``, read on first use or prefetched in chunks."""

    def __init__(self, store: Store, settings: Settings, as_of: date) -> None:
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

    def latest_run(self) -> date | None:
        """The date of the book's latest recorded run (None: none yet), read once a day."""
        if self._latest_run is None:
            self._latest_run = (max((r.as_of for r in self.store.runs()), default=None),)
        return self._latest_run[0]

    @property
    def store(self) -> Store:
        return self.facts.store

    def send_at(self, customer: Customer) -> datetime | None:
        """When a message of the day to ``customer`` may go out (None: at once)."""
        return self.send_times.at(customer, self.as_of, self.window, self.calendar)

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
