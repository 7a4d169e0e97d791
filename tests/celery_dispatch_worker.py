"""Worker-side code for tests/test_shared_rate.py: the app a real Celery worker started as a
subprocess loads (``celery -A tests.celery_dispatch_worker worker -Q arflow.dispatch.sms``).

Configured from the environment, which the test sets for each worker:

- ``ARFLOW_TEST_DISPATCH_BROKER``: the broker URL (``redis://...`` or ``amqp://...``);
- ``ARFLOW_TEST_DISPATCH_DB``: the book whose outbox the workers deliver;
- ``ARFLOW_TEST_DISPATCH_SMS``: the SMS gateway (a local HTTP server of the test);
- ``ARFLOW_TEST_DISPATCH_LIMITER``: the Redis holding the shared rate limit, and
  ``ARFLOW_TEST_DISPATCH_PREFIX`` the key prefix unique to the test.
"""

from __future__ import annotations

import os

from arflow.celery_dispatch import dispatch_app

BROKER_ENV = "ARFLOW_TEST_DISPATCH_BROKER"
DB_ENV = "ARFLOW_TEST_DISPATCH_DB"
SMS_ENV = "ARFLOW_TEST_DISPATCH_SMS"
LIMITER_ENV = "ARFLOW_TEST_DISPATCH_LIMITER"
PREFIX_ENV = "ARFLOW_TEST_DISPATCH_PREFIX"
#: the SMS rate every worker shares, per second
SMS_RATE = 5.0

app = dispatch_app(
    os.environ.get(BROKER_ENV, "redis://127.0.0.1:6379/0"),
    db=os.environ.get(DB_ENV, "memory://"),
    adapters={"sms": os.environ.get(SMS_ENV, "sms+http://127.0.0.1:9/send")},
    rates={"sms": SMS_RATE},
    limiter=os.environ.get(LIMITER_ENV, "redis://127.0.0.1:6379/0"),
    limiter_prefix=os.environ.get(PREFIX_ENV, "arflow-test:rate:"),
    batch=5,
)
