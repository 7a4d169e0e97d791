"""The outbox: delivery only. Messages rendered and queued by the composer
(:mod:`arflow.messages`, in the transaction that records the decisions) are delivered by a
:class:`Dispatcher` through adapters, exactly once in effect.

Delivering (:class:`Dispatcher`): claim due messages (several dispatchers may run at once:
PostgreSQL hands each message to one of them with ``FOR UPDATE SKIP LOCKED``), deliver each
through the adapter for its channel, record the outcome. A temporary failure is retried with
exponential backoff and jitter until ``max_attempts``; then, or at once on a permanent
failure, the message is a dead letter (``arflow outbox dead``, ``arflow outbox retry``) and
its next fallback channel, pre-rendered at decision time, is queued instead. A bounce, an
invalid number or an unsubscribe is handed to ``on_feedback`` as a :class:`DeliveryFeedback`
(``arflow.messages.ledger_feedback`` records it on the contact as an audited
``ContactFeedback``), so the next step does not use that channel. A dispatcher that dies mid-batch leaves its
claims to expire (``lease``); another dispatcher (or it, restarted) takes them over.

Each channel's deliveries are spaced by a :class:`RateLimiter`: by default this dispatcher's
own (``rate_limits``, :class:`InProcessRateLimiter`); one shared by every dispatcher
(``arflow.adapters.ratelimit.RedisRateLimiter``) keeps the rate of them all together.

Every claim carries a token of its own. Just before a message is sent its claim is renewed
for a whole lease (and the rest of the batch with it, every third of a lease), and only
while it still holds the token; while the adapter hands it over, a heartbeat thread renews
it every third of a lease; an outcome is recorded only under the token too. So a batch, or
one slow hand-over, may take far longer than the lease, and a message whose claim was taken
over is neither sent nor settled by the dispatcher that lost it.

The guarantee: at-least-once delivery to the adapter, with the same idempotency key on every
attempt. A message is repeated only when a dispatcher dies after the receiver accepted it and
before the outbox recorded that, or when its heartbeat cannot reach the store for a whole
lease during a hand-over; the repeat carries the same key (``Message-ID``, task id,
``Idempotency-Key``) so the receiver can drop it.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from .actions import (
    Adapter,
    DeliveryError,
    Happened,
    Message,
    PermanentFailure,
    Subscribers,
    TemporaryFailure,
    redact_urls,
)
from .adapters import adapter_from_url
from .errors import ArflowError, Feedback, StoreError, ValidationError
from .store.base import OutboxRecord, Settle, Store

log = logging.getLogger("arflow.outbox")


def _about(key: str) -> dict[str, str]:
    """The ``extra`` of a record about the message ``key`` (see docs/operations.md)."""
    return {"arflow_message": key}


def micros(at: datetime) -> int:
    """An aware instant as UTC microseconds since the epoch (how the outbox stores time)."""
    if at.tzinfo is None:
        raise ArflowError(f"instant {at!r} has no time zone")
    delta = at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def instant(us: int | None) -> datetime | None:
    if us is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


@dataclass(frozen=True)
class DeliveryFeedback:
    """What a failed delivery says about a contact: an address bounced, a number is invalid,
    or the reader unsubscribed. The dispatcher hands it to its ``on_feedback`` callable,
    which records it (``arflow.messages.ledger_feedback`` applies a ``ContactFeedback``)."""

    key: str  # the outbox key of the message whose delivery failed
    customer_id: str
    address: str
    channel: Literal["email", "sms"]
    feedback: Feedback
    reason: str
    at: datetime


#: records a :class:`DeliveryFeedback`; raises :class:`ArflowError` when it cannot (logged)
FeedbackHandler = Callable[[DeliveryFeedback], None]


# -- delivering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits ``base * 2**(n-1)``, at most ``cap``,
    less a random part of up to ``jitter`` of it (so dispatchers retrying together spread)."""

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=6)
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        # in float seconds, the exponent bounded: ``base * 2**n`` as a timedelta overflows
        # long before the attempts of a generous ``max_attempts`` run out
        doubled = self.base.total_seconds() * 2.0 ** min(max(0, attempt - 1), 200)
        raw = min(self.cap.total_seconds(), doubled)
        factor = 1 - self.jitter * rng.random()
        return timedelta(seconds=raw * factor)


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    fallbacks: int = 0
    lost: int = 0  # claims another dispatcher took over before they were sent
    errors: list[str] = field(default_factory=list)

    def add(self, other: DispatchStats) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.fallbacks += other.fallbacks
        self.lost += other.lost
        self.errors.extend(other.errors)


