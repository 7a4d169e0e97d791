"""Actions leaving arflow: the message an adapter receives, the adapter protocol, its errors,
and the registry that picks an adapter by URL.

A decision says *what* (send the formal notice to the customer, give the salesperson a task);
:mod:`arflow.outbox` renders it into a :class:`Message` in the same transaction that records
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

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from .errors import ArflowError

Channel = Literal["email", "sms", "task", "webhook"]
Feedback = Literal["bounced", "invalid", "unsubscribed"]

#: the rule action types that leave arflow, and the channel each goes out on
CHANNEL_OF: dict[str, Channel] = {
    "email": "email",
    "notify": "email",
    "sms": "sms",
    "task": "task",
    "request_invoice": "task",
    "handover": "task",
    "webhook": "webhook",
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


class DeliveryError(ArflowError):
    """A delivery attempt failed. ``feedback`` says what it means for the contact."""

    temporary = True

    def __init__(
        self, message: str, *, feedback: Feedback | None = None, address: str | None = None
    ) -> None:
        super().__init__(message)
        self.feedback = feedback
        self.address = address


class TemporaryFailure(DeliveryError):
    """May work later: retried with backoff until the attempts run out."""


class PermanentFailure(DeliveryError):
    """Never will: the action goes to the dead letters at once (or to its fallback)."""

    temporary = False


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
        )
        return None


# -- the registry ---------------------------------------------------------------------------------

AdapterFactory = Callable[[str, dict[str, str]], Adapter]
_FACTORIES: dict[str, AdapterFactory] = {}


def register_adapter(scheme: str, factory: AdapterFactory) -> None:
    """Make ``scheme://...`` URLs build adapters with ``factory(url, query)``."""
    _FACTORIES[scheme.lower()] = factory


def adapter_from_url(url: str) -> Adapter:
    """An adapter from a URL: ``memory://``, ``log://``, ``smtp://user:pass@host:587?from=...``,
    ``smtps://...``, ``sms+https://gateway/send?profile=...``, ``webhook+https://...``,
    ``celery+redis://...?task=...``, ``rq+redis://...?queue=...&func=...``."""
    scheme = urlsplit(url).scheme.lower()
    _builtin()
    factory = _FACTORIES.get(scheme)
    if factory is None:
        known = ", ".join(sorted(_FACTORIES))
        raise ArflowError(f"no adapter for {redact(url)!r}: known schemes are {known}")
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    return factory(url, query)


def redact(url: str) -> str:
    """A URL with its password (and any secret-looking query value) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    query = parts.query
    if query:
        pairs = []
        for piece in query.split("&"):
            k, _, v = piece.partition("=")
            secret = any(w in k.lower() for w in ("key", "secret", "token", "password", "pass"))
            pairs.append(f"{k}=***" if secret and v else piece)
        query = "&".join(pairs)
    return parts._replace(netloc=netloc, query=query).geturl()


_loaded = False


def _builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    register_adapter("memory", lambda _u, q: MemoryAdapter(fail_first=int(q.get("fail_first", 0))))
    register_adapter("log", lambda u, _q: LogAdapter(urlsplit(u).netloc or "arflow.actions"))
    from .adapters import register_builtin

    register_builtin(register_adapter)


def message_json(message: Message) -> str:
    return message.model_dump_json()


def message_from_json(body: str) -> Message:
    return Message.model_validate_json(body)


def safe_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


__all__ = [
    "CHANNEL_OF",
    "Adapter",
    "DeliveryError",
    "LogAdapter",
    "MemoryAdapter",
    "Message",
    "PermanentFailure",
    "TemporaryFailure",
    "adapter_from_url",
    "redact",
    "register_adapter",
]
