"""A day's run on Celery (``arflow.engine.distributed``), against the real Redis, RabbitMQ
and PostgreSQL of this machine, with real ``celery worker`` processes: the distributed
run leaves exactly the book, decision ledger, outbox and run records of the one-process
run on a copy of the same book; a worker process killed mid-shard, a shard delivered
twice and two coordinators of one date still record every decision once and one run.

Each test has its own PostgreSQL schema and its own queue, and stops its workers (SIGTERM,
then SIGKILL after a grace period) whatever happens. Services come from
ARFLOW_TEST_POSTGRES_URL, ARFLOW_TEST_REDIS_URL and ARFLOW_TEST_AMQP_URL; a missing
service skips, and fails when CI is set."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arflow import Ledger, dump_book
from arflow.engine import Engine
from arflow.errors import ArflowError, StoreError, WorkerFailed
from arflow.store.sql import SqlStore
from arflow.testing import BookBuilder

from .conftest import POSTGRES_URL, service_unavailable
from .test_engine_workers import DAYS, RULES, build

try:
    import celery  # noqa: F401
except ImportError as exc:  # pragma: no cover - installed with arflow[celery]
    if os.environ.get("CI"):
        raise
    pytest.skip(
        f"Celery is not installed (pip install 'arflow[celery]'): {exc}", allow_module_level=True
    )

from arflow.engine import distributed

REDIS_URL = os.environ.get("ARFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("ARFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 120.0  # seconds a coordinator waits for its shards
STOP_GRACE = 15.0  # seconds a worker gets to stop after SIGTERM before it is killed
CUSTOMERS = 16


# -- services -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:
        service_unavailable("PostgreSQL", POSTGRES_URL, exc)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(admin: sa.Engine) -> Iterator[Callable[[], str]]:
    """URLs of fresh schemas (the search path), dropped after the test."""
    schemas: list[str] = []

    def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        sep = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"

    yield make
    with admin.connect() as conn:
        for schema in schemas:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def _redis_ok() -> None:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        service_unavailable("Redis", REDIS_URL, exc)


def _amqp_ok() -> None:
    import kombu

    try:
        with kombu.Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        service_unavailable("RabbitMQ", AMQP_URL, exc)


@pytest.fixture(params=["redis", "amqp"])
def broker(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        _redis_ok()
        return REDIS_URL
    _amqp_ok()
    return AMQP_URL


@pytest.fixture
def queue(broker: str) -> Iterator[str]:
    """A queue of this test's own, deleted afterwards."""
    name = f"arflow-test-runs-{uuid.uuid4().hex[:10]}"
    yield name
    import kombu

    with kombu.Connection(broker, connect_timeout=3) as conn:
        if broker.startswith("redis"):
            client = conn.default_channel.client
            keys = list(client.scan_iter(match=f"*{name}*", count=1000))
            if keys:
                client.delete(*keys)
        else:
            with contextlib.suppress(Exception):
                conn.default_channel.queue_delete(name)


# -- workers --------------------------------------------------------------------------------------


class Worker:
    """A ``celery -A arflow.engine.distributed worker`` process on one queue."""

    def __init__(
        self, broker: str, queue: str, db: str, log: Path, cli: bool = False, rules: Path = RULES
    ) -> None:
        env = dict(os.environ)
        src = str(ROOT / "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        env.update(ARFLOW_CELERY_BROKER=broker, ARFLOW_DB=db, ARFLOW_RULES=str(rules))
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "arflow.engine.distributed",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "-Q",
            queue,
            "-n",
            f"{queue}-{uuid.uuid4().hex[:6]}@%h",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "info",
        ]
        if cli:  # the same worker through `arflow worker`
            argv = [sys.executable, "-m", "arflow", "worker", "--celery", broker, "--db", db]
            argv += ["--rules", str(RULES), "--queue", queue, "--concurrency", "1"]
        self.log_path = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self._out, stderr=subprocess.STDOUT, cwd=str(ROOT)
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def children(self) -> list[int]:
        """The pool's processes (the ones that run tasks)."""
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == self.proc.pid:
                        out.append(int(entry.name))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                for pid in self.children():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait(STOP_GRACE)
        self._out.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[str, str, str], Worker]]:
    started: list[Worker] = []

    def start(broker: str, queue: str, db: str, cli: bool = False, rules: Path = RULES) -> Worker:
        w = Worker(broker, queue, db, tmp_path / f"worker-{len(started)}.log", cli, rules)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


