"""The SMTP adapter against a real SMTP server (aiosmtpd) started by the tests: plain, STARTTLS
with login, implicit TLS; a server that defers, one that is down, refused recipients; and a
dunning day from the engine to the mailbox."""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from arflow import (
    Dispatcher,
    MemoryStore,
    Message,
    PermanentFailure,
    RetryPolicy,
    TemporaryFailure,
    adapter_from_url,
)
from arflow.adapters.smtp import SmtpAdapter
from arflow.engine import Engine
from arflow.outbox import micros
from arflow.store.base import OutboxRecord
from arflow.testing import BookBuilder
from tests.smtp_server import Server, free_port, self_signed

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"


def msg(key: str = "dunning:std:due:I1:2026-03-02", **kw: object) -> Message:
    base: dict[str, object] = {
        "key": key,
        "channel": "email",
        "action": "email",
        "customer_id": "C1",
        "to": ("ap@c1.example",),
        "cc": ("li.wei@example.com",),
        "subject": "付款提醒 INV-1",
        "text": "您好，发票 INV-1 今日到期：¥1,000.00。",
        "html": "<!DOCTYPE html><p>您好，发票 <b>INV-1</b> 今日到期。</p>",
        "locale": "zh_CN",
    }
    base.update(kw)
    return Message.model_validate(base)


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    s = Server().start()
    yield s
    s.stop()


def test_plain_smtp_delivers_multipart_mail_with_a_message_id_from_the_key(server: Server) -> None:
    a = adapter_from_url(f"smtp://127.0.0.1:{server.port}?from=AR%20Team%20%3Car@example.com%3E")
    m = msg()
    receipt = a.deliver(m)
    [got] = server.handler.received
    assert got.sender == "ar@example.com"
    assert got.recipients == ["ap@c1.example", "li.wei@example.com"]
    mail = got.message
    assert mail["Message-ID"] == m.message_id == receipt
    assert mail["Subject"] == "付款提醒 INV-1"
    assert mail["X-Arflow-Key"] == m.key
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and "¥1,000.00" in text.get_content()
    assert html is not None and "<b>INV-1</b>" in html.get_content()
    # the same action always has the same Message-ID; another action another one
    assert msg().message_id == m.message_id != msg(key="other").message_id


