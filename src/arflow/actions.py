"""Actions leaving arflow: the message an adapter receives, the adapter protocol, its errors,
and the safe handling of adapter URLs (the registry that picks an adapter by URL is
:mod:`arflow.adapters`).

A decision says *what* (send the formal notice to the customer, give the salesperson a task);
:mod:`arflow.messages` renders it into a :class:`Message` in the same transaction that records
the decision, and a :class:`~arflow.outbox.Dispatcher` hands each message to the adapter for
its channel. Adapters know messages, never rules.

An adapter is any object with one method::

    class MyAdapter:
        def deliver(self, message: Message) -> str | None:
            ...  # send it; return a provider reference (or None)

It raises :class:`TemporaryFailure` for what may work later (a server down, a time-out, a
5xx), :class:`PermanentFailure` for what never will (a 4xx, a refused recipient): a permanent
failure with ``feedback`` (``bounced``, ``invalid``, ``unsubscribed``) also marks the contact,
so the next step does not use a dead channel. Anything else raised counts as temporary.

``message.key`` is the idempotency key: the same action always carries the same key, so a
receiver that sees a key twice (after a crash between its acceptance and the outbox's commit)
can drop the repeat. Adapters pass it on: as the e-mail ``Message-ID``, the HTTP
``Idempotency-Key`` header, the Celery task id, the RQ job id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import quote, quote_plus, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from .errors import DeliveryError as DeliveryError
from .errors import Feedback as Feedback
from .errors import PermanentFailure as PermanentFailure
from .errors import TemporaryFailure as TemporaryFailure

Channel = Literal["email", "sms", "task", "webhook", "wecom", "dingtalk"]

#: the rule action types that leave arflow, and the channel each goes out on
CHANNEL_OF: dict[str, Channel] = {
    "email": "email",
    "notify": "email",
    "sms": "sms",
    "task": "task",
    "request_invoice": "task",
    "handover": "task",
    "webhook": "webhook",
    "wecom": "wecom",
    "dingtalk": "dingtalk",
}


class Message(BaseModel):
    """One rendered action, as an adapter receives it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=1, description="idempotency key")
    channel: Channel
    action: str = Field(description="the rule's action type: email, notify, task, handover...")
    customer_id: str
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    subject: str | None = None
    text: str = ""
    html: str | None = None
    locale: str | None = None
    priority: str = "normal"
    due: date | None = None
    url: str | None = None
    template: str | None = None
    rule: str | None = None
    decision_keys: tuple[str, ...] = ()
    subject_ids: tuple[str, ...] = ()
    data: dict[str, Any] = {}
    fallbacks: tuple[Message, ...] = Field(
        default=(), description="pre-rendered next channels, tried when this one is dead"
    )

    @property
    def message_id(self) -> str:
        """An RFC 5322 Message-ID derived from the key: the same action, the same id."""
        digest = hashlib.sha256(self.key.encode("utf-8")).hexdigest()[:40]
        return f"<{digest}@arflow>"


@runtime_checkable
class Adapter(Protocol):
    """What the dispatcher hands messages to."""

    def deliver(self, message: Message) -> str | None: ...


# -- in-process adapters ------------------------------------------------------------------------


class MemoryAdapter:
    """Keeps every delivered message in ``sent`` (thread-safe): for tests and dry runs.

    ``fail_first`` makes the first N attempts fail temporarily; ``refuse`` maps an address
    to the permanent failure its messages get (``"bounced"`` and so on)."""

    def __init__(
        self, *, fail_first: int = 0, refuse: Mapping[str, Feedback] | None = None
    ) -> None:
        self.sent: list[Message] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.refuse = dict(refuse or {})
        self._lock = threading.Lock()

    def deliver(self, message: Message) -> str | None:
        with self._lock:
            self.attempts += 1
            if self.attempts <= self.fail_first:
                raise TemporaryFailure(f"memory adapter: attempt {self.attempts} fails on purpose")
            for addr in message.to:
                if addr in self.refuse:
                    raise PermanentFailure(
                        f"memory adapter: {addr} refused ({self.refuse[addr]})",
                        feedback=self.refuse[addr],
                        address=addr,
                    )
            self.sent.append(message)
            return f"memory:{len(self.sent)}"


