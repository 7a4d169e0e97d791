"""The project-contract-receivable view and the watch lists (``docs/analytics.md``).

``contract_view`` shows one contract as of a date: each payment node's planned, invoiced,
collected and overdue amounts, the milestones its due date hangs on, the open disputes and
promises of its receivables and, given the rule pack, the next thing arflow will do about
them. ``falling_due`` and ``high_risk`` are the weekly review's lists. All of them read
through the store's indexes (by id, by customer, by state, by due date), never the whole
book.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ..decisions import decision_key
from ..domain import (
    FIRST_DATE,
    LAST_DATE,
    Contract,
    Customer,
    Dispute,
    Milestone,
    PromiseToPay,
    Receivable,
)
from ..errors import UnknownObject, ValidationError
from ..ledger import Ledger
from ..money import Money
from ..rules.facts import customer_facts, receivable_facts
from ..store.base import Store
from ._book import OPEN_STATES, Movements, check_as_of, check_days, promise_open_on, store_of
from ._results import ContractView, MilestoneView, NodeView, WatchItem, WatchList

if TYPE_CHECKING:
    from ..rules.loader import RulePack


class HasPack(Protocol):
    """Something that holds a rule pack: an :class:`arflow.Engine`."""

    @property
    def pack(self) -> RulePack: ...


def _pack_of(given: RulePack | HasPack | None) -> RulePack | None:
    """The pack given, or the pack of the engine given."""
    if given is None or hasattr(given, "ladders"):
        return given  # type: ignore[return-value]
    return given.pack


#: How far ahead the next dunning step is looked for (days after the view's date).
NEXT_ACTION_HORIZON = 400
#: A receivable this many days past due is on the high-risk list whatever its risk level.
FAR_OVERDUE_DAYS = 60
#: Audit events that are a contact with the customer, or its outcome.
_CONTACT_EVENTS = frozenset(
    {
        "DunningStepRecorded",
        "PromiseMade",
        "PromiseBroken",
        "PromiseKept",
        "DisputeOpened",
        "DisputeResolved",
        "PaymentReceived",
        "ContactFeedback",
    }
)


# -- the project-contract-receivable view ----------------------------------------------------


def contract_view(
    store_or_ledger: Store | Ledger,
    contract_id: str,
    as_of: date,
    *,
    pack: RulePack | HasPack | None = None,
) -> ContractView:
    """The contract ``contract_id`` as it stood on ``as_of``.

    Amounts are what the book says on ``as_of``: invoices issued by then, cash received by
    then, what was open and past due then. ``next_action`` needs the rule pack (``pack``,
    or an engine, whose pack is used): without one it is None; it reads the receivables
    as they stand now, from ``as_of`` on. An unknown contract raises
    :class:`UnknownObject`.
    """
    check_as_of(as_of)
    store = store_of(store_or_ledger)
    contract: Contract | None = store.get("contract", contract_id)
    if contract is None:
        raise UnknownObject("contract", contract_id)
    return _contract_views(store, [contract], as_of, _pack_of(pack))[0]


def project_view(
    store_or_ledger: Store | Ledger,
    project_id: str,
    as_of: date,
    *,
    pack: RulePack | HasPack | None = None,
) -> tuple[ContractView, ...]:
    """The views of every contract of project ``project_id`` (by contract id); an
    unknown project raises :class:`UnknownObject`."""
    check_as_of(as_of)
    store = store_of(store_or_ledger)
    project = store.get("project", project_id)
    if project is None:
        raise UnknownObject("project", project_id)
    contracts = sorted(
        (
            c
            for c in store.find("contract", customer_id=project.customer_id)
            if c.project_id == project_id
        ),
        key=lambda c: c.id,
    )
    return _contract_views(store, contracts, as_of, _pack_of(pack))


def _contract_views(
    store: Store, contracts: Sequence[Contract], as_of: date, pack: RulePack | None
) -> tuple[ContractView, ...]:
    if not contracts:
        return ()
    cid = contracts[0].customer_id  # a project's contracts are one customer's
    customer: Customer | None = store.get("customer", cid)
    name = customer.name if customer is not None else cid
    every = store.find("receivable", customer_id=cid)
    moves = Movements.read(store, [cid])
    disputes = [
        x
        for x in store.find("dispute", customer_id=cid)
        if x.opened_on <= as_of
        and (x.status == "open" or (x.resolved_on is not None and x.resolved_on > as_of))
    ]
    promises = [p for p in store.find("promise", customer_id=cid) if promise_open_on(p, as_of)]
    milestone_ids = [
        n.due.milestone_id
        for c in contracts
        for n in c.payment_nodes
        if n.due.milestone_id is not None
    ]
    milestones: dict[str, Milestone] = store.get_many("milestone", milestone_ids)
    views = []
    for c in contracts:
        mine = sorted(
            (r for r in every if r.contract_id == c.id and r.issue_date <= as_of),
            key=lambda r: (r.due_date, r.issue_date, r.id),
        )
        views.append(
            _one_view(
                store, c, name, customer, mine, moves, disputes, promises, milestones, as_of, pack
            )
        )
    return tuple(views)


def _one_view(
    store: Store,
    c: Contract,
    customer_name: str,
    customer: Customer | None,
    receivables: list[Receivable],
    moves: Movements,
    disputes: list[Dispute],
    promises: list[PromiseToPay],
    milestones: dict[str, Milestone],
    as_of: date,
    pack: RulePack | None,
) -> ContractView:
    cur = c.amount.currency
    zero = Money.zero(cur)
    by_node: dict[str, list[Receivable]] = {}
    for r in receivables:
        by_node.setdefault(r.payment_node_id or "", []).append(r)
    nodes: list[NodeView] = []
    open_on = {r.id: moves.open_on(r, as_of) for r in receivables}
    for node in c.payment_nodes:
        ms = milestones.get(node.due.milestone_id or "")
        nodes.append(
            _node(
                node.id,
                node.label or node.id,
                c.node_amount(node),
                by_node.pop(node.id, []),
                open_on,
                moves,
                as_of,
                (ms,) if ms is not None else (),
                zero,
            )
        )
    for node_id, rs in sorted(by_node.items()):
        # invoices of the contract on no payment node (or one it no longer has)
        label = "not on a payment node" if not node_id else f"{node_id} (not in the contract)"
        nodes.append(_node(node_id, label, zero, rs, open_on, moves, as_of, (), zero))
    invoiced = _sum((n.invoiced for n in nodes), zero)
    ids = {r.id for r in receivables}
    open_ids = tuple(sorted(rid for rid in ids if open_on[rid].is_positive))
    dispute_ids = tuple(sorted(x.id for x in disputes if x.receivable_id in ids))
    promise_ids = tuple(sorted(p.id for p in promises if any(i in ids for i in p.receivable_ids)))
    nxt = None
    if pack is not None and customer is not None:
        # what is open now (a past view's items paid since need nothing more)
        open_rs = [r for r in receivables if r.id in open_ids and not r.is_closed]
        nxt = next_action(store, pack, customer, open_rs, as_of)
        if nxt is None:
            nxt = (
                f"no reminder ahead within {NEXT_ACTION_HORIZON} days"
                if open_rs
                else "nothing open to collect"
            )
    return ContractView(
        as_of=as_of,
        contract_id=c.id,
        customer_id=c.customer_id,
        customer_name=customer_name,
        project_id=c.project_id,
        title=c.title,
        amount=c.amount,
        invoiced=invoiced,
        collected=_sum((n.collected for n in nodes), zero),
        open=_sum((open_on[r.id] for r in receivables), zero),
        overdue=_sum((n.overdue for n in nodes), zero),
        nodes=tuple(nodes),
        unbilled=(c.amount - invoiced) if c.amount > invoiced else zero,
        disputes=dispute_ids,
        promises=promise_ids,
        next_action=nxt,
    )


def _node(
    node_id: str,
    label: str,
    planned: Money,
    rs: list[Receivable],
    open_on: dict[str, Money],
    moves: Movements,
    as_of: date,
    milestones: tuple[Milestone, ...],
    zero: Money,
) -> NodeView:
    open_rs = [r for r in rs if open_on[r.id].is_positive]
    due = min((r.due_date for r in open_rs), default=None)
    if due is None:
        due = max((r.due_date for r in rs), default=None)
    return NodeView(
        node_id=node_id,
        label=label,
        planned=planned,
        invoiced=_sum((r.amount for r in rs), zero),
        collected=_sum((moves.collected_by(r, as_of) for r in rs), zero),
        overdue=_sum((open_on[r.id] for r in open_rs if r.due_date < as_of), zero),
        due_date=due,
        milestones=tuple(
            MilestoneView(
                id=m.id,
                name=m.name or m.id,
                planned_date=m.planned_date,
                actual_date=m.actual_date if m.actual_date and m.actual_date <= as_of else None,
                status="done"
                if m.actual_date is not None and m.actual_date <= as_of
                else "planned",
            )
            for m in milestones
        ),
        receivable_ids=tuple(r.id for r in rs),
    )


def _sum(items: Iterable[Money], zero: Money) -> Money:
    total = zero
    for m in items:
        total = total + m
    return total


# -- the next action -------------------------------------------------------------------------


def next_action(
    store: Store,
    pack: RulePack,
    customer: Customer,
    receivables: Sequence[Receivable],
    as_of: date,
) -> str | None:
    """What the pack's dunning ladders will do next about ``receivables`` (open ones of
    ``customer``), in words with the date; None when no step is ahead within
    :data:`NEXT_ACTION_HORIZON` days.

    The same reading of the ladders the engine's dunning planner makes: a step's
    occurrences from ``as_of`` on whose decision is not recorded yet, if the ladder and
    step conditions hold on that day's facts, skipping what an open promise (plus its
    grace days) pauses; a dunning block or a balance under the minimum is said instead.
    """
    if not receivables:
        return None
    settings = pack.settings
    cid = customer.id
    credits = [
        *store.find_for_customers("payment", [cid]).get(cid, []),
        *store.find_for_customers("credit_note", [cid]).get(cid, []),
    ]
    promises: list[PromiseToPay] = store.find("promise", customer_id=cid)
    by_id = {p.id: p for p in promises}
    cfacts = customer_facts(
        customer,
        store.receivable_summaries([cid]).get(cid, []),
        store.find("order", customer_id=cid),
        promises,
        as_of,
        base_currency=settings.base_currency,
        min_balance=settings.min_balance,
        credits=credits,
    )
    end = min(as_of + timedelta(NEXT_ACTION_HORIZON), LAST_DATE)
    best: tuple[date, int, str] | None = None
    held: list[str] = []
    for r in receivables:
        promise = by_id.get(r.promise_id or "")
        facts = receivable_facts(r, cfacts, as_of, pack.calendar, promise=promise)
        if facts["dunning_block"]:
            why = r.dunning_block_reason or customer.credit.dunning_block_reason or "no reason"
            held.append(f"dunning of {r.id} is blocked ({why})")
            continue
        if facts["undisputed_balance"] <= 0:
            held.append(f"{r.id} is under dispute: no reminder until it is resolved")
            continue
        found = _next_step(store, pack, r, cfacts, promise, facts, as_of, end)
        if found is not None and (best is None or found[:2] < best[:2]):
            best = found
    if best is not None:
        return best[2]
    return "; ".join(held) if held else None


def _next_step(
    store: Store,
    pack: RulePack,
    r: Receivable,
    cfacts: dict[str, Any],
    promise: PromiseToPay | None,
    facts: dict[str, Any],
    as_of: date,
    end: date,
) -> tuple[date, int, str] | None:
    settings = pack.settings
    anchors = {"due": r.due_date, "issue": r.issue_date}
    if facts["promise_date"] is not None:
        anchors["promise"] = facts["promise_date"]
    paused_until = (
        facts["promise_date"] + timedelta(settings.promise_grace_days)
        if facts["promised"] and facts["promise_date"] is not None
        else None
    )
    grade = cfacts.get("customer.grade")
    best: tuple[date, int, str] | None = None
    for ladder in pack.ladders:
        if grade in ladder.exempt_grades:
            continue
        if ladder.when is not None and not ladder.when(facts):
            continue
        for st in ladder.steps:
            occs = st.schedule.occurrences(anchors, pack.calendar, start=as_of, end=end)
            keys = {decision_key("dunning", ladder.id, st.id, r.id, o): o for o in occs}
            known = store.known_decisions(keys) if keys else set()
            for key, occ in keys.items():
                if key in known or (paused_until is not None and occ <= paused_until):
                    continue
                if best is not None and (occ, st.level) >= best[:2]:
                    break
                day_facts = receivable_facts(r, cfacts, occ, pack.calendar, promise=promise)
                if st.when is not None and not st.when(day_facts):
                    continue
                minimum = max(ladder.min_balance, st.min_balance or 0, settings.min_balance)
                if day_facts["undisputed_balance"] < minimum:
                    break
                acts = ", ".join(f"{a.type} to {', '.join(a.to) or 'customer'}" for a in st.actions)
                text = (
                    f"on {occ.isoformat()}: dunning step {ladder.id}/{st.id} "
                    f"(level {st.level}) for {r.id}, {r.open_balance} open"
                    + (f": {acts}" if acts else "")
                )
                best = (occ, st.level, text)
                break
    return best


# -- watch lists -----------------------------------------------------------------------------


def falling_due(
    store_or_ledger: Store | Ledger, as_of: date, days: int = 14, *, limit: int | None = None
) -> WatchList:
    """Open receivables due from ``as_of`` to ``as_of + days`` (both included), soonest
    first, with the customer's name, the open balance and the dunning level reached; only
    the first ``limit`` of them if given (read a few due days at a time, soonest first, so a
    big book's list is not read whole)."""
    check_days(days, "days", least=0)
    check_as_of(as_of, days)
    _check_limit(limit)
    store = store_of(store_or_ledger)
    found: list[Receivable] = []
    cut = False
    for batch in _due_days(store, as_of, as_of + timedelta(days)):
        found += [r for r in batch if r.issue_date <= as_of and r.open_balance.is_positive]
        if limit is not None and len(found) >= limit:
            cut = True
            break
    found.sort(key=lambda r: (r.due_date, r.customer_id, r.id))
    if limit is not None and cut:
        found = found[:limit]
    names = _names(store, found)
    items = [
        WatchItem(
            receivable_id=r.id,
            customer_id=r.customer_id,
            customer_name=names.get(r.customer_id, r.customer_id),
            due_date=r.due_date,
            open_balance=r.open_balance,
            days=(r.due_date - as_of).days,
            risk_level=r.risk_level,
            dunning_level=r.dunning_level,
        )
        for r in found
    ]
    return WatchList(name="falling_due", as_of=as_of, items=tuple(items), cut=cut)


def high_risk(
    store_or_ledger: Store | Ledger,
    as_of: date,
    *,
    overdue_days: int = FAR_OVERDUE_DAYS,
    limit: int | None = None,
) -> WatchList:
    """Open receivables past due whose risk level is ``high``, that are at least
    ``overdue_days`` past due, or whose promise to pay was broken; most overdue first,
    each with its history (from the audit trail, up to ``as_of``) and the last contact
    outcome; only the first ``limit`` of them if given (the past-due receivables are read
    a few due days at a time, oldest first, until that many are on the list)."""
    check_days(overdue_days, "overdue_days", most=36500)
    check_as_of(as_of, 1)
    _check_limit(limit)
    store = store_of(store_or_ledger)
    broken: list[PromiseToPay] = [
        p
        for p in store.find("promise", states=["broken", "partially_kept"])
        if p.promised_date <= as_of
    ]
    broken_ids = {rid for p in broken for rid in p.receivable_ids}

    def sure(r: Receivable) -> bool:
        return r.risk_level == "high" or (as_of - r.due_date).days >= overdue_days

    def candidate(r: Receivable) -> bool:
        return (
            r.issue_date <= as_of and r.open_balance.is_positive and (sure(r) or r.id in broken_ids)
        )

    # past due, oldest first, a few due days at a time (with a limit, only until enough
    # are sure to be on the list); then those of broken promises
    live: dict[str, Receivable] = {}
    cut = False
    found = 0
    for batch in _due_days(store, _first_due(store, as_of - timedelta(1)), as_of - timedelta(1)):
        for r in batch:
            if candidate(r):
                live[r.id] = r
                found += sure(r)
        if limit is not None and found >= limit:
            cut = True
            break
    extra = store.get_many("receivable", [i for i in broken_ids if i not in live])
    live.update({i: r for i, r in extra.items() if not r.is_closed and candidate(r)})
    # a promise broken by the list's date (the audit trail says when)
    maybe = [r.id for r in live.values() if not sure(r)]
    told = store.audit_trails("receivable", maybe)
    broke = {
        i
        for i in maybe
        if any(
            a.event_type == "PromiseBroken" and a.occurred_at.date() <= as_of
            for a in told.get(i, [])
        )
    }
    chosen = sorted(
        (r for r in live.values() if sure(r) or r.id in broke),
        key=lambda r: (r.due_date, r.customer_id, r.id),
    )
    if limit is not None and cut:
        chosen = chosen[:limit]
    trails = store.audit_trails("receivable", [r.id for r in chosen])
    names = _names(store, chosen)
    items = []
    for r in chosen:
        trail = [a for a in trails.get(r.id, []) if a.occurred_at.date() <= as_of]
        history = tuple(
            f"{a.occurred_at.date().isoformat()} {a.event_type}: {a.summary}".rstrip(": ")
            for a in trail
        )
        contact = [a for a in trail if a.event_type in _CONTACT_EVENTS]
        last = contact[-1] if contact else None
        items.append(
            WatchItem(
                receivable_id=r.id,
                customer_id=r.customer_id,
                customer_name=names.get(r.customer_id, r.customer_id),
                due_date=r.due_date,
                open_balance=r.open_balance,
                days=(as_of - r.due_date).days,
                risk_level=r.risk_level,
                dunning_level=r.dunning_level,
                last_contact=(
                    None
                    if last is None
                    else f"{last.occurred_at.date().isoformat()} {last.event_type}: {last.summary}"
                ),
                history=history,
            )
        )
    return WatchList(name="high_risk", as_of=as_of, items=tuple(items), cut=cut)


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError(f"limit must be a whole number of at least 1, or None, not {limit!r}")


def _first_due(store: Store, last: date) -> date:
    """The earliest due date up to ``last`` of an open receivable (``last`` if none): a
    bisection over ``count_due``, which counts from the due index without reading."""
    lo, hi = FIRST_DATE, last
    if lo > hi or not store.count_due(lo, hi, OPEN_STATES):
        return last
    while lo < hi:
        mid = lo + timedelta((hi - lo).days // 2)
        if store.count_due(lo, mid, OPEN_STATES):
            hi = mid
        else:
            lo = mid + timedelta(1)
    return lo


def _due_days(store: Store, first: date, last: date) -> Iterator[list[Receivable]]:
    """The open receivables due from ``first`` to ``last``, in batches of whole due days,
    soonest first (a week, then twice as many days each time)."""
    lo, span = first, 7
    while lo <= last:
        hi = min(lo + timedelta(span - 1), last)
        yield store.find_due(lo, hi, OPEN_STATES)
        if hi >= last:
            return
        lo, span = hi + timedelta(1), span * 2


def _names(store: Store, rs: Iterable[Receivable]) -> dict[str, str]:
    customers: dict[str, Customer] = store.get_many("customer", {r.customer_id for r in rs})
    return {cid: c.name for cid, c in customers.items()}
