"""The one resolver from a role to an address on a channel (``arflow.messages``).

``customer`` is the first contact still reachable on the channel: unsubscribed contacts get
no e-mail or SMS, bounced or invalid e-mail addresses and invalid phone numbers are skipped;
an SMS goes to the phone, an e-mail to the e-mail address, a task to the salesperson.
``salesperson`` and ``sales_manager`` are the customer's own; other roles the pack's.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from arflow import Contact, CreditProfile, Customer, MemoryAdapter, Message, Money
from arflow.messages import (
    ledger_feedback,
    person,
    reachable_contact,
    resolve_address,
    resolve_addresses,
)
from arflow.outbox import DeliveryFeedback, Dispatcher, micros
from arflow.store.base import OutboxRecord
from arflow.testing import BookBuilder

ROLES = {"finance": "cfo@example.com", "legal": "legal@example.com"}


def customer(*contacts: Contact, salesperson: str | None = "li.wei") -> Customer:
    return Customer(
        id="C1",
        name="Acme",
        salesperson=salesperson,
        sales_manager="zhang.min",
        contacts=list(contacts),
        credit=CreditProfile(credit_limit=Money.of(1_000, "CNY")),
    )


WANG = Contact(name="Wang", email="wang@acme.example", phone="+8613800000001")
LI = Contact(name="Li", email="li@acme.example", phone="+8613800000002")


@pytest.mark.parametrize(
    ("first", "channel", "expected"),
    [
        (WANG, "email", "wang@acme.example"),
        (WANG, "sms", "+8613800000001"),
        (WANG, "task", "li.wei"),  # a task about the customer goes to the salesperson
        (WANG, "webhook", None),
        # unsubscribed: no e-mail, no SMS; a task still reaches the salesperson
        (WANG.model_copy(update={"unsubscribed": True}), "email", "li@acme.example"),
        (WANG.model_copy(update={"unsubscribed": True}), "sms", "+8613800000002"),
        (WANG.model_copy(update={"unsubscribed": True}), "task", "li.wei"),
        # a bounced address is skipped on e-mail only, an invalid number on SMS only
        (WANG.model_copy(update={"email_invalid": True}), "email", "li@acme.example"),
        (WANG.model_copy(update={"email_invalid": True}), "sms", "+8613800000001"),
        (WANG.model_copy(update={"phone_invalid": True}), "sms", "+8613800000002"),
        (WANG.model_copy(update={"phone_invalid": True}), "email", "wang@acme.example"),
        # no address for the channel: the next contact
        (Contact(name="Wang", email="wang@acme.example"), "sms", "+8613800000002"),
        (Contact(name="Wang", phone="+8613800000009"), "email", "li@acme.example"),
    ],
)
def test_the_customer_is_the_first_contact_reachable_on_the_channel(
    first: Contact, channel: str, expected: str | None
) -> None:
    assert resolve_address(customer(first, LI), "customer", channel) == expected


def test_no_reachable_contact_reaches_no_one() -> None:
    gone = WANG.model_copy(update={"unsubscribed": True})
    bounced = LI.model_copy(update={"email_invalid": True, "phone_invalid": True})
    c = customer(gone, bounced)
    assert resolve_address(c, "customer", "email") is None
    assert resolve_address(c, "customer", "sms") is None
    assert resolve_address(customer(), "customer", "email") is None
    assert resolve_address(customer(), "customer", "task") is None
    assert reachable_contact(c.contacts, "email") is None
    assert reachable_contact(c.contacts, "task") is gone


def test_people_and_roles() -> None:
    c = customer(WANG)
    for channel in ("email", "sms", "task"):
        assert resolve_address(c, "salesperson", channel, roles=ROLES) == "li.wei"
        assert resolve_address(c, "sales_manager", channel, roles=ROLES) == "zhang.min"
        assert resolve_address(c, "finance", channel, roles=ROLES) == "cfo@example.com"
    assert resolve_address(c, "finance", "email") is None  # no roles given
    assert resolve_address(c, "nobody", "email", roles=ROLES) is None
    # a customer without a salesperson: the pack's role of that name, if any
    bare = customer(WANG, salesperson=None)
    assert resolve_address(bare, "salesperson", "email") is None
    assert resolve_address(bare, "salesperson", "email", roles={"salesperson": "ar@x.y"}) == (
        "ar@x.y"
    )
    assert person(c, "salesperson") == "li.wei" and person(c, "finance") is None


def test_recipients_a_decision_resolved_win_except_for_the_customer() -> None:
    c = customer(WANG.model_copy(update={"email_invalid": True}), LI)
    decided = {"customer": "wang@acme.example", "finance": "old-cfo@example.com", "legal": None}
    got = resolve_addresses(
        c, ["customer", "finance", "legal", "salesperson"], "email", roles=ROLES, recipients=decided
    )
    # the contact is looked up again (Wang bounced since); an unresolved role falls back
    assert got == ("li@acme.example", "old-cfo@example.com", "legal@example.com", "li.wei")


def test_resolve_addresses_keeps_order_and_drops_repeats_and_the_unreachable() -> None:
    c = customer(WANG)
    roles = {"finance": "li.wei", "legal": "legal@example.com"}
    got = resolve_addresses(
        c, ["salesperson", "nobody", "finance", "customer", "legal"], "email", roles=roles
    )
    assert got == ("li.wei", "wang@acme.example", "legal@example.com")
    assert resolve_addresses(c, [], "email") == ()


def test_ledger_feedback_marks_the_contact_once() -> None:
    b = BookBuilder()
    b.customer("C1", email="ap@c1.example")
    record = ledger_feedback(b.ledger)
    fb = DeliveryFeedback(
        key="notice:C1",
        customer_id="C1",
        address="ap@c1.example",
        channel="email",
        feedback="bounced",
        reason="email to ap@c1.example: bounced",
        at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    record(fb)
    record(fb)  # reported twice: the same event id, recorded once
    (contact,) = b.ledger.customer("C1").contacts
    assert contact.email_invalid and not contact.unsubscribed
    trail = [r for r in b.ledger.audit_trail("customer", "C1") if r.event_type == "ContactFeedback"]
    assert len(trail) == 1 and trail[0].actor == "arflow-dispatcher"
    # once bounced, the contact no longer reaches the customer by e-mail
    assert resolve_address(b.ledger.customer("C1"), "customer", "email") is None


def queued(b: BookBuilder, key: str, to: str, now: datetime) -> None:
    m = Message(key=key, channel="email", action="email", customer_id="C1", to=(to,))
    with b.ledger.store.transaction() as tx:
        tx.add_outbox(
            OutboxRecord(
                key=key,
                channel="email",
                customer_id="C1",
                body=m.model_dump_json(),
                created_at=micros(now),
                next_at=micros(now),
            )
        )


def test_the_dispatcher_hands_feedback_to_on_feedback_and_without_one_records_nothing() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    b = BookBuilder()
    b.customer("C1", email="ap@c1.example")
    sink = MemoryAdapter(refuse={"ap@c1.example": "unsubscribed"})
    queued(b, "k1", "ap@c1.example", now)
    assert Dispatcher(b.ledger.store, sink, clock=lambda: now).run().dead == 1
    assert not b.ledger.customer("C1").contacts[0].unsubscribed
    queued(b, "k2", "ap@c1.example", now)
    seen: list[DeliveryFeedback] = []
    assert Dispatcher(b.ledger.store, sink, on_feedback=seen.append, clock=lambda: now).run().dead
    (fb,) = seen
    assert (fb.key, fb.customer_id, fb.address, fb.channel, fb.feedback, fb.at) == (
        "k2",
        "C1",
        "ap@c1.example",
        "email",
        "unsubscribed",
        now,
    )
    assert fb.reason.startswith("email to ap@c1.example: ")
