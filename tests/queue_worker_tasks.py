"""Worker-side code for tests/test_adapters_queues.py: what the real Celery and RQ workers the
tests start as subprocesses import (``celery -A tests.queue_worker_tasks``, the RQ function
``tests.queue_worker_tasks.record``).

Configured from the environment, which the tests set for each worker:

- ``ARFLOW_TEST_CELERY_BROKER``: the Celery broker URL (``redis://...`` or ``amqp://...``);
- ``ARFLOW_TEST_RECORD_REDIS``: the Redis where received messages are recorded;
- ``ARFLOW_TEST_RECORD_LIST``: the Redis list they are appended to, as JSON
  ``{"key": ..., "subject": ..., "task_id": ...}``.
"""

from __future__ import annotations

import json
import os
from typing import Any

BROKER_ENV = "ARFLOW_TEST_CELERY_BROKER"
RECORD_REDIS_ENV = "ARFLOW_TEST_RECORD_REDIS"
RECORD_LIST_ENV = "ARFLOW_TEST_RECORD_LIST"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
TASK_NAME = "arflow_test.record"
RQ_FUNC = "tests.queue_worker_tasks.record"


def _append(message: dict[str, Any], task_id: str | None = None) -> None:
    import redis

    client = redis.Redis.from_url(os.environ.get(RECORD_REDIS_ENV, DEFAULT_REDIS))
    try:
        entry = {"key": message["key"], "subject": message.get("subject"), "task_id": task_id}
        client.rpush(os.environ[RECORD_LIST_ENV], json.dumps(entry))
    finally:
        client.close()


def record(message: dict[str, Any]) -> str:
    """The RQ function: records the message it receives."""
    _append(message)
    return str(message["key"])


def make_celery_app() -> Any:
    """A Celery app on the broker named by the environment, with the recording task."""
    from celery import Celery  # type: ignore[import-untyped]

    celery_app = Celery("arflow_test", broker=os.environ.get(BROKER_ENV, DEFAULT_REDIS))
    celery_app.conf.update(
        broker_connection_retry_on_startup=True,
        worker_enable_remote_control=False,
        worker_prefetch_multiplier=1,
        task_acks_late=False,
        accept_content=["json"],
        task_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        # On AMQP a solo worker can leave a message that has arrived unprocessed until its
        # event loop wakes up, which with no timer due is up to 10 s later; a short broker
        # heartbeat keeps a timer due. Redis ignores it.
        broker_heartbeat=2,
    )

    @celery_app.task(name=TASK_NAME, bind=True)  # type: ignore[untyped-decorator]
    def record_task(self: Any, message: dict[str, Any]) -> None:
        _append(message, task_id=self.request.id)

    return celery_app


_app: Any = None


def __getattr__(name: str) -> Any:
    """``app`` (what ``celery -A tests.queue_worker_tasks`` looks for), made on first use: the
    RQ worker and the test process import this module without making a Celery app."""
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = make_celery_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