class LogAdapter:
    """Writes one log line per message (key, channel, recipients, subject); never the body,
    which can hold customer data."""

    def __init__(self, logger: logging.Logger | str = "arflow.actions") -> None:
        self.log = logging.getLogger(logger) if isinstance(logger, str) else logger

    def deliver(self, message: Message) -> str | None:
        self.log.info(
            "%s %s to=%s cc=%s subject=%r",
            message.channel,
            message.key,
            ",".join(message.to),
            ",".join(message.cc),
            message.subject,
            extra={"arflow_message": message.key},
        )
        return None


#: query keys whose values are secrets, by a part of their name
SECRET_KEYS = ("key", "secret", "token", "pass", "auth", "sig", "credential")
_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_~%]*")


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its ``user:password@`` part, and the user and password as written
    (still percent-encoded). A password may hold ``#``, ``?``, ``/`` or ``@`` unencoded, so
    the user information ends at an ``@`` followed by a host (and port) that ends the URL or
    is followed by ``/``, ``?`` or ``#``: the last such ``@`` before a query (text with
    ``=`` or ``&``) begins; none when the URL starts with such a host and a query follows."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, None, None
    plain = re.match(r"[^/?#]*", rest)
    authority = plain.group(0) if plain else ""
    chosen = -1
    # where the host last taken ends: a later "@" counts only if no query comes between
    after: int | None = None
    if "@" not in authority and _host_end(authority) is not None:
        after = len(authority)
    at = -1
    while (at := rest.find("@", at + 1)) >= 0:
        end = _host_end(rest[at + 1 :])
        if end is None:
            continue
        if after is not None and any(c in rest[after:at] for c in "=&"):
            break
        chosen, after = at, at + 1 + end
    if chosen < 0:
        return url, None, None
    user, colon, password = rest[:chosen].partition(":")
    return f"{scheme}://{rest[chosen + 1 :]}", user, password if colon else None


def _host_end(text: str) -> int | None:
    """Where the host and port that ``text`` starts with end, when what follows them ends
    the authority (nothing, ``/``, ``?`` or ``#``); None when it does not."""
    m = _HOST.match(text)
    end = m.end() if m else 0
    if text[end : end + 1] == ":":
        digits = re.match(r"[0-9]*", text[end + 1 :])
        end += 1 + (len(digits.group(0)) if digits else 0)
    if end < len(text) and text[end] not in "/?#":
        return None
    return end


def redact(url: str) -> str:
    """A URL with its password (and any secret-looking query value, and any fragment)
    replaced by ``***``, however the password was written."""
    clean, user, password = split_userinfo(url)
    if user is not None:
        scheme, _, rest = clean.partition("://")
        info = f"{user}:***" if password is not None else user
        clean = f"{scheme}://{info}@{rest}"
    parts = urlsplit(clean)
    query = parts.query
    if query:
        pairs = []
        for piece in query.split("&"):
            k, _, v = piece.partition("=")
            secret = any(w in k.lower() for w in SECRET_KEYS)
            pairs.append(f"{k}=***" if secret and v else piece)
        query = "&".join(pairs)
    # no adapter URL needs a fragment: a "#" is most likely part of a secret written as is
    fragment = "***" if parts.fragment else ""
    return parts._replace(query=query, fragment=fragment).geturl()


_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def redact_urls(text: str) -> str:
    """``text`` with every URL in it redacted (:func:`redact`): a safety net for errors
    that quote a URL with a password or a token, from any adapter."""
    return _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)


