"""The Celery and RQ adapters against real brokers and real workers.

Each test starts its worker as a subprocess (stopped afterwards: SIGTERM, then SIGKILL), sends
messages through an adapter built from a URL, and waits (polling, with a deadline) until the
worker has recorded them in Redis (see tests/queue_worker_tasks.py). Queue and list names are
unique per test and deleted afterwards.

Services come from ARFLOW_TEST_REDIS_URL and ARFLOW_TEST_AMQP_URL; a test whose service (or
client library) is missing is skipped on a laptop and fails when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode, urlsplit

import pytest

from arflow.actions import Message, TemporaryFailure
from arflow.adapters import adapter_from_url
from arflow.errors import ArflowError
from tests.queue_worker_tasks import (
    BROKER_ENV,
    RECORD_LIST_ENV,
    RECORD_REDIS_ENV,
    RQ_FUNC,
    TASK_NAME,
)

REDIS_URL = os.environ.get("ARFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("ARFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 60.0  # seconds a worker gets to record what was sent
STOP_GRACE = 15.0  # seconds a worker gets to stop after SIGTERM before it is killed


# -- services -------------------------------------------------------------------------------------


def unavailable(reason: str) -> NoReturn:
    """Skip on a laptop without the service; fail in CI, where it must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so this must not be missing: {reason}", pytrace=False)
    pytest.skip(reason)


def need(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"{module} is not installed (pip install 'arflow[{extra}]'): {exc}")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