class RateLimiter(Protocol):
    """Spaces the deliveries of each channel: at most so many per second on a channel.

    The dispatcher asks it once per message, just before the message's claim is checked
    and the message handed over, and waits the seconds it answers. The default,
    :class:`InProcessRateLimiter`, limits one dispatcher; one shared by every dispatcher
    (``arflow.adapters.ratelimit.RedisRateLimiter``) limits them all together."""

    def reserve(self, channel: str) -> float:
        """Reserve the next free slot for one delivery on ``channel`` and return the seconds
        until it (0.0: at once, also for a channel without a limit). Raises
        :class:`TemporaryFailure` (or another :class:`ArflowError`) when it cannot tell (its
        service is down): the dispatcher then retries the message later and sends nothing."""
        ...


class InProcessRateLimiter:
    """A token bucket per channel, in this process: at most ``rates[channel]`` deliveries per
    second by the dispatcher that holds it (shared by its threads, not by other dispatchers)."""

    def __init__(self, rates: Mapping[str, float] | None = None) -> None:
        self.rates = {ch: float(r) for ch, r in (rates or {}).items() if r > 0}
        self._next_free = dict.fromkeys(self.rates, time.monotonic())
        self._lock = threading.Lock()

    def reserve(self, channel: str) -> float:
        rate = self.rates.get(channel)
        if rate is None:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_free[channel])
            self._next_free[channel] = slot + 1.0 / rate
        return slot - now

    def __repr__(self) -> str:
        return f"InProcessRateLimiter({self.rates!r})"


def system_clock() -> datetime:
    """The dispatcher's clock: the edge where arflow reads the wall clock."""
    return datetime.now(UTC)