# -- books ----------------------------------------------------------------------------------------


def new_book(url: str) -> Engine:
    ledger = Ledger(url)
    build(BookBuilder(ledger), customers=CUSTOMERS)
    return Engine(ledger, RULES)


def state(engine: Engine) -> tuple[Any, ...]:
    """The book, the decision ledger, the outbox and the run records (less what only a
    distributed run's record says: its shards and id)."""
    store = engine.store
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        outbox = conn.execute(sa.text("SELECT key, body, next_at, status FROM ar_outbox")).all()
    runs = []
    for r in store.runs():
        body = json.loads(r.body)
        body.pop("shards", None)
        body.pop("run_id", None)
        body["failures"] = sorted(body["failures"], key=repr)
        runs.append((r.as_of, body))
    return (
        dump_book(store),
        sorted((r.key, r.status, r.body) for r in store.decisions()),
        sorted(outbox),
        runs,
    )


def one_process(url: str, days: list[date], first_run: bool = False) -> tuple[Any, ...]:
    engine = new_book(url)
    for i, day in enumerate(days):
        engine.run(day, first_run=first_run and i == 0)
    got = state(engine)
    engine.store.close()  # type: ignore[attr-defined]
    return got


def app_for(broker: str, queue: str) -> Any:
    return distributed.celery_app(broker, queue=queue)


def count_runs(engine: Engine, day: date) -> int:
    return sum(1 for r in engine.store.runs() if r.as_of == day)


# -- tests ----------------------------------------------------------------------------------------


def test_a_distributed_run_leaves_the_book_of_one_process(
    broker: str, queue: str, pg_url: Callable[[], str], workers: Callable[..., Worker]
) -> None:
    days = DAYS[:2]
    expected = one_process(pg_url(), days, first_run=True)  # a first run's catch-up too
    url = pg_url()
    engine = new_book(url)
    workers(broker, queue, url)
    workers(broker, queue, url)
    app = app_for(broker, queue)
    try:
        done = [
            distributed.run_on_celery(
                engine, day, app=app, shards=3, timeout=DEADLINE, first_run=day == days[0]
            )
            for day in days
        ]
    finally:
        app.close()
    assert [d.joined for d in done] == [False, False]
    assert len({w for d in done for w in d.workers}) >= 1
    got = state(engine)
    assert len(expected[1]) > 20  # dunning, alerts, locks fired
    assert got == expected
    runs = [json.loads(r.body) for r in engine.store.runs()]
    assert [r["shards"] for r in runs] == [3, 3]
    assert [d.result.recorded for d in done] == [r["recorded"] for r in runs]
    engine.store.close()  # type: ignore[attr-defined]


def test_a_worker_killed_mid_shard_leaves_the_shard_to_another_delivery(
    broker: str,
    queue: str,
    pg_url: Callable[[], str],
    workers: Callable[..., Worker],
    admin: sa.Engine,
) -> None:
    day = DAYS[0]
    expected = one_process(pg_url(), [day])
    url = pg_url()
    engine = new_book(url)
    store = engine.store
    assert isinstance(store, SqlStore)
    worker = workers(broker, queue, url)
    app = app_for(broker, queue)
    outcome: dict[str, Any] = {}

    def coordinate() -> None:
        try:
            outcome["done"] = distributed.run_on_celery(
                engine, day, app=app, shards=2, timeout=DEADLINE
            )
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    # a shard that has planned and recorded its decisions waits to write its row: the
    # table is locked against inserts while the test holds this transaction
    blocker = store.engine.connect()
    tx = blocker.begin()
    blocker.execute(sa.text("LOCK TABLE ar_run_shard IN EXCLUSIVE MODE"))
    coordinator = threading.Thread(target=coordinate)
    coordinator.start()
    try:
        end = time.monotonic() + DEADLINE
        waiting: list[Any] = []
        while not waiting:
            waiting = list(
                blocker.execute(
                    sa.text(
                        "SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                        "WHERE c.relname = 'ar_run_shard' AND NOT l.granted"
                    )
                )
            )
            assert time.monotonic() < end, f"no shard came to record:\n{worker.log()}"
            assert worker.proc.poll() is None, worker.log()
            time.sleep(0.1)
        pool = worker.children()
        assert len(pool) == 1, pool
        os.kill(pool[0], signal.SIGKILL)  # mid-shard: its decisions are written, not committed
    finally:
        tx.rollback()
        blocker.close()
    coordinator.join(DEADLINE + 30)
    app.close()
    assert not coordinator.is_alive()
    assert "error" not in outcome, f"{outcome.get('error')}\n{worker.log()}"
    assert outcome["done"].result.recorded == json.loads(store.runs()[0].body)["recorded"]
    assert state(engine) == expected
    # the killed delivery was taken again: the worker's pool lost a process on it
    assert "WorkerLostError" in worker.log_path.read_text(errors="replace")
    store.close()