@pytest.fixture(scope="module")
def redis_client() -> Iterator[Any]:
    redis = need("redis", "rq")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=10)
    problem = None
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        client.close()
        unavailable(f"Redis not reachable at {_redact(REDIS_URL)}: {problem}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def amqp_url() -> str:
    kombu = need("kombu", "celery")
    problem = None
    try:
        with kombu.Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # any transport or network error means "absent"
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        unavailable(f"RabbitMQ not reachable at {_redact(AMQP_URL)}: {problem}")
    return AMQP_URL


@pytest.fixture
def uid(redis_client: Any) -> Iterator[str]:
    """A name unique to the test; every Redis key holding it is deleted afterwards."""
    name = f"arflow-test-{uuid.uuid4().hex[:12]}"
    yield name
    keys = list(redis_client.scan_iter(match=f"*{name}*", count=1000))
    if keys:
        redis_client.delete(*keys)
    redis_client.srem("rq:queues", f"rq:queue:{name}")  # RQ's set of known queues


# -- workers --------------------------------------------------------------------------------------


class Worker:
    """One worker subprocess, its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv = argv
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its children stop with it
        )

    def log(self) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return text[-4000:] or "(no output)"

    def check(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"worker exited with {self.proc.returncode}:\n{self.log()}")

    def stop(self) -> None:
        if self._log.closed:
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                # the worker and any job process it forked: they share its process group
                self._signal(signal.SIGKILL)
                self.proc.wait(STOP_GRACE)
        self._log.close()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Starts worker subprocesses; all of them are stopped after the test, whatever happens."""
    started: list[Worker] = []

    def start(argv: list[str], env: dict[str, str], name: str = "worker") -> Worker:
        worker = Worker(argv, env, tmp_path / f"{name}-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def worker_env(records: str, broker: str | None = None) -> dict[str, str]:
    env = {**os.environ, RECORD_REDIS_ENV: REDIS_URL, RECORD_LIST_ENV: records}
    if broker is not None:
        env[BROKER_ENV] = broker
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def celery_worker_argv(queue: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.queue_worker_tasks",
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
        "--without-heartbeat",
        "--without-mingle",
        "--without-gossip",
        "-l",
        "warning",
    ]


def rq_worker_argv(queue: str, *, burst: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "rq.cli", "worker", "--url", REDIS_URL, "--path", str(ROOT)]
    argv += ["--name", queue, "--logging_level", "WARNING"]
    return [*argv, "--burst", queue] if burst else [*argv, queue]


def records(client: Any, name: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.lrange(name, 0, -1)]


def wait_for_keys(client: Any, name: str, keys: list[str], worker: Worker) -> list[dict[str, Any]]:
    """The records of list ``name`` once all ``keys`` are there (fails after DEADLINE)."""
    end = time.monotonic() + DEADLINE
    while True:
        got = records(client, name)
        if set(keys) <= {r["key"] for r in got}:
            return got
        worker.check()
        if time.monotonic() > end:
            missing = sorted(set(keys) - {r["key"] for r in got})
            pytest.fail(
                f"after {DEADLINE:.0f}s the worker has not recorded {missing}:\n{worker.log()}"
            )
        time.sleep(0.1)


def message(uid: str, n: int, **fields: Any) -> Message:
    values: dict[str, Any] = {
        "key": f"{uid}:reminder:INV-{n}:1",  # colons: not a valid RQ job id as it is
        "channel": "task",
        "action": "task",
        "customer_id": f"C{n}",
        "subject": f"Zahlungserinnerung für INV-{n}",
        "text": f"please pay INV-{n}",
        "data": {"invoice": f"INV-{n}", "amount": "100.00"},
    }
    values.update(fields)
    return Message(**values)


def url_with(base: str, **query: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}{urlencode(query)}"


# -- Celery ---------------------------------------------------------------------------------------


@pytest.fixture(params=["redis", "amqp"])
def celery_broker(request: pytest.FixtureRequest, redis_client: Any) -> Iterator[str]:
    need("celery", "celery")
    if request.param == "redis":
        yield REDIS_URL
        return
    broker = request.getfixturevalue("amqp_url")
    yield broker


def _drop_amqp_queue(broker: str, queue: str) -> None:
    kombu = importlib.import_module("kombu")
    with kombu.Connection(broker, connect_timeout=3) as conn:
        channel = conn.default_channel
        with contextlib.suppress(Exception):
            channel.queue_delete(queue)
        with contextlib.suppress(Exception):
            channel.exchange_delete(queue)


def test_celery_worker_gets_each_message_once(
    celery_broker: str, redis_client: Any, uid: str, start_worker: Callable[..., Worker]
) -> None:
    queue, record_list = uid, f"{uid}:records"
    adapter: Any = adapter_from_url(
        url_with(f"celery+{celery_broker}", task=TASK_NAME, queue=queue)
    )
    worker: Worker | None = None
    try:
        worker = start_worker(
            celery_worker_argv(queue), worker_env(record_list, celery_broker), "celery"
        )
        sent = [message(uid, n) for n in range(5)]
        ids = [adapter.deliver(m) for m in sent]
        assert ids == [m.key for m in sent]  # the task id is the idempotency key
        wait_for_keys(redis_client, record_list, ids, worker)
        # one worker, one FIFO queue: once a message sent last is in, any repeat of the
        # earlier ones would be in too
        last = message(uid, 99)
        adapter.deliver(last)
        got = wait_for_keys(redis_client, record_list, [last.key], worker)
        assert sorted(r["key"] for r in got) == sorted([*ids, last.key])
        assert {r["key"]: r["subject"] for r in got} == {m.key: m.subject for m in [*sent, last]}
        assert all(r["task_id"] == r["key"] for r in got)
    finally:
        adapter.close()
        if worker is not None:
            worker.stop()  # first: a running worker would declare its queue again
        if celery_broker.startswith("amqp"):
            _drop_amqp_queue(celery_broker, queue)


# -- RQ -------------------------------------------------------------------------------------------


def test_rq_worker_runs_each_message_once(
    redis_client: Any, uid: str, start_worker: Callable[..., Worker]
) -> None:
    need("rq", "rq")
    from arflow.adapters.queues import rq_job_id

    queue, record_list = uid, f"{uid}:records"
    adapter: Any = adapter_from_url(url_with(f"rq+{REDIS_URL}", queue=queue, func=RQ_FUNC))
    worker = start_worker(rq_worker_argv(queue), worker_env(record_list), "rq")
    sent = [message(uid, n) for n in range(5)]
    try:
        ids = [adapter.deliver(m) for m in sent]
        assert ids == [rq_job_id(m.key) for m in sent]
        assert len(set(ids)) == len(ids)
        assert [adapter.deliver(m) for m in sent] == ids  # again, as after a crash: same jobs
        wait_for_keys(redis_client, record_list, [m.key for m in sent], worker)
        # delivered again after the worker ran them: still nothing new is enqueued
        assert [adapter.deliver(m) for m in sent] == ids
        last = message(uid, 99)
        adapter.deliver(last)
        got = wait_for_keys(redis_client, record_list, [last.key], worker)
        assert sorted(r["key"] for r in got) == sorted(m.key for m in [*sent, last])
        assert {r["key"]: r["subject"] for r in got} == {m.key: m.subject for m in [*sent, last]}
    finally:
        adapter.close()
        for job_id in [rq_job_id(m.key) for m in sent] + [rq_job_id(message(uid, 99).key)]:
            keys = list(redis_client.scan_iter(match=f"rq:*{job_id}*", count=1000))
            if keys:
                redis_client.delete(*keys)


def test_rq_same_message_twice_is_one_job(
    redis_client: Any, uid: str, start_worker: Callable[..., Worker]
) -> None:
    rq = need("rq", "rq")
    from arflow.adapters.queues import rq_job_id

    queue, record_list = uid, f"{uid}:records"
    adapter: Any = adapter_from_url(url_with(f"rq+{REDIS_URL}", queue=queue, func=RQ_FUNC))
    once, other = message(uid, 1), message(uid, 2)
    try:
        # no worker yet: the jobs stay queued, so a repeat would show as a second job
        first = adapter.deliver(once)
        assert adapter.deliver(once) == first
        second = adapter.deliver(other)
        assert second != first
        assert adapter.deliver(once) == first
        rq_queue = rq.Queue(queue, connection=redis_client)
        assert sorted(rq_queue.job_ids) == sorted([first, second])
        # a worker runs what is queued: each message once (rq 3.0's burst worker sometimes
        # hangs at exit after its last job, so the test waits for the jobs, not the exit)
        worker = start_worker(rq_worker_argv(queue), worker_env(record_list), "rq")
        wait_for_keys(redis_client, record_list, [once.key, other.key], worker)
        deadline = time.monotonic() + DEADLINE
        while rq_queue.count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rq_queue.count == 0, worker.log()
        got = records(redis_client, record_list)
        assert sorted(r["key"] for r in got) == sorted([once.key, other.key]), worker.log()
        job = rq_queue.fetch_job(first)
        assert job is not None
        assert job.kwargs["message"]["key"] == once.key
    finally:
        adapter.close()
        for m in (once, other):
            keys = list(redis_client.scan_iter(match=f"rq:*{rq_job_id(m.key)}*", count=1000))
            if keys:
                redis_client.delete(*keys)


# -- a broker that is down, and URLs --------------------------------------------------------------


def unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("template", "extra"),
    [
        ("celery+redis://:s3cret-pw@127.0.0.1:{port}/0?task=erp.ar_action", "celery"),
        ("celery+amqp://ar:s3cret-pw@127.0.0.1:{port}//?task=erp.ar_action&queue=ar", "celery"),
        ("rq+redis://:s3cret-pw@127.0.0.1:{port}/0?queue=ar&func=erp.ar_action", "rq"),
    ],
)
def test_broker_down_is_a_quick_temporary_failure(template: str, extra: str) -> None:
    need("celery" if extra == "celery" else "rq", extra)
    adapter: Any = adapter_from_url(template.format(port=unused_port()))
    assert "s3cret-pw" not in repr(adapter)
    started = time.monotonic()
    try:
        with pytest.raises(TemporaryFailure) as caught:
            adapter.deliver(message("down", 1))
    finally:
        adapter.close()
    # a hang guard, not a benchmark: a refused connection fails in well under a second
    assert time.monotonic() - started < 10
    assert "s3cret-pw" not in str(caught.value)


def test_celery_url_names_the_broker_without_arflow_keys() -> None:
    need("celery", "celery")
    adapter: Any = adapter_from_url(
        "celery+rediss://:pw%2Fx@redis.example.com:6380/2"
        "?task=erp.tasks.ar_action&queue=ar&ssl_cert_reqs=required&timeout=2"
    )
    try:
        assert adapter.broker == "rediss://:pw%2Fx@redis.example.com:6380/2?ssl_cert_reqs=required"
        assert (adapter.task_name, adapter.queue) == ("erp.tasks.ar_action", "ar")
        assert "pw" not in repr(adapter)
    finally:
        adapter.close()
    with pytest.raises(ArflowError, match="task") as caught:
        adapter_from_url("celery+amqp://ar:topsecret@rabbit.example.com//?queue=ar")
    assert "topsecret" not in str(caught.value)


def test_rq_url_names_redis_without_arflow_keys() -> None:
    need("rq", "rq")
    adapter: Any = adapter_from_url(
        "rq+redis://:pw@redis.example.com:6379/3?queue=ar&func=erp.jobs.ar_action&result_ttl=60"
    )
    try:
        assert adapter.url == "redis://:pw@redis.example.com:6379/3"
        assert (adapter.queue.name, adapter.func, adapter.result_ttl) == (
            "ar",
            "erp.jobs.ar_action",
            60,
        )
        assert ":pw@" not in repr(adapter)
    finally:
        adapter.close()
    with pytest.raises(ArflowError, match="func") as caught:
        adapter_from_url("rq+redis://:topsecret@redis.example.com:6379/0?queue=ar")
    assert "topsecret" not in str(caught.value)
