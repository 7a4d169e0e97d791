"""Helpers for people who test against arflow: build a book in a few readable lines.

``BookBuilder`` wraps a :class:`~arflow.Ledger` and makes events with sensible defaults
(a fixed clock, sequential event ids, one currency), so a test reads like the scenario it
checks::

    b = BookBuilder()
    b.customer("C1", limit=100_000)
    b.invoice("INV-1", "C1", 5_000, issued="2026-01-05", due="2026-02-04")
    b.pay("PAY-1", "C1", 2_000, on="2026-02-10")
    assert b.ledger.balance("C1")["CNY"] == Money.of(3_000, "CNY")

``RuleHarness`` adds a rule pack and runs it day by day, so a policy change is a reviewed
file plus a unit test (see ``docs/rule-authoring.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .. import events as ev
from ..domain import Channel, Contact, CreditProfile, Customer, Person, PersonAddress
from ..ledger import Applied, Ledger
from ..money import Money
from ..rules.loader import RulePack
from ..store import Store
from ._coverage import RuleCoverage, rule_items

if TYPE_CHECKING:
    from ..engine import Decision, RunResult

__all__ = ["BookBuilder", "RuleCoverage", "RuleHarness", "d", "rule_items"]


def _contact(
    name: str,
    *,
    email: str | None,
    phone: str | None,
    channel: Channel | None,
    locale: str,
    role: str | None = None,
) -> Contact:
    if channel is None and bool(email) != bool(phone):
        channel = "email" if email else "sms"  # the one channel it can be reached on
    return Contact(
        name=name, email=email, phone=phone, preferred_channel=channel, locale=locale, role=role
    )


def d(value: str | date) -> date:
    """``d("2026-01-31")``: a date from ISO text (dates pass through)."""
    return value if isinstance(value, date) else date.fromisoformat(value)


class BookBuilder:
    """Makes and applies events against a ledger with defaults suited to tests."""

    def __init__(
        self,
        ledger: Ledger | Store | str | None = None,
        *,
        currency: str = "CNY",
        actor: str = "test",
    ) -> None:
        self.ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger or "memory://")
        self.currency = currency
        self.actor = actor
        self._seq = 0
        self.clock = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
        #: where events go: the ledger (``RuleHarness.live`` routes them through the engine)
        self._apply: Callable[[ev.Event], Applied] = self.ledger.apply

    def _money(self, amount: Money | Decimal | int | str) -> Money:
        return amount if isinstance(amount, Money) else Money.of(amount, self.currency)

    def _meta(self, when: date | None = None, **kw: Any) -> dict[str, Any]:
        self._seq += 1
        at = (
            self.clock if when is None else datetime(when.year, when.month, when.day, 9, tzinfo=UTC)
        )
        return {"event_id": f"t-{self._seq}", "occurred_at": at, "actor": self.actor, **kw}

    def apply(self, event: ev.Event) -> Applied:
        return self._apply(event)

    def customer(
        self,
        customer_id: str,
        *,
        name: str | None = None,
        limit: Money | Decimal | int | str | None = None,
        terms: int = 30,
        grade: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        channel: Channel | None = None,
        locale: str = "en",
        contact: str | None = None,
        contacts: Sequence[Contact | Mapping[str, Any]] = (),
        prepayment: Decimal | int | str | None = None,
        order_block: bool = False,
        dunning_block: bool = False,
        **fields: Any,
    ) -> Applied:
        """Register a customer. With ``email`` and/or ``phone`` it gets one contact (named
        ``contact``, else the customer's name) who prefers ``channel`` (default: the one
        channel it has, none when it has both) and reads ``locale``; ``contacts`` adds more
        (as :class:`~arflow.domain.Contact` or its fields). ``limit``, ``terms``, ``grade``,
        ``prepayment`` (percent) and the blocks make its credit profile; any other field of
        :class:`~arflow.domain.Customer` passes through (``salesperson``, ``region``...)."""
        found: list[Contact] = []
        if email or phone:
            found.append(
                _contact(
                    contact or name or customer_id,
                    email=email,
                    phone=phone,
                    channel=channel,
                    locale=locale,
                )
            )
        found.extend(c if isinstance(c, Contact) else Contact(**c) for c in contacts)
        credit = CreditProfile(
            grade=grade,
            credit_limit=None if limit is None else self._money(limit),
            payment_terms_days=terms,
            prepayment_percent=Decimal(0) if prepayment is None else Decimal(str(prepayment)),
            order_block=order_block,
            dunning_block=dunning_block,
        )
        c = Customer(
            id=customer_id, name=name or customer_id, contacts=tuple(found), credit=credit, **fields
        )
        return self.apply(ev.CustomerRegistered(**self._meta(), customer=c))

    def contact(
        self,
        customer_id: str,
        name: str,
        *,
        email: str | None = None,
        phone: str | None = None,
        channel: Channel | None = None,
        locale: str = "en",
        role: str | None = None,
        on: str | date | None = None,
    ) -> Applied:
        """Add a contact to a registered customer (a ``CustomerUpdated`` keeping the
        others): by e-mail, SMS, phone call or letter (``channel``)."""
        current = self.ledger.customer(customer_id).contacts
        new = _contact(name, email=email, phone=phone, channel=channel, locale=locale, role=role)
        return self.apply(
            ev.CustomerUpdated(
                **self._meta(None if on is None else d(on)),
                customer_id=customer_id,
                contacts=(*current, new),
            )
        )

    def bounce(
        self,
        customer_id: str,
        address: str,
        *,
        channel: Literal["email", "sms"] = "email",
        feedback: Literal["bounced", "invalid", "unsubscribed"] = "bounced",
        on: str | date | None = None,
    ) -> Applied:
        """What a channel said of a contact's address (a bounce, an invalid number, an
        unsubscribe): later messages take the contact's other channels."""
        return self.apply(
            ev.ContactFeedback(
                **self._meta(None if on is None else d(on)),
                customer_id=customer_id,
                address=address,
                channel=channel,
                feedback=feedback,
            )
        )

    def person(
        self,
        person_id: str,
        *roles: str,
        name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        wecom: str | None = None,
        dingtalk: str | None = None,
        manager: str | None = None,
        locale: str = "en",
        active: bool = True,
        **addresses: str,
    ) -> Applied:
        """Add someone of the company to the directory, holding ``roles``: reached by
        ``email``, ``phone`` (SMS), their ``wecom`` or ``dingtalk`` id, or any other
        channel given by name (``task="queue-7"``)."""
        given = {"email": email, "phone": phone, "wecom": wecom, "dingtalk": dingtalk, **addresses}
        person = Person(
            id=person_id,
            name=name or person_id,
            roles=roles,
            manager=manager,
            addresses=tuple(
                PersonAddress(channel=k, address=v) for k, v in given.items() if v is not None
            ),
            locale=locale,
            active=active,
        )
        return self.apply(ev.PersonAdded(**self._meta(), person=person))

    def leave(self, person_id: str, *, on: str | date = "2026-01-01") -> Applied:
        """The person left: kept in the directory, reached by no rule any more."""
        return self.apply(ev.PersonLeft(**self._meta(d(on)), person_id=person_id, left_on=d(on)))

    def grade(
        self,
        customer_id: str,
        grade: str,
        *,
        limit: Money | Decimal | int | str | None = None,
        terms: int | None = None,
        prepayment: Decimal | int | str | None = None,
        on: str | date = "2026-01-01",
        reviewer: str = "test",
    ) -> Applied:
        """A reviewer's credit decision: grade (and limit, terms, prepayment) from ``on``."""
        return self.apply(
            ev.CreditReviewed(
                **self._meta(d(on)),
                customer_id=customer_id,
                reviewed_on=d(on),
                grade=grade,
                credit_limit=None if limit is None else self._money(limit),
                payment_terms_days=terms,
                prepayment_percent=None if prepayment is None else Decimal(str(prepayment)),
                reviewer=reviewer,
            )
        )

    def lock(
        self,
        customer_id: str,
        lock_id: str,
        *,
        scope: Literal["customer", "contract", "order_type"] = "customer",
        ref: str | None = None,
        on: str | date = "2026-01-01",
    ) -> Applied:
        """Place an order lock by hand (as a pack's lock would), e.g. to test its lifting."""
        return self.apply(
            ev.OrderLockPlaced(
                **self._meta(d(on)),
                customer_id=customer_id,
                lock_id=lock_id,
                scope=scope,
                ref=ref,
                placed_on=d(on),
            )
        )

    def unlock(
        self,
        customer_id: str,
        lock_id: str,
        *,
        scope: Literal["customer", "contract", "order_type"] = "customer",
        ref: str | None = None,
        on: str | date = "2026-01-01",
    ) -> Applied:
        """Lift an order lock by hand."""
        return self.apply(
            ev.OrderLockLifted(
                **self._meta(d(on)),
                customer_id=customer_id,
                lock_id=lock_id,
                scope=scope,
                ref=ref,
                lifted_on=d(on),
            )
        )

    def invoice(
        self,
        number: str,
        customer_id: str,
        amount: Money | Decimal | int | str,
        *,
        issued: str | date = "2026-01-01",
        due: str | date | None = None,
        **fields: Any,
    ) -> Applied:
        return self.apply(
            ev.InvoiceIssued(
                **self._meta(d(issued)),
                number=number,
                customer_id=customer_id,
                issue_date=d(issued),
                due_date=None if due is None else d(due),
                amount=self._money(amount),
                **fields,
            )
        )

    def pay(
        self,
        payment_id: str,
        customer_id: str,
        amount: Money | Decimal | int | str,
        *,
        on: str | date = "2026-01-01",
        to: Sequence[tuple[str, Money | Decimal | int | str]] | None = None,
    ) -> Applied:
        allocations = None
        if to is not None:
            allocations = [
                ev.AllocationRequest(receivable_id=r, amount=self._money(a)) for r, a in to
            ]
        return self.apply(
            ev.PaymentReceived(
                **self._meta(d(on)),
                payment_id=payment_id,
                customer_id=customer_id,
                amount=self._money(amount),
                received_on=d(on),
                allocations=allocations,
            )
        )

    def reverse(self, payment_id: str, *, on: str | date = "2026-01-01") -> Applied:
        return self.apply(
            ev.PaymentReversed(**self._meta(d(on)), payment_id=payment_id, reversed_on=d(on))
        )

    def credit(
        self,
        credit_note_id: str,
        customer_id: str,
        amount: Money | Decimal | int | str,
        *,
        invoice: str | None = None,
        on: str | date = "2026-01-01",
    ) -> Applied:
        return self.apply(
            ev.CreditNoteIssued(
                **self._meta(d(on)),
                credit_note_id=credit_note_id,
                customer_id=customer_id,
                receivable_id=invoice,
                amount=self._money(amount),
                issued_on=d(on),
            )
        )

    def dispute(
        self,
        dispute_id: str,
        invoice: str,
        amount: Money | Decimal | int | str | None = None,
        *,
        reason_code: str = "quality",
        on: str | date = "2026-01-01",
    ) -> Applied:
        return self.apply(
            ev.DisputeOpened(
                **self._meta(d(on)),
                dispute_id=dispute_id,
                receivable_id=invoice,
                amount=None if amount is None else self._money(amount),
                reason_code=reason_code,
                opened_on=d(on),
            )
        )

    def resolve(
        self, dispute_id: str, resolution: str = "rejected", *, on: str | date = "2026-01-01"
    ) -> Applied:
        return self.apply(
            ev.DisputeResolved(
                **self._meta(d(on)), dispute_id=dispute_id, resolved_on=d(on), resolution=resolution
            )
        )

    def promise(
        self,
        promise_id: str,
        customer_id: str,
        invoices: Sequence[str],
        amount: Money | Decimal | int | str,
        *,
        by: str | date,
        on: str | date = "2026-01-01",
        promised_by: str = "customer",
    ) -> Applied:
        return self.apply(
            ev.PromiseMade(
                **self._meta(d(on)),
                promise_id=promise_id,
                customer_id=customer_id,
                receivable_ids=list(invoices),
                amount=self._money(amount),
                promised_date=d(by),
                promised_by=promised_by,
                made_on=d(on),
            )
        )

    def break_promise(self, promise_id: str, *, on: str | date = "2026-01-01") -> Applied:
        return self.apply(
            ev.PromiseBroken(**self._meta(d(on)), promise_id=promise_id, broken_on=d(on))
        )

    def write_off(self, invoice: str, *, on: str | date = "2026-01-01") -> Applied:
        return self.apply(
            ev.WrittenOff(**self._meta(d(on)), receivable_id=invoice, written_off_on=d(on))
        )

    def order(
        self,
        order_id: str,
        customer_id: str,
        amount: Money | Decimal | int | str,
        *,
        on: str | date = "2026-01-01",
        **fields: Any,
    ) -> Applied:
        return self.apply(
            ev.OrderSubmitted(
                **self._meta(d(on)),
                order_id=order_id,
                customer_id=customer_id,
                amount=self._money(amount),
                submitted_on=d(on),
                **fields,
            )
        )

    def approve(self, order_id: str, approver: str = "manager") -> Applied:
        return self.apply(ev.OrderApproved(**self._meta(), order_id=order_id, approver=approver))

    def reject(self, order_id: str, approver: str = "manager") -> Applied:
        return self.apply(ev.OrderRejected(**self._meta(), order_id=order_id, approver=approver))

    def ship(self, order_id: str, *, on: str | date = "2026-01-01") -> Applied:
        return self.apply(ev.OrderShipped(**self._meta(d(on)), order_id=order_id, shipped_on=d(on)))


