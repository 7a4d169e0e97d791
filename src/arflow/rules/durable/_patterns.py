"""Patterns over one customer's history, joined by durable-rules: a promise with no payment
by its date plus grace, repeated late payments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from ..patterns import (
    MAX_LATE_COUNT,
    LatePayments,
    Pattern,
    Payment,
    Promise,
    UnpaidPromise,
    check_patterns,
    detail_order,
)
from ._host import _TAG, _Driver

__all__ = [
    "MAX_LATE_COUNT",
    "LatePayments",
    "PatternMatcher",
    "Payment",
    "Promise",
    "UnpaidPromise",
]


_PROMISE, _PAYMENT, _CLOCK, _START = 1, 2, 3, 9


def _plus(alias: str, prop: str, n: int) -> Any:
    ref = {alias: prop}
    return ref if n == 0 else {"$add": {"$l": ref, "$r": n}}


def _joined(alias: str, *tests: dict[str, Any]) -> dict[str, Any]:
    """Tests on a fact joined to ``alias``, closed by one that is always true.

    durable evaluates the tests that refer to other facts as a sequence; when the last one
    is false it skips past the sequence's end marker and reads memory it does not own
    (valgrind shows it; after enough rulesets the process dies with SIGSEGV). A last test
    that always holds (every wrapper fact has ``one: 1``) keeps it inside the sequence.
    """
    return {"$and": [*tests, {"$lte": {"one": {alias: "one"}}}]}


def _late_rule(p: LatePayments) -> list[dict[str, Any]]:
    """A chain of late payments with consecutive late ranks, starting at the first one in the
    window (no earlier late payment is in it), whose last one is not after the clock."""
    last = f"l{p.count - 1}"
    steps: list[dict[str, Any]] = [
        {"l0": {"$and": [{_TAG: _PAYMENT}, {"$gt": {"lr": 0}}]}},
    ]
    for j in range(1, p.count):
        prev = f"l{j - 1}"
        steps.append({f"l{j}": _joined(prev, {_TAG: _PAYMENT}, {"lr": _plus(prev, "lr", 1)})})
    steps.append(
        {
            "t": _joined(
                "l0",
                {_TAG: _CLOCK},
                {"$gte": {"day": {last: "day"}}},
                {"$lte": {"day": _plus("l0", "day", p.window_days)}},
            )
        }
    )
    earlier = {"$sub": {"$l": {"t": "day"}, "$r": p.window_days}}
    steps.append(
        {
            "x$not": _joined(
                "l0",
                {_TAG: _PAYMENT},
                {"$gt": {"lr": 0}},
                {"$lt": {"lr": {"l0": "lr"}}},
                {"$gte": {"day": earlier}},
            )
        }
    )
    return steps


def _promise_rule(p: UnpaidPromise) -> list[dict[str, Any]]:
    """A promise, a clock past its deadline, and no payment for it between made and deadline."""
    deadline = _plus("p", "day", p.grace_days)
    return [
        {"p": {_TAG: _PROMISE}},
        {"t": _joined("p", {_TAG: _CLOCK}, {"$gt": {"day": deadline}})},
        {
            "x$not": _joined(
                "p",
                {_TAG: _PAYMENT},
                {"r": {"p": "r"}},
                {"$gte": {"day": {"p": "made"}}},
                {"$lte": {"day": deadline}},
            )
        },
    ]


class PatternMatcher(_Driver):
    """Matches patterns that join one customer's promises, payments and the date.

    Time is a fact: ``match`` asserts the history first and a clock fact holding ``as_of``
    last, so nothing can fire before the clock is there. No durable timer is ever started.
    Durable does the joins and the absence tests; the wrapper only numbers the late payments
    (a payment is late when paid after its due date) in date order, so the join can walk them.

    Facts that took part in a completed join are not retracted one by one: durable then
    reads join memory it has already released (valgrind shows it). Each evaluation instead
    starts its session with a start fact that fires a no-op action, and ends by deleting the
    session's state, which is safe once the session has run an action (deleting one that
    never has crashes the process). The session id is then reused, so at most
    ``max_sessions`` sessions exist.
    """

    RULESET = "patterns"

    def __init__(self, patterns: Sequence[Pattern], *, max_sessions: int = 8) -> None:
        check_patterns(patterns)
        super().__init__(max_sessions)
        self.patterns = list(patterns)
        rules: dict[str, Any] = {"start": {"all": [{"m": {_TAG: _START}}], "run": _nothing}}
        for i, p in enumerate(self.patterns):
            if isinstance(p, LatePayments):
                rules[f"q{i}"] = {"all": _late_rule(p), "run": self._action(i, "l0")}
            else:
                rules[f"q{i}"] = {"all": _promise_rule(p), "run": self._action(i, "p")}
        self.definitions = {self.RULESET: {k: {"all": v["all"]} for k, v in rules.items()}}
        self._register(self.RULESET, rules)
        promise_rules = sum(isinstance(p, UnpaidPromise) for p in self.patterns)
        late_rules = len(self.patterns) - promise_rules
        # Each late rule matches at most once; the promise rules once per promise asserted.
        self._chunk = max(1, (48 - late_rules) // max(1, promise_rules))

    def match(
        self,
        histories: Mapping[str, tuple[Sequence[Promise], Sequence[Payment]]],
        as_of: date,
    ) -> dict[str, set[str]]:
        """For each customer id, the names of the patterns that hold on ``as_of``.

        ``histories`` maps a customer id to ``(promises, payments)``.
        """
        return {
            c: {name for name, _ in found}
            for c, found in self.match_details(histories, as_of).items()
        }

    def match_details(
        self,
        histories: Mapping[str, tuple[Sequence[Promise], Sequence[Payment]]],
        as_of: date,
    ) -> dict[str, list[tuple[str, Promise | Payment]]]:
        """Like :meth:`match`, with what each match hangs on: for an unpaid-promise pattern
        every promise that went unpaid; for a late-payments pattern the first late payment of
        the run that fills the window. Sorted by pattern name, then date."""
        out: dict[str, list[tuple[str, Promise | Payment]]] = {c: [] for c in histories}
        with self._turn():
            for customer, (promises, payments) in histories.items():
                found = {
                    (self.patterns[i].name, obj)
                    for i, obj in self._evaluate(promises, payments, as_of)
                }
                out[customer] = sorted(found, key=detail_order)
        return out

    def _evaluate(
        self, promises: Sequence[Promise], payments: Sequence[Payment], as_of: date
    ) -> set[tuple[int, Promise | Payment]]:
        refs: dict[str, int] = {}

        def ref(receivable_id: str) -> int:
            return refs.setdefault(receivable_id, len(refs) + 1)

        order = sorted(range(len(payments)), key=lambda j: (payments[j].paid_on, j))
        late_rank: dict[int, int] = {}
        for j in order:
            if payments[j].paid_on > payments[j].due_date:
                late_rank[j] = len(late_rank) + 1
        history = [
            {
                _TAG: _PAYMENT,
                "r": ref(p.receivable_id),
                "day": p.paid_on.toordinal(),
                "lr": late_rank.get(j, 0),
            }
            for j, p in enumerate(payments)
        ]
        promised = [
            {
                _TAG: _PROMISE,
                "r": ref(p.receivable_id),
                "made": p.made_on.toordinal(),
                "day": p.promised_date.toordinal(),
            }
            for p in promises
        ]
        sources: list[Promise | Payment] = [*payments]
        result: set[tuple[int, Promise | Payment]] = set()
        step = self._chunk
        for at in range(0, max(1, len(promised)), step):
            chunk = [*sources, *promises[at : at + step]]
            for i, position in self._round(history + promised[at : at + step], as_of):
                result.add((i, chunk[position]))
        return result

    def _round(self, facts: list[dict[str, Any]], as_of: date) -> set[tuple[int, int]]:
        """One session's life: start (an action runs), history, clock, delete the state.
        Returns (pattern index, position in ``facts`` of the fact the match hangs on)."""
        sid = self._sessions.current()
        live: set[int] = set()
        position: dict[Any, int] = {}
        try:
            self._assert(
                self.RULESET,
                {_TAG: _START, "id": self._ids.take(live), "sid": sid, "one": 1},
            )
            for n, values in enumerate(facts):
                fact = {**values, "id": self._ids.take(live), "sid": sid, "one": 1}
                position[fact["id"]] = n
                self._assert(self.RULESET, fact)
            clock = {_TAG: _CLOCK, "day": as_of.toordinal()}
            self._fired.clear()
            self._recording = True
            self._assert(self.RULESET, {**clock, "id": self._ids.take(live), "sid": sid, "one": 1})
            self._recording = False
            fired = {(i, position[fid]) for i, fid in self._fired}
            self._host.delete_state(self.RULESET, sid)
        except Exception as exc:
            self._fail(sid, self.RULESET, [], exc)
        return fired

    def __enter__(self) -> PatternMatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _nothing(_c: Any) -> None:
    """The start rule's action: its only purpose is that the session has run one."""
