"""Dispatch on Celery workers: a queue per channel, each task one dispatcher of one channel.

A worker module of your own builds the app (in every worker process, the book, the
adapters and the rate limiter are opened on first use, after the fork)::

    # erp/arflow_worker.py
    from arflow.celery_dispatch import dispatch_app

    app = dispatch_app(
        "redis://127.0.0.1:6379/0",  # the broker (or amqp://...)
        db="postgresql+psycopg://ar@db.example.com/ar",
        adapters={"sms": "sms+https://sms.example.com/v1/send?token_env=SMS_TOKEN",
                  "email": "smtp://mail.example.com:587?starttls=1&from=ar@example.com"},
        rates={"sms": 5},
        limiter="redis://127.0.0.1:6379/1",  # shared by every worker: 5 SMS/s in all
    )

and each channel gets workers of its own, on its queue ``arflow.dispatch.<channel>``::

    celery -A erp.arflow_worker worker -Q arflow.dispatch.sms --concurrency 4
    celery -A erp.arflow_worker worker -Q arflow.dispatch.email --concurrency 2

:func:`send_dispatch` (or a beat schedule) queues the task ``arflow.dispatch`` on a channel's
queue; each task runs one :class:`~arflow.outbox.Dispatcher` restricted to that channel until
nothing of it is due. Several tasks at once are several dispatchers: claims, leases and
fencing are the outbox's as ever, so a task redelivered after a worker died, or two tasks on
one channel, never send a message twice while they hold no claim on it.

Needs ``pip install 'arflow[celery]'``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from .actions import Adapter
from .adapters import adapter_from_url
from .adapters.ratelimit import DEFAULT_PREFIX, RedisRateLimiter
from .errors import ArflowError, ValidationError
from .ledger import Ledger
from .messages import ledger_feedback
from .outbox import Dispatcher, InProcessRateLimiter, RateLimiter, RetryPolicy

#: the name of the task that runs one dispatcher for one channel
DISPATCH_TASK = "arflow.dispatch"
_CHANNEL = re.compile(r"[A-Za-z0-9_-]{1,64}")


def dispatch_queue(channel: str) -> str:
    """The Celery queue of ``channel``'s dispatch tasks: ``arflow.dispatch.<channel>``."""
    if not isinstance(channel, str) or not _CHANNEL.fullmatch(channel):
        raise ValidationError(
            f"channel {channel!r}: letters, digits, '-' and '_' only (it names a queue)"
        )
    return f"{DISPATCH_TASK}.{channel}"


def _celery() -> Any:
    try:
        import celery  # type: ignore[import-untyped]
    except ImportError:
        raise ArflowError("dispatch on Celery needs Celery: pip install 'arflow[celery]'") from None
    return celery


def register_dispatch(
    app: Any,
    make_dispatcher: Callable[[str], Dispatcher],
    *,
    max_batches: int | None = None,
) -> Any:
    """Register the task ``arflow.dispatch(channel)`` on the Celery ``app``: it runs
    ``make_dispatcher(channel)`` (a dispatcher restricted to that one channel) until nothing
    of the channel is due, or for ``max_batches`` batches, and returns its
    :class:`~arflow.outbox.DispatchStats` as a dict. Returns the task."""

    def dispatch(channel: str) -> dict[str, Any]:
        dispatch_queue(channel)  # a well-formed channel name
        dispatcher = make_dispatcher(channel)
        if dispatcher.channels != [channel]:
            raise ValidationError(
                f"arflow.dispatch({channel!r}): the dispatcher must be restricted to that one "
                f"channel (channels=[{channel!r}]), not {dispatcher.channels!r}"
            )
        return asdict(dispatcher.run(max_batches=max_batches))

    return app.task(name=DISPATCH_TASK, acks_late=True, shared=False)(dispatch)


def send_dispatch(app: Any, channel: str, *, copies: int = 1) -> list[str]:
    """Queue ``copies`` dispatch tasks for ``channel`` on its queue (``copies`` dispatchers
    at once, given as many worker processes on that queue); their task ids."""
    if not isinstance(copies, int) or isinstance(copies, bool) or copies < 1:
        raise ValidationError(f"copies: {copies!r} is not a whole number >= 1")
    queue = dispatch_queue(channel)
    return [
        str(app.send_task(DISPATCH_TASK, kwargs={"channel": channel}, queue=queue).id)
        for _ in range(copies)
    ]


