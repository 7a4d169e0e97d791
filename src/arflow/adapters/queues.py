"""Task queues: hand each message to a worker of your own through Celery or RQ.

    celery+redis://:password@redis.example.com:6379/0?task=erp.tasks.ar_action&queue=ar
    celery+amqp://user:password@rabbit.example.com:5672/vhost?task=erp.tasks.ar_action
    rq+redis://:password@redis.example.com:6379/0?queue=ar&func=erp.jobs.ar_action

The worker receives one keyword argument, ``message``: the :class:`~arflow.actions.Message`
as a JSON-ready dict (``Message.model_validate(message)`` turns it back into the model).

Exactly once: the message's idempotency key travels with it. Celery gets it as the task id
(``task.request.id``), so a worker that records the ids it has done can drop a repeat. RQ gets
a job id derived from it (``arflow-`` and 32 hex digits of its SHA-256); while a job with that
id is still in Redis (queued, running, failed, or finished within ``result_ttl``), delivering
the same message again enqueues nothing and returns the existing id.

Failures: an unreachable broker, a refused login, a time-out, any other error of the broker's
client library is temporary: the dispatcher retries with backoff, and a broker that comes back
(or a password that gets fixed) loses no action. A message Celery cannot serialise is permanent
(never happens with a ``Message``). Whether the task or function exists is not known when
sending: an unknown Celery task name or RQ function fails in the worker, where its own
error handling applies. The broker connection has a short time-out and no retry loop of its
own, so a broker that is down fails the delivery at once instead of blocking the dispatcher.
Passwords never appear in a ``repr``, an error or a log line.

Celery needs ``pip install 'arflow[celery]'``, RQ ``pip install 'arflow[rq]'``.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

from ..actions import (
    Message,
    PermanentFailure,
    Scrubber,
    TemporaryFailure,
    redact,
    split_userinfo,
)
from ..errors import ArflowError

DEFAULT_TIMEOUT = 5.0
#: how long RQ keeps a finished job (and so drops a repeat of its message): one day
DEFAULT_RESULT_TTL = 86400


def _scrub(text: str, url: str) -> str:
    """``text`` without the password of ``url``, however it is spelled."""
    password = split_userinfo(url)[2]
    text = text.replace(url, redact(url))
    return Scrubber([password])(text) if password else text


def _broker_url(url: str, prefix: str, drop: set[str]) -> tuple[str, SplitResult]:
    """``url`` without ``prefix`` and the query keys ``drop``, its password percent-encoded
    (written unencoded, a ``#`` or ``?`` in it would cut the URL short); and its parts."""
    clean, user, password = split_userinfo(url)
    parts = urlsplit(clean)
    scheme = parts.scheme.lower().removeprefix(prefix)
    info = ""
    if user is not None:
        info = quote(unquote(user), safe="")
        if password is not None:
            info += ":" + quote(unquote(password), safe="")
        info += "@"
    rebuilt = parts._replace(
        scheme=scheme, netloc=info + parts.netloc, query=_without(parts.query, drop)
    )
    return rebuilt.geturl(), parts


def _without(query: str, keys: set[str]) -> str:
    return urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in keys])


# -- Celery ---------------------------------------------------------------------------------------


def _celery() -> Any:
    try:
        import celery  # type: ignore[import-untyped]
    except ImportError:
        raise ArflowError("the Celery adapter needs Celery: pip install 'arflow[celery]'") from None
    return celery


