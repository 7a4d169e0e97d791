"""Adapters that deliver :class:`arflow.actions.Message` s, one module per family, and the
registry that builds one from a URL.

:func:`adapter_from_url` picks the adapter by the URL's scheme; the module of a built-in
scheme is imported only when used, so an optional dependency such as Celery is needed only
by those who use it. :func:`register_adapter` adds a scheme of one's own. An adapter may
also be constructed directly and passed to the dispatcher.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..actions import Adapter, LogAdapter, MemoryAdapter, redact, split_userinfo
from ..errors import ArflowError

AdapterFactory = Callable[[str, dict[str, str]], Adapter]
_FACTORIES: dict[str, AdapterFactory] = {}


def register_adapter(scheme: str, factory: AdapterFactory) -> None:
    """Make ``scheme://...`` URLs build adapters with ``factory(url, query)``."""
    _FACTORIES[scheme.lower()] = factory


def adapter_from_url(url: str) -> Adapter:
    """An adapter from a URL: ``memory://``, ``log://``, ``smtp://user:pass@host:587?from=...``,
    ``smtps://...``, ``sms+https://gateway/send?profile=...``, ``webhook+https://...``,
    ``celery+redis://...?task=...``, ``rq+redis://...?queue=...&func=...``,
    ``wecom+https://qyapi.weixin.qq.com?corpid=...``, ``dingtalk+https://oapi.dingtalk.com?...``."""
    clean, _user, _password = split_userinfo(url)
    scheme = urlsplit(clean).scheme.lower()
    _builtin()
    factory = _FACTORIES.get(scheme)
    if factory is None:
        known = ", ".join(sorted(_FACTORIES))
        raise ArflowError(f"no adapter for {redact(url)!r}: known schemes are {known}")
    query = {k: v[-1] for k, v in parse_qs(urlsplit(clean).query).items()}
    return factory(url, query)


def _lazy(module: str, name: str) -> Callable[[str, dict[str, str]], Any]:
    def factory(url: str, query: dict[str, str]) -> Any:
        mod = importlib.import_module(f"arflow.adapters.{module}")
        return getattr(mod, name)(url, query)

    return factory


_loaded = False


def _builtin() -> None:
    """Register the built-in schemes, once, when the first adapter is built."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    register_adapter("memory", lambda _u, q: MemoryAdapter(fail_first=int(q.get("fail_first", 0))))
    register_adapter("log", lambda u, _q: LogAdapter(urlsplit(u).netloc or "arflow.actions"))
    register_builtin(register_adapter)


def register_builtin(register: Callable[[str, Callable[[str, dict[str, str]], Any]], None]) -> None:
    """Register the schemes of the adapter modules shipped with arflow through ``register``."""
    for scheme in ("smtp", "smtps"):
        register(scheme, _lazy("smtp", "from_url"))
    for scheme in ("sms+http", "sms+https"):
        register(scheme, _lazy("http", "sms_from_url"))
    for scheme in ("webhook+http", "webhook+https"):
        register(scheme, _lazy("http", "webhook_from_url"))
    for scheme in ("wecom+http", "wecom+https"):
        register(scheme, _lazy("chat", "wecom_from_url"))
    for scheme in ("dingtalk+http", "dingtalk+https"):
        register(scheme, _lazy("chat", "dingtalk_from_url"))
    for scheme in ("celery+redis", "celery+rediss", "celery+amqp", "celery+amqps"):
        register(scheme, _lazy("queues", "celery_from_url"))
    for scheme in ("rq+redis", "rq+rediss"):
        register(scheme, _lazy("queues", "rq_from_url"))


__all__ = ["AdapterFactory", "adapter_from_url", "register_adapter", "register_builtin"]
