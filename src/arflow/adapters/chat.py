"""The chat channels: WeCom (企业微信, channel ``wecom``) and DingTalk (钉钉, channel
``dingtalk``), over their documented HTTP APIs, with the standard library only.

Each adapter sends two kinds of message, chosen by the recipient:

- a person's user id (the ``wecom`` or ``dingtalk`` address of the people directory) gets an
  *application message*: WeCom's ``message/send`` with the application's ``agentid`` and
  ``touser`` (ids joined by ``|``); DingTalk's work notification ``asyncsend_v2`` with
  ``agent_id`` and ``userid_list`` (ids joined by ``,``). Both need an access token, fetched
  from the ``gettoken`` endpoint (WeCom: ``corpid`` and ``corpsecret``; DingTalk: ``appkey``
  and ``appsecret``), kept until shortly before it expires, and fetched again at once when
  the API answers that the token is invalid or expired (then the send is tried once more);
- ``robot:NAME`` gets a *group robot* message: WeCom's ``webhook/send?key=KEY``, DingTalk's
  ``robot/send?access_token=TOKEN`` signed with the robot's secret when it has one
  (``timestamp`` in milliseconds and ``sign``: the base64 HMAC-SHA256 of
  ``"<timestamp>\\n<secret>"`` keyed with the secret, URL-encoded; see :func:`dingtalk_sign`).

A message goes out as ``text`` (its subject, a blank line, its text) or as ``markdown``
(``msgtype="markdown"``: the subject as a heading). Every base URL can be changed (a proxy,
a private deployment, a test server). Failures: a connection error, a time-out, HTTP 408,
429 or 5xx, a busy system (``errcode`` -1) and the rate-limit codes are temporary (the
dispatcher retries them); everything else the API refuses (a user id it does not know, a
wrong secret or agent id, a robot key that does not exist, a bad request) is permanent, with
the ``errcode`` and ``errmsg`` in the reason: the message is a dead letter, or goes on to its
fallback channel. Secrets and tokens never appear in ``repr``, an error or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote, quote_plus, urlencode, urlsplit

from ..actions import Message, PermanentFailure, TemporaryFailure, redact
from ..errors import ArflowError
from ._http_client import (
    _USER_AGENT,
    DEFAULT_TIMEOUT,
    _Client,
    _excerpt,
    _from_env,
    _json,
    _timeout,
)

WECOM_BASE = "https://qyapi.weixin.qq.com"
DINGTALK_BASE = "https://oapi.dingtalk.com"

#: the recipient prefix that names a group robot of the adapter (``robot:finance``)
ROBOT = "robot:"

#: WeCom: the token is invalid, expired or missing: fetch a new one and try again
WECOM_TOKEN_CODES = frozenset({40014, 42001, 41001})
#: WeCom: try later: the system is busy, the frequency or concurrency limit is reached
WECOM_TEMPORARY_CODES = frozenset({-1, 45009, 45033, 45011})
#: DingTalk: the token is invalid or expired (88 is the gateway's authentication failure)
DINGTALK_TOKEN_CODES = frozenset({40014, 42001, 41001, 88})
#: DingTalk: try later: the system is busy, the call or robot frequency limits are reached
DINGTALK_TEMPORARY_CODES = frozenset({-1, 90002, 90005, 90006, 90018, 130101, 410100})

#: a token is renewed this many seconds before the expiry the API announced
_MARGIN = 300.0


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """A DingTalk robot's ``sign`` parameter for ``timestamp`` (milliseconds, as text):
    the base64 HMAC-SHA256 of ``"<timestamp>\\n<secret>"`` keyed with ``secret``, not yet
    URL-encoded (it is encoded as the ``sign`` query value)."""
    mac = hmac.new(
        secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(mac).decode("ascii")


@dataclass(frozen=True)
class _Api:
    """What differs between the two services."""

    family: str  # the channel name, used in every error
    token_codes: frozenset[int]
    temporary_codes: frozenset[int]


class _Token:
    """One access token, shared by the threads of a dispatcher: fetched when first needed,
    kept until ``_MARGIN`` seconds before it expires, dropped when the API refuses it."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._value: str | None = None
        self._until = 0.0
        self._lock = threading.Lock()
        self.fetched = 0  # how many times a token was fetched

    def get(self) -> str:
        with self._lock:
            if self._value is None or self._clock() >= self._until:
                value, lifetime = self._fetch()
                self.fetched += 1
                self._value = value
                self._until = self._clock() + max(lifetime - _MARGIN, lifetime / 2)
            return self._value

    def drop(self, value: str) -> None:
        """Forget ``value`` (refused by the API), unless another thread replaced it already."""
        with self._lock:
            if self._value == value:
                self._value = None


