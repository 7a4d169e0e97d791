"""The HTTP adapters against a real local HTTP server (pytest-httpserver)."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from arflow.actions import Message, PermanentFailure, TemporaryFailure
from arflow.adapters import adapter_from_url
from arflow.adapters.http import (
    SignatureError,
    SmsHttpAdapter,
    WebhookAdapter,
    render,
    sign,
    sms_from_url,
    verify_signature,
    webhook_from_url,
)
from arflow.errors import ArflowError

SECRET = "whsec-Zq8pL1vK"
PASSWORD = "pw-Xy7RtQ9s"
TOKEN = "tok-Mn4Bv2Lk"
NOW = 1_750_000_000


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # a proxy in the environment must not swallow requests to the local server
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


def sms(*to: str, key: str = "k-1", text: str = "Invoice 42 is due.") -> Message:
    return Message(key=key, channel="sms", action="sms", customer_id="C1", to=to, text=text)


def hook(**extra: Any) -> Message:
    return Message(
        key="wh-1",
        channel="webhook",
        action="webhook",
        customer_id="C1",
        text="Übermorgen fällig",
        subject_ids=("INV-1",),
        data={"amount": "120.50"},
        **extra,
    )


def body_of(server: HTTPServer, n: int = 0) -> bytes:
    request = server.log[n][0]
    data: bytes = request.get_data()
    return data


def header(server: HTTPServer, name: str, n: int = 0) -> str | None:
    value: str | None = server.log[n][0].headers.get(name)
    return value


def free_port() -> int:
    """A port nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- SMS ------------------------------------------------------------------------------------------


def test_generic_profile_posts_exact_json_with_idempotency_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/send", method="POST").respond_with_json({"id": "m-1"})
    adapter = SmsHttpAdapter(httpserver.url_for("/send"), token=TOKEN)
    assert adapter.deliver(sms("+4915112345678")) == "m-1"
    assert len(httpserver.log) == 1
    assert body_of(httpserver) == (
        b'{"to":"+4915112345678","text":"Invoice 42 is due.","reference":"k-1"}'
    )
    assert header(httpserver, "Content-Type") == "application/json"
    assert header(httpserver, "Idempotency-Key") == "k-1"
    assert header(httpserver, "Authorization") == f"Bearer {TOKEN}"