class Dispatcher:
    """Delivers queued messages through adapters; safe to run several at once, in threads
    of one process (one dispatcher shared, its rate limits then shared too) or in
    processes (each its own, each with the rate limits given)."""

    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, Adapter] | Adapter,
        *,
        on_feedback: FeedbackHandler | None = None,
        worker: str | None = None,
        batch: int = 50,
        lease: timedelta = timedelta(minutes=5),
        retry: RetryPolicy | None = None,
        rate_limits: Mapping[str, float] | None = None,
        rate_limiter: RateLimiter | None = None,
        channels: Iterable[str] | None = None,
        clock: Callable[[], datetime] = system_clock,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_sent: Callable[[OutboxRecord, Message], None] | None = None,
        subscribers: Subscribers | None = None,
    ) -> None:
        self.store = store
        #: told of each dead letter once it is recorded (``Ledger.subscribers``, so the
        #: host's ``Ledger.subscribe`` callbacks hear of it; None: nobody)
        self.subscribers = subscribers
        self.adapters: dict[str, Adapter] = (
            dict(adapters)
            if isinstance(adapters, Mapping)
            else dict.fromkeys(("email", "sms", "task", "webhook", "wecom", "dingtalk"), adapters)
        )
        #: where a bounce, an invalid number or an unsubscribe goes (None: only logged)
        self.on_feedback = on_feedback
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.batch = batch
        self.lease = lease
        self.retry = retry or RetryPolicy()
        self.channels = None if channels is None else list(channels)
        self.clock = clock
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.on_sent = on_sent
        if rate_limiter is not None and rate_limits:
            raise ValidationError(
                "Dispatcher: pass rate_limits (this dispatcher's own) or rate_limiter "
                "(which holds its rates), not both"
            )
        #: spaces each channel's deliveries (``rate_limits`` alone: this dispatcher's own)
        self.rate_limiter: RateLimiter = rate_limiter or InProcessRateLimiter(rate_limits)

    @property
    def lease_us(self) -> int:
        """The lease in the outbox's unit, microseconds."""
        return int(self.lease.total_seconds() * 1_000_000)

    def run_once(self) -> DispatchStats:
        """Claim one batch of due messages and deliver them, each only while its claim holds."""
        stats = DispatchStats()
        now = self._now()
        try:
            claimed = self.store.outbox_claim(
                self.worker, now, self.batch, self.lease_us, self.channels
            )
        except StoreError as exc:
            log.error("outbox: %s could not claim messages: %s", self.worker, exc)
            raise
        stats.claimed = len(claimed)
        if claimed:
            log.info(
                "outbox: %s claimed %d message(s): %s",
                self.worker,
                len(claimed),
                ", ".join(r.key for r in claimed[:5]) + (" ..." if len(claimed) > 5 else ""),
            )
        unfenced = [r.key for r in claimed if not r.claim]
        if unfenced:  # a store of one's own that does not keep the protocol
            raise StoreError(
                f"{type(self.store).__name__}.outbox_claim gave {unfenced[0]!r} no claim token: "
                "without one no send can be fenced"
            )
        if not claimed:
            return stats
        held = _Held(now, {r.key for r in claimed})
        heartbeat = _Heartbeat(self)
        try:
            for i, rec in enumerate(claimed):
                rest = functools.partial(_keys_after, claimed, i)
                self._one(rec, stats, rest, heartbeat, held)
        finally:
            heartbeat.stop()
        return stats

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        idle_exit: bool = True,
        poll: float = 1.0,
        max_batches: int | None = None,
    ) -> DispatchStats:
        """Deliver batch after batch; with ``idle_exit`` stop when nothing is due."""
        total = DispatchStats()
        batches = 0
        while stop is None or not stop.is_set():
            got = self.run_once()
            total.add(got)
            batches += 1
            if max_batches is not None and batches >= max_batches:
                break
            if got.claimed == 0:
                if idle_exit:
                    break
                if stop is not None:
                    stop.wait(poll)
                else:
                    self.sleep(poll)
        return total

    def _hold(self, rec: OutboxRecord, rest: Callable[[], list[str]], held: _Held) -> bool:
        """Whether the claim on ``rec`` still holds, just before it is sent. Within a third
        of a lease of the batch's last renewal, where ``rec`` was held, it does (it was
        claimed or renewed then for a whole lease, and no one may take it over before that
        lease ends), and the store is not asked; after that, ``rec`` and the rest of the batch (the keys ``rest``
        lists) are renewed for a whole lease from here, so a batch longer than the lease
        keeps its tail, and the answer is whether ``rec`` was still held."""
        now = self._now()
        if now - held.renewed < self.lease_us // 3 and rec.key in held.keys:
            return True
        held.renewed = now
        held.keys = self.store.outbox_renew([rec.key, *rest()], str(rec.claim), now, self.lease_us)
        return rec.key in held.keys

    def _one(
        self,
        rec: OutboxRecord,
        stats: DispatchStats,
        rest: Callable[[], list[str]],
        heartbeat: _Heartbeat,
        held: _Held,
    ) -> None:
        try:
            message = Message.model_validate_json(rec.body)
        except ValueError as exc:
            error = f"unreadable message: {exc}"
            if self._settle(rec, Settle("dead", self._now(), error=error)):
                self._tell_dead(rec, error)
            stats.dead += 1
            return
        adapter = self.adapters.get(message.channel)
        if adapter is None:
            self._dead(rec, message, f"no adapter for channel {message.channel!r}", stats)
            return
        down = held.limiter_down.get(message.channel)
        if down is None:
            try:
                wait = self.rate_limiter.reserve(message.channel)
            except ArflowError as exc:  # the shared limiter is down: never send past the limit
                down = held.limiter_down[message.channel] = f"rate limiter: {exc}"
        if down is not None:  # (asked once a batch: the rest of it is not kept waiting)
            self._again(rec, message, down, stats)
            return
        if wait > 0:
            self.sleep(wait)
        if not self._hold(rec, rest, held):
            # the lease ran out and another dispatcher took the message over: it is theirs
            stats.lost += 1
            log.warning(
                "outbox %s: claim lost to another dispatcher, not sent",
                rec.key,
                extra=_about(rec.key),
            )
            return
        try:
            with heartbeat.beating(rec):
                receipt = adapter.deliver(message)
        except DeliveryError as exc:
            error = _scrubbed(adapter, str(exc))
            if exc.feedback is not None:
                self._feedback(rec, message, exc, error)
            if isinstance(exc, PermanentFailure) or not exc.temporary:
                self._dead(rec, message, error, stats)
            else:
                self._again(rec, message, error, stats)
            return
        except Exception as exc:  # an adapter's bug or an unexpected error: retry it
            self._again(rec, message, _scrubbed(adapter, f"{type(exc).__name__}: {exc}"), stats)
            return
        self._settle(rec, Settle("sent", self._now(), receipt=receipt))
        stats.sent += 1
        log.info(
            "outbox %s: sent by %s (customer %s)",
            rec.key,
            message.channel,
            message.customer_id or "-",
            extra=_about(rec.key),
        )
        if self.on_sent is not None:
            self.on_sent(rec, message)

    def _now(self) -> int:
        return micros(self.clock())

    def _again(self, rec: OutboxRecord, message: Message, error: str, stats: DispatchStats) -> None:
        if rec.attempts >= self.retry.max_attempts:
            self._dead(rec, message, f"gave up after {rec.attempts} attempts: {error}", stats)
            return
        now = self._now()
        wait = self.retry.delay(rec.attempts, self.rng)
        self._settle(
            rec, Settle("pending", now, next_at=now + int(wait.total_seconds() * 1e6), error=error)
        )
        stats.retried += 1
        log.info("retry %s in %s: %s", rec.key, wait, error, extra=_about(rec.key))

    def _dead(self, rec: OutboxRecord, message: Message, error: str, stats: DispatchStats) -> None:
        follow = None
        if message.fallbacks:
            nxt, *rest = message.fallbacks
            nxt = nxt.model_copy(update={"fallbacks": tuple(rest)})
            now = self._now()
            follow = OutboxRecord(
                key=nxt.key,
                channel=nxt.channel,
                customer_id=nxt.customer_id,
                body=nxt.model_dump_json(),
                created_at=now,
                next_at=now,
            )
            stats.fallbacks += 1
        if self._settle(rec, Settle("dead", self._now(), error=error, follow_up=follow)):
            self._tell_dead(rec, error)
        stats.dead += 1
        stats.errors.append(f"{rec.key}: {error}")
        log.warning("dead letter %s: %s", rec.key, error, extra=_about(rec.key))

    def _settle(self, rec: OutboxRecord, change: Settle) -> bool:
        """Record an outcome under the record's claim; False (logged) when the claim was
        lost and the outcome not recorded."""
        if not self.store.outbox_settle(rec.key, replace(change, claim=str(rec.claim))):
            log.warning(
                "outbox %s: claim lost to another dispatcher, outcome not recorded",
                rec.key,
                extra=_about(rec.key),
            )
            return False
        return True

    def _tell_dead(self, rec: OutboxRecord, error: str) -> None:
        """Tell the subscribers of a dead letter, once its settling committed (a store in
        the host's transaction: once the host's commit did)."""
        subscribers = self.subscribers
        if not subscribers:
            return
        told = Happened(
            "dead_letter",
            rec.key,
            "message",
            rec.key,
            rec.customer_id,
            self.clock().date(),
            f"{rec.channel}: {error}",
        )
        after = getattr(self.store, "after_commit", None)
        deliver = functools.partial(subscribers.publish, (told,))
        if after is None:
            deliver()
        else:
            after(deliver)

    def _feedback(
        self, rec: OutboxRecord, message: Message, exc: DeliveryError, error: str
    ) -> None:
        """Hand a bounce, an invalid number or an unsubscribe to ``on_feedback``."""
        address = exc.address or (message.to[0] if message.to else None)
        if address is None or exc.feedback is None:
            return
        if self.on_feedback is None:
            log.info(
                "feedback for %s not recorded: the dispatcher has no on_feedback (outbox %s)",
                address,
                rec.key,
                extra=_about(rec.key),
            )
            return
        try:
            self.on_feedback(
                DeliveryFeedback(
                    key=rec.key,
                    customer_id=message.customer_id,
                    address=address,
                    channel="sms" if message.channel == "sms" else "email",
                    feedback=exc.feedback,
                    reason=f"{message.channel} to {address}: {error}",
                    at=self.clock(),
                )
            )
        except ArflowError as err:  # the contact changed since: nothing to mark
            log.info(
                "feedback for %s not recorded: %s (outbox %s)",
                address,
                err,
                rec.key,
                extra=_about(rec.key),
            )


