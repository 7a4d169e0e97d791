"""Reliability: a dispatcher process killed with SIGKILL in the middle of a batch of 1,000
e-mails, several times, then restarted. Every message arrives at the real SMTP server; a
message is repeated only if a kill fell between the server's acceptance and the outbox's
commit, so there is at most one repeat per kill, and a repeat carries the same Message-ID."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from arflow import Message
from arflow.store.base import OutboxRecord
from arflow.store.sql import SqlStore
from tests.smtp_server import Server

ROOT = Path(__file__).resolve().parent.parent
N = 1_000


def test_sigkill_mid_batch_loses_nothing_and_repeats_at_most_once_per_kill(
    tmp_path: Path,
) -> None:
    server = Server().start()
    db = f"sqlite:///{tmp_path / 'book.db'}"
    store = SqlStore(db)
    messages = [
        Message(
            key=f"notice:C{i % 37}:email:formal_notice:{i:04d}",
            channel="email",
            action="email",
            customer_id=f"C{i % 37}",
            to=(f"ap{i}@example.com",),
            subject=f"Reminder {i}",
            text=f"Invoice {i} is overdue.",
        )
        for i in range(N)
    ]
    with store.transaction() as tx:
        for m in messages:
            tx.add_outbox(
                OutboxRecord(
                    key=m.key, channel="email", customer_id=m.customer_id, body=m.model_dump_json()
                )
            )
    cmd = [
        sys.executable,
        "-m",
        "arflow",
        "dispatch",
        "--db",
        db,
        "--email",
        f"smtp://127.0.0.1:{server.port}?from=ar@example.com&timeout=10",
        "--batch",
        "25",
        "--lease",
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    rng = random.Random(20261123)
    kills = 0
    try:
        for _ in range(4):
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            target = len(server.handler.received) + rng.randint(60, 200)
            deadline = time.monotonic() + 120
            while (
                len(server.handler.received) < target
                and proc.poll() is None
                and time.monotonic() < deadline
            ):
                time.sleep(0.005)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
            time.sleep(1.2)  # the dead dispatcher's claims expire (lease 1 s)
        assert kills == 4, "the dispatcher finished before it could be killed four times"
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    finally:
        server.stop()
    ids = Counter(server.handler.message_ids())
    assert set(ids) == {m.message_id for m in messages}  # nothing lost
    repeats = sum(n - 1 for n in ids.values())
    assert repeats <= kills, f"{repeats} repeats for {kills} kills"
    assert store.outbox_counts() == {"pending": 0, "sending": 0, "sent": N, "dead": 0}
    store.close()
