"""Per-key rate limits: a token bucket per key, shared by every API process through Redis (429 + Retry-After).

One Lua script per round trip: it refills each key's bucket by Redis's own clock (so API hosts with
skewed clocks agree), takes a token or says how long to wait, and lets the bucket expire once it would
be full again (a full bucket and no bucket are the same, so memory stays bounded). Requests that ask
while a round trip is under way go together in the next one, taken in the order they asked, exactly
as one by one: under load a process makes a round trip per batch, not per request (the round trip
was ~15% of the API's CPU at 32 predict clients).
If Redis does not answer, each process falls back to its own in-memory bucket and logs it: a key then
gets up to N times the rate across N processes, which beats refusing every prediction while Redis is down.
"""
from __future__ import annotations

import asyncio
import logging
import math
import threading
import time

import redis.asyncio as redis_async
from fastapi import Depends, Request
from redis.exceptions import RedisError

from api.auth import PrincipalDep
from api.predict.errors import RateLimited

log = logging.getLogger("trainserve.api")

# KEYS: one bucket per request, in the order they asked (a key may come several times); ARGV: rate per
# second, burst. Returns, per request, the seconds to wait as a string (0: go).
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local waits = {}
for i, bucket in ipairs(KEYS) do
  local saved = redis.call('HMGET', bucket, 'tokens', 'at')
  local tokens, at = tonumber(saved[1]), tonumber(saved[2])
  if tokens == nil or at == nil then tokens, at = burst, now end
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  local wait = 0
  if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
  redis.call('HSET', bucket, 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
  redis.call('PEXPIRE', bucket, math.ceil((burst - tokens) / rate * 1000) + 1000)
  waits[i] = string.format('%.6f', wait)
end
return waits
"""
_PREFIX = "trainserve:ratelimit:predict:"
_WARN_EVERY_S = 60.0


class TokenBuckets:
    """`rate` tokens per second per key, up to `burst` saved, in this process; take() answers how long to wait (0: go)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000):
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # bounded memory; forgetting buckets only ever lets a request through
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


class SharedBuckets:
    """The same buckets kept in Redis for all API processes; this process's own TokenBuckets while Redis is down."""

    def __init__(self, rate: float, burst: int, client: redis_async.Redis | None = None):
        self.rate, self.burst = rate, burst
        self.local = TokenBuckets(rate, burst)
        self._script = client.register_script(_TAKE) if client is not None else None
        self._warned_at = -math.inf
        self._waiting: list[tuple[str, asyncio.Future]] = []  # asked while a round trip was under way
        self._sending = False
        self._task: asyncio.Task | None = None
        self.round_trips = 0

    async def take(self, key: str) -> float:
        """Seconds this key must wait before its next request (0: go)."""
        if self._script is None:
            return self.local.take(key)
        if self._sending:  # goes in the next round trip, with the others that ask meanwhile
            waited = asyncio.get_running_loop().create_future()
            self._waiting.append((key, waited))
            return await waited
        self._sending = True
        try:
            return (await self._round_trip([key]))[0]
        finally:
            self._next_batch()

    def _next_batch(self) -> None:
        """Send what was asked meanwhile, in a task of its own: no request waits for another's batch."""
        if not self._waiting:
            self._sending, self._task = False, None
            return
        batch, self._waiting = self._waiting, []
        self._task = asyncio.get_running_loop().create_task(self._send(batch))  # referenced while it runs

    async def _send(self, batch: list[tuple[str, asyncio.Future]]) -> None:
        outcomes: list[float | BaseException]
        try:
            outcomes = list(await self._round_trip([key for key, _ in batch]))
        except BaseException as exc:  # to each of them, what a lone request's own round trip would have raised
            outcomes = [exc] * len(batch)
        for (_, waited), outcome in zip(batch, outcomes):
            if waited.done():  # its request was cancelled meanwhile (the client went away)
                continue
            if isinstance(outcome, BaseException):
                waited.set_exception(outcome)
            else:
                waited.set_result(outcome)
        self._next_batch()

    async def _round_trip(self, keys: list[str]) -> list[float]:
        """One script call for these takes, in order; this process's buckets when Redis does not answer."""
        self.round_trips += 1
        try:
            return [float(w) for w in await self._script(keys=[_PREFIX + k for k in keys],
                                                         args=[self.rate, self.burst])]
        except (RedisError, OSError) as exc:
            self._say_local(exc)
            return [self.local.take(key) for key in keys]

    def _say_local(self, exc: Exception) -> None:
        if time.monotonic() - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = time.monotonic()
            log.warning("predict rate limit: Redis did not answer (%s); limiting per API process until it does", exc)


async def predict_rate_limit(request: Request, principal: PrincipalDep) -> None:
    """RateLimited (→ 429 with Retry-After) when this key has used its PREDICT_RATE_PER_S (bursts: PREDICT_BURST)."""
    # async: one Redis round trip on the event loop, no threadpool hop
    wait_s = await request.app.state.predict_buckets.take(f"{principal.key_id}:{principal.owner}")
    if wait_s > 0:
        raise RateLimited(wait_s, retry_after_s=math.ceil(wait_s))


# for a route decorator: `dependencies=[PREDICT_RATE_LIMIT]`
PREDICT_RATE_LIMIT = Depends(predict_rate_limit)
