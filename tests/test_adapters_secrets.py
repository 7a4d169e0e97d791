"""Secrets stay secret: an SMTP password written unencoded in its URL (``#``, ``?``, ``/``),
HTTP basic-auth and bearer values that a receiver echoes back, tokens in URLs. None of them
may reach an error, a log record, the outbox's ``last_error``, the audit trail or the
command's output. Against a real SMTP server (aiosmtpd) and a real HTTP server."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from urllib.parse import quote

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from arflow import Message, TemporaryFailure, adapter_from_url
from arflow.actions import PermanentFailure, redact, split_userinfo
from arflow.cli import main
from arflow.store.base import OutboxRecord
from arflow.store.sql import SqlStore
from tests.smtp_server import Server, free_port, self_signed

#: a password with every character that ends a URL's authority, in distinctive pieces
PIECES = ("Zq9", "Xv7", "Wm5", "Kt3", "Rb2")
PASSWORD = "Zq9#Xv7?Wm5/Kt3@Rb2"
TOKEN = "tok-Hy6Pd3Lq8"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


def leaks(text: str, secrets: tuple[str, ...]) -> list[str]:
    return [s for s in secrets if s in text]


def mail(key: str = "k1") -> Message:
    return Message(
        key=key, channel="email", action="email", customer_id="C1", to=("ap@c1.example",)
    )


@pytest.mark.parametrize(
    "url",
    [
        "smtp://ar:{pw}@127.0.0.1:{port}?starttls=1&from=ar@example.com&timeout=5",
        "smtp://ar:{pw}@127.0.0.1:{port}/?from=ar@example.com&starttls=1&timeout=5",
    ],
)
@pytest.mark.parametrize("password", [PASSWORD, PASSWORD[::-1]])
def test_an_unencoded_smtp_password_logs_in_and_never_shows(
    url: str, password: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))  # the adapter trusts the test's CA
    server = Server(tls="starttls", cert=cert, login=("ar", password)).start()
    try:
        text = url.format(pw=password, port=server.port)
        assert split_userinfo(text)[2] == password
        adapter = adapter_from_url(text)
        assert adapter.deliver(mail()) == mail().message_id  # the login worked
        assert len(server.handler.received) == 1
        shown = [redact(text), repr(adapter)]
        wrong = adapter_from_url(text.replace(password, password.swapcase()))
        with pytest.raises(PermanentFailure) as refused:
            wrong.deliver(mail("k2"))
        shown.append(str(refused.value))
    finally:
        server.stop()
    down = adapter_from_url(url.format(pw=password, port=free_port()))
    with pytest.raises(TemporaryFailure) as failed:
        down.deliver(mail("k3"))
    shown.append(str(failed.value))
    pieces = [p for piece in PIECES for p in (piece, piece[::-1], piece.swapcase())]
    for text in shown:
        assert leaks(text, tuple(pieces)) == [], text
    assert "ar:***@127.0.0.1" in shown[0]


def queue(db: str, *messages: Message) -> SqlStore:
    store = SqlStore(db)
    with store.transaction() as tx:
        for m in messages:
            tx.add_outbox(
                OutboxRecord(
                    key=m.key, channel=m.channel, customer_id="C1", body=m.model_dump_json()
                )
            )
    return store


def command_output(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(list(argv))
    got = capsys.readouterr()
    return got.out + got.err


def test_the_dispatch_command_keeps_an_unencoded_smtp_password_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db = f"sqlite:///{tmp_path / 'book.db'}"
    store = queue(db, mail())
    url = f"smtp://ar:{PASSWORD}@127.0.0.1:{free_port()}?from=ar@example.com&timeout=2"
    out = command_output(capsys, "dispatch", "--db", db, "--email", url, "--max-attempts", "1")
    assert "1 dead" in out
    out += command_output(capsys, "outbox", "list", "-v", "--db", db)
    out += command_output(capsys, "outbox", "dead", "--db", db)
    # a URL the command refuses shows no password either
    out += command_output(capsys, "dispatch", "--db", db, "--email", url.replace("from=", "x="))
    [rec] = store.outbox()
    assert rec.status == "dead" and "ConnectionRefusedError" in (rec.last_error or "")
    for text in (out, caplog.text, rec.last_error or ""):
        assert leaks(text, PIECES) == [], text
    store.close()


def echo(status: int, pad: int = 0):  # type: ignore[no-untyped-def]
    """A receiver that answers ``status`` with the request's headers in its body."""

    def handler(request: Request) -> Response:
        request.get_data()
        auth = request.headers.get("Authorization")
        return Response(f"{'x' * pad} Authorization: {auth} | {request.headers}", status=status)

    return handler


