"""One dispatcher process for tests/test_shared_rate.py (``python -m tests.shared_rate_child``).

Arguments: the book's URL, the SMS gateway's URL, the Redis URL and key prefix of the shared
limiter, the SMS rate. It opens everything, prints ``ready``, waits for a line on its standard
input (so that every dispatcher starts together), delivers until nothing is due, and prints
its ``DispatchStats`` as JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from arflow import Dispatcher, adapter_from_url
from arflow.adapters.ratelimit import RedisRateLimiter
from arflow.store.sql import SqlStore


def main(db: str, sms: str, redis_url: str, prefix: str, rate: str) -> None:
    store = SqlStore(db)
    limiter = RedisRateLimiter(redis_url, {"sms": float(rate)}, prefix=prefix)
    dispatcher = Dispatcher(
        store, {"sms": adapter_from_url(sms)}, rate_limiter=limiter, channels=["sms"], batch=5
    )
    print("ready", flush=True)
    sys.stdin.readline()
    stats = dispatcher.run()
    limiter.close()
    store.close()
    print(json.dumps(asdict(stats)), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:6])
