"""The chat adapters (WeCom 企业微信, DingTalk 钉钉) against a real local HTTP server
(pytest-httpserver) that plays each service as its documentation describes it: it issues
access tokens and refuses expired ones, checks each request's shape, and recomputes the
DingTalk robot signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import shutil
import socket
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from arflow.actions import Message, PermanentFailure, TemporaryFailure
from arflow.adapters import adapter_from_url
from arflow.adapters.chat import DingTalkAdapter, DingTalkRobot, WeComAdapter, dingtalk_sign
from arflow.errors import ArflowError
from arflow.outbox import Dispatcher, RetryPolicy
from arflow.store.base import OutboxRecord
from arflow.store.memory import MemoryStore

CORPID = "ww-corp-1"
CORPSECRET = "corp-Secret-9QvX"
AGENT = 1000002
ROBOT_KEY = "robot-key-7Hn2"
APPKEY = "ding-app-key"
APPSECRET = "ding-Secret-K3pW"
DING_AGENT = 2481
DING_TOKEN = "ding-robot-tok-Pq1"
DING_SECRET = "SEC-robot-Secret-Zz8"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chat(
    channel: str,
    *to: str,
    key: str = "k-1",
    subject: str | None = "Overdue: Acme",
    text: str = "Invoice 42 is 31 days overdue.",
) -> Message:
    return Message(
        key=key,
        channel=channel,  # type: ignore[arg-type]
        action=channel,
        customer_id="C1",
        to=to,
        subject=subject,
        text=text,
    )


def _json_reply(data: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


class Service:
    """A fake of one chat service's documented HTTP API, on a real local server.

    Tokens: ``gettoken`` issues ``tok-N``; ``expire_tokens()`` makes every token issued so
    far expired (the service then answers the token-expired ``errcode``). ``busy`` holds
    replies to give instead of the real answer (an ``errcode`` or an HTTP status), one per
    request. ``problems`` lists every request whose shape was wrong (asserted empty)."""

    def __init__(self, server: HTTPServer, expired_code: int) -> None:
        self.server = server
        self.expired_code = expired_code
        self.live: set[str] = set()
        self.counter = itertools.count(1)
        self.token_requests = 0
        self.received: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.busy: list[int | dict[str, Any]] = []

    def expire_tokens(self) -> None:
        self.live.clear()

    def issue(self) -> Response:
        self.token_requests += 1
        token = f"tok-{next(self.counter)}"
        self.live.add(token)
        return _json_reply(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}
        )

    def interfere(self) -> Response | None:
        if not self.busy:
            return None
        got = self.busy.pop(0)
        if isinstance(got, int) and got >= 300:
            return Response("upstream unavailable", status=got)
        if isinstance(got, int):
            return _json_reply({"errcode": got, "errmsg": "system busy or frequency limit"})
        return _json_reply(got)

    def body(self, request: Request) -> dict[str, Any] | None:
        if request.method != "POST":
            self.problems.append(f"{request.path}: {request.method}, not POST")
            return None
        if not request.content_type.startswith("application/json"):
            self.problems.append(f"{request.path}: content type {request.content_type}")
        try:
            data = json.loads(request.get_data())
        except ValueError:
            self.problems.append(f"{request.path}: not JSON")
            return None
        self.received.append({"path": request.path, "args": dict(request.args), "json": data})
        return data  # type: ignore[no-any-return]

    def check_content(self, msg: Any, markdown_title: bool) -> None:
        if not isinstance(msg, dict) or msg.get("msgtype") not in ("text", "markdown"):
            self.problems.append(f"bad msgtype in {msg!r}")
            return
        kind = msg["msgtype"]
        part = msg.get(kind)
        if kind == "text" and not (isinstance(part, dict) and isinstance(part.get("content"), str)):
            self.problems.append(f"a text message needs text.content: {msg!r}")
        if kind == "markdown":
            field = "text" if markdown_title else "content"
            if not isinstance(part, dict) or not isinstance(part.get(field), str):
                self.problems.append(f"a markdown message needs markdown.{field}: {msg!r}")
            if markdown_title and not part.get("title"):
                self.problems.append(f"a DingTalk markdown message needs a title: {msg!r}")


class WeCom(Service):
    """WeCom: ``/cgi-bin/gettoken``, ``/cgi-bin/message/send``, ``/cgi-bin/webhook/send``."""

    users = frozenset({"liwei", "zhangmin"})

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server, expired_code=42001)
        server.expect_request("/cgi-bin/gettoken", method="GET").respond_with_handler(self.token)
        server.expect_request("/cgi-bin/message/send").respond_with_handler(self.send)
        server.expect_request("/cgi-bin/webhook/send").respond_with_handler(self.robot)

    def token(self, request: Request) -> Response:
        if request.args.get("corpid") != CORPID or request.args.get("corpsecret") != CORPSECRET:
            return _json_reply({"errcode": 40001, "errmsg": "invalid credential"})
        return self.issue()

    def send(self, request: Request) -> Response:
        token = request.args.get("access_token")
        if token not in self.live:
            return _json_reply({"errcode": self.expired_code, "errmsg": "access_token expired"})
        data = self.body(request)
        busy = self.interfere()
        if busy is not None:
            return busy
        if data is None:
            return _json_reply({"errcode": 40008, "errmsg": "invalid message"})
        if data.get("agentid") != AGENT or not isinstance(data.get("agentid"), int):
            self.problems.append(f"agentid {data.get('agentid')!r}")
            return _json_reply({"errcode": 40056, "errmsg": "invalid agentid"})
        self.check_content(data, markdown_title=False)
        touser = data.get("touser")
        if not isinstance(touser, str) or not touser:
            self.problems.append(f"touser {touser!r}")
            return _json_reply({"errcode": 40035, "errmsg": "invalid touser"})
        asked = touser.split("|")
        invalid = [u for u in asked if u not in self.users]
        if len(invalid) == len(asked):
            return _json_reply({"errcode": 81013, "errmsg": "user & party & tag all invalid"})
        return _json_reply(
            {
                "errcode": 0,
                "errmsg": "ok",
                "invaliduser": "|".join(invalid),
                "msgid": f"msg-{len(self.received)}",
            }
        )

    def robot(self, request: Request) -> Response:
        if request.args.get("key") != ROBOT_KEY:
            return _json_reply({"errcode": 93000, "errmsg": "invalid webhook url"})
        data = self.body(request)
        busy = self.interfere()
        if busy is not None:
            return busy
        self.check_content(data, markdown_title=False)
        return _json_reply({"errcode": 0, "errmsg": "ok"})


class DingTalk(Service):
    """DingTalk: ``/gettoken``, ``/topapi/message/corpconversation/asyncsend_v2``,
    ``/robot/send`` (signed: the server recomputes ``sign`` from ``timestamp``)."""

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server, expired_code=40014)
        server.expect_request("/gettoken", method="GET").respond_with_handler(self.token)
        server.expect_request("/topapi/message/corpconversation/asyncsend_v2").respond_with_handler(
            self.send
        )
        server.expect_request("/robot/send").respond_with_handler(self.robot)
        self.signatures = 0

    def token(self, request: Request) -> Response:
        if request.args.get("appkey") != APPKEY or request.args.get("appsecret") != APPSECRET:
            return _json_reply({"errcode": 40089, "errmsg": "invalid appkey or appsecret"})
        return self.issue()

    def send(self, request: Request) -> Response:
        if request.args.get("access_token") not in self.live:
            return _json_reply({"errcode": self.expired_code, "errmsg": "不合法的access_token"})
        data = self.body(request)
        busy = self.interfere()
        if busy is not None:
            return busy
        if data is None:
            return _json_reply({"errcode": 40035, "errmsg": "bad request"})
        if data.get("agent_id") != DING_AGENT:
            self.problems.append(f"agent_id {data.get('agent_id')!r}")
            return _json_reply({"errcode": 33012, "errmsg": "无效的agent_id"})
        users = data.get("userid_list")
        if not isinstance(users, str) or not users or "|" in users:
            self.problems.append(f"userid_list {users!r}")
        self.check_content(data.get("msg"), markdown_title=True)
        return _json_reply({"errcode": 0, "task_id": 900 + len(self.received), "request_id": "r"})

    def robot(self, request: Request) -> Response:
        if request.args.get("access_token") != DING_TOKEN:
            return _json_reply({"errcode": 300001, "errmsg": "token is not exist"})
        stamp = request.args.get("timestamp", "")
        given = request.args.get("sign", "")  # werkzeug has URL-decoded it
        mac = hmac.new(DING_SECRET.encode(), f"{stamp}\n{DING_SECRET}".encode(), hashlib.sha256)
        if not stamp.isdigit() or abs(int(stamp) - time.time() * 1000) > 3_600_000:
            return _json_reply({"errcode": 310000, "errmsg": "invalid timestamp"})
        if not hmac.compare_digest(given, base64.b64encode(mac.digest()).decode()):
            return _json_reply({"errcode": 310000, "errmsg": "sign not match"})
        self.signatures += 1
        data = self.body(request)
        busy = self.interfere()
        if busy is not None:
            return busy
        self.check_content(data, markdown_title=True)
        return _json_reply({"errcode": 0, "errmsg": "ok"})


@pytest.fixture
def wecom(httpserver: HTTPServer) -> WeCom:
    return WeCom(httpserver)


@pytest.fixture
def dingtalk(httpserver: HTTPServer) -> DingTalk:
    return DingTalk(httpserver)


def base(server: HTTPServer) -> str:
    return server.url_for("").rstrip("/")


def wecom_adapter(server: HTTPServer, **kw: Any) -> WeComAdapter:
    options: dict[str, Any] = dict(
        corpid=CORPID,
        corpsecret=CORPSECRET,
        agentid=AGENT,
        robots={"finance": ROBOT_KEY},
        base_url=base(server),
        timeout=3,
    )
    options.update(kw)
    return WeComAdapter(**options)


def dingtalk_adapter(server: HTTPServer, **kw: Any) -> DingTalkAdapter:
    options: dict[str, Any] = dict(
        appkey=APPKEY,
        appsecret=APPSECRET,
        agent_id=DING_AGENT,
        robots={"ops": DingTalkRobot(DING_TOKEN, DING_SECRET)},
        base_url=base(server),
        timeout=3,
    )
    options.update(kw)
    return DingTalkAdapter(**options)


# -- WeCom ----------------------------------------------------------------------------------------


def test_wecom_application_message_has_the_documented_shape(wecom: WeCom) -> None:
    adapter = wecom_adapter(wecom.server)
    ref = adapter.deliver(chat("wecom", "liwei", "zhangmin"))
    assert ref == "msg-1"
    (got,) = wecom.received
    assert got["path"] == "/cgi-bin/message/send"
    assert got["json"] == {
        "touser": "liwei|zhangmin",
        "agentid": AGENT,
        "msgtype": "text",
        "text": {"content": "Overdue: Acme\n\nInvoice 42 is 31 days overdue."},
        "enable_duplicate_check": 1,
        "duplicate_check_interval": 1800,
    }
    assert wecom.problems == []


def test_wecom_markdown(wecom: WeCom) -> None:
    adapter = wecom_adapter(wecom.server, msgtype="markdown", duplicate_check=0)
    adapter.deliver(chat("wecom", "liwei"))
    assert wecom.received[0]["json"] == {
        "touser": "liwei",
        "agentid": AGENT,
        "msgtype": "markdown",
        "markdown": {"content": "### Overdue: Acme\n\nInvoice 42 is 31 days overdue."},
    }
    assert wecom.problems == []


def test_wecom_token_is_fetched_once_and_kept_until_it_expires(wecom: WeCom) -> None:
    now = [1000.0]
    adapter = wecom_adapter(wecom.server, clock=lambda: now[0])
    for n in range(3):
        adapter.deliver(chat("wecom", "liwei", key=f"k-{n}"))
    assert wecom.token_requests == 1 and adapter.tokens_fetched == 1
    now[0] += 7200 - 301  # still inside the token's life less the margin
    adapter.deliver(chat("wecom", "liwei", key="k-3"))
    assert wecom.token_requests == 1
    now[0] += 2  # within five minutes of the announced expiry: renewed before it runs out
    adapter.deliver(chat("wecom", "liwei", key="k-4"))
    assert wecom.token_requests == 2
    assert [r["args"]["access_token"] for r in wecom.received] == ["tok-1"] * 4 + ["tok-2"]


def test_wecom_token_refused_as_expired_is_fetched_again_and_the_send_repeated(
    wecom: WeCom,
) -> None:
    adapter = wecom_adapter(wecom.server)
    adapter.deliver(chat("wecom", "liwei", key="k-1"))
    wecom.expire_tokens()  # revoked early by WeCom: the API answers 42001
    adapter.deliver(chat("wecom", "liwei", key="k-2"))
    assert wecom.token_requests == 2
    assert [r["args"]["access_token"] for r in wecom.received] == ["tok-1", "tok-2"]


def test_wecom_token_refused_twice_is_permanent(wecom: WeCom) -> None:
    adapter = wecom_adapter(wecom.server)
    wecom.expired_code = 40014
    adapter.deliver(chat("wecom", "liwei"))
    original = wecom.issue

    def useless() -> Response:  # a token that is refused at once
        original()
        wecom.expire_tokens()
        return _json_reply({"errcode": 0, "access_token": "tok-dead", "expires_in": 7200})

    wecom.issue = useless  # type: ignore[method-assign]
    wecom.expire_tokens()
    with pytest.raises(PermanentFailure, match="errcode 40014"):
        adapter.deliver(chat("wecom", "liwei", key="k-2"))


def test_wecom_unknown_user_ids(wecom: WeCom) -> None:
    adapter = wecom_adapter(wecom.server)
    assert adapter.deliver(chat("wecom", "liwei", "ghost")) == "msg-1 (refused: ghost)"
    with pytest.raises(PermanentFailure, match="errcode 81013") as info:
        adapter.deliver(chat("wecom", "ghost", "nobody", key="k-2"))
    assert info.value.feedback is None  # a person's id, not a customer's contact


def test_wecom_invalid_users_as_a_list_and_a_separator_in_an_id(wecom: WeCom) -> None:
    adapter = wecom_adapter(wecom.server)
    wecom.busy = [{"errcode": 0, "errmsg": "ok", "invaliduser": ["ghost"], "msgid": "m-9"}]
    assert adapter.deliver(chat("wecom", "liwei", "ghost")) == "m-9 (refused: ghost)"
    with pytest.raises(PermanentFailure, match="holds '\\|'"):
        adapter.deliver(chat("wecom", "liwei|zhangmin"))
    assert len(wecom.received) == 1  # the odd id never reached WeCom


def test_wecom_wrong_secret_is_permanent_and_says_so_without_the_secret(wecom: WeCom) -> None:
    adapter = wecom_adapter(wecom.server, corpsecret="Wrong-Secret-4ZQ")
    with pytest.raises(PermanentFailure) as info:
        adapter.deliver(chat("wecom", "liwei"))
    text = str(info.value)
    assert "errcode 40001" in text and "credentials" in text
    assert "Wrong-Secret-4ZQ" not in text and "Wrong-Secret-4ZQ" not in repr(adapter)
    assert wecom.received == []


@pytest.mark.parametrize("busy", [-1, 45009, 503, 429])
def test_wecom_busy_or_rate_limited_is_temporary(wecom: WeCom, busy: int) -> None:
    adapter = wecom_adapter(wecom.server)
    wecom.busy = [busy]
    with pytest.raises(TemporaryFailure):
        adapter.deliver(chat("wecom", "liwei"))
    assert adapter.deliver(chat("wecom", "liwei")) is not None  # the next try goes through


def test_wecom_group_robot(wecom: WeCom) -> None:
    adapter = wecom_adapter(wecom.server)
    assert adapter.deliver(chat("wecom", "robot:finance")) is None
    (got,) = wecom.received
    assert got["path"] == "/cgi-bin/webhook/send" and got["args"] == {"key": ROBOT_KEY}
    assert got["json"] == {
        "msgtype": "text",
        "text": {"content": "Overdue: Acme\n\nInvoice 42 is 31 days overdue."},
    }
    assert wecom.token_requests == 0  # a robot needs no access token
    with pytest.raises(PermanentFailure, match="no robot 'legal'"):
        adapter.deliver(chat("wecom", "robot:legal"))
    bad = wecom_adapter(wecom.server, robots={"finance": "not-the-key"})
    with pytest.raises(PermanentFailure, match="errcode 93000") as info:
        bad.deliver(chat("wecom", "robot:finance"))
    assert "not-the-key" not in str(info.value)


def test_wecom_robot_only_adapter_cannot_reach_user_ids(wecom: WeCom) -> None:
    adapter = WeComAdapter(robots={"finance": ROBOT_KEY}, base_url=base(wecom.server))
    adapter.deliver(chat("wecom", "robot:finance"))
    with pytest.raises(PermanentFailure, match="no application is configured"):
        adapter.deliver(chat("wecom", "liwei"))


def test_wecom_a_user_and_a_robot_each_get_it(wecom: WeCom) -> None:
    adapter = wecom_adapter(wecom.server)
    assert adapter.deliver(chat("wecom", "liwei", "robot:finance")) == "msg-1"
    assert [r["path"] for r in wecom.received] == ["/cgi-bin/message/send", "/cgi-bin/webhook/send"]


def test_network_failures_are_temporary() -> None:
    adapter = WeComAdapter(
        corpid=CORPID,
        corpsecret=CORPSECRET,
        agentid=AGENT,
        base_url=f"http://127.0.0.1:{free_port()}",
        timeout=1,
    )
    with pytest.raises(TemporaryFailure, match="wecom"):
        adapter.deliver(chat("wecom", "liwei"))


def test_wrong_channel_and_no_recipient_are_permanent(wecom: WeCom) -> None:
    adapter = wecom_adapter(wecom.server)
    with pytest.raises(PermanentFailure, match="cannot deliver a dingtalk message"):
        adapter.deliver(chat("dingtalk", "liwei"))
    with pytest.raises(PermanentFailure, match="no recipient"):
        adapter.deliver(chat("wecom"))


def test_bad_configuration_is_refused_at_once() -> None:
    with pytest.raises(ArflowError, match="corpid, corpsecret and agentid"):
        WeComAdapter(corpid=CORPID, agentid=AGENT)
    with pytest.raises(ArflowError, match="or robots"):
        WeComAdapter()
    with pytest.raises(ArflowError, match="msgtype"):
        WeComAdapter(robots={"a": "k"}, msgtype="news")
    with pytest.raises(ArflowError, match="appkey, appsecret and agent_id"):
        DingTalkAdapter(appkey=APPKEY)
    with pytest.raises(ArflowError, match="base URL"):
        DingTalkAdapter(robots={"a": "t"}, base_url="ftp://example.com")


# -- DingTalk -------------------------------------------------------------------------------------


def test_dingtalk_work_notification_has_the_documented_shape(dingtalk: DingTalk) -> None:
    adapter = dingtalk_adapter(dingtalk.server)
    assert adapter.deliver(chat("dingtalk", "manager01", "user02")) == "901"
    adapter.deliver(chat("dingtalk", "manager01", key="k-2"))
    assert dingtalk.token_requests == 1  # kept between messages
    got = dingtalk.received[0]
    assert got["path"] == "/topapi/message/corpconversation/asyncsend_v2"
    assert got["args"] == {"access_token": "tok-1"}
    assert got["json"] == {
        "agent_id": DING_AGENT,
        "userid_list": "manager01,user02",
        "msg": {
            "msgtype": "text",
            "text": {"content": "Overdue: Acme\n\nInvoice 42 is 31 days overdue."},
        },
    }
    assert dingtalk.problems == []


def test_dingtalk_markdown_has_a_title(dingtalk: DingTalk) -> None:
    adapter = dingtalk_adapter(dingtalk.server, msgtype="markdown")
    adapter.deliver(chat("dingtalk", "u1", subject=None, text="逾期提醒\n第二行"))
    assert dingtalk.received[0]["json"]["msg"] == {
        "msgtype": "markdown",
        "markdown": {"title": "逾期提醒", "text": "逾期提醒\n第二行"},
    }
    assert dingtalk.problems == []


def test_dingtalk_expired_token_is_refreshed(dingtalk: DingTalk) -> None:
    adapter = dingtalk_adapter(dingtalk.server)
    adapter.deliver(chat("dingtalk", "u1"))
    dingtalk.expire_tokens()
    adapter.deliver(chat("dingtalk", "u1", key="k-2"))
    assert dingtalk.token_requests == 2
    assert [r["args"]["access_token"] for r in dingtalk.received] == ["tok-1", "tok-2"]


def test_dingtalk_wrong_app_secret_is_permanent(dingtalk: DingTalk) -> None:
    adapter = dingtalk_adapter(dingtalk.server, appsecret="nope-Secret-1")
    with pytest.raises(PermanentFailure, match="errcode 40089") as info:
        adapter.deliver(chat("dingtalk", "u1"))
    assert "nope-Secret-1" not in str(info.value)


def test_dingtalk_wrong_agent_id_is_permanent(dingtalk: DingTalk) -> None:
    adapter = dingtalk_adapter(dingtalk.server, agent_id=7)
    with pytest.raises(PermanentFailure, match="errcode 33012"):
        adapter.deliver(chat("dingtalk", "u1"))


def test_dingtalk_robot_is_signed_and_the_server_checks_the_signature(
    dingtalk: DingTalk,
) -> None:
    adapter = dingtalk_adapter(dingtalk.server, msgtype="markdown")
    adapter.deliver(chat("dingtalk", "robot:ops"))
    assert dingtalk.signatures == 1
    (got,) = dingtalk.received
    assert set(got["args"]) == {"access_token", "timestamp", "sign"}
    assert got["json"] == {
        "msgtype": "markdown",
        "markdown": {
            "title": "Overdue: Acme",
            "text": "### Overdue: Acme\n\nInvoice 42 is 31 days overdue.",
        },
    }
    # the sign is URL-encoded in the URL itself: '+', '/' and '=' never appear raw
    url = adapter.robot_url("ops")
    raw_sign = url.split("&sign=", 1)[1]
    assert not set(raw_sign) & set("+/=")
    stamp = url.split("&timestamp=", 1)[1].split("&", 1)[0]
    assert raw_sign.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=") == dingtalk_sign(
        DING_SECRET, stamp
    )


def test_dingtalk_robot_with_the_wrong_secret_is_refused_for_good(dingtalk: DingTalk) -> None:
    adapter = dingtalk_adapter(
        dingtalk.server, robots={"ops": DingTalkRobot(DING_TOKEN, "SEC-not-it-0")}
    )
    with pytest.raises(PermanentFailure, match=r"errcode 310000.*sign not match") as info:
        adapter.deliver(chat("dingtalk", "robot:ops"))
    assert "SEC-not-it-0" not in str(info.value)
    assert dingtalk.signatures == 0


def test_dingtalk_robot_sending_too_fast_is_temporary(dingtalk: DingTalk) -> None:
    adapter = dingtalk_adapter(dingtalk.server)
    dingtalk.busy = [{"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}]
    with pytest.raises(TemporaryFailure, match="130101"):
        adapter.deliver(chat("dingtalk", "robot:ops"))
    adapter.deliver(chat("dingtalk", "robot:ops"))


def test_dingtalk_sign_matches_a_hand_computation() -> None:
    secret, stamp = "SECabc", "1700000000000"
    mac = hmac.new(b"SECabc", b"1700000000000\nSECabc", hashlib.sha256).digest()
    assert dingtalk_sign(secret, stamp) == base64.b64encode(mac).decode()


# -- URLs -----------------------------------------------------------------------------------------


def test_adapters_from_urls(
    wecom: WeCom, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("WECOM_SECRET", CORPSECRET)
    port = wecom.server.port
    url = (
        f"wecom+http://127.0.0.1:{port}?corpid={CORPID}&corpsecret_env=WECOM_SECRET"
        f"&agentid={AGENT}&robot_finance={ROBOT_KEY}&msgtype=markdown&timeout=3"
    )
    adapter = adapter_from_url(url)
    assert isinstance(adapter, WeComAdapter) and adapter.msgtype == "markdown"
    adapter.deliver(chat("wecom", "liwei", "robot:finance"))
    assert len(wecom.received) == 2 and wecom.problems == []
    assert CORPSECRET not in repr(adapter) and ROBOT_KEY not in repr(adapter)
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("arflow"))
    assert "gettoken" in ours  # the adapter logged its calls, without a secret or token
    assert CORPSECRET not in ours and "tok-1" not in ours and ROBOT_KEY not in ours
    monkeypatch.setenv("DING_ROBOT_SECRET", DING_SECRET)
    ding = adapter_from_url(
        f"dingtalk+https://oapi.dingtalk.com?appkey={APPKEY}&appsecret={APPSECRET}"
        f"&agent_id={DING_AGENT}&robot_ops={DING_TOKEN}&robot_ops_secret_env=DING_ROBOT_SECRET"
    )
    assert isinstance(ding, DingTalkAdapter)
    assert ding.robots == {"ops": DingTalkRobot(DING_TOKEN, DING_SECRET)}
    assert ding.base_url == "https://oapi.dingtalk.com" and ding.agent_id == DING_AGENT
    with pytest.raises(ArflowError, match=r"unknown URL key \?agent="):
        adapter_from_url(f"wecom+https://qyapi.weixin.qq.com?agent=1&robot_a={ROBOT_KEY}")
    with pytest.raises(ArflowError, match="NOT_SET_ANYWHERE is not set"):
        adapter_from_url("dingtalk+https://x.example?robot_a_env=NOT_SET_ANYWHERE")


# -- through the outbox ---------------------------------------------------------------------------


def queue(store: MemoryStore, m: Message) -> None:
    with store.transaction() as tx:
        tx.add_outbox(
            OutboxRecord(key=m.key, channel=m.channel, customer_id="C1", body=m.model_dump_json())
        )


def test_dispatcher_retries_a_busy_service_then_delivers_once(wecom: WeCom) -> None:
    store = MemoryStore()
    queue(store, chat("wecom", "liwei"))
    now = [datetime(2026, 3, 2, 12, tzinfo=UTC)]
    d = Dispatcher(
        store,
        {"wecom": wecom_adapter(wecom.server)},
        clock=lambda: now[0],
        retry=RetryPolicy(max_attempts=5, base=timedelta(seconds=5)),
    )
    wecom.busy = [45009, 502]
    assert d.run().retried == 1
    now[0] += timedelta(hours=1)
    assert d.run().retried == 1
    now[0] += timedelta(hours=1)
    assert d.run().sent == 1
    rec = store.outbox_item("k-1")
    assert rec is not None and rec.status == "sent" and rec.attempts == 3
    sent = [r for r in wecom.received if r["path"] == "/cgi-bin/message/send"]
    assert len(sent) == 3  # two refused, one accepted


def test_dispatcher_dead_letters_a_permanent_failure_with_its_reason_then_falls_back(
    wecom: WeCom,
) -> None:
    from arflow import MemoryAdapter

    store = MemoryStore()
    email = chat("email", "li.wei@example.cn", key="k-1~email")
    queue(store, chat("wecom", "ghost").model_copy(update={"fallbacks": (email,)}))
    mailbox = MemoryAdapter()
    stats = Dispatcher(store, {"wecom": wecom_adapter(wecom.server), "email": mailbox}).run()
    assert stats.dead == 1 and stats.fallbacks == 1 and stats.sent == 1
    rec = store.outbox_item("k-1")
    assert rec is not None and rec.status == "dead" and rec.attempts == 1
    assert "errcode 81013" in (rec.last_error or "")
    assert CORPSECRET not in (rec.last_error or "")
    assert [m.to for m in mailbox.sent] == [("li.wei@example.cn",)]


def test_dispatcher_gives_up_on_a_service_that_stays_down() -> None:
    store = MemoryStore()
    queue(store, chat("dingtalk", "u1"))
    now = [datetime(2026, 3, 2, 12, tzinfo=UTC)]
    adapter = DingTalkAdapter(
        appkey=APPKEY,
        appsecret=APPSECRET,
        agent_id=DING_AGENT,
        base_url=f"http://127.0.0.1:{free_port()}",
        timeout=1,
    )
    d = Dispatcher(store, {"dingtalk": adapter}, clock=lambda: now[0], retry=RetryPolicy(3))
    for _ in range(3):
        d.run()
        now[0] += timedelta(hours=7)
    rec = store.outbox_item("k-1")
    assert rec is not None and rec.status == "dead"
    assert "gave up after 3 attempts" in (rec.last_error or "")
    assert APPSECRET not in (rec.last_error or "")


# -- from the engine ------------------------------------------------------------------------------

RULES = Path(__file__).resolve().parent.parent / "rules" / "default"


def test_an_engine_run_reaches_a_person_by_wecom_in_their_locale(
    wecom: WeCom, tmp_path: Path
) -> None:
    """A rule's internal notice (a ``wecom`` action to the salesperson) is queued by the
    engine with the person's WeCom id from the people directory, rendered in the person's
    locale, and the Dispatcher delivers it to WeCom; a person without a WeCom id gets the
    e-mail fallback."""
    from arflow import (
        Contact,
        CreditProfile,
        Customer,
        CustomerRegistered,
        Engine,
        Ledger,
        MemoryAdapter,
        Money,
        Person,
        PersonAdded,
        load_pack,
    )
    from arflow.testing import BookBuilder

    pack_dir = tmp_path / "pack"
    shutil.copytree(RULES, pack_dir)
    (pack_dir / "dunning.yaml").write_text(
        "ladders:\n"
        "  - id: chat\n"
        "    steps:\n"
        "      - id: escalate\n"
        "        at: due+3d\n"
        "        level: 1\n"
        "        actions:\n"
        "          - {type: wecom, to: salesperson, template: escalation, fallback: [email]}\n",
        encoding="utf-8",
    )
    at = datetime(2026, 1, 2, 9, tzinfo=UTC)
    b = BookBuilder(Ledger(MemoryStore()))
    people = [
        Person(
            id="P-007",
            name="Li Wei",
            roles=("salesperson",),
            addresses={"email": "li.wei@example.cn", "wecom": "liwei"},
            locale="zh_CN",
        ),
        Person(
            id="P-008",
            name="Sam Lee",
            roles=("salesperson",),
            addresses={"email": "sam.lee@example.cn"},
        ),
    ]
    for n, p in enumerate(people):
        b.apply(PersonAdded(occurred_at=at, actor="hr", event_id=f"p{n}", person=p))
    for cid, sp in (("C1", "P-007"), ("C2", "P-008")):
        b.apply(
            CustomerRegistered(
                occurred_at=at,
                actor="erp",
                event_id=f"c-{cid}",
                customer=Customer(
                    id=cid,
                    name=f"Customer {cid}",
                    salesperson=sp,
                    contacts=[Contact(name="AP", email=f"ap@{cid.lower()}.example")],
                    credit=CreditProfile(credit_limit=Money.of(1_000_000, "CNY")),
                ),
            )
        )
        b.invoice(f"I-{cid}", cid, 1_000, issued="2026-01-31", due="2026-03-02")
    Engine(b.ledger, load_pack(pack_dir)).run(date(2026, 3, 5), first_run=True)
    store = b.ledger.store
    mailbox = MemoryAdapter()
    stats = Dispatcher(
        store, {"wecom": wecom_adapter(wecom.server), "email": mailbox}, channels=None
    ).run()
    assert stats.dead == 0, stats.errors
    (sent,) = [r for r in wecom.received if r["path"] == "/cgi-bin/message/send"]
    assert sent["json"]["touser"] == "liwei"
    content = sent["json"]["text"]["content"]
    assert "Customer C1" in content and "已逾期" in content  # the zh_CN template
    assert wecom.problems == []
    # Sam Lee has no WeCom id: his notice goes by e-mail, the chain's next channel
    assert [m.to for m in mailbox.sent if m.customer_id == "C2"] == [("sam.lee@example.cn",)]
    assert not [m for m in mailbox.sent if m.customer_id == "C1"]


# -- lint -----------------------------------------------------------------------------------------


def _chat_pack(tmp_path: Path) -> Path:
    pack_dir = tmp_path / "pack"
    shutil.copytree(RULES, pack_dir)
    (pack_dir / "dunning.yaml").write_text(
        "roles:\n"
        "  finance_team: role:finance\n"
        "  ops_group: robot:ops\n"
        "ladders:\n"
        "  - id: chat\n"
        "    steps:\n"
        "      - id: escalate\n"
        "        at: due+3d\n"
        "        level: 1\n"
        "        actions:\n"
        "          - type: wecom\n"
        "            to: [salesperson, finance_team, ops_group]\n"
        "            template: escalation\n"
        "            fallback: [email]\n",
        encoding="utf-8",
    )
    return pack_dir


def _chat_people() -> list[Any]:
    from arflow import Person

    return [
        Person(id="P-007", name="Li Wei", roles=("salesperson",), addresses={"wecom": "liwei"}),
        Person(
            id="P-008", name="Sam Lee", roles=("salesperson",), addresses={"email": "s@x.example"}
        ),
        Person(id="P-010", name="Chen Jing", roles=("finance",)),
        Person(id="P-011", name="Gone", roles=("finance",), active=False),
    ]


EXPECTED_LINT = [
    "chat/escalate: a wecom to salesperson goes by wecom, but person P-008 (Sam Lee) has no "
    "wecom address: the email fallback reaches them instead",
    "chat/escalate: a wecom to finance_team goes by wecom, but person P-010 (Chen Jing) has no "
    "wecom address: no channel of the action reaches them",
]


def test_lint_reports_a_person_without_an_id_for_a_channel_a_rule_uses(tmp_path: Path) -> None:
    from arflow import load_pack
    from arflow.rules.lint import lint

    pack = load_pack(_chat_pack(tmp_path))
    without = lint(pack)
    assert not [w for w in without if "chat/" in w or "ops_group" in w]  # robot:ops is valid
    warnings = lint(pack, _chat_people())
    assert [w for w in warnings if w.startswith("chat/")] == EXPECTED_LINT


def test_cli_lint_reads_the_people_of_a_book(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arflow import Ledger, PersonAdded
    from arflow.cli import main

    db = f"sqlite:///{tmp_path / 'book.db'}"
    ledger = Ledger(db)
    at = datetime(2026, 1, 2, 9, tzinfo=UTC)
    for n, p in enumerate(_chat_people()):
        ledger.apply(PersonAdded(occurred_at=at, actor="hr", event_id=f"p{n}", person=p))
    pack_dir = _chat_pack(tmp_path)
    assert main(["lint", "--db", db, str(pack_dir)]) == 0
    out = capsys.readouterr().out
    for w in EXPECTED_LINT:
        assert f"warning: {w}" in out


def test_the_docs_examples_run() -> None:
    """Every python block of docs/adapters.md runs (the WeCom and DingTalk one included)."""
    from tests.docs_blocks import blocks

    doc = RULES.parent.parent / "docs" / "adapters.md"
    found = [b for b in blocks(doc) if b.lang == "python"]
    assert any("dingtalk_sign" in b.body for b in found)
    for block in found:
        # the dispatcher set-up names real servers; a marked block needs what a test lacks
        if "sqlite:///ar.db" in block.body or block.skip is not None:
            continue
        exec(compile(block.body, block.where, "exec"), {})