class RuleHarness:
    """Run a rule pack against a small book day by day and look at what it decided.

    The first run is a first run (every past step counts, the catch-up policy applies);
    later runs continue from the last. ``sent(day)`` lists what was decided that day as
    short strings such as ``"dunning standard/sms-3 INV-1"``, easy to compare in a test.
    """

    def __init__(
        self,
        rules: str | Path | Sequence[str | Path] | RulePack | None = None,
        store: Store | str = "memory://",
        *,
        currency: str = "CNY",
    ) -> None:
        from ..engine import Engine
        from ..rules import default_pack_path
        from ..rules.loader import load_pack

        pack = rules if isinstance(rules, RulePack) else load_pack(rules or default_pack_path())
        self.book = BookBuilder(store, currency=currency)
        self.ledger = self.book.ledger
        self.engine = Engine(self.ledger, pack)
        self.results: dict[date, RunResult] = {}

    def run(self, day: str | date) -> RunResult:
        when = d(day)
        result = self.engine.run(when, first_run=not self.results)
        self.results[when] = result
        return result

    def run_days(self, start: str | date, end: str | date) -> dict[date, list[str]]:
        """Run every day from ``start`` to ``end``; return the days something was decided."""
        day, last = d(start), d(end)
        out: dict[date, list[str]] = {}
        while day <= last:
            got = _describe(self.run(day).plan.decisions)
            if got:
                out[day] = got
            day += timedelta(days=1)
        return out

    def handle(self, event: ev.Event) -> list[str]:
        """Give one event to ``Engine.handle``: applied and decided in one transaction, as a
        host's order entry would; returns what it decided (approvals, order alerts, locks,
        milestone rules), as :meth:`sent` does."""
        _applied, decisions = self.engine.handle(event)
        return _describe(decisions)

    @contextmanager
    def live(self) -> Iterator[list[str]]:
        """Inside the block, ``h.book``'s events go through ``Engine.handle`` instead of the
        ledger alone, so the rules that judge events fire (an order's approval tier, a lock
        checked on entry); the list it gives fills with what they decided::

            with h.live() as decided:
                h.book.order("SO-1", "C1", 90_000, on="2026-03-02")
            assert decided == ["approval order-over-limit SO-1"]
        """
        decided: list[str] = []

        def through_engine(event: ev.Event) -> Applied:
            applied, decisions = self.engine.handle(event)
            decided.extend(_describe(decisions))
            return applied

        before = self.book._apply
        self.book._apply = through_engine
        try:
            yield decided
        finally:
            self.book._apply = before

    def sent(self, day: str | date) -> list[str]:
        """What the run of ``day`` decided (run it first)."""
        return _describe(self.results[d(day)].plan.decisions)

    def skipped(self, day: str | date) -> dict[str, str]:
        """What the run of ``day`` skipped, with the reason."""
        return {
            f"{x.kind} {x.rule}/{x.step} {x.subject_id}": x.reason or ""
            for x in self.results[d(day)].plan.skipped
        }


def _describe(decisions: Sequence[Decision]) -> list[str]:
    return sorted(
        f"{x.kind} {x.rule}{'/' + x.step if x.step else ''} {x.subject_id}" for x in decisions
    )