class _PerProcess:
    """What a worker process opens once, on first use: the book, the adapters (each on
    first use of its channel) and the rate limiter. Opened again in a forked child."""

    def __init__(
        self,
        db: str,
        adapters: Mapping[str, str | Adapter],
        limiter: Callable[[], RateLimiter],
    ) -> None:
        self._db = db
        self._specs = dict(adapters)
        self._make_limiter = limiter
        self._lock = threading.Lock()
        self._pid = -1
        self.ledger: Ledger | None = None
        self.limiter: RateLimiter | None = None
        self.adapters: dict[str, Adapter] = {}

    def open(self, channel: str) -> tuple[Ledger, Adapter, RateLimiter]:
        spec = self._specs.get(channel)
        if spec is None:
            raise ValidationError(
                f"arflow.dispatch: no adapter for channel {channel!r} in this worker "
                f"(it has {', '.join(sorted(self._specs)) or 'none'})"
            )
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (or a forked child)
                self._pid = os.getpid()
                self.ledger, self.limiter, self.adapters = None, None, {}
            if self.ledger is None:
                self.ledger = Ledger(self._db)
            if self.limiter is None:
                self.limiter = self._make_limiter()
            adapter = self.adapters.get(channel)
            if adapter is None:
                adapter = spec if not isinstance(spec, str) else adapter_from_url(spec)
                self.adapters[channel] = adapter
            return self.ledger, adapter, self.limiter


def dispatch_app(
    broker: str,
    *,
    db: str,
    adapters: Mapping[str, str | Adapter],
    rates: Mapping[str, float] | None = None,
    limiter: str | None = None,
    burst: int | Mapping[str, int] = 1,
    limiter_prefix: str = DEFAULT_PREFIX,
    batch: int = 50,
    lease: timedelta = timedelta(minutes=5),
    retry: RetryPolicy | None = None,
    max_batches: int | None = None,
    name: str = "arflow",
) -> Any:
    """A Celery app whose workers dispatch the outbox of ``db``, one channel per queue.

    ``adapters`` maps each channel to an adapter URL (or an adapter). ``rates`` are
    deliveries per second by channel; with ``limiter``, a Redis URL, they are shared by every
    worker process using that Redis (:class:`~arflow.adapters.ratelimit.RedisRateLimiter`,
    ``burst`` and ``limiter_prefix`` as its ``burst`` and ``prefix``); without it each worker process keeps them on its own. Bounces and
    unsubscribes are recorded on the book (``ledger_feedback``)."""
    celery = _celery()
    for channel in adapters:
        dispatch_queue(channel)
    unknown = sorted(set(rates or {}) - set(adapters))
    if unknown:
        raise ValidationError(f"rate limit for {unknown[0]!r}, which has no adapter")
    if limiter is not None and not rates:
        raise ValidationError("a shared limiter needs rates, e.g. rates={'sms': 5}")

    def make_limiter() -> RateLimiter:
        if limiter is not None:
            return RedisRateLimiter(limiter, rates or {}, burst=burst, prefix=limiter_prefix)
        return InProcessRateLimiter(rates)

    opened = _PerProcess(db, adapters, make_limiter)

    def make_dispatcher(channel: str) -> Dispatcher:
        ledger, adapter, shared = opened.open(channel)
        return Dispatcher(
            ledger.store,
            {channel: adapter},
            on_feedback=ledger_feedback(ledger),
            batch=batch,
            lease=lease,
            retry=retry,
            rate_limiter=shared,
            channels=[channel],
        )

    app = celery.Celery(name, broker=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        worker_prefetch_multiplier=1,  # one dispatcher per worker process at a time
        broker_connection_retry_on_startup=True,
    )
    register_dispatch(app, make_dispatcher, max_batches=max_batches)
    return app


__all__ = [
    "DISPATCH_TASK",
    "dispatch_app",
    "dispatch_queue",
    "register_dispatch",
    "send_dispatch",
]
