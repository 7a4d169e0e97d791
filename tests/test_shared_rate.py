"""Rate limits shared by every dispatcher, and dispatch on Celery workers, with real parts:
Redis (the shared limiter, and a Celery broker), RabbitMQ (a Celery broker), dispatcher
processes and Celery worker processes, an SQLite book on disk they all open, and a local
HTTP SMS gateway (a ``ThreadingHTTPServer`` in the test process) that notes when each
request arrives and its ``Idempotency-Key``.

The property checked is the rate limit itself, counted: over the whole run, no sliding
one-second window at the gateway holds more than ``RATE + ALLOWANCE`` requests. The limiter
spaces the slots it hands out ``1/RATE`` apart on Redis's clock (``burst=1``), so any
half-open second holds at most ``RATE`` slots; ``ALLOWANCE`` (2) is for what happens between
a slot and the gateway noting the request (a sleep that overshoots, the HTTP round trip on a
busy machine), which can pull a later request towards an earlier one. Four dispatchers each
limited on its own would put 20 in a second. And every message is sent exactly once.

Services come from ARFLOW_TEST_REDIS_URL and ARFLOW_TEST_AMQP_URL; a test whose service (or
client library) is missing is skipped on a laptop and fails when ``CI`` is set.
"""

from __future__ import annotations

import bisect
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arflow import Dispatcher, InProcessRateLimiter, Message, ValidationError, adapter_from_url
from arflow.adapters.ratelimit import RedisRateLimiter
from arflow.errors import TemporaryFailure
from arflow.store.base import OutboxRecord
from arflow.store.sql import SqlStore
from tests.celery_dispatch_worker import (
    BROKER_ENV,
    DB_ENV,
    LIMITER_ENV,
    PREFIX_ENV,
    SMS_ENV,
    SMS_RATE,
)

REDIS_URL = os.environ.get("ARFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("ARFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
ROOT = Path(__file__).resolve().parent.parent
RATE = 5  # SMS per second, shared
ALLOWANCE = 2  # requests a one-second window at the gateway may hold above RATE (see above)
DEADLINE = 120.0  # seconds the dispatchers or workers get to deliver everything
STOP_GRACE = 15.0


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


@pytest.fixture(scope="module")
def redis_client() -> Iterator[Any]:
    redis = need("redis", "ratelimit")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=10)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        unavailable(f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}: {exc}")
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: Any) -> Iterator[str]:
    """A key prefix unique to the test; its keys are deleted afterwards."""
    name = f"arflow-test:{uuid.uuid4().hex[:12]}:rate:"
    yield name
    keys = list(redis_client.scan_iter(match=f"{name}*", count=1000))
    if keys:
        redis_client.delete(*keys)