@pytest.mark.parametrize("status", [503, 400])
@pytest.mark.parametrize("pad", [0, 150])
@pytest.mark.parametrize("spelled", ["as is", "encoded"])
def test_echoed_credentials_stay_out_of_the_outbox_logs_and_output(
    httpserver: HTTPServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    status: int,
    pad: int,
    spelled: str,
) -> None:
    """SMS with basic auth (an unencoded password), a webhook with a bearer token and one
    whose message names a URL with credentials of its own: each receiver echoes the
    request's headers (``pad`` puts the Authorization value where the error's excerpt of
    the reply is cut)."""
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request("/sms").respond_with_handler(echo(status, pad))
    httpserver.expect_request("/hook").respond_with_handler(echo(status, pad))
    httpserver.expect_request("/theirs").respond_with_handler(echo(status, pad))
    base = f"{httpserver.host}:{httpserver.port}"
    sms = Message(key="s1", channel="sms", action="sms", customer_id="C1", to=("+15550100",))
    own = Message(key="w1", channel="webhook", action="webhook", customer_id="C1")
    theirs_password = "Lp4#Gf8?Ns1"
    theirs = own.model_copy(
        update={"key": "w2", "url": f"webhook+http://them:{theirs_password}@{base}/theirs"}
    )
    db = f"sqlite:///{tmp_path / 'book.db'}"
    store = queue(db, sms, own, theirs)
    out = command_output(
        capsys,
        "dispatch",
        "--db",
        db,
        "--sms",
        f"sms+http://user:{PASSWORD if spelled == 'as is' else quote(PASSWORD, safe='')}"
        f"@{base}/sms",
        "--webhook",
        f"webhook+http://{base}/hook?secret=whsec-Qa1Ws2&token={TOKEN}",
        "--max-attempts",
        "1",
    )
    assert "3 dead" in out
    out += command_output(capsys, "outbox", "list", "-v", "--db", db)
    errors = [r.last_error or "" for r in store.outbox()]
    assert all(f"HTTP {status}" in e for e in errors), errors
    assert all("Authorization: ***" in e for e in errors if pad == 0), errors  # echoed
    basic = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    their_basic = base64.b64encode(f"them:{theirs_password}".encode()).decode()
    secrets = (
        *PIECES,
        TOKEN,
        "whsec-Qa1Ws2",
        basic,
        basic[:-4],
        their_basic,
        their_basic[:-4],
        theirs_password,
    )
    for text in (out, caplog.text, *errors):
        assert leaks(text, secrets) == [], text
    store.close()


def test_a_queue_urls_unencoded_password_reaches_the_client_and_no_error() -> None:
    pytest.importorskip("rq")
    url = f"rq+redis://:{PASSWORD}@127.0.0.1:{free_port()}/0?func=erp.jobs.ar_action&timeout=2"
    adapter = adapter_from_url(url)
    pool = adapter.queue.connection.connection_pool  # type: ignore[attr-defined]
    assert pool.connection_kwargs["password"] == PASSWORD
    with pytest.raises(TemporaryFailure) as down:
        adapter.deliver(Message(key="t1", channel="task", action="task", customer_id="C1"))
    for text in (repr(adapter), redact(url), str(down.value), adapter.scrub(f"x {PASSWORD} y")):  # type: ignore[attr-defined]
        assert leaks(text, PIECES) == [], text


def test_a_query_secret_written_with_a_hash_is_masked_whole() -> None:
    assert redact("webhook+https://h.example/p?secret=Ab3#Cd4&x=1") == (
        "webhook+https://h.example/p?secret=***#***"
    )
    assert redact("sms+https://h.example/p?api_key=k1&sig=s2&to=9") == (
        "sms+https://h.example/p?api_key=***&sig=***&to=9"
    )


def test_an_adapter_of_ones_own_that_quotes_its_url_has_it_redacted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """An adapter without ``scrub`` whose error quotes a URL with a password and a token:
    the dispatcher redacts every URL in what it stores and logs."""
    from datetime import UTC, datetime

    from arflow import Dispatcher

    caplog.set_level(logging.DEBUG)
    db = f"sqlite:///{tmp_path / 'book.db'}"
    store = queue(db, mail())

    class Careless:
        def deliver(self, message: Message) -> str | None:
            raise OSError(f"cannot reach https://bot:{PASSWORD}@chat.example/send?token={TOKEN}")

    Dispatcher(store, Careless(), clock=lambda: datetime(2026, 3, 2, tzinfo=UTC)).run_once()
    [rec] = store.outbox()
    assert "https://bot:***@chat.example/send?token=***" in (rec.last_error or "")
    out = command_output(capsys, "outbox", "list", "-v", "--db", db)
    for text in (rec.last_error or "", caplog.text, out):
        assert leaks(text, (*PIECES, TOKEN)) == [], text
    store.close()