@dataclass
class _Held:
    """A batch's claims as last renewed together: when, and the keys still held then. Each
    :meth:`Dispatcher.run_once` has its own, so threads sharing a dispatcher never take
    another batch's claims for their own."""

    renewed: int
    keys: set[str]
    #: channels whose shared rate limiter failed during this batch, with the error
    limiter_down: dict[str, str] = field(default_factory=dict)


class _Heartbeat:
    """Keeps the claim on the message being handed over alive while the adapter takes its
    time: a thread renews it every third of a lease until the hand-over returns, so even
    a delivery longer than the lease is not taken over (and repeated) by another
    dispatcher. Started with the first hand-over of a batch, stopped with the batch."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._current: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def beating(self, rec: OutboxRecord) -> Iterator[None]:
        """Renew ``rec``'s claim for as long as the block runs."""
        with self._lock:
            self._current = (rec.key, str(rec.claim))
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="arflow-outbox-heartbeat", daemon=True
            )
            self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._current = None

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        d = self._dispatcher
        interval = max(d.lease.total_seconds() / 3, 0.001)
        while not self._stopping.wait(interval):
            with self._lock:
                current = self._current
            if current is None:
                continue
            key, claim = current
            try:
                held = d.store.outbox_renew([key], claim, d._now(), d.lease_us)
            except Exception as exc:  # the store is unreachable: the lease may run out
                log.warning(
                    "outbox %s: the claim could not be renewed: %s", key, exc, extra=_about(key)
                )
                continue
            if key not in held:
                log.warning(
                    "outbox %s: claim lost while it was being handed over",
                    key,
                    extra=_about(key),
                )


