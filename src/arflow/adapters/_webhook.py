"""Signed JSON webhooks (``webhook+https://``): the signature, its check for receivers, the
adapter and its URL factory.

The signature scheme and failure rules are described in :mod:`arflow.adapters.http`."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import ssl
import time
from collections.abc import Callable, Mapping

from ..actions import DeliveryError, Message, PermanentFailure, Scrubber, redact
from ..errors import ArflowError, SignatureError
from ._http_client import (
    _USER_AGENT,
    DEFAULT_TIMEOUT,
    ID_KEYS,
    _auth,
    _Client,
    _from_env,
    _json,
    _reference,
    _split,
    _Target,
    _timeout,
)

TIMESTAMP_HEADER = "X-Arflow-Timestamp"
SIGNATURE_HEADER = "X-Arflow-Signature"


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


_WEBHOOK_KEYS = ("secret", "secret_env", "timeout", "token", "token_env")


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