class _ChatAdapter:
    """What both adapters share: the client, the token, the calls and their errors."""

    api: _Api

    def __init__(
        self,
        base_url: str,
        *,
        msgtype: str,
        robots: Mapping[str, Any],
        secrets: list[str | None],
        timeout: float,
        ssl_context: ssl.SSLContext | None,
        clock: Callable[[], float],
    ) -> None:
        family = self.api.family
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ArflowError(f"{family}: the base URL {redact(base_url)!r} is not an http(s) URL")
        if msgtype not in ("text", "markdown"):
            raise ArflowError(f"{family}: msgtype is text or markdown, not {msgtype!r}")
        for name in robots:
            if not name or any(c in name for c in " |,:"):
                raise ArflowError(f"{family}: the robot name {name!r} must be one plain word")
        self.base_url = base_url.rstrip("/")
        self.msgtype = msgtype
        self._client = _Client(family, timeout=timeout, ssl_context=ssl_context, secrets=secrets)
        self._token = _Token(self._fetch_token, clock)

    @property
    def timeout(self) -> float:
        return self._client.timeout

    @property
    def tokens_fetched(self) -> int:
        """How many access tokens were fetched so far (one per expiry or refusal)."""
        return self._token.fetched

    def scrub(self, text: str) -> str:
        """``text`` without any secret or token this adapter holds."""
        return self._client.scrub(text)

    # -- what each service defines --------------------------------------------------------------

    def _token_request(self) -> str:
        raise NotImplementedError

    def _has_app(self) -> bool:
        raise NotImplementedError

    def _send_app(self, message: Message, users: list[str]) -> str | None:
        raise NotImplementedError

    def _send_robot(self, message: Message, name: str) -> str | None:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------

    def deliver(self, message: Message) -> str | None:
        family = self.api.family
        if message.channel != family:
            raise PermanentFailure(f"{family}: cannot deliver a {message.channel} message")
        if not message.to:
            raise PermanentFailure(f"{family}: the message has no recipient")
        everyone = list(dict.fromkeys((*message.to, *message.cc)))  # a chat has no cc
        robots = [a[len(ROBOT) :] for a in everyone if a.startswith(ROBOT)]
        users = [a for a in everyone if not a.startswith(ROBOT)]
        refs: list[str] = []
        refused: list[tuple[str, PermanentFailure]] = []
        if users:
            if not self._has_app():
                raise PermanentFailure(
                    f"{family}: no application is configured, so the user id(s) "
                    f"{', '.join(users)} cannot be reached (only robot:NAME can)"
                )
            try:
                ref = self._send_app(message, users)
            except PermanentFailure as exc:
                if not robots:
                    raise
                refused.append((",".join(users), exc))
            else:
                if ref:
                    refs.append(ref)
        for name in robots:
            try:
                ref = self._send_robot(message, name)
            except PermanentFailure as exc:
                if len(robots) == 1 and not users:
                    raise
                refused.append((ROBOT + name, exc))
                continue
            if ref:
                refs.append(ref)
        if refused and not refs and len(refused) == len(robots) + (1 if users else 0):
            raise refused[0][1]
        ref = ",".join(refs) or None
        if refused:
            bad = ", ".join(who for who, _exc in refused)
            return f"{ref or ''} (refused: {bad})".lstrip()
        return ref

    def _text(self, message: Message) -> str:
        if message.subject and message.text:
            return f"{message.subject}\n\n{message.text}"
        return message.subject or message.text

    def _markdown(self, message: Message) -> str:
        if message.subject:
            return f"### {message.subject}\n\n{message.text}".rstrip()
        return message.text

    def _fail(self, kind: type[PermanentFailure] | type[TemporaryFailure], text: str) -> NoReturn:
        self._client.fail(kind, f"{self.api.family}: {text}", invalid=False)

    def _answer(self, url: str, data: bytes | None) -> dict[str, Any]:
        """POST ``data`` (GET when None) to ``url``; the JSON answer, its HTTP status checked."""
        headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
        if data is None:
            reply = self._client.get(url, headers)
        else:
            headers["Content-Type"] = "application/json; charset=utf-8"
            reply = self._client.post(url, data, headers)
        self._client.check(url, reply)
        answer = _json(reply.body)
        if not isinstance(answer, dict):
            body = self._client.scrub(reply.body.decode("utf-8", "replace"))
            self._fail(
                TemporaryFailure,
                f"{redact(url)}: the answer is not a JSON object: {_excerpt(body.encode())}",
            )
        return answer

    def _refused(self, what: str, answer: Mapping[str, Any]) -> NoReturn:
        """Raise what a non-zero ``errcode`` means: temporary or permanent."""
        code = _code(answer)
        msg = str(answer.get("errmsg", ""))
        sub = answer.get("sub_code") or answer.get("sub_msg")
        detail = f"{msg} ({answer.get('sub_code')}: {answer.get('sub_msg')})" if sub else msg
        text = f"{what} refused: errcode {code}: {detail}".rstrip(": ")
        kind = TemporaryFailure if code in self.api.temporary_codes else PermanentFailure
        self._fail(kind, _excerpt(text.encode("utf-8"), 300))

    def _with_token(self, path: str, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        """POST ``body`` to ``path`` with the access token; once more with a new token when
        the API says the token is invalid or expired. The answer of a success."""
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        for attempt in range(2):
            token = self._token.get()
            url = f"{self.base_url}{path}?access_token={quote(token, safe='')}"
            answer = self._answer(url, data)
            code = _code(answer)
            if code == 0:
                return answer
            if code in self.api.token_codes and attempt == 0:
                self._token.drop(token)
                continue
            self._refused(what, answer)
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch_token(self) -> tuple[str, float]:
        url = self._token_request()
        answer = self._answer(url, None)
        code = _code(answer)
        token = answer.get("access_token")
        if code != 0 or not isinstance(token, str) or not token:
            if code in self.api.temporary_codes:
                self._refused("the access token request", answer)
            msg = answer.get("errmsg", "")
            self._fail(
                PermanentFailure,
                f"the access token request was refused (errcode {code}: {msg}): check the "
                f"application's credentials",
            )
        self._client.keep_out(token)
        lifetime = answer.get("expires_in", 7200)
        if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = 7200
        return token, float(lifetime)


def _separate(adapter: _ChatAdapter, users: list[str], sep: str) -> None:
    """Refuse a user id holding the separator of the id list (it would name two users)."""
    odd = [u for u in users if sep in u]
    if odd:
        adapter._fail(PermanentFailure, f"the user id {odd[0]!r} holds {sep!r}: not an id")


def _code(answer: Mapping[str, Any]) -> int | None:
    code = answer.get("errcode", 0)
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    try:
        return int(str(code))
    except ValueError:
        return None


# -- WeCom -----------------------------------------------------------------------------------------


class WeComAdapter(_ChatAdapter):
    """Messages on the ``wecom`` channel: application messages to WeCom user ids (the
    ``wecom`` address of a person), group robots to ``robot:NAME``.

    ``corpid``, ``corpsecret`` and ``agentid`` are the application's (all three, or none when
    only robots are used); ``robots`` maps a name to the robot's webhook ``key``.
    ``duplicate_check`` asks WeCom to drop the same content sent again within that many
    seconds (0: no check), so a retry after a crash does not show twice."""

    api = _Api("wecom", WECOM_TOKEN_CODES, WECOM_TEMPORARY_CODES)

    def __init__(
        self,
        *,
        corpid: str | None = None,
        corpsecret: str | None = None,
        agentid: int | None = None,
        robots: Mapping[str, str] | None = None,
        msgtype: str = "text",
        base_url: str = WECOM_BASE,
        duplicate_check: int = 1800,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        app = (corpid, corpsecret, agentid)
        if any(v is not None for v in app) and not all(v is not None for v in app):
            raise ArflowError("wecom: an application needs corpid, corpsecret and agentid")
        if corpid is None and not robots:
            raise ArflowError("wecom: give an application (corpid, corpsecret, agentid) or robots")
        if duplicate_check < 0:
            raise ArflowError(f"wecom: duplicate_check is seconds, not {duplicate_check}")
        self.robots = dict(robots or {})
        super().__init__(
            base_url,
            msgtype=msgtype,
            robots=self.robots,
            secrets=[corpsecret, *self.robots.values()],
            timeout=timeout,
            ssl_context=ssl_context,
            clock=clock,
        )
        self.corpid = corpid
        self._corpsecret = corpsecret
        self.agentid = agentid
        self.duplicate_check = duplicate_check

    def __repr__(self) -> str:
        app = f"corpid={self.corpid} agentid={self.agentid} " if self.corpid else ""
        return f"WeComAdapter({app}robots={sorted(self.robots)} {self.base_url})"

    def _has_app(self) -> bool:
        return self.corpid is not None

    def _token_request(self) -> str:
        query = urlencode({"corpid": self.corpid, "corpsecret": self._corpsecret})
        return f"{self.base_url}/cgi-bin/gettoken?{query}"

    def _content(self, message: Message) -> dict[str, Any]:
        if self.msgtype == "markdown":
            return {"msgtype": "markdown", "markdown": {"content": self._markdown(message)}}
        return {"msgtype": "text", "text": {"content": self._text(message)}}

    def app_body(self, message: Message, users: list[str]) -> dict[str, Any]:
        """The JSON of ``message/send`` for ``users``."""
        body: dict[str, Any] = {"touser": "|".join(users), "agentid": self.agentid}
        body.update(self._content(message))
        if self.duplicate_check:
            body["enable_duplicate_check"] = 1
            body["duplicate_check_interval"] = self.duplicate_check
        return body

    def _send_app(self, message: Message, users: list[str]) -> str | None:
        _separate(self, users, "|")
        answer = self._with_token(
            "/cgi-bin/message/send", self.app_body(message, users), "message/send"
        )
        raw = answer.get("invaliduser") or ""  # "a|b", or a list in some replies
        if isinstance(raw, list):
            bad = [str(u) for u in raw if u]
        else:
            bad = [u for u in str(raw).split("|") if u]
        if bad and set(bad) >= set(users):
            self._fail(PermanentFailure, f"no WeCom user has the id(s) {', '.join(bad)}")
        ref = str(answer.get("msgid") or "") or None
        if bad:
            return f"{ref or ''} (refused: {', '.join(bad)})".lstrip()
        return ref

    def _send_robot(self, message: Message, name: str) -> str | None:
        key = self.robots.get(name)
        if key is None:
            known = ", ".join(sorted(self.robots)) or "none"
            self._fail(PermanentFailure, f"no robot {name!r} (the robots are: {known})")
        url = f"{self.base_url}/cgi-bin/webhook/send?key={quote(key, safe='')}"
        data = json.dumps(self._content(message), ensure_ascii=False, separators=(",", ":"))
        answer = self._answer(url, data.encode("utf-8"))
        if _code(answer) != 0:
            self._refused(f"robot {name}", answer)
        return None


# -- DingTalk --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DingTalkRobot:
    """A DingTalk group robot: the ``access_token`` of its webhook and, when its security
    setting is *signing* (加签), its ``SEC...`` secret."""

    token: str
    secret: str | None = None

    def __repr__(self) -> str:
        return f"DingTalkRobot(signed={self.secret is not None})"


class DingTalkAdapter(_ChatAdapter):
    """Messages on the ``dingtalk`` channel: work notifications to DingTalk user ids (the
    ``dingtalk`` address of a person), group robots to ``robot:NAME``.

    ``appkey``, ``appsecret`` and ``agent_id`` are the application's (all three, or none when
    only robots are used); ``robots`` maps a name to a :class:`DingTalkRobot` (or just its
    token, for a robot without signing). Work notifications are asynchronous: DingTalk
    answers with a ``task_id`` (returned as the reference) and reports a user it does not
    know later, in the send result, not in this answer."""

    api = _Api("dingtalk", DINGTALK_TOKEN_CODES, DINGTALK_TEMPORARY_CODES)

    def __init__(
        self,
        *,
        appkey: str | None = None,
        appsecret: str | None = None,
        agent_id: int | None = None,
        robots: Mapping[str, DingTalkRobot | str] | None = None,
        msgtype: str = "text",
        base_url: str = DINGTALK_BASE,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        app = (appkey, appsecret, agent_id)
        if any(v is not None for v in app) and not all(v is not None for v in app):
            raise ArflowError("dingtalk: an application needs appkey, appsecret and agent_id")
        if appkey is None and not robots:
            raise ArflowError(
                "dingtalk: give an application (appkey, appsecret, agent_id) or robots"
            )
        self.robots = {
            name: r if isinstance(r, DingTalkRobot) else DingTalkRobot(r)
            for name, r in (robots or {}).items()
        }
        secrets: list[str | None] = [appsecret]
        for r in self.robots.values():
            secrets += [r.token, r.secret]
        super().__init__(
            base_url,
            msgtype=msgtype,
            robots=self.robots,
            secrets=secrets,
            timeout=timeout,
            ssl_context=ssl_context,
            clock=clock,
        )
        self.appkey = appkey
        self._appsecret = appsecret
        self.agent_id = agent_id
        self._now_ms = now_ms

    def __repr__(self) -> str:
        app = f"appkey={self.appkey} agent_id={self.agent_id} " if self.appkey else ""
        return f"DingTalkAdapter({app}robots={sorted(self.robots)} {self.base_url})"

    def _has_app(self) -> bool:
        return self.appkey is not None

    def _token_request(self) -> str:
        query = urlencode({"appkey": self.appkey, "appsecret": self._appsecret})
        return f"{self.base_url}/gettoken?{query}"

    def _content(self, message: Message) -> dict[str, Any]:
        if self.msgtype == "markdown":
            title = message.subject or (message.text.splitlines() or [""])[0][:60] or "arflow"
            return {
                "msgtype": "markdown",
                "markdown": {"title": title, "text": self._markdown(message)},
            }
        return {"msgtype": "text", "text": {"content": self._text(message)}}

    def app_body(self, message: Message, users: list[str]) -> dict[str, Any]:
        """The JSON of ``asyncsend_v2`` for ``users``."""
        return {
            "agent_id": self.agent_id,
            "userid_list": ",".join(users),
            "msg": self._content(message),
        }

    def _send_app(self, message: Message, users: list[str]) -> str | None:
        _separate(self, users, ",")
        answer = self._with_token(
            "/topapi/message/corpconversation/asyncsend_v2",
            self.app_body(message, users),
            "asyncsend_v2",
        )
        task = answer.get("task_id")
        return None if task is None else str(task)

    def robot_url(self, name: str) -> str:
        """The URL a message to robot ``name`` is posted to, signed now when it has a secret."""
        robot = self.robots.get(name)
        if robot is None:
            known = ", ".join(sorted(self.robots)) or "none"
            self._fail(PermanentFailure, f"no robot {name!r} (the robots are: {known})")
        url = f"{self.base_url}/robot/send?access_token={quote(robot.token, safe='')}"
        if robot.secret:
            stamp = str(self._now_ms())
            sign = quote_plus(dingtalk_sign(robot.secret, stamp))
            url += f"&timestamp={stamp}&sign={sign}"
        return url

    def _send_robot(self, message: Message, name: str) -> str | None:
        url = self.robot_url(name)
        data = json.dumps(self._content(message), ensure_ascii=False, separators=(",", ":"))
        answer = self._answer(url, data.encode("utf-8"))
        if _code(answer) != 0:
            self._refused(f"robot {name}", answer)
        return None


# -- URL factories ---------------------------------------------------------------------------------

_APP_KEYS = {
    "wecom": ("corpid", "corpsecret", "agentid"),
    "dingtalk": ("appkey", "appsecret", "agent_id"),
}
_COMMON = ("msgtype", "timeout", "duplicate_check")


def _base(url: str, family: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower().removeprefix(f"{family}+")
    if scheme not in ("http", "https") or not parts.hostname:
        raise ArflowError(f"{family}: {redact(url)!r} is not a {family}+https:// URL with a host")
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _robot_names(query: Mapping[str, str]) -> list[str]:
    names = set()
    for k in query:
        if not k.startswith("robot_"):
            continue
        name = k[len("robot_") :].removesuffix("_env").removesuffix("_secret")
        names.add(name)
    return sorted(names)


def _int(family: str, query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ArflowError(f"{family}: ?{name}= is a number, not {raw!r}") from None


def _check_keys(family: str, query: Mapping[str, str]) -> None:
    allowed = {*_APP_KEYS[family], *_COMMON}
    allowed |= {f"{k}_env" for k in _APP_KEYS[family]}
    for k in query:
        if k not in allowed and not k.startswith("robot_"):
            raise ArflowError(f"{family}: unknown URL key ?{k}=")


def wecom_from_url(url: str, query: dict[str, str]) -> WeComAdapter:
    """``wecom+https://qyapi.weixin.qq.com?corpid=...&corpsecret_env=...&agentid=...
    &robot_NAME=KEY&msgtype=markdown``"""
    _check_keys("wecom", query)
    dup = "duplicate_check" in query
    robots = {}
    for name in _robot_names(query):
        key = _from_env("wecom", query, f"robot_{name}")
        if key:
            robots[name] = key
    return WeComAdapter(
        corpid=query.get("corpid"),
        corpsecret=_from_env("wecom", query, "corpsecret"),
        agentid=_int("wecom", query, "agentid"),
        robots=robots,
        msgtype=query.get("msgtype", "text"),
        base_url=_base(url, "wecom"),
        duplicate_check=_int("wecom", query, "duplicate_check") or 0 if dup else 1800,
        timeout=_timeout("wecom", query),
    )


def dingtalk_from_url(url: str, query: dict[str, str]) -> DingTalkAdapter:
    """``dingtalk+https://oapi.dingtalk.com?appkey=...&appsecret_env=...&agent_id=...
    &robot_NAME=TOKEN&robot_NAME_secret_env=VAR&msgtype=markdown``"""
    _check_keys("dingtalk", query)
    robots: dict[str, DingTalkRobot | str] = {}
    for name in _robot_names(query):
        token = _from_env("dingtalk", query, f"robot_{name}")
        if token:
            robots[name] = DingTalkRobot(
                token, _from_env("dingtalk", query, f"robot_{name}_secret")
            )
    return DingTalkAdapter(
        appkey=query.get("appkey"),
        appsecret=_from_env("dingtalk", query, "appsecret"),
        agent_id=_int("dingtalk", query, "agent_id"),
        robots=robots,
        msgtype=query.get("msgtype", "text"),
        base_url=_base(url, "dingtalk"),
        timeout=_timeout("dingtalk", query),
    )


__all__ = [
    "DINGTALK_BASE",
    "DINGTALK_TEMPORARY_CODES",
    "DINGTALK_TOKEN_CODES",
    "ROBOT",
    "WECOM_BASE",
    "WECOM_TEMPORARY_CODES",
    "WECOM_TOKEN_CODES",
    "DingTalkAdapter",
    "DingTalkRobot",
    "WeComAdapter",
    "dingtalk_from_url",
    "dingtalk_sign",
    "wecom_from_url",
]