class CeleryAdapter:
    """Sends each message as a Celery task whose id is the message's idempotency key.

    ``app_or_broker`` is a Celery app (used as configured: its own connection settings apply)
    or a broker URL (``redis://``, ``rediss://``, ``amqp://``, ``amqps://``), for which the
    adapter makes an app with a ``timeout``-second connection time-out, no connection retries
    and, on AMQP, publisher confirms."""

    def __init__(
        self,
        app_or_broker: Any,
        task_name: str,
        *,
        queue: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not task_name:
            raise ArflowError("celery: say which task receives the messages")
        celery = _celery()
        self.task_name = task_name
        self.queue = queue
        if isinstance(app_or_broker, str):
            self.broker = app_or_broker
            self.app = celery.Celery("arflow", broker=app_or_broker, set_as_current=False)
            self.app.conf.update(_celery_config(app_or_broker, timeout))
            self._own_app = True
        else:
            self.app = app_or_broker
            broker = self.app.conf.broker_url
            self.broker = broker if isinstance(broker, str) else ""
            self._own_app = False
        # what the broker's client library raises: kombu's own errors, plus the transport's
        # connection and channel errors (redis-py, py-amqp) that kombu lets through
        from kombu.exceptions import EncodeError, KombuError

        conn = self.app.connection_for_write()
        try:
            transport_errors = (*conn.connection_errors, *conn.channel_errors)
        finally:
            conn.release()
        self._encode_error: type[Exception] = EncodeError
        self._errors: tuple[type[BaseException], ...] = (
            KombuError,
            OSError,
            *transport_errors,
        )

    def scrub(self, text: str) -> str:
        """``text`` without the broker's password (for the dispatcher's records)."""
        return _scrub(text, self.broker) if self.broker else text

    def __repr__(self) -> str:
        queue = f", queue={self.queue!r}" if self.queue else ""
        return f"CeleryAdapter({redact(self.broker)!r}, {self.task_name!r}{queue})"

    def deliver(self, message: Message) -> str | None:
        try:
            result = self.app.send_task(
                self.task_name,
                kwargs={"message": message.model_dump(mode="json")},
                task_id=message.key,
                queue=self.queue,
                retry=False,
            )
        except self._encode_error as exc:
            raise PermanentFailure(f"celery: cannot serialise the message: {exc}") from None
        except self._errors as exc:
            text = _scrub(f"{type(exc).__name__}: {exc}", self.broker)
            raise TemporaryFailure(f"celery {redact(self.broker)}: {text}") from None
        return str(result.id)

    def close(self) -> None:
        """Release the broker connections (of an app the adapter made; a given app is yours)."""
        if self._own_app:
            self.app.close()


def _celery_config(broker: str, timeout: float) -> dict[str, Any]:
    scheme = urlsplit(broker).scheme.lower()
    options: dict[str, Any] = {"max_retries": 0}
    if scheme.startswith("redis"):
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout)
    elif scheme.startswith("amqp"):
        # wait for the broker's ack, so "delivered" means the broker has it
        options.update(confirm_publish=True, read_timeout=timeout, write_timeout=timeout)
    return {
        "broker_connection_timeout": timeout,
        "broker_connection_retry": False,
        "broker_connection_max_retries": 0,
        "broker_transport_options": options,
        "task_publish_retry": False,
        "task_serializer": "json",
    }


def celery_from_url(url: str, query: dict[str, str]) -> CeleryAdapter:
    """``celery+redis://host:6379/0?task=erp.tasks.ar_action&queue=ar``: the broker is the URL
    without ``celery+`` and without arflow's keys (``task``, ``queue``, ``timeout``); any
    other query value is the broker's own."""
    broker, parts = _broker_url(url, "celery+", {"task", "queue", "timeout"})
    if not parts.hostname:
        raise ArflowError(f"celery: no broker host in {redact(url)!r}")
    task = query.get("task")
    if not task:
        raise ArflowError(
            f"celery: say which task receives the messages, e.g. ?task=erp.tasks.ar_action, "
            f"in {redact(url)!r}"
        )
    return CeleryAdapter(
        broker,
        task,
        queue=query.get("queue") or None,
        timeout=float(query.get("timeout", DEFAULT_TIMEOUT)),
    )


# -- RQ -------------------------------------------------------------------------------------------


def _rq() -> Any:
    try:
        import redis
        import rq
        import rq.exceptions
        import rq.job
    except ImportError:
        raise ArflowError("the RQ adapter needs RQ: pip install 'arflow[rq]'") from None
    return rq, redis


