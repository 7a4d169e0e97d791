"""The plumbing both HTTP adapters share: a client that POSTs without following redirects and
classifies the reply, and the helpers that read a URL's target, auth, secrets and time-out.

Kept apart from :mod:`arflow.adapters.http` (the public face) so the SMS and webhook adapters
each fit in a module of their own."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..actions import (
    DeliveryError,
    PermanentFailure,
    Scrubber,
    TemporaryFailure,
    redact,
    split_userinfo,
)
from ..errors import ArflowError

log = logging.getLogger("arflow.adapters.http")

#: keys of a JSON reply that hold the provider's message id, first found wins
ID_KEYS: tuple[str, ...] = ("id", "sid", "message_id", "MessageId")
DEFAULT_TIMEOUT = 10.0

_MAX_REPLY = 1 << 20
_USER_AGENT = "arflow-adapter"


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

    def get(self, url: str, headers: Mapping[str, str]) -> _Reply:
        """GET ``url`` (an access-token endpoint), classified as :meth:`post` does."""
        return self.post(url, None, headers, method="GET")

    def post(
        self, url: str, data: bytes | None, headers: Mapping[str, str], *, method: str = "POST"
    ) -> _Reply:
        where = f"{self.family} {redact(url)}"
        request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)
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
        log.debug("%s %s: HTTP %s", method, redact(url), reply.status)
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
