"""Rate limits shared by every dispatcher: one budget per channel, kept in Redis.

    RedisRateLimiter("redis://127.0.0.1:6379/0", {"sms": 5})

Every dispatcher that holds a limiter on the same Redis (and ``prefix``) draws on the same
budget, so four dispatchers at 5 SMS a second send 5 SMS a second in all, whatever process,
host or Celery worker they run in. Pass it as ``Dispatcher(..., rate_limiter=...)``.

The budget is a GCRA (generic cell rate algorithm, a token bucket kept as one timestamp):
a Lua script, atomic in Redis, reads Redis's own clock (so the hosts' clocks never matter),
moves the channel's "theoretical arrival time" one interval (``1/rate`` seconds) on, and
answers how long the caller waits for the slot it reserved. With ``burst`` b, at most
``b + rate * T`` deliveries fall in any T seconds; the default ``burst=1`` spaces them
``1/rate`` apart. A reserved slot is spent even if the dispatcher dies before it sends,
which errs on the side of sending less. The key expires a minute after the channel's budget
has refilled, so idle channels leave nothing behind.

Failures: when Redis cannot be reached (or refuses the login) ``reserve`` raises
:class:`~arflow.errors.TemporaryFailure`; the dispatcher then does not send that message (never
past the limit) and retries it with backoff like any temporary failure. Passwords never
appear in a ``repr`` or an error.

Needs the Redis client: ``pip install 'arflow[ratelimit]'`` (also in the ``celery`` and ``rq``
extras).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..actions import Scrubber, TemporaryFailure, redact, split_userinfo
from ..errors import ArflowError, ValidationError

#: where the budgets live in Redis: ``arflow:rate:<channel>``
DEFAULT_PREFIX = "arflow:rate:"
DEFAULT_TIMEOUT = 5.0

# KEYS[1] the channel's key; ARGV[1] the interval and ARGV[2] the burst tolerance, both in
# microseconds; ARGV[3], for tests only, an instant standing in for Redis's clock. Returns
# the microseconds until the reserved slot (0: now).
_GCRA = """
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local slot = tat - tolerance
if slot < now then slot = now end
local after = tat + interval
redis.call('SET', KEYS[1], string.format('%d', after), 'PX', math.floor((after - now) / 1000) + 60000)
return slot - now
"""


def _redis() -> Any:
    try:
        import redis
    except ImportError:
        raise ArflowError(
            "the shared rate limiter needs the Redis client: pip install 'arflow[ratelimit]'"
        ) from None
    return redis


class RedisRateLimiter:
    """A rate limit per channel shared by every dispatcher that uses the same Redis.

    ``redis_url_or_client`` is a Redis URL (``redis://``, ``rediss://``, ``unix://``) or a
    ``redis.Redis``; ``rates`` the deliveries per second by channel (a channel not named is
    not limited); ``burst`` how many may go back to back after a pause, one number for every
    channel or one per channel (default 1). Every dispatcher must be given the same rates."""

    def __init__(
        self,
        redis_url_or_client: Any,
        rates: Mapping[str, float],
        *,
        burst: int | Mapping[str, int] = 1,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.rates: dict[str, float] = {}
        for channel, rate in rates.items():
            if not isinstance(rate, int | float) or not rate > 0 or rate == float("inf"):
                raise ValidationError(
                    f"rate limit for {channel!r}: {rate!r} is not a positive number per second"
                )
            self.rates[channel] = float(rate)
        bursts = burst if isinstance(burst, Mapping) else dict.fromkeys(self.rates, burst)
        self.burst: dict[str, int] = {}
        for channel in self.rates:
            b = bursts.get(channel, 1)
            if not isinstance(b, int) or isinstance(b, bool) or b < 1:
                raise ValidationError(f"burst for {channel!r}: {b!r} is not a whole number >= 1")
            self.burst[channel] = b
        unknown = sorted(set(bursts) - set(self.rates))
        if unknown:
            raise ValidationError(f"burst given for {unknown[0]!r}, which has no rate limit")
        self.prefix = prefix
        redis = _redis()
        if isinstance(redis_url_or_client, str):
            self.url = redis_url_or_client
            self.client = redis.Redis.from_url(
                redis_url_or_client, socket_connect_timeout=timeout, socket_timeout=timeout
            )
            self._own_client = True
        else:
            self.url = ""
            self.client = redis_url_or_client
            self._own_client = False
        self._script = self.client.register_script(_GCRA)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

    def __repr__(self) -> str:
        where = repr(redact(self.url)) if self.url else "<client>"
        return f"RedisRateLimiter({where}, {self.rates!r}, burst={self.burst!r})"

    def key(self, channel: str) -> str:
        """The Redis key holding ``channel``'s budget."""
        return self.prefix + channel

    def reserve(self, channel: str) -> float:
        """Reserve the next slot for one delivery on ``channel``, shared with every other
        dispatcher; the seconds until it (0.0 at once, or for a channel without a limit)."""
        return self._reserve_us(channel) / 1_000_000

    def _reserve_us(self, channel: str, now_us: int | None = None) -> int:
        """``reserve`` in microseconds; ``now_us`` stands in for Redis's clock (tests)."""
        rate = self.rates.get(channel)
        if rate is None:
            return 0
        interval = max(1, round(1_000_000 / rate))
        tolerance = (self.burst[channel] - 1) * interval
        args = [interval, tolerance] if now_us is None else [interval, tolerance, now_us]
        try:
            wait_us = self._script(keys=[self.key(channel)], args=args)
        except self._errors as exc:
            text = f"{type(exc).__name__}: {exc}"
            password = split_userinfo(self.url)[2] if self.url else None
            if password:
                text = Scrubber([password])(text)
            where = redact(self.url) if self.url else "Redis"
            raise TemporaryFailure(f"rate limiter at {where}: {text}") from None
        return max(0, int(wait_us))

    def close(self) -> None:
        """Release the Redis connections (of a client the limiter made; a given one is yours)."""
        if self._own_client:
            self.client.close()


__all__ = ["DEFAULT_PREFIX", "RedisRateLimiter"]