def test_two_coordinators_of_one_date_record_one_run(
    broker: str,
    queue: str,
    pg_url: Callable[[], str],
    workers: Callable[..., Worker],
    admin: sa.Engine,
) -> None:
    day = DAYS[0]
    expected = one_process(pg_url(), [day])
    url = pg_url()
    engines = [new_book(url), Engine(Ledger(url), RULES)]
    app = app_for(broker, queue)
    outcome: dict[int, Any] = {}

    def coordinate(i: int) -> None:
        try:
            outcome[i] = distributed.run_on_celery(
                engines[i], day, app=app, shards=2, timeout=DEADLINE
            )
        except BaseException as exc:
            outcome[i] = exc

    def claims(granted: bool) -> int:
        with admin.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND granted = :g AND objid = (hashtext(:k)::bigint & 4294967295)::oid"
                    ),
                    {"g": granted, "k": f"arflow-run:{url_schema(url)}:{day.isoformat()}"},
                ).scalar()
                or 0
            )

    threads = [threading.Thread(target=coordinate, args=(i,)) for i in range(2)]
    # no worker yet: the first coordinator's shards wait in the queue while it holds the date
    threads[0].start()
    wait_until(lambda: claims(True) == 1, "the first coordinator to claim the date")
    threads[1].start()
    wait_until(lambda: claims(False) == 1, "the second coordinator to wait for the claim")
    worker = workers(broker, queue, url)
    for t in threads:
        t.join(DEADLINE + 30)
    app.close()
    assert not any(t.is_alive() for t in threads), worker.log()
    first, second = outcome[0], outcome[1]
    assert not isinstance(first, BaseException), f"{first}\n{worker.log()}"
    assert not isinstance(second, BaseException), f"{second}\n{worker.log()}"
    assert (first.joined, second.joined) == (False, True)
    assert second.run_id == first.run_id
    assert second.result.recorded == first.result.recorded > 0
    assert count_runs(engines[0], day) == 1
    assert state(engines[0]) == expected
    for e in engines:
        e.store.close()  # type: ignore[attr-defined]


class Twice:
    """An app whose every task is sent twice: each shard is delivered twice."""

    def __init__(self, app: Any) -> None:
        self.app, self.conf = app, app.conf

    def send_task(self, *a: Any, **kw: Any) -> None:
        self.app.send_task(*a, **kw)
        self.app.send_task(*a, **kw)


def test_a_shard_delivered_twice_records_once(
    broker: str, queue: str, pg_url: Callable[[], str], workers: Callable[..., Worker]
) -> None:
    days = DAYS[:3]
    expected = one_process(pg_url(), days)
    url = pg_url()
    engine = new_book(url)
    workers(broker, queue, url, cli=True)
    app = app_for(broker, queue)
    try:
        # one worker process, one queue: a day's second copies are taken before the next
        # day's shards, so the last day's state includes every copy of the days before
        for day in days:
            distributed.run_on_celery(engine, day, app=Twice(app), shards=2, timeout=DEADLINE)
        # and a copy delivered after its run is over, to this process's engine too
        rows = list(engine.store.runs())
        spec = {
            "run_id": json.loads(rows[-1].body)["run_id"],
            "shards": 2,
            "shard": 1,
            "as_of": days[-1].isoformat(),
            "since": days[-1].isoformat(),
            "first_run": False,
            "at": f"{days[-1].isoformat()}T00:00:00+00:00",
            "digest": distributed.rules_digest(engine.pack),
            "book": distributed.book_of(engine.store),
        }
        assert distributed.run_shard(engine, spec) == {"again": True}
        assert distributed.run_shard(engine, spec | {"run_id": "another"})["recorded"] == 0
    finally:
        app.close()
    assert state(engine) == expected
    engine.store.close()  # type: ignore[attr-defined]


