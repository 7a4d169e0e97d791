"""SMS through an HTTP gateway (``sms+https://``): the profiles, the adapter and its URL factory.

The URL keys, profiles and failure rules are described in :mod:`arflow.adapters.http`."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from ..actions import Message, PermanentFailure, redact
from ..errors import ArflowError
from ._http_client import (
    _USER_AGENT,
    DEFAULT_TIMEOUT,
    ID_KEYS,
    _auth,
    _Client,
    _excerpt,
    _from_env,
    _json,
    _reference,
    _split,
    _timeout,
    says_invalid,
)

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


_SMS_KEYS = ("profile", "from", "timeout", "token", "token_env")


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