def rq_job_id(key: str) -> str:
    """The RQ job id of a message key: RQ allows only letters, digits, ``-`` and ``_``."""
    return "arflow-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class RqAdapter:
    """Enqueues each message as an RQ job ``func(message=...)`` with an id derived from its
    idempotency key; a message whose job is still in Redis is not enqueued again.

    ``redis_url_or_connection`` is a Redis URL or a ``redis.Redis`` (without
    ``decode_responses``, as RQ needs); ``func`` is the dotted path the worker imports."""

    def __init__(
        self,
        redis_url_or_connection: Any,
        queue: str = "arflow",
        *,
        func: str,
        timeout: float = DEFAULT_TIMEOUT,
        result_ttl: int = DEFAULT_RESULT_TTL,
    ) -> None:
        if not func:
            raise ArflowError("rq: say which function receives the messages")
        rq, redis = _rq()
        self.func = func
        self.result_ttl = result_ttl
        if isinstance(redis_url_or_connection, str):
            self.url = redis_url_or_connection
            connection = redis.Redis.from_url(
                redis_url_or_connection, socket_connect_timeout=timeout, socket_timeout=timeout
            )
        else:
            self.url = ""
            connection = redis_url_or_connection
        self.queue = rq.Queue(queue, connection=connection)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        duplicate = getattr(rq.exceptions, "DuplicateJobError", None)
        unique = "unique" in inspect.signature(rq.Queue.enqueue_call).parameters
        # RQ 2.5+ checks and enqueues in one Lua script; older versions: check, then enqueue
        self._duplicate: type[Exception] | None = duplicate if unique else None
        self._job_class = rq.job.Job

    def scrub(self, text: str) -> str:
        """``text`` without the Redis password (for the dispatcher's records)."""
        return _scrub(text, self.url) if self.url else text

    def __repr__(self) -> str:
        where = repr(redact(self.url)) if self.url else "<connection>"
        return f"RqAdapter({where}, queue={self.queue.name!r}, func={self.func!r})"

    def deliver(self, message: Message) -> str | None:
        job_id = rq_job_id(message.key)
        options: dict[str, Any] = {
            "kwargs": {"message": message.model_dump(mode="json")},
            "job_id": job_id,
            "result_ttl": self.result_ttl,
            "description": f"arflow {message.action} {message.key}",
        }
        try:
            if self._duplicate is not None:
                # a duplicate means the same message is queued, running or done: delivered
                with contextlib.suppress(self._duplicate):
                    self.queue.enqueue_call(self.func, unique=True, **options)
            elif not self._job_class.exists(job_id, connection=self.queue.connection):
                self.queue.enqueue_call(self.func, **options)
        except self._errors as exc:
            where = redact(self.url) if self.url else f"queue {self.queue.name}"
            text = _scrub(f"{type(exc).__name__}: {exc}", self.url) if self.url else str(exc)
            raise TemporaryFailure(f"rq {where}: {text}") from None
        return job_id

    def close(self) -> None:
        """Release the Redis connections (of a connection the adapter made)."""
        if self.url:
            self.queue.connection.close()


def rq_from_url(url: str, query: dict[str, str]) -> RqAdapter:
    """``rq+redis://host:6379/0?queue=ar&func=erp.jobs.ar_action``: Redis is the URL without
    ``rq+`` and without arflow's keys (``queue``, ``func``, ``timeout``, ``result_ttl``)."""
    redis_url, parts = _broker_url(url, "rq+", {"queue", "func", "timeout", "result_ttl"})
    if not parts.hostname:
        raise ArflowError(f"rq: no Redis host in {redact(url)!r}")
    func = query.get("func")
    if not func:
        raise ArflowError(
            f"rq: say which function receives the messages, e.g. ?func=erp.jobs.ar_action, "
            f"in {redact(url)!r}"
        )
    return RqAdapter(
        redis_url,
        query.get("queue") or "arflow",
        func=func,
        timeout=float(query.get("timeout", DEFAULT_TIMEOUT)),
        result_ttl=int(query.get("result_ttl", DEFAULT_RESULT_TTL)),
    )


__all__ = ["CeleryAdapter", "RqAdapter", "celery_from_url", "rq_from_url", "rq_job_id"]