def test_a_worker_with_other_rules_fails_the_run_and_records_no_run(
    broker: str,
    queue: str,
    pg_url: Callable[[], str],
    workers: Callable[..., Worker],
    tmp_path: Path,
) -> None:
    other = tmp_path / "rules"
    shutil.copytree(RULES, other)
    ladder = other / "dunning.yaml"
    ladder.write_text(ladder.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    url = pg_url()
    engine = new_book(url)
    workers(broker, queue, url, rules=other)
    app = app_for(broker, queue)
    try:
        with pytest.raises(WorkerFailed, match=r"rule files .* differ"):
            distributed.run_on_celery(engine, DAYS[0], app=app, shards=2, timeout=DEADLINE)
    finally:
        app.close()
    assert engine.store.runs() == []
    assert engine.store.decisions() == []
    engine.store.close()  # type: ignore[attr-defined]


def test_the_celery_example_runs_on_one_machine(
    broker: str, queue: str, pg_url: Callable[[], str], tmp_path: Path
) -> None:
    """examples/celery/demo.sh: a sample book, a worker, three days in 4 shards each, through
    `arflow run --celery`; the same decisions as `arflow run` in one process."""
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.update(ARFLOW_CELERY_BROKER=broker, ARFLOW_DB=pg_url(), ARFLOW_QUEUE=queue)
    env.pop("ARFLOW_RULES", None)
    bin_dir = tmp_path / "bin"  # `arflow` and `celery` of this interpreter
    bin_dir.mkdir()
    for name, module in (("arflow", "arflow"), ("celery", "celery")):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {module} "$@"\n')
        (bin_dir / name).chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    demo = subprocess.Popen(
        ["bash", str(ROOT / "examples" / "celery" / "demo.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its background worker too is stopped below, whatever happens
    )
    try:
        out, err = demo.communicate(timeout=DEADLINE * 2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(STOP_GRACE)
    assert demo.returncode == 0, err[-4000:]
    assert "run 2026-03-05 (4 shards): 2 recorded, 5 skipped, 0 failed" in out
    assert "8 decision(s)" in out


# -- without services --------------------------------------------------------------------------------


def test_a_distributed_run_needs_postgresql(tmp_path: Path) -> None:
    engine = Engine(Ledger(f"sqlite:///{tmp_path / 'b.db'}"), RULES)
    app = distributed.celery_app("memory://", queue="q")
    with pytest.raises(StoreError, match="PostgreSQL"):
        distributed.run_on_celery(engine, DAYS[0], app=app, shards=2)
    with pytest.raises(ArflowError, match="at least 1"):
        distributed.run_on_celery(engine, DAYS[0], app=app, shards=0)
    engine.store.close()  # type: ignore[attr-defined]


def test_a_worker_refuses_a_shard_on_a_book_not_in_postgresql(tmp_path: Path) -> None:
    engine = Engine(Ledger(f"sqlite:///{tmp_path / 'b.db'}"), RULES)
    with pytest.raises(ArflowError, match="not in PostgreSQL"):
        distributed.run_shard(engine, {"run_id": "r", "shard": 0, "shards": 1})
    engine.store.close()  # type: ignore[attr-defined]


def test_the_command_line_options_go_together(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from arflow.cli import build_cli

    db = f"sqlite:///{tmp_path / 'b.db'}"
    runner = CliRunner()
    assert runner.invoke(build_cli(), ["init", "--db", db]).exit_code == 0
    for argv in (["--shards", "2"], ["--celery", "memory://", "--workers", "2"]):
        got = runner.invoke(build_cli(), ["run", "--db", db, "--as-of", "2026-03-02", *argv])
        assert got.exit_code == 2, got.output
    got = runner.invoke(
        build_cli(), ["run", "--db", db, "--as-of", "2026-03-02", "--yes", "--celery", "memory://"]
    )
    assert got.exit_code == 5, got.output  # a StoreError: the book is not in PostgreSQL
    assert "PostgreSQL" in got.output


def test_an_app_needs_a_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARFLOW_CELERY_BROKER", raising=False)
    with pytest.raises(ArflowError, match="ARFLOW_CELERY_BROKER"):
        distributed.celery_app()
    app = distributed.celery_app("memory://")
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert distributed.SHARD_TASK in app.tasks


# -- helpers --------------------------------------------------------------------------------------


def url_schema(url: str) -> str:
    return url.rsplit("search_path%3D", 1)[1]


def wait_until(ok: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not ok():
        assert time.monotonic() < end, f"waited {DEADLINE:.0f}s for {what}"
        time.sleep(0.05)
