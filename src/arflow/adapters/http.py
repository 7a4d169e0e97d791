"""SMS through an HTTP gateway (``sms+https://``) and signed JSON webhooks (``webhook+https://``),
with the standard library only.

SMS: one POST per recipient, the body built from a *profile* (a template whose string values
may hold ``{to}``, ``{text}``, ``{key}`` and ``{sender}``)::

    sms+https://gateway.example.com/v1/sms?token=...                 # generic JSON, bearer
    sms+https://AC123:authtoken@api.twilio.com/2010-04-01/Accounts/AC123/Messages.json?profile=twilio&from=%2B15550100
    sms+https://sms-proxy.internal/send?profile=aliyun&from=ARFLOW&token_env=SMS_TOKEN

``user:password@`` becomes HTTP basic auth, ``?token=`` (or ``?token_env=NAME``, read from the
environment) a bearer token; ``?from=`` is ``{sender}``; ``?timeout=`` is in seconds (10 by
default). These keys, and ``?profile=``, are arflow's: they are taken out of the URL the
request goes to, every other query parameter stays. The profiles (:data:`SMS_PROFILES`):

- ``generic``: JSON ``{"to", "text", "reference"}``;
- ``twilio``: form-encoded ``To``, ``From``, ``Body``, with basic auth (account SID and auth
  token in the URL);
- ``aliyun``: JSON ``PhoneNumbers``, ``SignName`` and ``TemplateParam`` (a JSON *string*
  ``{"text", "reference"}``); a 200 whose ``Code`` is not ``OK`` is a failure. Aliyun's own
  API signs each request with the AccessKey (its RPC signature): that, like every signing
  scheme beyond basic and bearer auth, is for a gateway in between or an adapter of your own
  (any object with ``deliver(message)``).

Each request carries ``Idempotency-Key: <message.key>`` (``<key>-<n>`` for the n-th of several
recipients, so each is unique and the same on every retry); ``{key}`` in a body is that key.
The provider's message id is returned when the JSON reply has ``id``, ``sid``, ``message_id`` or
``MessageId`` (``BizId`` too for ``aliyun``). With several recipients, a recipient refused
permanently while others took the message is reported in the returned reference, as the SMTP
adapter does; only when every recipient is refused is the failure raised.

Webhook: one JSON POST of the whole message (every field but ``fallbacks``, keys sorted, no
spaces: the same message gives the same bytes) to the message's own ``url`` when it has one
(a rule's ``webhook`` action), else to the adapter's::

    webhook+https://hooks.example.com/arflow?secret_env=ARFLOW_WEBHOOK_SECRET
    webhook+https://hooks.example.com/arflow?secret=s3cr3t&timeout=5

It is signed: ``X-Arflow-Timestamp: <unix seconds>`` and ``X-Arflow-Signature: v1=<hex>``, the
HMAC-SHA256 of ``"<timestamp>.<body>"`` with the shared secret; the receiver checks both with
:func:`verify_signature` on the exact bytes it received. Basic or bearer auth from the URL is
sent only to the adapter's own origin, never to another host a message names.

Failures (both): a connection error, a time-out, 5xx, 429 and 408 are temporary (retried);
a redirect (not followed: point the URL at the final address) and any other 4xx are
permanent. A 400, 404 or 422 (or an ``aliyun`` ``Code``) whose body says ``invalid``,
``not a valid`` or ``illegal`` together with ``number``, ``phone`` or ``mobile`` is reported
as ``feedback="invalid"`` for the recipient's number, so the contact's phone is marked dead.
That is a heuristic on the provider's wording, nothing more.

Passwords, tokens and the webhook secret never appear in ``repr``, an error or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import math
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..actions import (
    DeliveryError,
    Message,
    PermanentFailure,
    Scrubber,
    TemporaryFailure,
    redact,
    split_userinfo,
)
from ..errors import ArflowError
from ..errors import SignatureError as SignatureError

log = logging.getLogger("arflow.adapters.http")

TIMESTAMP_HEADER = "X-Arflow-Timestamp"
SIGNATURE_HEADER = "X-Arflow-Signature"
#: keys of a JSON reply that hold the provider's message id, first found wins
ID_KEYS: tuple[str, ...] = ("id", "sid", "message_id", "MessageId")
DEFAULT_TIMEOUT = 10.0

_MAX_REPLY = 1 << 20
_USER_AGENT = "arflow-adapter"
_PLACEHOLDERS = ("to", "text", "key", "sender")


# -- SMS profiles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsProfile:
    """How one kind of gateway wants its request: the body template and its encoding.

    ``body`` values may be strings with placeholders, or dicts and lists of them. ``form``
    sends ``application/x-www-form-urlencoded`` (string values only) instead of JSON.
    ``json_fields`` are top-level fields sent as a JSON *string* (Aliyun's ``TemplateParam``).
    ``success`` is a ``(field, value)`` a 2xx JSON reply must have, for gateways that answer
    200 to a refusal."""

    body: Mapping[str, Any]
    form: bool = False
    json_fields: tuple[str, ...] = ()
    id_keys: tuple[str, ...] = ID_KEYS
    success: tuple[str, str] | None = None

    def uses(self, name: str) -> bool:
        """Whether the body template has the placeholder ``{name}`` anywhere."""
        return f"{{{name}}}" in json.dumps(self.body, default=str)


SMS_PROFILES: dict[str, SmsProfile] = {
    "generic": SmsProfile(body={"to": "{to}", "text": "{text}", "reference": "{key}"}),
    "twilio": SmsProfile(body={"To": "{to}", "From": "{sender}", "Body": "{text}"}, form=True),
    "aliyun": SmsProfile(
        body={
            "PhoneNumbers": "{to}",
            "SignName": "{sender}",
            "TemplateParam": {"text": "{text}", "reference": "{key}"},
        },
        json_fields=("TemplateParam",),
        id_keys=("BizId", *ID_KEYS),
        success=("Code", "OK"),
    ),
}


def render(template: Any, values: Mapping[str, str]) -> Any:
    """``template`` with every ``{name}`` of ``values`` replaced, in strings at any depth.

    Plain replacement, not :meth:`str.format`: other braces are left alone, and a value that
    itself holds ``{text}`` is not expanded again (each string is scanned once)."""
    if isinstance(template, str):
        if not values:
            return template
        names = "|".join(re.escape(name) for name in values)
        return re.sub(rf"\{{({names})\}}", lambda m: values[m.group(1)], template)
    if isinstance(template, Mapping):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list | tuple):
        return [render(v, values) for v in template]
    return template


# -- plumbing shared by both adapters -------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: a POST (and its credentials) must not wander to another URL."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    retry_after: str | None


class _Client:
    """POSTs bytes and classifies what came back; knows the secrets only to keep them out."""

    def __init__(
        self,
        family: str,
        *,
        timeout: float,
        ssl_context: ssl.SSLContext | None,
        secrets: Iterable[str | None],
    ) -> None:
        if timeout <= 0:
            raise ArflowError(f"{family}: the time-out must be positive, not {timeout}")
        self.family = family
        self.timeout = timeout
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self.opener = urllib.request.build_opener(*handlers)
        self.scrub = Scrubber()
        for secret in secrets:
            self.keep_out(secret)

    def keep_out(self, secret: str | None) -> None:
        """Scrub ``secret`` from every text; an ``Authorization`` value also without its
        scheme (a receiver may echo either)."""
        if secret:
            self.scrub.add(secret)
            scheme, _, value = secret.partition(" ")
            if scheme in ("Basic", "Bearer") and value:
                self.scrub.add(value)

    def fail(
        self, kind: type[DeliveryError], text: str, *, address: str | None = None, invalid: bool
    ) -> NoReturn:
        text = self.scrub(text)
        if invalid:
            raise kind(text, feedback="invalid", address=address)
        raise kind(text, address=address)

    def post(self, url: str, data: bytes, headers: Mapping[str, str]) -> _Reply:
        where = f"{self.family} {redact(url)}"
        request = urllib.request.Request(url, data=data, headers=dict(headers), method="POST")
        try:
            try:
                with self.opener.open(request, timeout=self.timeout) as resp:
                    reply = _Reply(resp.status, resp.read(_MAX_REPLY), resp.headers["Retry-After"])
            except urllib.error.HTTPError as exc:
                try:
                    body = exc.read(_MAX_REPLY)
                except (OSError, http.client.HTTPException):
                    body = b""
                finally:
                    exc.close()
                retry = exc.headers["Retry-After"] if exc.headers is not None else None
                reply = _Reply(exc.code, body, retry)
        except urllib.error.URLError as exc:
            reason = exc.reason if isinstance(exc.reason, BaseException) else str(exc.reason)
            self.fail(TemporaryFailure, f"{where}: {_describe(reason)}", invalid=False)
        except (OSError, http.client.HTTPException) as exc:
            self.fail(TemporaryFailure, f"{where}: {_describe(exc)}", invalid=False)
        except ValueError as exc:  # a URL urllib cannot use
            self.fail(PermanentFailure, f"{where}: {_describe(exc)}", invalid=False)
        log.debug("POST %s: HTTP %s", redact(url), reply.status)
        return reply

    def check(self, url: str, reply: _Reply, *, address: str | None = None) -> None:
        """Raise the failure ``reply`` means, if it is one."""
        status = reply.status
        if 200 <= status < 300:
            return
        where = f"{self.family} {redact(url)}: HTTP {status}"
        # scrubbed before it is cut short, so no part of a secret is left at the cut
        excerpt = _excerpt(self.scrub(reply.body.decode("utf-8", "replace")).encode("utf-8"))
        text = f"{where} {excerpt}".rstrip()
        if 300 <= status < 400:
            self.fail(PermanentFailure, f"{where}: redirects are not followed", invalid=False)
        if status in (408, 429) or status >= 500:
            if reply.retry_after:
                text += f" (Retry-After: {reply.retry_after[:40]})"
            self.fail(TemporaryFailure, text, invalid=False)
        invalid = address is not None and status in (400, 404, 422) and says_invalid(reply.body)
        self.fail(PermanentFailure, text, address=address, invalid=invalid)


def says_invalid(body: bytes | str) -> bool:
    """The invalid-number heuristic: the text says *invalid* (or *not a valid*, *illegal*)
    and *number* (or *phone*, *mobile*)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    low = text.lower()
    bad = any(w in low for w in ("invalid", "not a valid", "illegal"))
    return bad and any(w in low for w in ("number", "phone", "mobile"))


def _describe(exc: BaseException | str) -> str:
    if isinstance(exc, str):
        return exc
    if isinstance(exc, TimeoutError):
        return "time-out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _reference(reply: _Reply, keys: Iterable[str]) -> str | None:
    data = _json(reply.body)
    if isinstance(data, dict):
        for k in keys:
            value = data.get(k)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
    return None


def _auth(username: str | None, password: str | None, token: str | None) -> str | None:
    if token:
        return f"Bearer {token}"
    if username is not None:
        pair = f"{username}:{password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return None


def _split(url: str, family: str, *, prefix: str = "", drop: Iterable[str] = ()) -> _Target:
    """The plain http(s) URL to call (no ``prefix+``, no user info, no arflow keys) and the
    user and password it held (a password may hold ``#``, ``?`` or ``/`` unencoded)."""
    bare, user, password = split_userinfo(url)
    parts = urlsplit(bare)
    scheme = parts.scheme.lower()
    if prefix and scheme.startswith(prefix):
        scheme = scheme[len(prefix) :]
    if scheme not in ("http", "https"):
        raise ArflowError(f"{family}: {redact(url)!r} is not an http(s) URL")
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        host = None
    if not host:
        raise ArflowError(f"{family}: no host in {redact(url)!r}")
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k not in set(drop)]
    if len(kept) != len(pairs):
        query = urlencode(kept)
    clean = urlunsplit((scheme, parts.netloc, parts.path or "/", query, ""))
    return _Target(
        clean,
        unquote(user) if user is not None else None,
        unquote(password) if password is not None else None,
    )


