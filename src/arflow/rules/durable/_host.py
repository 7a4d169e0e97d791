"""The durable host, its sessions and fact ids: what both matchers share (see
:mod:`arflow.rules.durable` for the guards against durable-rules' sharp edges)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, NoReturn

from ...errors import DurableError
from ..patterns import DURABLE_MISSING

try:
    from durable import engine  # type: ignore[import-untyped]
except ImportError as exc:  # not installed, or not built for this Python (3.13)
    raise ImportError(f"arflow.rules.durable {DURABLE_MISSING}") from exc

__all__ = ["MAX_SESSIONS", "TERMS_PER_RULE", "TERMS_PER_SHARD", "TESTS_PER_SHARD", "fnv1a32"]

MAX_SESSIONS = 512  # durable raises MemoryError past 1,024 live sessions per ruleset
TERMS_PER_SHARD = 32  # durable fails (error 303) when more than 64 rules match one fact
TESTS_PER_SHARD = 256  # durable loops forever at 512 sibling tests in one ruleset
TERMS_PER_RULE = 256  # a bound on the flattened (or-of-ands) form of one condition
_TAG = "k"  # every wrapper fact carries it, so no rule can match durable's own state fact


def fnv1a32(data: str) -> int:
    """The 32-bit FNV-1a hash durable-rules keys facts by (of the id's text, for ints too)."""
    h = 0x811C9DC5
    for byte in data.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


class _QuietHost(engine.Host):  # type: ignore[misc]
    """A durable host that starts no dispatch or timer threads: the wrapper drives it."""

    def _run(self) -> None:
        return None


class _Ids:
    """Fact ids from a counter; any id whose FNV-1a hash is already live is skipped."""

    def __init__(self) -> None:
        self._next = 1

    def take(self, live: set[int]) -> int:
        while True:
            n = self._next
            self._next += 1
            h = fnv1a32(str(n))
            if h not in live:
                live.add(h)
                return n


class _Sessions:
    """A fixed pool of session ids; one in use at a time, a failed one is retired for good."""

    def __init__(self, size: int) -> None:
        if not 1 <= size <= MAX_SESSIONS:
            raise ValueError(f"max_sessions must be 1..{MAX_SESSIONS}, not {size}")
        self._pool = [f"s{i}" for i in range(size)]
        if len({fnv1a32(s) for s in self._pool}) != size:  # pragma: no cover - fixed names
            raise AssertionError("session ids collide under FNV-1a")
        self.used: set[str] = set()

    def current(self) -> str:
        if not self._pool:
            raise DurableError("every durable session has failed and been retired")
        sid = self._pool[0]
        self.used.add(sid)
        return sid

    def retire(self, sid: str) -> None:
        if sid in self._pool:
            self._pool.remove(sid)


class _Driver:
    """What both matchers share: own host, session pool, id counter, one-thread guard."""

    def __init__(self, max_sessions: int) -> None:
        self._host = _QuietHost()
        self._sessions = _Sessions(max_sessions)
        self._ids = _Ids()
        self._busy = threading.Lock()
        self._names: list[str] = []
        self._closed = False
        self._fired: list[tuple[int, Any]] = []
        self._recording = False

    @property
    def sessions_used(self) -> int:
        """How many distinct durable sessions this matcher has ever used (at most the pool)."""
        return len(self._sessions.used)

    def _register(self, name: str, rules: dict[str, Any]) -> None:
        self._host.register_rulesets({name: rules})
        self._names.append(name)

    def _action(self, index: int, alias: str) -> Callable[[Any], None]:
        def run(c: Any) -> None:
            if self._recording:
                self._fired.append((index, getattr(c, alias)["id"]))

        return run

    @contextmanager
    def _turn(self) -> Iterator[None]:
        if self._closed:
            raise RuntimeError("this matcher is closed")
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("a durable matcher is driven from one thread, one call at a time")
        try:
            yield
        finally:
            self._busy.release()

    def _assert(self, ruleset: str, fact: dict[str, Any]) -> bool:
        """Assert one fact; False when no rule took it (durable then keeps nothing)."""
        try:
            self._host.assert_fact(ruleset, fact)
        except engine.MessageNotHandledException:
            return False
        return True

    def _retract_all(self, ruleset: str, facts: Iterable[dict[str, Any]]) -> None:
        for fact in facts:
            self._host.retract_fact(ruleset, fact)

    def _fail(
        self, sid: str, ruleset: str, stored: list[dict[str, Any]], exc: Exception
    ) -> NoReturn:
        self._recording = False
        self._sessions.retire(sid)
        with suppress(Exception):  # the session is retired either way
            self._retract_all(ruleset, stored)
        raise DurableError(f"durable-rules failed in {ruleset!r}: {exc!r}") from exc

    def close(self) -> None:
        """Free the rulesets in durable's engine; the matcher cannot be used afterwards."""
        if self._closed:
            return
        with self._turn():
            self._closed = True
            for name in self._names:
                rs = self._host.get_ruleset(name)
                engine.durable_rules_engine.delete_ruleset(rs._handle)
            self._names.clear()