def test_several_recipients_one_post_each_with_stable_keys(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/send").respond_with_json({"message_id": "a"})
    httpserver.expect_ordered_request("/send").respond_with_json({"MessageId": "b"})
    adapter = SmsHttpAdapter(httpserver.url_for("/send"))
    assert adapter.deliver(sms("+111", "+222")) == "a,b"
    keys = [header(httpserver, "Idempotency-Key", n) for n in range(2)]
    assert keys == ["k-1-0", "k-1-1"]
    assert json.loads(body_of(httpserver, 1)) == {
        "to": "+222",
        "text": "Invoice 42 is due.",
        "reference": "k-1-1",
    }
    assert header(httpserver, "Authorization") is None


def test_no_id_in_reply_returns_none(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/send").respond_with_data("accepted", status=202)
    assert SmsHttpAdapter(httpserver.url_for("/send")).deliver(sms("+111")) is None


def test_twilio_profile_form_body_and_basic_auth(httpserver: HTTPServer) -> None:
    path = "/2010-04-01/Accounts/AC1/Messages.json"
    httpserver.expect_request(path, method="POST").respond_with_json({"sid": "SM9"}, status=201)
    base = f"{httpserver.host}:{httpserver.port}"
    url = f"sms+http://AC1:{PASSWORD}@{base}{path}?profile=twilio&from=%2B15550100"
    adapter = adapter_from_url(url)
    assert isinstance(adapter, SmsHttpAdapter)
    assert adapter.deliver(sms("+15551234", text="Pay 10 € & thanks")) == "SM9"
    expected = urlencode({"To": "+15551234", "From": "+15550100", "Body": "Pay 10 € & thanks"})
    assert body_of(httpserver) == expected.encode()
    assert header(httpserver, "Content-Type") == "application/x-www-form-urlencoded"
    basic = base64.b64encode(f"AC1:{PASSWORD}".encode()).decode()
    assert header(httpserver, "Authorization") == f"Basic {basic}"
    assert header(httpserver, "Idempotency-Key") == "k-1"
    assert httpserver.log[0][0].query_string == b""  # arflow's keys stay home


def test_aliyun_profile_template_param_is_a_json_string(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/sms").respond_with_json(
        {"Code": "OK", "BizId": "biz-7", "RequestId": "r"}
    )
    httpserver.expect_ordered_request("/sms").respond_with_json(
        {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "illegal mobile number"}
    )
    adapter = SmsHttpAdapter(httpserver.url_for("/sms"), profile="aliyun", sender="ARFLOW")
    assert adapter.deliver(sms("13800000000", text='say "hi"')) == "biz-7"
    assert json.loads(body_of(httpserver)) == {
        "PhoneNumbers": "13800000000",
        "SignName": "ARFLOW",
        "TemplateParam": '{"text":"say \\"hi\\"","reference":"k-1"}',
    }
    with pytest.raises(PermanentFailure) as err:
        adapter.deliver(sms("13800000001"))
    assert err.value.feedback == "invalid"
    assert err.value.address == "13800000001"
    assert "MOBILE_NUMBER_ILLEGAL" in str(err.value)


def test_custom_body_template_and_headers(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_json({"id": 17})
    adapter = SmsHttpAdapter(
        httpserver.url_for("/x"),
        body={"msg": {"dest": ["{to}"], "body": "{text} {unknown} {key}"}, "n": 1},
        headers={"X-Api-Key": "hdr-secret"},
    )
    assert adapter.deliver(sms("+1", text="{to}")) == "17"
    assert json.loads(body_of(httpserver)) == {
        "msg": {"dest": ["+1"], "body": "{to} {unknown} k-1"},
        "n": 1,
    }
    assert header(httpserver, "X-Api-Key") == "hdr-secret"


def test_render_replaces_only_known_placeholders() -> None:
    assert render({"a": "{x}{y}", "b": [1, "{x}"]}, {"x": "{y}"}) == {
        "a": "{y}{y}",
        "b": [1, "{y}"],
    }


def test_503_twice_then_success(httpserver: HTTPServer) -> None:
    for _ in range(2):
        httpserver.expect_ordered_request("/send").respond_with_data(
            "busy", status=503, headers={"Retry-After": "2"}
        )
    httpserver.expect_ordered_request("/send").respond_with_json({"id": "m-3"})
    adapter = SmsHttpAdapter(httpserver.url_for("/send"))
    for _ in range(2):
        with pytest.raises(TemporaryFailure) as err:
            adapter.deliver(sms("+111"))
        assert "HTTP 503 busy (Retry-After: 2)" in str(err.value)
    assert adapter.deliver(sms("+111")) == "m-3"
    assert [header(httpserver, "Idempotency-Key", n) for n in range(3)] == ["k-1"] * 3
    httpserver.check_assertions()


@pytest.mark.parametrize("status", [408, 429, 500, 502])
def test_retryable_statuses_are_temporary(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/send").respond_with_data("no", status=status)
    with pytest.raises(TemporaryFailure):
        SmsHttpAdapter(httpserver.url_for("/send")).deliver(sms("+111"))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_permanent_without_feedback(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/send").respond_with_json({"error": "bad request"}, status=status)
    with pytest.raises(PermanentFailure) as err:
        SmsHttpAdapter(httpserver.url_for("/send")).deliver(sms("+111"))
    assert err.value.feedback is None
    assert f"HTTP {status}" in str(err.value)


@pytest.mark.parametrize(
    "body",
    [
        {"error": "Invalid phone number"},
        {"message": "The 'To' number +111 is not a valid phone number.", "code": 21211},
    ],
)
def test_invalid_number_heuristic_sets_feedback(httpserver: HTTPServer, body: Any) -> None:
    httpserver.expect_request("/send").respond_with_json(body, status=400)
    with pytest.raises(PermanentFailure) as err:
        SmsHttpAdapter(httpserver.url_for("/send")).deliver(sms("+111"))
    assert err.value.feedback == "invalid"
    assert err.value.address == "+111"


def test_invalid_wording_on_403_is_not_about_the_number(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/send").respond_with_data("invalid api key for number", status=403)
    with pytest.raises(PermanentFailure) as err:
        SmsHttpAdapter(httpserver.url_for("/send")).deliver(sms("+111"))
    assert err.value.feedback is None


def test_one_refused_recipient_among_several_is_reported_not_raised(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_ordered_request("/send").respond_with_json(
        {"error": "invalid number"}, status=422
    )
    httpserver.expect_ordered_request("/send").respond_with_json({"id": "ok-2"})
    result = SmsHttpAdapter(httpserver.url_for("/send")).deliver(sms("+bad", "+good"))
    assert result == "ok-2 (refused: +bad)"


def test_every_recipient_refused_raises(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/send").respond_with_json({"error": "invalid number"}, status=422)
    with pytest.raises(PermanentFailure) as err:
        SmsHttpAdapter(httpserver.url_for("/send")).deliver(sms("+a", "+b"))
    assert (err.value.feedback, err.value.address) == ("invalid", "+a")
    assert len(httpserver.log) == 2


def test_redirect_is_not_followed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/send").respond_with_data(
        "", status=302, headers={"Location": "http://example.invalid/x"}
    )
    with pytest.raises(PermanentFailure, match="redirects are not followed"):
        SmsHttpAdapter(httpserver.url_for("/send"), token=TOKEN).deliver(sms("+111"))
    assert len(httpserver.log) == 1


@pytest.fixture
def slow(httpserver: HTTPServer) -> Iterator[threading.Event]:
    release = threading.Event()

    def handler(_request: Request) -> Response:
        release.wait(1.0)
        return Response('{"id": "late"}', content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(handler)
    yield release
    release.set()


def test_time_out_is_temporary(httpserver: HTTPServer, slow: threading.Event) -> None:
    adapter = SmsHttpAdapter(httpserver.url_for("/slow"), timeout=0.2)
    with pytest.raises(TemporaryFailure, match="time-out"):
        adapter.deliver(sms("+111"))


def test_connection_refused_is_temporary() -> None:
    adapter = SmsHttpAdapter(f"http://127.0.0.1:{free_port()}/send", timeout=1)
    with pytest.raises(TemporaryFailure, match=r"sms http://127\.0\.0\.1"):
        adapter.deliver(sms("+111"))


def test_sms_refuses_other_channels_and_no_recipient() -> None:
    adapter = SmsHttpAdapter("http://127.0.0.1:9/send")
    with pytest.raises(PermanentFailure, match="cannot deliver a webhook"):
        adapter.deliver(hook())
    with pytest.raises(PermanentFailure) as err:
        adapter.deliver(sms())
    assert err.value.feedback == "invalid"


# -- webhooks -------------------------------------------------------------------------------------


def test_webhook_signature_verifies_on_received_bytes(httpserver: HTTPServer) -> None:
    seen: dict[str, Any] = {}

    def handler(request: Request) -> Response:
        seen["body"] = request.get_data()
        seen["headers"] = dict(request.headers)
        return Response('{"id": "rcv-1"}', content_type="application/json")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    adapter = WebhookAdapter(httpserver.url_for("/hook"), secret=SECRET, clock=lambda: NOW + 0.7)
    message = hook(fallbacks=(sms("+111"),))
    assert adapter.deliver(message) == "rcv-1"

    body: bytes = seen["body"]
    headers: dict[str, str] = seen["headers"]
    expected = message.model_dump(mode="json", exclude={"fallbacks"})
    assert json.loads(body) == expected
    assert body == json.dumps(
        expected, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")
    assert b"fallbacks" not in body
    assert headers["Idempotency-Key"] == "wh-1"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Arflow-Timestamp"] == str(NOW)
    assert headers["X-Arflow-Signature"] == sign(SECRET, str(NOW), body)
    assert headers["X-Arflow-Signature"].startswith("v1=")
    assert len(headers["X-Arflow-Signature"]) == 3 + 64
    assert "Authorization" not in headers

    stamp, signature = headers["X-Arflow-Timestamp"], headers["X-Arflow-Signature"]
    verify_signature(SECRET, stamp, signature, body, now=NOW + 5)
    verify_signature(SECRET.encode(), stamp, f"{signature}, v1=00", body, now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, stamp, signature, body.replace(b"120.50", b"999.99"), now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature("other secret", stamp, signature, body, now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, str(NOW + 1), signature, body, now=NOW)
    with pytest.raises(SignatureError, match="300 s"):
        verify_signature(SECRET, stamp, signature, body, now=NOW + 301)
    with pytest.raises(SignatureError, match="60 s"):
        verify_signature(SECRET, stamp, signature, body, now=NOW - 61, tolerance=60)
    with pytest.raises(SignatureError, match="unix seconds"):
        verify_signature(SECRET, "yesterday", signature, body, now=NOW)
    with pytest.raises(SignatureError, match="no v1="):
        verify_signature(SECRET, stamp, "sha256=abc", body, now=NOW)


def test_webhook_payload_is_deterministic() -> None:
    assert WebhookAdapter.payload(hook()) == WebhookAdapter.payload(hook())
    a = WebhookAdapter(None, secret=SECRET)
    body1, h1 = a.request(hook(), timestamp=NOW)
    body2, h2 = a.request(hook(), timestamp=NOW)
    assert (body1, h1) == (body2, h2)


def test_webhook_message_url_wins_and_gets_no_adapter_credentials(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/own").respond_with_data("", status=204)
    httpserver.expect_request("/rule").respond_with_data("", status=204)
    elsewhere = HTTPServer(host=httpserver.host, port=0)
    elsewhere.expect_request("/rule").respond_with_data("", status=204)
    own = httpserver.url_for("/own").replace("http://", f"http://u:{PASSWORD}@")
    adapter = WebhookAdapter(own, secret=SECRET)
    assert adapter.deliver(hook()) is None
    basic = base64.b64encode(f"u:{PASSWORD}".encode()).decode()
    assert header(httpserver, "Authorization") == f"Basic {basic}"
    # the same origin gets the credentials, another origin (another port) does not
    assert adapter.deliver(hook(url=httpserver.url_for("/rule"))) is None
    assert httpserver.log[1][0].path == "/rule"
    assert header(httpserver, "Authorization", 1) == f"Basic {basic}"
    elsewhere.start()
    try:
        assert adapter.deliver(hook(url=elsewhere.url_for("/rule"))) is None
        assert header(elsewhere, "Authorization") is None
        assert header(elsewhere, "X-Arflow-Signature") is not None
        # credentials in the message's own url are its own
        with_user = elsewhere.url_for("/rule").replace("http://", "http://rule:pw@")
        assert adapter.deliver(hook(url=with_user)) is None
        rule_basic = base64.b64encode(b"rule:pw").decode()
        assert header(elsewhere, "Authorization", 1) == f"Basic {rule_basic}"
    finally:
        elsewhere.stop()


def test_webhook_failures_follow_the_retry_rules(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/hook").respond_with_data("down", status=503)
    httpserver.expect_ordered_request("/hook").respond_with_data("gone", status=410)
    adapter = WebhookAdapter(httpserver.url_for("/hook"), secret=SECRET)
    with pytest.raises(TemporaryFailure, match="HTTP 503 down"):
        adapter.deliver(hook())
    with pytest.raises(PermanentFailure, match="HTTP 410 gone") as err:
        adapter.deliver(hook())
    assert err.value.feedback is None


def test_webhook_time_out_is_temporary(httpserver: HTTPServer, slow: threading.Event) -> None:
    adapter = WebhookAdapter(httpserver.url_for("/slow"), secret=SECRET, timeout=0.2)
    with pytest.raises(TemporaryFailure, match="time-out"):
        adapter.deliver(hook())


def test_webhook_needs_a_url_and_a_secret() -> None:
    with pytest.raises(PermanentFailure, match="no url"):
        WebhookAdapter(None, secret=SECRET).deliver(hook())
    with pytest.raises(PermanentFailure, match="not an http"):
        WebhookAdapter(None, secret=SECRET).deliver(hook(url="ftp://example.com/x"))
    with pytest.raises(ArflowError, match="secret"):
        WebhookAdapter("http://127.0.0.1/x", secret="")


# -- secrets stay secret --------------------------------------------------------------------------


def test_secrets_never_in_repr_errors_or_logs(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # a rude server that echoes the credentials in its error bodies
    httpserver.expect_request("/basic").respond_with_data(f"denied: {PASSWORD}", status=401)
    httpserver.expect_request("/token").respond_with_data(f"denied: {TOKEN}", status=403)
    httpserver.expect_request("/hook").respond_with_data(f"denied: {SECRET} {TOKEN}", status=400)
    base = httpserver.url_for("/").rstrip("/").partition("://")[2]
    sms_adapter = adapter_from_url(f"sms+http://user:{PASSWORD}@{base}/basic")
    token_adapter = adapter_from_url(f"sms+http://{base}/token?token={TOKEN}")
    hook_adapter = adapter_from_url(f"webhook+http://{base}/hook?secret={SECRET}&token={TOKEN}")
    texts = [repr(sms_adapter), repr(token_adapter), repr(hook_adapter)]
    for adapter, message in [
        (sms_adapter, sms("+1")),
        (token_adapter, sms("+1")),
        (hook_adapter, hook()),
    ]:
        with pytest.raises(PermanentFailure) as err:
            adapter.deliver(message)
        texts.append(str(err.value))
        assert err.value.__cause__ is None
    # and through a failure with no reply at all
    dead = SmsHttpAdapter(f"http://user:{PASSWORD}@127.0.0.1:{free_port()}/send", timeout=0.5)
    with pytest.raises(TemporaryFailure) as down:
        dead.deliver(sms("+1"))
    texts.append(str(down.value))
    texts.append(repr(dead))
    texts.append(caplog.text)
    assert sum("denied: ***" in t for t in texts) == 3
    assert any("denied: *** ***" in t for t in texts)
    assert any("user:***@" in t for t in texts)
    for text in texts:
        for secret in (PASSWORD, TOKEN, SECRET):
            assert secret not in text, text


# -- the URL registry -----------------------------------------------------------------------------


def test_adapter_from_url_builds_sms_with_target_query_kept(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/sms", query_string={"account": "7"}).respond_with_json(
        {"id": "q-1"}
    )
    url = (
        f"sms+http://{httpserver.host}:{httpserver.port}/v1/sms"
        f"?profile=generic&from=ARFLOW&timeout=3&account=7&token={TOKEN}"
    )
    adapter = adapter_from_url(url)
    assert isinstance(adapter, SmsHttpAdapter)
    assert adapter.url == httpserver.url_for("/v1/sms?account=7")
    assert adapter.timeout == 3.0
    assert adapter.sender == "ARFLOW"
    assert adapter.deliver(sms("+1")) == "q-1"
    assert header(httpserver, "Authorization") == f"Bearer {TOKEN}"


def test_adapter_from_url_builds_webhook_from_secret_env(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARFLOW_TEST_HOOK_SECRET", SECRET)
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        request.get_data()
        seen.append(request)
        return Response("", status=200)

    httpserver.expect_request("/hook").respond_with_handler(handler)
    url = "webhook+" + httpserver.url_for("/hook?secret_env=ARFLOW_TEST_HOOK_SECRET")
    adapter = adapter_from_url(url)
    assert isinstance(adapter, WebhookAdapter)
    assert adapter.url == httpserver.url_for("/hook")
    assert adapter.timeout == 10.0
    assert adapter.deliver(hook()) is None
    got = seen[0]
    verify_signature(
        SECRET,
        got.headers["X-Arflow-Timestamp"],
        got.headers["X-Arflow-Signature"],
        got.get_data(),
    )


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("sms+https://gw.example.com/send?profile=nope", "no profile 'nope'"),
        ("sms+https://gw.example.com/send?profile=twilio", "needs a sender"),
        ("sms+https://gw.example.com/send?timeout=soon", "seconds"),
        ("sms+https://gw.example.com/send?timeout=0", "positive"),
        ("sms+https:///send", "no host"),
        ("webhook+https://hooks.example.com/x", "signing secret"),
        ("webhook+https://hooks.example.com/x?secret_env=ARFLOW_TEST_UNSET_VAR", "not set"),
    ],
)
def test_bad_urls_are_refused(url: str, match: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARFLOW_TEST_UNSET_VAR", raising=False)
    with pytest.raises(ArflowError, match=match):
        adapter_from_url(url)


def test_factories_strip_prefix_and_user_info() -> None:
    a = sms_from_url(
        f"sms+https://me:{PASSWORD}@gw.example.com:8443/send?profile=aliyun&from=AR&k=v",
        {"profile": "aliyun", "from": "AR", "k": "v"},
    )
    assert a.url == "https://gw.example.com:8443/send?k=v"
    assert a.username == "me"
    assert repr(a) == "SmsHttpAdapter(aliyun me:***@ https://gw.example.com:8443/send?k=v)"
    w = webhook_from_url("webhook+https://hooks.example.com/x?secret=s", {"secret": "s"})
    assert w.url == "https://hooks.example.com/x"
    assert repr(w) == "WebhookAdapter(https://hooks.example.com/x)"