def _keys_after(records: Sequence[OutboxRecord], i: int) -> list[str]:
    """The keys of ``records`` after the ``i``-th: the rest of a batch."""
    return [r.key for r in records[i + 1 :]]


def _scrubbed(adapter: Adapter, text: str) -> str:
    """``text`` as the adapter's ``scrub`` leaves it (without the secrets the adapter
    holds), and every URL in it redacted, before the outbox stores it or a log line shows
    it."""
    scrub = getattr(adapter, "scrub", None)
    return redact_urls(str(scrub(text)) if callable(scrub) else text)


def deliver_all(
    store: Store,
    adapters: Mapping[str, Adapter] | Adapter,
    **options: Any,
) -> DispatchStats:
    """Deliver everything due now, then return (a one-shot dispatcher)."""
    return Dispatcher(store, adapters, **options).run()


def adapters_from_urls(urls: Mapping[str, str]) -> dict[str, Adapter]:
    """``{"email": "smtp://...", "sms": "sms+https://..."}`` to adapters, by channel."""
    return {channel: adapter_from_url(url) for channel, url in urls.items()}


__all__ = [
    "DeliveryFeedback",
    "DispatchStats",
    "Dispatcher",
    "FeedbackHandler",
    "InProcessRateLimiter",
    "RateLimiter",
    "RetryPolicy",
    "TemporaryFailure",
    "adapters_from_urls",
    "deliver_all",
    "instant",
    "micros",
]
