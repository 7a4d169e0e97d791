"""Locks: orders blocked while a condition on the customer holds and unblocked when it stops
(a payment, a credit note, a raised limit), judged by the daily run for the customers it
looks at and by ``Engine.handle`` for every customer an event touched."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from typing import Any

from ...decisions import Decision, DecisionKind, decision_key
from ...domain import Customer
from ...events import BaseEvent
from ...ledger import Applied
from ...rules.loader import CompiledRule
from ...rules.schema import Action
from .._candidates import lock_customers
from .._context import Day, FactCache
from .._explain import _why
from .._results import Plan, _failure


class LockPlanner:
    """Places and lifts locks (a :class:`CustomerPlanner` and an :class:`EventPlanner`)."""

    def customers(self, day: Day) -> Iterable[str]:
        """The locked customers whose lock may have to lift today, and the customers the
        book changed for since the last run (a lock to place or lift)."""
        return [c.id for c in lock_customers(day.store, day.pack, day.last_mark, day.mine)]

    def plan_customer(self, plan: Plan, customer_id: str, as_of: date, day: Day) -> None:
        """Place the locks whose condition holds and lift those whose cause is gone.

        A contract-scoped lock is judged per contract, on facts computed from that
        contract's receivables and orders only; other scopes on the customer's facts."""
        if self._before_latest_run(day, as_of):
            return  # an earlier day run again must not undo what later days decided
        self._plan_locks(plan, customer_id, as_of, day)

    def _plan_locks(
        self, plan: Plan, customer_id: str, as_of: date, day: Day, occasion: str | None = None
    ) -> None:
        """:meth:`plan_customer` without the guard against earlier days; ``occasion`` (an
        event id) goes into the keys, so that a lock placed, lifted and placed again in
        one day by events is recorded each time."""
        cf = day.facts.get(customer_id)
        customer = cf.customer
        held = {(lk.lock_id, lk.ref) for lk in customer.locks}
        for rule in day.pack.locks:
            try:
                self._plan_lock(plan, day, rule, customer, cf.facts, held, as_of, occasion)
            except Exception as exc:  # one rule failing must not stop the others
                plan.failures.append(_failure("customer", customer_id, customer_id, rule.id, exc))

    def on_event(self, event: BaseEvent, applied: Applied, day: Day) -> None:
        """Locks of every customer whose objects the event changed."""
        if not day.pack.locks:
            return
        judged = self.judged_on(day)
        for cid in self._customers_touched(day, applied):
            self._plan_locks(day.plan, cid, judged.as_of, judged, event.event_id)

    @staticmethod
    def judged_on(day: Day) -> Day:
        """The day an event's locks are judged on: the event's own, or the book's latest
        run's when that is later. An event recorded late (a payment of last week) changes the
        book as it now stands, and locks stand as of the latest day, never an earlier one:
        judged as of the event's date, a partial payment of last week would lift today's
        suspension for an item that was not yet 30 days overdue then."""
        latest = day.latest_run()
        if latest is None or day.as_of >= latest:
            return day
        return replace(
            day,
            as_of=latest,
            since=latest,
            facts=FactCache(day.store, day.settings, latest),
            promises={},
            credit_before={},
            _latest_run=(latest,),
        )

    @staticmethod
    def _before_latest_run(day: Day, as_of: date) -> bool:
        """Whether ``as_of`` is earlier than the book's latest run: locks then stand as the
        later days left them."""
        latest = day.latest_run()
        return latest is not None and as_of < latest

    @staticmethod
    def _customers_touched(day: Day, applied: Applied) -> list[str]:
        """The customers whose objects an event changed (from its audit records)."""
        out: set[str] = set()
        for a in applied.audit:
            if a.subject_kind == "customer":
                out.add(a.subject_id)
                continue
            obj = day.store.get(a.subject_kind, a.subject_id)
            cid = getattr(obj, "customer_id", None)
            if isinstance(cid, str):
                out.add(cid)
        return sorted(out)

    @staticmethod
    def _plan_lock(
        plan: Plan,
        day: Day,
        rule: CompiledRule,
        customer: Customer,
        cf: dict[str, Any],
        held: set[tuple[str, str | None]],
        as_of: date,
        occasion: str | None = None,
    ) -> None:
        """Place or lift the lock of ``rule`` on ``customer`` (see :meth:`plan_customer`)."""
        customer_id = customer.id
        spec = rule.spec
        if spec.scope == "contract":
            subjects = [
                (c.id, day.facts.contract_facts(customer, c.id))
                for c in day.store.find("contract", customer_id=customer_id)
            ]
        else:
            ref = spec.order_type if spec.scope == "order_type" else None
            subjects = [(ref, cf)]
        for ref, facts in subjects:
            holds = rule.when is not None and rule.when(facts)
            if holds == ((rule.id, ref) in held):
                continue
            kind: DecisionKind = "lock" if holds else "unlock"
            acts: list[Action] = [
                Action(
                    type="block_orders" if holds else "unblock_orders",
                    scope=spec.scope,
                    order_type=spec.order_type,
                    reason=spec.description or rule.id,
                )
            ]
            # a lift has its own notice (never the lock's text), or none
            template = spec.template if holds else spec.lift_template
            if spec.notify and template:
                acts.append(Action(type="notify", to=spec.notify, template=template))
            where = ref if spec.scope == "contract" else None
            if occasion is None:  # a day's run: the key names the customer's lock history
                occasion = _generation(day, customer_id)
            plan.decisions.append(
                Decision(
                    key=decision_key(kind, rule.id, customer_id, where, as_of, occasion),
                    kind=kind,
                    rule=rule.id,
                    subject_kind="customer",
                    subject_id=customer_id,
                    customer_id=customer_id,
                    currency=facts["customer.currency"],
                    occurrence=as_of,
                    as_of=as_of,
                    actions=tuple(acts),
                    recipients=day.recipients(customer, acts),
                    send_at=day.send_at(customer, acts),
                    why=_why(
                        rule.id,
                        facts,
                        [rule.when],
                        {"holds": holds, "scope": spec.scope, "ref": ref},
                    ),
                )
            )


_LOCK_EVENTS = ("OrderLockPlaced", "OrderLockLifted")


def _generation(day: Day, customer_id: str) -> str | None:
    """What a day's lock decision adds to its key: how many times the customer's locks were
    placed or lifted so far (None: never, the key of before). A lock the day's run placed,
    that an event lifted and a change recorded with ``Ledger.apply`` calls for again, is
    placed again by a second run of the same day (under the day's key alone it was known,
    and left out); a run twice on an unchanged book still adds nothing, and two runners at
    once agree on the key."""
    n = sum(
        1 for a in day.store.audit_trail("customer", customer_id) if a.event_type in _LOCK_EVENTS
    )
    return f"g{n}" if n else None
