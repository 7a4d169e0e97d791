"""Dunning ladders: the steps due for a receivable in the day's window, sent, skipped as
stale on catch-up, or paused (a block, an exempt grade, a promise, an item the customer's
own unapplied credit covers, a small balance)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ...calendar import due_reach as _due_reach
from ...decisions import Decision, decision_key
from ...domain import Customer, Receivable
from ...money import Money
from ...rules.loader import CompiledLadder, CompiledStep
from ...rules.schema import Settings
from ...summary import CLOSED_STATES, ReceivableSummary
from .._context import CustomerFacts, Day
from .._explain import _why
from .._results import _failure

_DUNNING_FACTS = (
    "balance",
    "undisputed_balance",
    "days_past_due",
    "due_date",
    "state",
    "dunning_level",
)


def _anchors(r: Receivable, promise_date: date | None) -> dict[str, date]:
    out = {"due": r.due_date, "issue": r.issue_date}
    if promise_date is not None:
        out["promise"] = promise_date
    return out


def _pause_reason(
    settings: Settings,
    ladder: CompiledLadder,
    st: CompiledStep,
    facts: Mapping[str, Any],
    as_of: date,
    covered: str | None = None,
) -> str | None:
    """Why a step that is due must not go out now (None: it may). ``covered``: the
    customer's unapplied credit left for this item when it covers it (:func:`_covered_by`)."""
    if facts["dunning_block"]:
        return "dunning blocked"
    if facts.get("customer.grade") in ladder.exempt_grades:
        return f"grade {facts['customer.grade']} is exempt from ladder {ladder.id}"
    if facts["promised"] and facts["promise_date"] is not None:
        grace = facts["promise_date"] + timedelta(settings.promise_grace_days)
        if as_of <= grace:
            return f"promise to pay until {facts['promise_date']} (+{settings.promise_grace_days}d grace)"
    if covered is not None:
        return f"covered by unapplied credit of {covered}"
    minimum = max(ladder.min_balance, st.min_balance or Decimal(0), settings.min_balance)
    if facts["undisputed_balance"] < minimum or facts["undisputed_balance"] <= 0:
        if facts["disputed"]:
            return "the open balance is under dispute"
        return f"undisputed balance {facts['undisputed_balance']} is under the minimum {minimum}"
    return None


def _covered_by(facts: Mapping[str, Any], r: Receivable, before: Decimal) -> str | None:
    """The customer's unapplied credit (as text with its currency) when what is left of it,
    once the customer's older open items in the same currency have taken their share
    (``before``, see :func:`_taken_before`), covers the item's whole undisputed balance
    (None: it does not). Two items of 800 and a credit of 1,000: the first is covered, the
    second is not."""
    credit = facts.get("customer.unapplied_credit") or Decimal(0)
    balance = facts["undisputed_balance"]
    currency = facts.get("currency")
    if credit <= 0 or balance <= 0 or facts.get("customer.currency") != currency:
        return None
    if credit - before < balance:
        return None
    return str(Money(amount=credit, currency=str(currency)))


def _taken_before(items: Sequence[ReceivableSummary]) -> dict[str, Decimal]:
    """For each receivable of a customer, the open amounts of its older open, undisputed
    items in the same currency (oldest due first, as cash application takes them): what
    they take of the customer's unapplied credit before it reaches that receivable. One
    pass over the customer's items, sorted."""
    out: dict[str, Decimal] = {}
    totals: dict[str, Decimal] = {}
    for o in sorted(items, key=lambda x: (x.due_date, x.issue_date, x.id)):
        taken = totals.get(o.currency, Decimal(0))
        out[o.id] = taken
        if o.state not in CLOSED_STATES and not o.disputed and o.open_amount > 0:
            totals[o.currency] = taken + o.open_amount
    return out


class DunningPlanner:
    """Plans every ladder of the pack for a receivable (a :class:`ReceivablePlanner`)."""

    def plan_receivable(
        self, day: Day, r: Receivable, customer: CustomerFacts, facts: dict[str, Any]
    ) -> None:
        anchors = _anchors(r, facts["promise_date"])
        covered = None
        if (facts.get("customer.unapplied_credit") or 0) > 0:
            before = day.credit_before.get(r.customer_id)
            if before is None:
                before = day.credit_before[r.customer_id] = _taken_before(customer.receivables)
            covered = _covered_by(facts, r, before.get(r.id, Decimal(0)))
        plan_ladder = self.plan_ladder
        for ladder in day.pack.ladders:
            try:
                plan_ladder(day, ladder, r, customer.customer, facts, anchors, covered)
            except Exception as exc:  # one rule failing must not stop the others
                day.plan.failures.append(
                    _failure("receivable", r.id, r.customer_id, ladder.id, exc)
                )

    def plan_ladder(
        self,
        day: Day,
        ladder: CompiledLadder,
        r: Receivable,
        customer: Customer,
        facts: dict[str, Any],
        anchors: dict[str, date],
        covered: str | None = None,
    ) -> None:
        """The steps of ``ladder`` due for ``r`` in [day.since, day.as_of] (``covered``: the
        customer's unapplied credit, when it covers ``r``)."""
        if ladder.when is not None and not ladder.when(facts):
            return
        as_of, since, plan, settings = day.as_of, day.since, day.plan, day.settings
        due: list[tuple[date, CompiledStep]] = []
        start = since if since is not None else date.min + timedelta(1)
        # steps that cannot fire in [start, as_of] for this due date, by arithmetic
        days = r.due_date.toordinal()
        first, last = start.toordinal() - days, as_of.toordinal() - days
        for st in ladder.steps:
            reach = _due_reach(st.schedule)
            if reach is not None and (
                reach[0] > last or (reach[1] is not None and reach[1] < first)
            ):
                continue
            for occ in st.schedule.occurrences(anchors, day.calendar, start=start, end=as_of):
                due.append((occ, st))
        if not due:
            return
        policy = settings.catch_up
        latest = max(occ for occ, _st in due)
        shown: dict[tuple[str, ...], dict[str, Any]] = {}  # the steps' facts, shared
        stale_reason = f"stale on catch-up ({policy}): the latest due step is on {latest}"
        for occ, st in sorted(due, key=lambda x: (x[0], x[1].level)):
            key = decision_key("dunning", ladder.id, st.id, r.id, occ)
            why = _why(
                f"{ladder.id}/{st.id}",
                facts,
                [ladder.when, st.when],
                {"at": st.at, "occurrence": occ, "group": st.group},
                _DUNNING_FACTS,
                shown,
            )
            base: dict[str, Any] = dict(
                key=key,
                kind="dunning",
                rule=ladder.id,
                step=st.id,
                level=st.level,
                subject_kind="receivable",
                subject_id=r.id,
                customer_id=r.customer_id,
                currency=r.currency,
                occurrence=occ,
                as_of=as_of,
                why=why,
            )
            stale = (policy == "latest" and occ < latest) or (policy == "none" and occ < as_of)
            if stale:
                plan.skipped.append(Decision(**base, status="skipped", reason=stale_reason))
                continue
            if st.when is not None and not st.when(facts):
                continue
            pause = _pause_reason(settings, ladder, st, facts, as_of, covered)
            if pause is not None:
                plan.skipped.append(Decision(**base, status="skipped", reason=pause))
                continue
            plan.decisions.append(
                Decision(
                    **base,
                    actions=st.actions,
                    recipients=day.recipients(customer, st.actions),
                    send_at=day.send_at(customer, st.actions),
                )
            )
