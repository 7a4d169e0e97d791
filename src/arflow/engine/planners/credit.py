"""Credit scoring: weighted points per factor of a customer's facts, and the grade (with
its limit, terms and prepayment) the total reaches (``Engine.score``); and re-rating: the
reviews the pack schedules, applied as ``CreditReviewed`` events (see ``docs/grades.md``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ...decisions import Decision, decision_key
from ...domain import Customer, DueRule, PromiseStatus, PromiseToPay
from ...errors import TermsNotAllowed, UnknownGrade
from ...events import (
    BaseEvent,
    ContractSigned,
    CreditReviewed,
    CustomerRegistered,
    CustomerUpdated,
    Event,
    FactorPoints,
    OrderSubmitted,
    PromiseBroken,
)
from ...ledger import Applied
from ...lifecycle import LIVE_STATES
from ...money import Money
from ...rules.loader import RulePack
from ...rules.schema import Action, Review, Scoring
from .._context import Day
from .._results import Plan


@dataclass(frozen=True)
class CreditScore:
    score: Decimal
    grade: str
    credit_limit: Decimal
    payment_terms_days: int
    prepayment_percent: Decimal
    breakdown: dict[str, Decimal]


def score_customer(scoring: Scoring, facts: Mapping[str, Any]) -> CreditScore:
    """Weighted points per factor; the grade is the first whose min_score is reached."""
    total = Decimal(0)
    breakdown: dict[str, Decimal] = {}
    for f in scoring.factors:
        v = facts.get(f.fact)
        if v is None:
            pts = f.missing
        elif f.points is not None:
            pts = f.points.get(str(v), f.missing)
        else:
            pts = f.missing
            for band in f.bands or ():
                if band.min is None or Decimal(v) >= band.min:
                    pts = band.points
                    break
        breakdown[f.fact] = pts * f.weight
        total += pts * f.weight
    for g in scoring.grades:
        if total >= g.min_score:
            return CreditScore(
                total,
                g.grade,
                g.credit_limit,
                g.payment_terms_days,
                g.prepayment_percent,
                breakdown,
            )
    last = scoring.grades[-1]
    return CreditScore(
        total,
        last.grade,
        last.credit_limit,
        last.payment_terms_days,
        last.prepayment_percent,
        breakdown,
    )


# -- re-rating: credit reviews the pack schedules ----------------------------------------------


def _months_back(d: date, months: int) -> date:
    """``d`` less ``months`` calendar months (the day clamped to the month's length)."""
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    m += 1
    last = (date(y + (m == 12), m % 12 + 1, 1) - timedelta(1)).day
    return date(y, m, min(d.day, last))


def review_due_since(review: Review, as_of: date) -> date | None:
    """A customer last reviewed on or before this date is due for its periodic review on
    ``as_of`` (None: the pack schedules no periodic review)."""
    parts = review.every_parts()
    if parts is None:
        return None
    n, unit = parts
    if unit in ("day", "week"):
        return as_of - timedelta(n * (7 if unit == "week" else 1))
    return _months_back(as_of, n * (12 if unit == "year" else 1))


def check_grades(scoring: Scoring | None, event: object) -> None:
    """Refuse an event that sets a grade the pack does not define (a pack without scoring
    defines none, and any grade name passes)."""
    if scoring is None:
        return
    grades: list[str | None] = []
    if isinstance(event, CreditReviewed):
        grades.append(event.grade)
    elif isinstance(event, CustomerRegistered):
        grades.append(event.customer.credit.grade)
    elif isinstance(event, CustomerUpdated) and event.credit is not None:
        grades.append(event.credit.grade)
    for g in grades:
        if g is not None and scoring.grade(g) is None:
            raise UnknownGrade(g, [p.grade for p in scoring.grades])


#: a promise not kept in full
_BROKEN = [PromiseStatus.BROKEN, PromiseStatus.PARTIALLY_KEPT]


def _text(d: Decimal) -> str:
    return f"{d.normalize():f}"


class CreditReviewPlanner:
    """Re-rates customers as the pack's ``scoring.review`` says: every period since the
    last review, and at once after a broken promise or an item crossing N days overdue.
    Each review is a ``credit_review`` decision whose effect is a ``CreditReviewed`` event
    applying the score; a raise of the limit beyond ``scoring.max_auto_raise`` keeps the
    current limit and adds an ``approval`` decision for ``scoring.raise_approvers``."""

    def __init__(self) -> None:
        #: broken promises by customer, read once per planned day (the plan they are for)
        self._broken: tuple[Plan | None, dict[str, list[PromiseToPay]]] = (None, {})

    @staticmethod
    def _review(day: Day) -> Review | None:
        scoring = day.pack.scoring
        return None if scoring is None else scoring.review

    def _broken_promises(self, day: Day) -> dict[str, list[PromiseToPay]]:
        plan, out = self._broken  # one read: another thread may be planning another day
        if plan is not day.plan:
            out = {}
            for p in day.store.find("promise", states=_BROKEN):
                out.setdefault(p.customer_id, []).append(p)
            self._broken = (day.plan, out)
        return out

    def customers(self, day: Day) -> Iterable[str]:
        """Customers due for a periodic review, with a broken promise, or with an item
        that crossed an ``overdue_N`` threshold in the days planned."""
        review = self._review(day)
        if review is None:
            return ()
        mine: Callable[[str], bool] = day.mine or (lambda _c: True)
        out: set[str] = set()
        due = review_due_since(review, day.as_of)
        if due is not None:
            for c in day.store.all("customer"):
                if mine(c.id) and (c.credit.reviewed_on is None or c.credit.reviewed_on <= due):
                    out.add(c.id)
        if "broken_promise" in review.after:
            out.update(c for c in self._broken_promises(day) if mine(c))
        for n in review.overdue_days():
            # due dates whose item crossed N days overdue in [since, as_of]
            lo = date.min if day.since is None else day.since - timedelta(n)
            to = day.as_of - timedelta(n)
            if lo <= to:
                for r in day.store.find_due(lo, to, LIVE_STATES, customers=day.mine):
                    out.add(r.customer_id)
        return sorted(out)

    def plan_customer(self, plan: Plan, customer_id: str, as_of: date, day: Day) -> None:
        review = self._review(day)
        if review is None:
            return
        cf = day.facts.get(customer_id)
        last = cf.customer.credit.reviewed_on
        causes: list[tuple[str, str | date]] = []
        if "broken_promise" in review.after:
            # once per promise, ever: its decision key names it
            causes += [
                ("broken_promise", p.id) for p in self._broken_promises(day).get(customer_id, ())
            ]
        for n in review.overdue_days():
            for r in cf.receivables:
                crossed = r.due_date + timedelta(n)
                if (
                    r.state in LIVE_STATES
                    and r.open_amount > 0
                    and crossed <= as_of
                    and (day.since is None or crossed >= day.since)
                ):
                    causes.append((f"overdue_{n}", r.id))
        due = review_due_since(review, as_of)
        if due is not None and (last is None or last <= due):
            causes.append(("every", as_of))
        if causes:
            self.review(plan, day, customer_id, as_of, causes)

    def on_event(self, event: BaseEvent, applied: Applied, day: Day) -> None:
        """A broken promise re-rates its customer at once."""
        review = self._review(day)
        if review is None or "broken_promise" not in review.after:
            return
        if isinstance(event, PromiseBroken):
            promise = day.store.get("promise", event.promise_id)
            if promise is not None:
                cause = ("broken_promise", event.promise_id)
                self.review(day.plan, day, promise.customer_id, day.as_of, [cause])

    def review(
        self,
        plan: Plan,
        day: Day,
        customer_id: str,
        as_of: date,
        causes: list[tuple[str, str | date]],
    ) -> None:
        """One review of ``customer_id`` for the first of ``causes``; the others are
        recorded as skipped (one review a day is enough), so none fires again."""
        scoring = day.pack.scoring
        assert scoring is not None
        cf = day.facts.get(customer_id)
        s = score_customer(scoring, cf.facts)
        credit = cf.customer.credit
        limit = Money(amount=s.credit_limit, currency=scoring.currency)
        held = _needs_approval(scoring, credit.credit_limit, limit)
        why: dict[str, Any] = {
            "score": _text(s.score),
            "factors": {k: _text(v) for k, v in s.breakdown.items()},
            "grade": s.grade,
            "credit_limit": _text(s.credit_limit),
            "currency": scoring.currency,
            "payment_terms_days": s.payment_terms_days,
            "prepayment_percent": _text(s.prepayment_percent),
            "previous_grade": credit.grade,
            "previous_limit": None if credit.credit_limit is None else str(credit.credit_limit),
            "limit_held": held,
        }
        for i, (cause, part) in enumerate(causes):
            rule = f"review:{cause}"
            d = Decision(
                key=decision_key("credit_review", rule, customer_id, part),
                kind="credit_review",
                rule=rule,
                subject_kind="customer",
                subject_id=customer_id,
                customer_id=customer_id,
                currency=scoring.currency,
                occurrence=as_of,
                as_of=as_of,
                status="planned" if i == 0 else "skipped",
                reason=f"credit review ({cause}): score {_text(s.score)}, grade {s.grade}",
                why={**why, "cause": cause, "ref": str(part)},
            )
            (plan.decisions if i == 0 else plan.skipped).append(d)
        if held:
            template = RAISE_TEMPLATE if RAISE_TEMPLATE in day.pack.templates else None
            acts = _task(tuple(scoring.raise_approvers), template)
            proc = day.pack.process_for("credit_limit_raise")
            process: dict[str, Any] = {}
            if proc is not None:  # the pack's raise process asks its owners instead
                acts = ()
                process = {"process": proc.id, "proposed_amount": _text(s.credit_limit)}
            plan.decisions.append(
                Decision(
                    key=decision_key("approval", "credit-limit-raise", customer_id, as_of),
                    actions=acts,
                    recipients=day.recipients(cf.customer, acts),
                    kind="approval",
                    rule="credit-limit-raise",
                    subject_kind="customer",
                    subject_id=customer_id,
                    customer_id=customer_id,
                    currency=scoring.currency,
                    occurrence=as_of,
                    as_of=as_of,
                    reason=(
                        f"raise of the credit limit from {credit.credit_limit} to {limit} is "
                        f"more than the {_text((scoring.max_auto_raise or Decimal(0)) * 100)}% "
                        "a review applies by itself: the limit stays until approved"
                    ),
                    why={
                        "approvers": list(scoring.raise_approvers),
                        "current_limit": str(credit.credit_limit),
                        "proposed_limit": str(limit),
                        "grade": s.grade,
                        "score": _text(s.score),
                        "asked": f"a credit limit of {limit} (grade {s.grade})",
                        "allowed": (
                            f"{credit.credit_limit}, raised by up to "
                            f"{_text((scoring.max_auto_raise or Decimal(0)) * 100)}% by a review"
                        ),
                        **process,
                    },
                )
            )


#: the template of the task that asks the approvers of a limit raise, when the pack has it
RAISE_TEMPLATE = "limit_raise_request"
#: the template of a terms request when the pack names no tier but ``scoring.terms_approvers``
TERMS_TEMPLATE = "terms_approval_request"


@dataclass(frozen=True)
class TermsPath:
    """Where a request for terms beyond the grade goes: the roles, the template of their
    task (None: no message) and the tier (None: ``scoring.terms_approvers``)."""

    roles: tuple[str, ...]
    template: str | None
    tier: str | None


def terms_path(pack: RulePack) -> TermsPath | None:
    """The pack's approval path for longer terms: ``settings.terms_tier``; else, in a pack
    that sets them, ``scoring.terms_approvers``; else none (such terms are refused)."""
    name = pack.settings.terms_tier
    if name is not None:
        tier = next((t for t in pack.approvals if t.id == name), None)
        if tier is not None:
            return TermsPath(tuple(tier.spec.approvers), tier.spec.template, tier.id)
    scoring = pack.scoring
    if name is None and scoring is not None and "terms_approvers" in scoring.model_fields_set:
        template = TERMS_TEMPLATE if TERMS_TEMPLATE in pack.templates else None
        return TermsPath(tuple(scoring.terms_approvers), template, None)
    return None


def grade_terms(scoring: Scoring | None, customer: Customer | None) -> tuple[str, int] | None:
    """The customer's grade and the payment terms it allows (None: no grade of the pack)."""
    if scoring is None or customer is None or customer.credit.grade is None:
        return None
    policy = scoring.grade(customer.credit.grade)
    return None if policy is None else (policy.grade, policy.payment_terms_days)


def asked_terms(event: object) -> tuple[str, dict[str, int]] | None:
    """What a contract or order asks for: its subject and the days of each part (a
    contract's payment nodes; an order's own terms), or None for other events."""
    if isinstance(event, ContractSigned):
        c = event.contract
        return f"contract {c.id}", {n.id: n.due.days for n in c.payment_nodes}
    if isinstance(event, OrderSubmitted) and event.payment_terms_days is not None:
        return f"order {event.order_id}", {"terms": event.payment_terms_days}
    return None


def _customer_of(event: object) -> str | None:
    if isinstance(event, ContractSigned):
        return event.contract.customer_id
    if isinstance(event, OrderSubmitted):
        return event.customer_id
    return None


def with_grade_terms(pack: RulePack, store: Any, event: Event) -> Event:
    """An order that asks for no terms, and a contract's payment nodes that give no ``due``,
    take the terms of the customer's grade (the event with them filled in: days after the
    invoice); any other event as it is."""
    if isinstance(event, OrderSubmitted) and event.payment_terms_days is None:
        graded = grade_terms(pack.scoring, store.get("customer", event.customer_id))
        if graded is not None:
            return event.model_copy(update={"payment_terms_days": graded[1]})
    if isinstance(event, ContractSigned):
        c = event.contract
        if all("due" in n.model_fields_set for n in c.payment_nodes):
            return event
        graded = grade_terms(pack.scoring, store.get("customer", c.customer_id))
        if graded is not None:
            due = DueRule(days=graded[1])
            nodes = tuple(
                n if "due" in n.model_fields_set else n.model_copy(update={"due": due})
                for n in c.payment_nodes
            )
            contract = c.model_copy(update={"payment_nodes": nodes})
            return event.model_copy(update={"contract": contract})
    return event


def terms_trigger(event: object) -> str:
    """The process trigger of an order's or a contract's terms beyond the grade."""
    return "contract_terms" if isinstance(event, ContractSigned) else "order_terms"


def check_terms(pack: RulePack, store: Any, event: object) -> None:
    """Refuse (:class:`TermsNotAllowed`) a contract or order asking for longer terms than
    the customer's grade allows, in a pack with no approval path for them (neither a
    process on ``order_terms`` / ``contract_terms`` nor a terms tier)."""
    asked = asked_terms(event)
    if asked is None or terms_path(pack) is not None:
        return
    if pack.process_for(terms_trigger(event)) is not None:
        return
    cid = _customer_of(event)
    graded = grade_terms(pack.scoring, None if cid is None else store.get("customer", cid))
    if graded is None:
        return
    longest = max(asked[1].values(), default=0)
    if longest > graded[1]:
        raise TermsNotAllowed(asked[0], longest, graded[0], graded[1])


def longer_terms(
    scoring: Scoring | None, customer: Customer | None, event: object
) -> tuple[str, str, int, dict[str, int]] | None:
    """(subject, grade, allowed days, the parts asking more) of a contract or order asking
    for longer terms than the grade allows; None when it does not (or is not checked)."""
    asked = asked_terms(event)
    graded = grade_terms(scoring, customer)
    if asked is None or graded is None:
        return None
    longer = {k: v for k, v in asked[1].items() if v > graded[1]}
    return (asked[0], graded[0], graded[1], longer) if longer else None


class ContractTermsPlanner:
    """An event planner: a signed contract whose payment nodes give the customer longer
    than its grade's ``payment_terms_days`` (days after the invoice or the milestone) goes
    to approval, one ``approval`` decision per contract for the pack's terms tier
    (``settings.terms_tier``; else ``scoring.terms_approvers``), with a task asking them.
    Customers without a grade the pack defines are not checked. (An order's terms are
    checked with the order, by the approval planner.)"""

    rule = "contract-terms"

    def on_event(self, event: BaseEvent, applied: Applied, day: Day) -> None:
        if day.pack.scoring is None or not isinstance(event, ContractSigned):
            return
        if day.pack.process_for("contract_terms") is not None:
            return  # the pack's terms process takes over (engine/_processes.py)
        c = event.contract
        customer = day.store.get("customer", c.customer_id)
        found = longer_terms(day.pack.scoring, customer, event)
        path = terms_path(day.pack)
        if found is None or path is None or customer is None:
            return
        _subject, grade, allowed, longer = found
        nodes = ", ".join(f"{k} {v} days" for k, v in longer.items())
        acts = _task(path.roles, path.template)
        why: dict[str, Any] = {
            "approvers": list(path.roles),
            "grade": grade,
            "allowed_days": allowed,
            "nodes": longer,
            "asked_days": max(longer.values()),
            "asked": f"payment terms of {nodes}",
            "allowed": f"{allowed} days (grade {grade})",
        }
        if path.tier is not None:
            why["tier"] = path.tier
        day.plan.decisions.append(
            Decision(
                key=decision_key("approval", self.rule, c.id),
                kind="approval",
                rule=self.rule,
                subject_kind="contract",
                subject_id=c.id,
                customer_id=c.customer_id,
                currency=c.amount.currency,
                occurrence=day.as_of,
                as_of=day.as_of,
                actions=acts,
                recipients=day.recipients(customer, acts),
                reason=(
                    f"contract {c.id}: payment terms longer than grade {grade} allows "
                    f"({allowed} days): {nodes}"
                ),
                why=why,
            )
        )


def _task(roles: tuple[str, ...], template: str | None) -> tuple[Action, ...]:
    """The task that asks ``roles`` to decide (none without a template)."""
    if not template or not roles:
        return ()
    return (Action(type="task", to=roles, template=template, priority="high"),)


def _needs_approval(scoring: Scoring, current: Money | None, proposed: Money) -> bool:
    """Whether moving the limit from ``current`` to ``proposed`` is a raise beyond
    ``max_auto_raise`` (no limit yet, or no ``max_auto_raise``: never)."""
    if scoring.max_auto_raise is None or current is None:
        return False
    if current.currency != proposed.currency:
        return True
    return proposed.amount > current.amount * (1 + scoring.max_auto_raise)


def review_event(
    customer_id: str,
    score: CreditScore,
    currency: str,
    *,
    reviewed_on: date,
    occurred_at: datetime,
    actor: str,
    reason: str | None = None,
    keep_limit: bool = False,
    event_id: str | None = None,
) -> CreditReviewed:
    """The ``CreditReviewed`` event that applies ``score`` to a customer (its limit in
    ``currency``; ``keep_limit``: the grade, terms and prepayment only)."""
    extra: dict[str, Any] = {} if event_id is None else {"event_id": event_id}
    return CreditReviewed(
        customer_id=customer_id,
        reviewed_on=reviewed_on,
        grade=score.grade,
        credit_limit=None if keep_limit else Money(amount=score.credit_limit, currency=currency),
        payment_terms_days=score.payment_terms_days,
        prepayment_percent=score.prepayment_percent,
        score=score.score,
        factors=tuple(FactorPoints(fact=k, points=v) for k, v in score.breakdown.items()),
        occurred_at=occurred_at,
        actor=actor,
        reason=reason,
        **extra,
    )
