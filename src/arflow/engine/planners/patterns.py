"""Patterns over a customer's history: unpaid promises (every customer with an open promise
past its date plus grace) and runs of late payments (the customers a day looks at, and the
payer as each payment arrives), matched by the matcher the pack chose (``settings.matcher``:
durable-rules or the built-in one, which decide the same)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from ...decisions import Decision, decision_key
from ...domain import PromiseStatus, PromiseToPay
from ...events import BaseEvent, PaymentReceived
from ...ledger import Applied
from ...rules import patterns as dr
from ...rules.loader import RulePack
from ...rules.schema import PatternRule, Settings
from .._context import Day
from .._explain import _jsonable_deep, _why
from .._results import Failure, _holds


def pattern_matcher(patterns: Sequence[dr.Pattern], choice: dr.MatcherChoice) -> dr.PatternMatching:
    """The matcher a pack chose: ``builtin``, ``durable``, or ``auto`` (durable-rules when it
    imports here, else the built-in one). ``durable`` where it does not import raises
    :class:`RuntimeError` naming the fix (the loader refuses such a pack first)."""
    if choice == "builtin" or (choice == "auto" and not dr.durable_available()):
        return dr.BuiltinPatternMatcher(patterns)
    if not dr.durable_available():
        raise RuntimeError(f"settings.matcher: durable {dr.DURABLE_MISSING}")
    from ...rules.durable import PatternMatcher

    return PatternMatcher(patterns)


class PatternPlanner:
    """Holds the pattern matcher of a pack's patterns (built on first use; a durable-rules
    one has its own host); a :class:`HistoryPlanner` and an :class:`EventPlanner`.

    A matcher is driven from one thread at a time (it raises otherwise); an engine shared
    by threads (a run in one, events handled in others) takes turns on it here."""

    def __init__(self) -> None:
        self._matcher: dr.PatternMatching | None = None
        self._turn = threading.Lock()  # building the matcher, and each match

    def matcher(self, pack: RulePack, settings: Settings) -> dr.PatternMatching | None:
        """The matcher of ``pack``'s patterns (None when it has none)."""
        if self._matcher is not None or not pack.patterns:
            return self._matcher
        with self._turn:
            return self._build(pack, settings)

    def _build(self, pack: RulePack, settings: Settings) -> dr.PatternMatching | None:
        if self._matcher is None and pack.patterns:
            built: list[dr.Pattern] = []
            for rule in pack.patterns:
                spec: PatternRule = rule.spec
                if spec.match == "unpaid_promise":
                    grace = spec.grace_days
                    if grace is None:
                        grace = settings.promise_grace_days
                    built.append(dr.UnpaidPromise(rule.id, grace))
                else:
                    assert spec.count is not None and spec.window_days is not None
                    built.append(dr.LatePayments(rule.id, spec.count, spec.window_days))
            self._matcher = pattern_matcher(built, settings.matcher)
        return self._matcher

    def close(self) -> None:
        """Free the matcher (a durable-rules one's rulesets), if one was built."""
        if self._matcher is not None:
            self._matcher.close()
            self._matcher = None

    def plan_day(self, day: Day) -> None:
        """Unpaid promises of every customer with an open promise past its date plus grace;
        late-payment runs of the customers evaluated today (those are also checked as each
        payment arrives, in ``Engine.handle``)."""
        if self.matcher(day.pack, day.settings) is None:
            return
        as_of, plan, mine = day.as_of, day.plan, day.mine
        overdue: dict[str, list[PromiseToPay]] = defaultdict(list)
        if any(r.spec.match == "unpaid_promise" for r in day.pack.patterns):
            for p in day.store.find("promise", states=[PromiseStatus.OPEN]):
                if p.promised_date < as_of and (mine is None or mine(p.customer_id)):
                    overdue[p.customer_id].append(p)
        customers = sorted(set(overdue) | set(day.facts))
        try:
            plan.decisions.extend(self.decisions(day, customers, plan.failures))
        except Exception as exc:
            plan.failures.append(Failure("patterns", ",".join(customers[:5]), str(exc)))

    def on_event(self, event: BaseEvent, applied: Applied, day: Day) -> None:
        """A payment: the late-payment runs of its payer."""
        if isinstance(event, PaymentReceived) and self.matcher(day.pack, day.settings) is not None:
            late = self.decisions(day, [event.customer_id], day.plan.failures)
            day.plan.decisions.extend(d for d in late if d.subject_kind == "customer")

    def decisions(
        self, day: Day, customer_ids: Sequence[str], failures: list[Failure]
    ) -> list[Decision]:
        """The patterns matched in these customers' histories; a rule whose condition fails
        on a customer is reported in ``failures`` and the others go on."""
        matcher = self.matcher(day.pack, day.settings)
        if matcher is None or not customer_ids:
            return []
        as_of, store, cache, patterns = day.as_of, day.store, day.facts, day.pack.patterns
        cache.prefetch(customer_ids)
        histories: dict[str, tuple[list[dr.Promise], list[dr.Payment]]] = {}
        promises: dict[tuple[str, str, date], PromiseToPay] = {}
        least_late = min(
            (r.spec.count for r in patterns if r.spec.match == "late_payments"),
            default=10**9,
        )
        for start in range(0, len(customer_ids), 2000):
            chunk = list(customer_ids[start : start + 2000])
            paid = store.find_for_customers("payment", chunk)
            open_promises = store.find_for_customers("promise", chunk)
            for cid in chunk:
                due = {r.id: r.due_date for r in cache.get(cid).receivables}
                pays = [
                    dr.Payment(a.receivable_id, p.received_on, due[a.receivable_id])
                    for p in paid.get(cid, ())
                    if not p.reversed
                    for a in p.allocations
                    if a.receivable_id in due
                ]
                proms = []
                for pr in open_promises.get(cid, ()):
                    if pr.status != PromiseStatus.OPEN:
                        continue
                    for rid in pr.receivable_ids:
                        proms.append(dr.Promise(rid, pr.made_on, pr.promised_date))
                        promises[(rid, pr.made_on.isoformat(), pr.promised_date)] = pr
                # only histories that could match reach the matcher: a promise, or enough
                # late payments for the smallest count
                if proms or sum(p.paid_on > p.due_date for p in pays) >= least_late:
                    histories[cid] = (proms, pays)
        rules = {r.id: r for r in patterns}
        out: list[Decision] = []
        seen: set[str] = set()
        with self._turn:
            matched = matcher.match_details(histories, as_of)
        for cid, found in sorted(matched.items()):
            cf = cache.get(cid)
            customer = cf.customer
            for name, obj in found:
                rule = rules[name]
                spec: PatternRule = rule.spec
                if not _holds(rule, cf.facts, failures, "customer", cid, cid):
                    continue
                if isinstance(obj, dr.Promise):
                    pr = promises[(obj.receivable_id, obj.made_on.isoformat(), obj.promised_date)]
                    key = decision_key("pattern", rule.id, pr.id)
                    subject = ("promise", pr.id)
                    detail: dict[str, Any] = {
                        "match": spec.match,
                        "promise": pr.id,
                        "promised_date": pr.promised_date,
                        "unpaid_receivable": obj.receivable_id,
                        "break_promise": spec.break_promise,
                    }
                    currency: str | None = pr.amount.currency
                else:
                    key = decision_key("pattern", rule.id, cid, obj.receivable_id, obj.paid_on)
                    subject = ("customer", cid)
                    detail = {
                        "match": spec.match,
                        "count": spec.count,
                        "window_days": spec.window_days,
                        "first_late_payment": {
                            "receivable": obj.receivable_id,
                            "paid_on": obj.paid_on,
                            "due_date": obj.due_date,
                        },
                    }
                    currency = None
                if key in seen:
                    continue
                seen.add(key)
                acts = tuple(spec.actions)
                out.append(
                    Decision(
                        key=key,
                        kind="pattern",
                        rule=rule.id,
                        subject_kind=subject[0],
                        subject_id=subject[1],
                        customer_id=cid,
                        currency=currency,
                        occurrence=as_of,
                        as_of=as_of,
                        actions=acts,
                        recipients=day.recipients(customer, acts),
                        send_at=day.send_at(customer, acts),
                        why=_why(
                            rule.id,
                            cf.facts,
                            [rule.when],
                            {k: _jsonable_deep(v) for k, v in detail.items()},
                            ("customer.on_time_rate", "customer.open_promises"),
                        ),
                    )
                )
        return out