class Gateway:
    """A local SMS gateway: notes when each POST arrives (monotonic seconds) and its key."""

    def __init__(self) -> None:
        seen: list[tuple[float, str]] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with lock:
                    seen.append((time.monotonic(), self.headers.get("Idempotency-Key") or ""))
                body = json.dumps({"id": f"m-{len(seen)}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.seen = seen
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"sms+http://127.0.0.1:{self.server.server_address[1]}/send"

    def keys(self) -> Counter[str]:
        return Counter(key for _, key in self.seen)

    def busiest_second(self) -> int:
        """The most requests that arrived within any half-open second."""
        times = sorted(t for t, _ in self.seen)
        return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    g = Gateway()
    yield g
    g.close()


def book(tmp_path: Path, sms: int, email: int = 0) -> tuple[str, list[str]]:
    """An SQLite book on disk with ``sms`` SMS and ``email`` e-mails queued; its URL and
    the SMS keys."""
    url = f"sqlite:///{tmp_path / 'book.db'}"
    store = SqlStore(url)
    keys = []
    with store.transaction() as tx:
        for i in range(sms + email):
            channel = "sms" if i < sms else "email"
            m = Message(
                key=f"notice:C{i}:{channel}:{i:03d}",
                channel=channel,
                action=channel,
                customer_id=f"C{i}",
                to=(f"+8613800{i:06d}",) if channel == "sms" else (f"ap{i}@example.com",),
                subject="Payment reminder",
                text=f"Invoice INV-{i} is overdue.",
            )
            if channel == "sms":
                keys.append(m.key)
            tx.add_outbox(
                OutboxRecord(
                    key=m.key, channel=channel, customer_id=m.customer_id, body=m.model_dump_json()
                )
            )
    store.close()
    return url, keys


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


# -- the shared limiter, in processes -----------------------------------------------------------


def test_four_dispatcher_processes_share_five_sms_a_second(
    tmp_path: Path, gateway: Gateway, prefix: str
) -> None:
    n = 40
    db, keys = book(tmp_path, n)
    argv = [sys.executable, "-m", "tests.shared_rate_child", db, gateway.url, REDIS_URL, prefix]
    procs = [
        subprocess.Popen(
            [*argv, str(RATE)],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for p in procs:  # every dispatcher has opened its book, gateway and limiter
            assert p.stdout is not None
            line = p.stdout.readline()
            assert line.strip() == "ready", line + (p.stderr.read() if p.stderr else "")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=DEADLINE) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    stats = []
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        stats.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(s["sent"] for s in stats) == n
    assert sum(1 for s in stats if s["sent"]) >= 2  # they did share the work
    assert gateway.keys() == Counter(dict.fromkeys(keys, 1))  # each exactly once
    assert gateway.busiest_second() <= RATE + ALLOWANCE
    store = SqlStore(db)
    assert store.outbox_counts() == {"pending": 0, "sending": 0, "sent": n, "dead": 0}
    store.close()


# -- the limiter and the dispatcher, in this process ---------------------------------------------


def test_the_limiter_spaces_a_channel_and_leaves_the_others_alone(prefix: str) -> None:
    limiter = RedisRateLimiter(REDIS_URL, {"sms": 5}, burst={"sms": 3}, prefix=prefix)
    other = RedisRateLimiter(REDIS_URL, {"sms": 5}, burst={"sms": 3}, prefix=prefix)
    try:
        waits = [(limiter if i % 2 else other).reserve("sms") for i in range(6)]
        # a burst of three at once, then one slot every 0.2 s, whoever asks: the slots
        # follow on from the first (a few milliseconds pass between the calls)
        assert waits[:3] == [0.0, 0.0, 0.0]
        assert all(0.0 < w <= 0.2 * k for k, w in enumerate(waits[3:], start=1))
        assert waits[3] < waits[4] < waits[5]
        assert limiter.reserve("email") == 0.0  # no limit on e-mail
    finally:
        limiter.close()
        other.close()


def test_the_limiter_refuses_what_is_no_rate_and_hides_the_password() -> None:
    need("redis", "ratelimit")
    with pytest.raises(ValidationError, match="'sms'"):
        RedisRateLimiter(REDIS_URL, {"sms": 0})
    with pytest.raises(ValidationError, match="burst"):
        RedisRateLimiter(REDIS_URL, {"sms": 5}, burst=0)
    with pytest.raises(ValidationError, match="'email'"):
        RedisRateLimiter(REDIS_URL, {"sms": 5}, burst={"email": 2})
    down = RedisRateLimiter("redis://:s3cret-pw@127.0.0.1:1/0", {"sms": 5}, timeout=1.0)
    assert "s3cret-pw" not in repr(down)
    with pytest.raises(TemporaryFailure, match="rate limiter") as caught:
        down.reserve("sms")
    assert "s3cret-pw" not in str(caught.value)
    with pytest.raises(ValidationError, match="not both"):
        Dispatcher(SqlStore("sqlite://"), {}, rate_limits={"sms": 5}, rate_limiter=down)


def test_a_dispatcher_whose_limiter_is_down_sends_nothing_and_retries(
    tmp_path: Path, gateway: Gateway
) -> None:
    need("redis", "ratelimit")
    db, _ = book(tmp_path, 3)
    store = SqlStore(db)
    down = RedisRateLimiter("redis://127.0.0.1:1/0", {"sms": 5}, timeout=1.0)
    stats = Dispatcher(
        store, {"sms": adapter_from_url(gateway.url)}, rate_limiter=down, channels=["sms"]
    ).run()
    assert (stats.sent, stats.retried) == (0, 3)
    assert gateway.seen == []  # never past the limit
    assert store.outbox_counts()["pending"] == 3
    assert all("rate limiter" in (r.last_error or "") for r in store.outbox())
    store.close()


def test_the_in_process_limiter_is_the_default() -> None:
    d = Dispatcher(SqlStore("sqlite://"), {}, rate_limits={"sms": 4})
    assert isinstance(d.rate_limiter, InProcessRateLimiter)
    assert d.rate_limiter.reserve("sms") == 0.0
    assert 0.0 < d.rate_limiter.reserve("sms") <= 0.25
    assert d.rate_limiter.reserve("email") == 0.0


# -- dispatch on Celery workers -------------------------------------------------------------------


def amqp_url() -> str:
    kombu = need("kombu", "celery")
    try:
        with kombu.Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # any transport or network error means "absent"
        unavailable(f"RabbitMQ not reachable at {AMQP_URL}: {type(exc).__name__}: {exc}")
    return AMQP_URL


class Worker:
    """A Celery worker subprocess in a process group of its own, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.celery_dispatch_worker",
                "worker",
                "--pool=prefork",
                "--concurrency=2",
                "-Q",
                "arflow.dispatch.sms",
                "-n",
                f"sms-{uuid.uuid4().hex[:8]}@%h",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:] or "(no output)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_GRACE)
        self._log.close()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Worker]]:
    started: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        worker = Worker(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.mark.parametrize("broker", ["redis", "amqp"])
def test_celery_workers_dispatch_one_channel_at_the_shared_rate(
    broker: str,
    tmp_path: Path,
    gateway: Gateway,
    prefix: str,
    redis_client: Any,
    start_worker: Callable[[dict[str, str]], Worker],
) -> None:
    need("celery", "celery")
    from arflow.celery_dispatch import dispatch_app, dispatch_queue, send_dispatch

    broker_url = REDIS_URL if broker == "redis" else amqp_url()
    if broker == "redis":
        redis_client.delete(dispatch_queue("sms"))  # a task left by an earlier run
    n = 20
    db, keys = book(tmp_path, n, email=5)
    env = {
        **child_env(),
        BROKER_ENV: broker_url,
        DB_ENV: db,
        SMS_ENV: gateway.url,
        LIMITER_ENV: REDIS_URL,
        PREFIX_ENV: prefix,
    }
    workers = [start_worker(env), start_worker(env)]  # two workers, two processes each
    client = dispatch_app(
        broker_url, db=db, adapters={"sms": gateway.url, "email": "smtp://127.0.0.1:9?from=a@b.c"}
    )
    assert len(send_dispatch(client, "sms", copies=4)) == 4  # four dispatchers at once
    store = SqlStore(db)
    try:
        deadline = time.monotonic() + DEADLINE
        while store.outbox_counts().get("sent", 0) < n:
            for w in workers:
                assert w.proc.poll() is None, w.log()
            assert time.monotonic() < deadline, "\n".join(w.log() for w in workers)
            time.sleep(0.2)
        counts = store.outbox_counts()
    finally:
        store.close()
        client.close()
    assert gateway.keys() == Counter(dict.fromkeys(keys, 1))  # each SMS exactly once
    assert gateway.busiest_second() <= SMS_RATE + ALLOWANCE
    # the e-mails wait for workers on their own queue: no SMS worker touched them
    assert counts == {"pending": 5, "sending": 0, "sent": n, "dead": 0}


def test_a_dispatch_task_names_what_it_cannot_do(tmp_path: Path) -> None:
    need("celery", "celery")
    from arflow.celery_dispatch import DISPATCH_TASK, dispatch_app, dispatch_queue

    assert dispatch_queue("sms") == "arflow.dispatch.sms"
    with pytest.raises(ValidationError, match="letters, digits"):
        dispatch_queue("sms.*")
    with pytest.raises(ValidationError, match="'fax'"):
        dispatch_app("redis://127.0.0.1:1/0", db="memory://", adapters={}, rates={"fax": 1})
    db, _ = book(tmp_path, 1)
    app = dispatch_app(
        "redis://127.0.0.1:1/0", db=db, adapters={"sms": "sms+http://127.0.0.1:9/send"}
    )
    task = app.tasks[DISPATCH_TASK]
    with pytest.raises(ValidationError, match="no adapter for channel 'email'"):
        task(channel="email")
    app.close()


def test_a_dispatcher_on_celery_is_restricted_to_its_channel() -> None:
    celery = need("celery", "celery")
    from arflow.celery_dispatch import DISPATCH_TASK, register_dispatch

    app = celery.Celery("t", broker="memory://", set_as_current=False)
    store = SqlStore("sqlite://")
    register_dispatch(app, lambda channel: Dispatcher(store, {}, lease=timedelta(seconds=9)))
    with pytest.raises(ValidationError, match="restricted"):
        app.tasks[DISPATCH_TASK](channel="sms")
    app.close()


def test_arflow_dispatch_shares_its_rate_through_redis(
    tmp_path: Path, gateway: Gateway, redis_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from arflow.cli import main

    db, keys = book(tmp_path, 4)
    base = ["dispatch", "--db", db, "--sms", gateway.url, "--json"]
    assert main([*base, "--rate-redis", REDIS_URL]) == 4  # no --rate to share
    assert "give --rate too" in capsys.readouterr().err
    assert main([*base, "--rate", "sms=50", "--rate-redis", REDIS_URL]) == 0
    assert json.loads(capsys.readouterr().out)["sent"] == 4
    assert gateway.keys() == Counter(dict.fromkeys(keys, 1))


# -- the algorithm, on Redis, against a model ------------------------------------------------------


def gcra_model(calls: list[int], interval: int, burst: int) -> list[int]:
    """The slots a GCRA hands out for calls at the instants ``calls`` (microseconds)."""
    tat, slots = 0, []
    for now in calls:
        tat = max(tat, now)
        slots.append(max(now, tat - (burst - 1) * interval))
        tat += interval
    return slots


@settings(max_examples=60, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1.0, 5.0, 7.0, 30.0]),
    burst=st.integers(1, 4),
    gaps=st.lists(st.integers(0, 600_000), min_size=1, max_size=25),
)
def test_the_script_hands_out_the_slots_of_a_gcra(
    redis_client: Any, rate: float, burst: int, gaps: list[int]
) -> None:
    """With its clock given (``now_us``), the script hands out exactly the model's slots,
    and no window of the slots holds more than ``burst + span * rate``."""
    prefix = f"arflow-test:{uuid.uuid4().hex[:12]}:rate:"
    limiter = RedisRateLimiter(redis_client, {"sms": rate}, burst=burst, prefix=prefix)
    start = 1_700_000_000_000_000
    calls = [start + sum(gaps[: i + 1]) for i in range(len(gaps))]
    try:
        slots = [now + limiter._reserve_us("sms", now) for now in calls]
    finally:
        redis_client.delete(limiter.key("sms"))
    interval = round(1_000_000 / rate)
    assert slots == gcra_model(calls, interval, burst)
    assert all(s >= now for s, now in zip(slots, calls, strict=True))
    for i in range(len(slots)):
        for j in range(i, len(slots)):
            assert j - i + 1 <= burst + (slots[j] - slots[i]) // interval