def test_starttls_with_login(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    s = Server(tls="starttls", cert=cert, login=("ar", "pa ss/wd")).start()
    try:
        ctx = ssl.create_default_context(cafile=str(cert[0]))
        a = SmtpAdapter(
            "127.0.0.1",
            s.port,
            sender="ar@example.com",
            username="ar",
            password="pa ss/wd",
            tls="starttls",
            ssl_context=ctx,
        )
        a.deliver(msg())
        assert len(s.handler.received) == 1
        bad = SmtpAdapter(
            "127.0.0.1",
            s.port,
            sender="ar@example.com",
            username="ar",
            password="wrong-secret",
            tls="starttls",
            ssl_context=ctx,
        )
        with pytest.raises(PermanentFailure) as info:
            bad.deliver(msg())
        assert "login refused" in str(info.value) and "wrong-secret" not in str(info.value)
        assert "wrong-secret" not in repr(bad)
    finally:
        s.stop()


def test_smtps_implicit_tls(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    s = Server(tls="ssl", cert=cert).start()
    try:
        ctx = ssl.create_default_context(cafile=str(cert[0]))
        a = SmtpAdapter("127.0.0.1", s.port, sender="ar@example.com", tls="ssl", ssl_context=ctx)
        a.deliver(msg())
        assert [str(r.message["Subject"]) for r in s.handler.received] == ["付款提醒 INV-1"]
    finally:
        s.stop()


def test_a_refused_recipient_is_a_bounce_of_that_address(server: Server) -> None:
    server.handler.reject = {"ap@c1.example"}
    a = adapter_from_url(f"smtp://127.0.0.1:{server.port}?from=ar@example.com")
    with pytest.raises(PermanentFailure) as info:
        a.deliver(msg(cc=()))
    assert info.value.feedback == "bounced" and info.value.address == "ap@c1.example"
    assert server.handler.received == []


def queue_one(store: MemoryStore, m: Message) -> None:
    with store.transaction() as tx:
        tx.add_outbox(
            OutboxRecord(key=m.key, channel="email", customer_id="C1", body=m.model_dump_json())
        )


def test_a_server_that_defers_then_accepts_gets_the_message_once(server: Server) -> None:
    server.handler.defer_first = 3
    store = MemoryStore()
    queue_one(store, msg())
    now = [datetime(2026, 3, 2, 12, tzinfo=UTC)]
    d = Dispatcher(
        store,
        adapter_from_url(f"smtp://127.0.0.1:{server.port}?from=ar@example.com"),
        clock=lambda: now[0],
        retry=RetryPolicy(max_attempts=5, base=timedelta(seconds=5)),
    )
    for _ in range(3):
        assert d.run().retried == 1
        now[0] += timedelta(hours=1)
    assert d.run().sent == 1
    assert len(server.handler.received) == 1 and server.handler.deferred == 3
    rec = store.outbox_item(msg().key)
    assert rec is not None and rec.attempts == 4 and "451" in (rec.last_error or "")


def test_a_server_down_for_the_first_attempts_then_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    url = f"smtp://ar:Pw-0f-the-relay@127.0.0.1:{port}?from=ar@example.com&timeout=3"
    store = MemoryStore()
    queue_one(store, msg())
    now = [datetime(2026, 3, 2, 12, tzinfo=UTC)]
    d = Dispatcher(store, adapter_from_url(url), clock=lambda: now[0])
    assert d.run().retried == 1  # connection refused: temporary
    now[0] += timedelta(hours=1)
    assert d.run().retried == 1
    rec = store.outbox_item(msg().key)
    assert rec is not None and "Connection" in (rec.last_error or "")
    s = Server(port=port, login=None).start()
    try:
        # aiosmtpd offers no AUTH without TLS here: send without login to this relay
        d.adapters["email"] = adapter_from_url(f"smtp://127.0.0.1:{port}?from=ar@example.com")
        now[0] += timedelta(hours=7)
        assert d.run().sent == 1
        assert len(s.handler.received) == 1
    finally:
        s.stop()
    assert "Pw-0f-the-relay" not in caplog.text
    assert "Pw-0f-the-relay" not in (rec.last_error or "")


def test_a_server_down_past_the_limit_is_a_dead_letter_with_the_error() -> None:
    store = MemoryStore()
    queue_one(store, msg())
    now = [datetime(2026, 3, 2, 12, tzinfo=UTC)]
    a = adapter_from_url(f"smtp://127.0.0.1:{free_port()}?from=ar@example.com&timeout=3")
    d = Dispatcher(store, a, clock=lambda: now[0], retry=RetryPolicy(max_attempts=3))
    for _ in range(3):
        d.run()
        now[0] += timedelta(hours=7)
    rec = store.outbox_item(msg().key)
    assert rec is not None and rec.status == "dead"
    assert "gave up after 3 attempts" in (rec.last_error or "")
    with pytest.raises(TemporaryFailure):
        a.deliver(msg())


def test_a_dunning_day_from_the_engine_to_the_mailbox(server: Server) -> None:
    b = BookBuilder(MemoryStore())
    from tests.test_outbox import register

    register(b, "C1", email="ap@c1.example")
    b.invoice("INV-7", "C1", 12_500, issued="2026-01-31", due=date(2026, 3, 2))
    engine = Engine(b.ledger, RULES)
    engine.run(date(2026, 3, 2), first_run=True)
    stats = Dispatcher(
        b.ledger.store,
        {"email": adapter_from_url(f"smtp://127.0.0.1:{server.port}?from=ar@example.com")},
        channels=["email"],
        clock=lambda: datetime(2026, 3, 2, 3, tzinfo=UTC),
    ).run()
    assert stats.sent == 1
    [got] = server.handler.received
    assert got.recipients == ["ap@c1.example"]
    body = got.message.get_body(("plain",))
    assert body is not None and "INV-7" in body.get_content() and "¥12,500.00" in body.get_content()
    assert micros(datetime(2026, 3, 2, 3, tzinfo=UTC)) > 0
