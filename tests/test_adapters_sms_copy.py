"""The default pack's SMS step copies the sales manager (``cc: [sales_manager]``). An SMS
reaches the numbers in ``to`` only, so the copy goes out as an e-mail of its own: from a
day's run to a real SMS gateway (an HTTP server) and a real mail server (aiosmtpd)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from arflow import (
    Contact,
    CreditProfile,
    Customer,
    CustomerRegistered,
    Dispatcher,
    MemoryAdapter,
    Message,
    Money,
    Store,
)
from arflow.adapters.http import SmsHttpAdapter
from arflow.adapters.smtp import SmtpAdapter
from arflow.engine import Engine
from arflow.rules.loader import load_pack
from arflow.testing import BookBuilder
from tests.smtp_server import Server

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"
DUE = date(2026, 3, 2)
PHONE = "+8613800000001"
MANAGER = "zhang.min@example.com"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


def test_the_sms_steps_copy_reaches_the_sales_manager_by_email(
    store: Store, httpserver: HTTPServer
) -> None:
    b = BookBuilder(store)
    b.apply(
        CustomerRegistered(
            event_id="reg-C1",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="t",
            customer=Customer(
                id="C1",
                name="Acme Trading",
                salesperson="li.wei@example.com",
                sales_manager=MANAGER,
                contacts=[
                    Contact(name="Wang Fang", email="ap@c1.example", phone=PHONE, locale="en")
                ],
                credit=CreditProfile(grade="B", credit_limit=Money.of(1_000_000, "CNY")),
            ),
        )
    )
    b.invoice("I1", "C1", 1_000, issued="2026-01-31", due=DUE)
    Engine(b.ledger, load_pack(RULES)).run(date(2026, 3, 5), first_run=True)  # due+3d: sms-3

    queued = {r.key: Message.model_validate_json(r.body) for r in store.outbox()}
    [sms] = [m for m in queued.values() if m.channel == "sms"]
    assert sms.to == (PHONE,) and sms.cc == ()  # the SMS does not pretend to carry the cc
    copy = queued[f"{sms.key}~cc"]
    assert (copy.channel, copy.to, copy.cc) == ("email", (MANAGER,), ())
    assert copy.data["copy_of"] == {"channel": "sms", "to": [PHONE]}

    httpserver.expect_request("/sms", method="POST").respond_with_json({"id": "sms-1"})
    server = Server().start()
    try:
        adapters = {
            "sms": SmsHttpAdapter(httpserver.url_for("/sms")),
            "email": SmtpAdapter("127.0.0.1", server.port, sender="ar@example.com", timeout=10),
            "task": MemoryAdapter(),
        }
        clock = datetime(2026, 3, 6, 3, tzinfo=UTC)  # 11:00 in Shanghai, a Friday
        stats = Dispatcher(store, adapters, clock=lambda: clock).run()
    finally:
        server.stop()
    assert stats.dead == 0 and stats.sent == len(queued)
    [post] = [json.loads(req.get_data()) for req, _ in httpserver.log]
    assert post["to"] == PHONE and "overdue" in post["text"]
    mails = [r for r in server.handler.received if MANAGER in r.recipients]
    assert len(mails) == 1
    body = mails[0].message.get_content()
    assert post["text"] in body and PHONE in body
    assert "Acme Trading" in str(mails[0].message["Subject"])