@dataclass(frozen=True)
class _Target:
    url: str
    username: str | None
    password: str | None

    @property
    def origin(self) -> tuple[str, str]:
        parts = urlsplit(self.url)
        return parts.scheme, parts.netloc.lower()


def _from_env(family: str, query: Mapping[str, str], name: str) -> str | None:
    """``?name=`` or the environment variable ``?name_env=`` names."""
    var = query.get(f"{name}_env")
    if var:
        value = os.environ.get(var)
        if not value:
            raise ArflowError(f"{family}: the environment variable {var} is not set")
        return value
    return query.get(name) or None


def _timeout(family: str, query: Mapping[str, str]) -> float:
    raw = query.get("timeout", DEFAULT_TIMEOUT)
    try:
        value = float(raw)
    except ValueError:
        raise ArflowError(f"{family}: ?timeout= is seconds, not {raw!r}") from None
    if not value > 0:
        raise ArflowError(f"{family}: ?timeout= must be positive, not {raw!r}")
    return value


# -- SMS ------------------------------------------------------------------------------------------


class SmsHttpAdapter:
    """Sends SMS messages through one HTTP gateway, one POST per recipient."""

    def __init__(
        self,
        url: str,
        *,
        profile: str | SmsProfile = "generic",
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        sender: str = "",
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if isinstance(profile, str):
            if profile not in SMS_PROFILES:
                known = ", ".join(sorted(SMS_PROFILES))
                raise ArflowError(f"sms: no profile {profile!r}; known are {known}")
            self.profile_name, spec = profile, SMS_PROFILES[profile]
        else:
            self.profile_name, spec = "custom", profile
        if body is not None:
            spec = replace(spec, body=body)
        self.profile = spec
        target = _split(url, "sms")
        self.url = target.url
        self.username = username if username is not None else target.username
        password = password if password is not None else target.password
        self.sender = sender
        if not sender and spec.uses("sender"):
            raise ArflowError(
                f"sms: the {self.profile_name} profile needs a sender: say ?from=... "
                f"for {redact(self.url)!r}"
            )
        self._headers = dict(headers or {})
        self._auth = _auth(self.username, password, token)
        self._client = _Client(
            "sms",
            timeout=timeout,
            ssl_context=ssl_context,
            secrets=[password, token, self._auth, *self._headers.values()],
        )

    @property
    def timeout(self) -> float:
        return self._client.timeout

    def scrub(self, text: str) -> str:
        """``text`` without any secret this adapter holds (for the dispatcher's records)."""
        return self._client.scrub(text)

    def __repr__(self) -> str:
        user = f" {self.username}:***@" if self.username else ""
        return f"SmsHttpAdapter({self.profile_name}{user} {redact(self.url)})"

    def request(self, message: Message, number: str, key: str) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the POST for one recipient."""
        values = {"to": number, "text": message.text, "key": key, "sender": self.sender}
        body = render(self.profile.body, values)
        for name in self.profile.json_fields:
            if name in body:
                body[name] = json.dumps(body[name], ensure_ascii=False, separators=(",", ":"))
        headers = {
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
            **self._headers,
            "Idempotency-Key": key,
        }
        if self._auth:
            headers["Authorization"] = self._auth
        if self.profile.form:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return urlencode({k: str(v) for k, v in body.items()}).encode("utf-8"), headers
        headers["Content-Type"] = "application/json"
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return data, headers

    def deliver(self, message: Message) -> str | None:
        if message.channel != "sms":
            raise PermanentFailure(f"sms: cannot deliver a {message.channel} message")
        if not message.to:
            raise PermanentFailure("sms: the message has no recipient", feedback="invalid")
        several = len(message.to) > 1
        refs: list[str] = []
        refused: list[PermanentFailure] = []
        for n, number in enumerate(message.to):
            key = f"{message.key}-{n}" if several else message.key
            try:
                ref = self._send(message, number, key)
            except PermanentFailure as exc:
                if not several:
                    raise
                refused.append(exc)
                continue
            if ref:
                refs.append(ref)
        if refused and len(refused) == len(message.to):
            raise refused[0]
        ref = ",".join(refs) or None
        if refused:
            bad = ", ".join(sorted(exc.address or "?" for exc in refused))
            return f"{ref or ''} (refused: {bad})".lstrip()
        return ref

    def _send(self, message: Message, number: str, key: str) -> str | None:
        data, headers = self.request(message, number, key)
        reply = self._client.post(self.url, data, headers)
        self._client.check(self.url, reply, address=number)
        if self.profile.success is not None:
            name, want = self.profile.success
            answer = _json(reply.body)
            got = answer.get(name) if isinstance(answer, dict) else None
            if got != want:
                body = self._client.scrub(reply.body.decode("utf-8", "replace"))
                text = f"sms {redact(self.url)}: {name} {got!r}: {_excerpt(body.encode('utf-8'))}"
                self._client.fail(
                    PermanentFailure, text, address=number, invalid=says_invalid(reply.body)
                )
        return _reference(reply, self.profile.id_keys)


# -- webhooks -------------------------------------------------------------------------------------


def _secret_bytes(secret: bytes | str) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def sign(secret: bytes | str, timestamp: str, body: bytes) -> str:
    """The ``X-Arflow-Signature`` value: ``v1=`` and the hex HMAC-SHA256 of
    ``"<timestamp>.<body>"``."""
    mac = hmac.new(_secret_bytes(secret), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


#: the longest timestamp taken as unix seconds (digits): up to the year 33658
_MAX_STAMP_DIGITS = 12


def verify_signature(
    secret: bytes | str,
    timestamp: str,
    signature: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = 300,
    idempotency_key: str | None = None,
) -> None:
    """Check a webhook the way a receiver should; raise :class:`SignatureError` if it fails,
    for whatever reason: wrong, malformed (of any type or size), or outside the time window.

    ``timestamp`` and ``signature`` are the ``X-Arflow-Timestamp`` and ``X-Arflow-Signature``
    headers, ``body`` the exact bytes received. A timestamp more than ``tolerance`` seconds
    from ``now`` (in either direction) is refused, so a captured request cannot be replayed
    later. ``signature`` may hold several comma-separated ``v1=`` values (while a secret is
    being rotated): one must match.

    The signature covers the body, not the headers: drop repeats within the window by the
    body's ``key``, which is signed. The ``Idempotency-Key`` header carries the same key;
    pass it as ``idempotency_key`` to have it checked against the signed one."""
    if not isinstance(secret, str | bytes) or not secret:
        raise SignatureError("webhook signature: no secret to check it with")
    if not isinstance(timestamp, str) or not isinstance(signature, str):
        raise SignatureError("webhook signature: the timestamp and signature must be text")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise SignatureError("webhook signature: the body must be the bytes received")
    body = bytes(body)
    stamp = timestamp.strip()
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= _MAX_STAMP_DIGITS):
        raise SignatureError("webhook signature: the timestamp is not unix seconds")
    current = time.time() if now is None else now
    if not isinstance(current, int | float) or not math.isfinite(current):
        raise SignatureError(f"webhook signature: now must be unix seconds, not {current!r}")
    if abs(current - int(stamp)) > tolerance:
        raise SignatureError(
            f"webhook signature: the timestamp is more than {tolerance} s from now"
        )
    expected = sign(secret, stamp, body).encode("ascii")
    offered = [p.strip() for p in signature.split(",") if p.strip().startswith("v1=")]
    if not offered:
        raise SignatureError("webhook signature: no v1= signature")
    matched = False
    for candidate in offered:
        # compare every candidate, in constant time each
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    if not matched:
        raise SignatureError("webhook signature: does not match the body")
    if idempotency_key is not None:
        data = _json(body)
        signed = data.get("key") if isinstance(data, dict) else None
        if not isinstance(idempotency_key, str) or signed != idempotency_key:
            raise SignatureError("webhook signature: Idempotency-Key is not the signed key")


class WebhookAdapter:
    """POSTs each message as signed JSON to the message's ``url``, else to this adapter's."""

    def __init__(
        self,
        url: str | None,
        *,
        secret: bytes | str,
        headers: Mapping[str, str] | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ArflowError("webhook: a signing secret is needed")
        self._secret = _secret_bytes(secret)
        self.target = _split(url, "webhook") if url else None
        self.url = self.target.url if self.target else None
        self.username = username
        if self.target and username is None:
            self.username = self.target.username
        if self.target and password is None:
            password = self.target.password
        self._headers = dict(headers or {})
        self._auth = _auth(self.username, password, token)
        self.clock = clock
        text_secret = self._secret.decode("utf-8", "replace")
        self._client = _Client(
            "webhook",
            timeout=timeout,
            ssl_context=ssl_context,
            secrets=[text_secret, password, token, self._auth, *self._headers.values()],
        )

    @property
    def timeout(self) -> float:
        return self._client.timeout

    def scrub(self, text: str) -> str:
        """``text`` without any secret this adapter holds (for the dispatcher's records)."""
        return self._client.scrub(text)

    def __repr__(self) -> str:
        where = redact(self.url) if self.url else "the message's url"
        if self.username:
            where = f"{self.username}:***@ {where}"
        return f"WebhookAdapter({where})"

    @staticmethod
    def payload(message: Message) -> bytes:
        """The body: every field of the message but ``fallbacks``, as compact sorted JSON."""
        data = message.model_dump(mode="json", exclude={"fallbacks"})
        text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return text.encode("utf-8")

    def request(
        self, message: Message, *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the POST for ``message``."""
        body = self.payload(message)
        stamp = str(int(self.clock()) if timestamp is None else timestamp)
        headers = {
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
            **self._headers,
            "Content-Type": "application/json",
            "Idempotency-Key": message.key,
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(self._secret, stamp, body),
        }
        return body, headers

    def deliver(self, message: Message) -> str | None:
        target = self._target(message)
        body, headers = self.request(message)
        # the adapter's credentials go to the adapter's own origin only
        own = self.target is not None and (
            target is self.target
            or (target.username is None and target.origin == self.target.origin)
        )
        auth = self._auth if own else _auth(target.username, target.password, None)
        if auth:
            headers["Authorization"] = auth
        try:
            reply = self._client.post(target.url, body, headers)
            self._client.check(target.url, reply)
        except DeliveryError as exc:
            if own or auth is None:
                raise
            # the credentials the message's own URL carried are secrets as well
            theirs = Scrubber([target.password, auth, auth.partition(" ")[2]])
            raise type(exc)(theirs(str(exc)), feedback=exc.feedback, address=exc.address) from None
        return _reference(reply, ID_KEYS)

    def _target(self, message: Message) -> _Target:
        if message.url:
            try:
                return _split(message.url, "webhook", prefix="webhook+")
            except ArflowError as exc:
                raise PermanentFailure(str(exc)) from None
        if self.target is None:
            raise PermanentFailure("webhook: the message has no url and the adapter none either")
        return self.target


# -- factories for the URL registry ---------------------------------------------------------------

_SMS_KEYS = ("profile", "from", "timeout", "token", "token_env")
_WEBHOOK_KEYS = ("secret", "secret_env", "timeout", "token", "token_env")


def sms_from_url(url: str, query: dict[str, str]) -> SmsHttpAdapter:
    """``sms+https://[user:password@]host/path?profile=...&from=...&token=...&timeout=...``"""
    target = _split(url, "sms", prefix="sms+", drop=_SMS_KEYS)
    return SmsHttpAdapter(
        target.url,
        profile=query.get("profile", "generic"),
        sender=query.get("from", ""),
        username=target.username,
        password=target.password,
        token=_from_env("sms", query, "token"),
        timeout=_timeout("sms", query),
    )


def webhook_from_url(url: str, query: dict[str, str]) -> WebhookAdapter:
    """``webhook+https://[user:password@]host/path?secret=...|secret_env=NAME&timeout=...``"""
    target = _split(url, "webhook", prefix="webhook+", drop=_WEBHOOK_KEYS)
    secret = _from_env("webhook", query, "secret")
    if not secret:
        raise ArflowError(
            f"webhook: say the signing secret, ?secret_env=NAME or ?secret=..., in {redact(url)!r}"
        )
    return WebhookAdapter(
        target.url,
        secret=secret,
        username=target.username,
        password=target.password,
        token=_from_env("webhook", query, "token"),
        timeout=_timeout("webhook", query),
    )


__all__ = [
    "ID_KEYS",
    "SIGNATURE_HEADER",
    "SMS_PROFILES",
    "TIMESTAMP_HEADER",
    "SignatureError",
    "SmsHttpAdapter",
    "SmsProfile",
    "WebhookAdapter",
    "render",
    "says_invalid",
    "sign",
    "sms_from_url",
    "verify_signature",
    "webhook_from_url",
]