class Scrubber:
    """Replaces known secrets with ``***`` in any text, in every form a server or a library
    may echo them: as written, percent-encoded, JSON-escaped and in base64 (HTTP basic
    auth, SMTP ``AUTH PLAIN`` and ``LOGIN``). An adapter has one and offers it as
    ``scrub(text)``; the dispatcher passes every error it records or logs through it."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._forms: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Keep ``secret`` (and its encoded forms) out of every text scrubbed from now on."""
        if not secret:
            return
        forms = {
            secret,
            unquote(secret),
            quote(secret, safe=""),
            quote_plus(secret),
            json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1],
            base64.b64encode(secret.encode("utf-8")).decode("ascii"),
        }
        self._forms.update(f for f in forms if f)

    def __call__(self, text: str) -> str:
        for form in sorted(self._forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text


def message_json(message: Message) -> str:
    return message.model_dump_json()


def message_from_json(body: str) -> Message:
    return Message.model_validate_json(body)


def safe_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# -- callbacks to the host --------------------------------------------------------------------

#: What a :class:`Happened` says arflow decided or did.
HappenedKind = Literal[
    "order_refused",
    "order_approved",
    "approval_requested",
    "lock_placed",
    "lock_lifted",
    "task_created",
    "process_step",
    "event_refused",
    "dead_letter",
]
HAPPENED_KINDS: tuple[str, ...] = HappenedKind.__args__  # type: ignore[attr-defined]

_callbacks_log = logging.getLogger("arflow.callbacks")


@dataclass(frozen=True, slots=True)
class Happened:
    """What arflow decided or did, told to the host's subscribers after it committed
    (``Ledger.subscribe``): a small value, the book holds the rest.

    ``key`` is the event id that did it (``event_refused``: the refused event's id;
    ``dead_letter``: the outbox message's key); ``subject_kind``/``subject_id`` the object
    it is about (the order, the lock's customer, the task, the process); ``detail`` a word
    more (the lock's id, the process step, the refusal's error class, the dead letter's
    error)."""

    kind: HappenedKind
    key: str
    subject_kind: str
    subject_id: str
    customer_id: str | None = None
    as_of: date | None = None
    detail: str | None = None


class Subscribers:
    """The host's callbacks for what arflow decided and did (see :class:`Happened`).

    A callback that raises is reported (logged on ``arflow.callbacks`` with its traceback,
    and kept in :attr:`errors`, the last 100) and the others still run; what arflow
    committed stands."""

    def __init__(self) -> None:
        self._subs: list[tuple[Callable[[Happened], object], frozenset[str]]] = []
        self._lock = threading.Lock()
        #: (the notice, the exception) of callbacks that raised, the latest last
        self.errors: list[tuple[Happened, BaseException]] = []

    def __bool__(self) -> bool:
        return bool(self._subs)

    def subscribe(
        self, callback: Callable[[Happened], object], *kinds: HappenedKind
    ) -> Callable[[], None]:
        """Call ``callback`` with each :class:`Happened` of ``kinds`` (every kind if none
        is named) from now on; returns the call that unsubscribes it."""
        unknown = sorted(set(kinds) - set(HAPPENED_KINDS))
        if unknown:
            from .errors import ValidationError

            raise ValidationError(
                f"unknown kind(s) {', '.join(unknown)} to subscribe to; "
                f"known: {', '.join(HAPPENED_KINDS)}"
            )
        entry = (callback, frozenset(kinds))
        with self._lock:
            self._subs = [*self._subs, entry]

        def unsubscribe() -> None:
            with self._lock:
                self._subs = [s for s in self._subs if s is not entry]

        return unsubscribe

    def publish(self, happened: Iterable[Happened]) -> None:
        """Tell every subscriber of its kind each of ``happened``, in order."""
        subs = self._subs
        if not subs:
            return
        for h in happened:
            for callback, kinds in subs:
                if kinds and h.kind not in kinds:
                    continue
                try:
                    callback(h)
                except Exception as exc:  # the host's error: reported, never arflow's
                    _callbacks_log.exception("callback %r raised on %s %s", callback, h.kind, h.key)
                    with self._lock:
                        self.errors = [*self.errors[-99:], (h, exc)]


__all__ = [
    "CHANNEL_OF",
    "HAPPENED_KINDS",
    "Adapter",
    "DeliveryError",
    "Happened",
    "HappenedKind",
    "LogAdapter",
    "MemoryAdapter",
    "Message",
    "PermanentFailure",
    "Scrubber",
    "Subscribers",
    "TemporaryFailure",
    "redact",
    "redact_urls",
    "split_userinfo",
]
