"""A customer contact's preferred channel decides which channel a customer message tries
first (issue 14: an "sms" contact got e-mail), the rule's channels following as fallbacks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from arflow import (
    Contact,
    CustomerRegistered,
    Engine,
    Ledger,
    MemoryAdapter,
    Message,
    load_pack,
)
from arflow.domain import Customer
from arflow.messages import channel_chain
from arflow.outbox import Dispatcher
from arflow.testing import BookBuilder

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
PACK = load_pack(RULES)
DUE = "2026-03-02"


def run(store: Any, contact: Contact, day: date) -> list[Message]:
    return run_with_plan(store, contact, day)[0]


def run_with_plan(store: Any, contact: Contact, day: date) -> tuple[list[Message], Any]:
    b = BookBuilder(Ledger(store))
    b.apply(
        CustomerRegistered(
            occurred_at=datetime(2026, 1, 2, 9, tzinfo=UTC),
            actor="erp",
            customer=Customer(
                id="C1", name="Acme", salesperson="li.wei@example.cn", contacts=[contact]
            ),
        )
    )
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    result = Engine(b.ledger, PACK).run(day, first_run=True)
    messages = [
        Message.model_validate_json(r.body)
        for r in store.outbox()
        if r.customer_id == "C1" and "task" not in r.key
    ]
    return messages, result.plan


def test_an_sms_contact_gets_the_reminder_by_sms_with_email_as_fallback(store: Any) -> None:
    wang = Contact(
        name="Wang", email="wang@acme.example", phone="+8613800000001", preferred_channel="sms"
    )
    # before-due: an e-mail action to the customer
    (m,), plan = run_with_plan(store, wang, date(2026, 2, 23))
    assert (m.channel, m.to) == ("sms", ("+8613800000001",))
    assert m.subject is None and m.text  # rendered as an SMS
    assert [(f.channel, f.to) for f in m.fallbacks] == [("email", ("wang@acme.example",))]
    # the decision records the address the message goes to first
    (d,) = [d for d in plan.decisions if d.kind == "dunning"]
    assert d.recipients["customer"] == "+8613800000001"
    # an SMS that fails for good goes on to the e-mail
    sms = MemoryAdapter(refuse={"+8613800000001": "invalid"})
    mail = MemoryAdapter()
    Dispatcher(store, {"sms": sms, "email": mail}).run()
    assert [x.to for x in mail.sent] == [("wang@acme.example",)]


def test_an_email_contact_gets_an_sms_step_by_email_first(store: Any) -> None:
    wang = Contact(
        name="Wang", email="wang@acme.example", phone="+8613800000001", preferred_channel="email"
    )
    msgs = run(store, wang, date(2026, 3, 5))  # sms-3: sms to customer, fallback email, task
    (m,) = [x for x in msgs if x.template and x.template.startswith("overdue_sms")]
    assert (m.channel, m.to) == ("email", ("wang@acme.example",))
    assert [f.channel for f in m.fallbacks] == ["sms", "task"]


def test_a_contact_without_a_preference_gets_the_rules_channel(store: Any) -> None:
    """No preference (the default) is not a preference for e-mail: the SMS step sends
    the SMS."""
    wang = Contact(name="Wang", email="wang@acme.example", phone="+8613800000001")
    assert wang.preferred_channel is None
    msgs = run(store, wang, date(2026, 3, 5))
    (m,) = [x for x in msgs if x.template and x.template.startswith("overdue_sms")]
    assert (m.channel, m.to) == ("sms", ("+8613800000001",))
    assert [f.channel for f in m.fallbacks] == ["email", "task"]


def test_an_sms_contact_without_a_phone_still_gets_the_email(store: Any) -> None:
    wang = Contact(name="Wang", email="wang@acme.example", preferred_channel="sms")
    (m,) = run(store, wang, date(2026, 2, 23))
    assert (m.channel, m.to, m.fallbacks) == ("email", ("wang@acme.example",), ())


@pytest.mark.parametrize(
    ("first", "fallback", "to", "preferred", "chain"),
    [
        ("email", (), ("customer",), "sms", ["sms", "email"]),
        ("email", ("task",), ("customer",), "sms", ["sms", "email", "task"]),
        ("sms", ("email", "task"), ("customer",), "email", ["email", "sms", "task"]),
        ("email", (), ("customer",), "email", ["email"]),
        ("email", (), ("customer",), "phone", ["email"]),  # for people to act on
        ("email", (), ("customer",), "letter", ["email"]),
        ("email", (), ("salesperson",), "sms", ["email"]),  # not a customer message
        ("task", (), ("customer",), "sms", ["task"]),
        ("wecom", ("email",), ("customer",), "sms", ["wecom", "email"]),
    ],
)
def test_channel_chain(
    first: str, fallback: tuple[str, ...], to: tuple[str, ...], preferred: str, chain: list[str]
) -> None:
    c = Customer(
        id="C1",
        name="Acme",
        contacts=[Contact(name="W", email="w@a.example", preferred_channel=preferred)],  # type: ignore[arg-type]
    )
    assert channel_chain(first, fallback, to, c) == chain
    assert channel_chain(first, fallback, to, None) == [first, *fallback]
