"""Adapters that deliver :class:`arflow.actions.Message` s, one module per family.

Each is built from a URL by :func:`arflow.actions.adapter_from_url` (the scheme picks the
module, imported only when used, so an optional dependency such as Celery is needed only by
those who use it) or constructed directly and passed to the dispatcher.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def _lazy(module: str, name: str) -> Callable[[str, dict[str, str]], Any]:
    def factory(url: str, query: dict[str, str]) -> Any:
        mod = importlib.import_module(f"arflow.adapters.{module}")
        return getattr(mod, name)(url, query)

    return factory


def register_builtin(register: Callable[[str, Callable[[str, dict[str, str]], Any]], None]) -> None:
    for scheme in ("smtp", "smtps"):
        register(scheme, _lazy("smtp", "from_url"))
    for scheme in ("sms+http", "sms+https"):
        register(scheme, _lazy("http", "sms_from_url"))
    for scheme in ("webhook+http", "webhook+https"):
        register(scheme, _lazy("http", "webhook_from_url"))
    for scheme in ("celery+redis", "celery+rediss", "celery+amqp", "celery+amqps"):
        register(scheme, _lazy("queues", "celery_from_url"))
    for scheme in ("rq+redis", "rq+rediss"):
        register(scheme, _lazy("queues", "rq_from_url"))
