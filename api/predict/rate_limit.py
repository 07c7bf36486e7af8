"""Per-key rate limits: a token bucket per key, shared by every API process through Redis (429 + Retry-After).

One Lua script per round trip: it refills each key's bucket by Redis's own clock (so API hosts with
skewed clocks agree), takes tokens or says how long to wait, and lets the bucket expire once it would
be full again (a full bucket and no bucket are the same, so memory stays bounded). Requests that ask
while a round trip is under way go together in the next one, decided in the order they asked, exactly
as one by one: under load a process makes a round trip per batch, not per request.

Leases: a key well under its limit need not wait for Redis at all. With its own tokens taken, a round
trip also takes up to LEASE_TOKENS more for this process, but only from the upper half of the bucket;
the key's next requests here spend them without a round trip (a lone client's predict was ~20% Redis
wait), and the lease is topped up in the background. Every token still comes out of the one shared
bucket, so no process lets more through than the bucket gives; near the limit (bucket under half) no
lease is granted and every request is decided in Redis, as before. A lease unused for LEASE_S is
dropped: a key that moves between processes can be refused up to LEASE_TOKENS early per process, never
let through late.
If Redis does not answer, each process falls back to its own in-memory bucket and logs it: a key then
gets up to N times the rate across N processes, which beats refusing every prediction while Redis is down.
"""
from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass

import redis.asyncio as redis_async
from fastapi import Depends, Request
from redis.exceptions import RedisError

from api.auth import PrincipalDep
from api.predict.errors import RateLimited

log = logging.getLogger("trainserve.api")

LEASE_TOKENS = 8  # at most this many of a key's tokens held by one process
LEASE_S = 1.0  # a lease not spent by then is dropped

# KEYS: distinct buckets; ARGV: rate per second, burst, then per bucket the requests asking now and the
# extra tokens wanted for this process's lease. Returns per bucket: requests let through, lease tokens
# granted, and for the refused ones the seconds to wait (as strings).
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local out = {}
for i, bucket in ipairs(KEYS) do
  local asked, extra = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local saved = redis.call('HMGET', bucket, 'tokens', 'at')
  local tokens, at = tonumber(saved[1]), tonumber(saved[2])
  if tokens == nil or at == nil then tokens, at = burst, now end
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  local went = math.min(asked, math.floor(tokens))
  tokens = tokens - went
  local leased, wait = 0, 0
  if went < asked then
    wait = (1 - tokens) / rate
  else
    leased = math.max(0, math.min(extra, math.floor(tokens - burst / 2)))
    tokens = tokens - leased
  end
  redis.call('HSET', bucket, 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
  redis.call('PEXPIRE', bucket, math.ceil((burst - tokens) / rate * 1000) + 1000)
  out[#out + 1] = tostring(went)
  out[#out + 1] = tostring(leased)
  out[#out + 1] = string.format('%.6f', wait)
end
return out
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


@dataclass
class _Lease:
    tokens: int
    until: float  # monotonic time after which the tokens are dropped


class SharedBuckets:
    """The same buckets kept in Redis for all API processes, with this process's leases of them;
    this process's own TokenBuckets while Redis is down."""

    def __init__(self, rate: float, burst: int, client: redis_async.Redis | None = None,
                 lease_tokens: int = LEASE_TOKENS, lease_s: float = LEASE_S, max_keys: int = 100_000):
        self.rate, self.burst = rate, burst
        self.lease_tokens, self.lease_s, self.max_keys = lease_tokens, lease_s, max_keys
        self.local = TokenBuckets(rate, burst)
        self._script = client.register_script(_TAKE) if client is not None else None
        self._warned_at = -math.inf
        self._leases: dict[str, _Lease] = {}
        self._waiting: list[tuple[str, asyncio.Future | None]] = []  # asked while a round trip was under way
        self._topping: set[str] = set()  # keys with a lease top-up queued or under way
        self._sending = False
        self._task: asyncio.Task | None = None
        self.round_trips = 0

    async def take(self, key: str) -> float:
        """Seconds this key must wait before its next request (0: go)."""
        if self._script is None:
            return self.local.take(key)
        if self._spend_lease(key):
            return 0.0
        waited = asyncio.get_running_loop().create_future()
        self._ask(key, waited)
        return await waited

    def _spend_lease(self, key: str) -> bool:
        """Take one of this process's leased tokens of `key`; tops the lease up in the background when low."""
        lease = self._leases.get(key)
        if lease is None:
            return False
        if lease.tokens < 1 or lease.until < time.monotonic():
            del self._leases[key]
            return False
        lease.tokens -= 1
        if lease.tokens <= self.lease_tokens // 2 and key not in self._topping:
            self._topping.add(key)
            self._ask(key, None)  # nobody waits for it
        return True

    def _ask(self, key: str, waited: asyncio.Future | None) -> None:
        self._waiting.append((key, waited))
        if not self._sending:
            self._send_next()

    def _send_next(self) -> None:
        """Send what was asked meanwhile, in a task of its own: no request waits for another's batch."""
        self._sending = True  # top-ups asked below join this batch
        pending, self._waiting = self._waiting, []
        batch = []
        for key, waited in pending:
            if waited is not None and waited.done():  # its request was cancelled (the client went away)
                continue
            if waited is not None and self._spend_lease(key):  # a round trip meanwhile leased it tokens
                waited.set_result(0.0)
                continue
            batch.append((key, waited))
        batch, self._waiting = batch + self._waiting, []
        if not batch:
            self._sending, self._task = False, None
            return
        self._task = asyncio.get_running_loop().create_task(self._send(batch))  # referenced while it runs

    async def _send(self, batch: list[tuple[str, asyncio.Future | None]]) -> None:
        asking = [(key, waited) for key, waited in batch if waited is not None and not waited.done()]
        outcomes: list[float | BaseException]
        try:
            outcomes = await self._round_trip([key for key, _ in asking], topping={key for key, _ in batch})
        except BaseException as exc:  # to each of them, what a lone request's own round trip would have raised
            outcomes = [exc] * len(asking)
        finally:
            self._topping.difference_update(key for key, _ in batch)
        for (_, waited), outcome in zip(asking, outcomes):
            if waited.done():  # its request was cancelled meanwhile (the client went away)
                continue
            if isinstance(outcome, BaseException):
                waited.set_exception(outcome)
            else:
                waited.set_result(outcome)
        self._send_next()

    async def _round_trip(self, keys: list[str], topping: set[str]) -> list[float]:
        """One script call deciding these requests in order, and topping up the leases of `topping`;
        this process's own buckets when Redis does not answer."""
        self.round_trips += 1
        asked = Counter(keys)
        buckets = list(dict.fromkeys([*keys, *topping]))
        now = time.monotonic()
        args: list[float] = [self.rate, self.burst]
        for key in buckets:
            held = self._leases[key].tokens if key in self._leases and self._leases[key].until >= now else 0
            args += [asked[key], max(0, self.lease_tokens - held)]
        try:
            out = await self._script(keys=[_PREFIX + k for k in buckets], args=args)
        except (RedisError, OSError) as exc:
            self._say_local(exc)
            return [self.local.take(key) for key in keys]
        decided: dict[str, tuple[int, float]] = {}
        for i, key in enumerate(buckets):
            went, leased, wait = int(out[3 * i]), int(out[3 * i + 1]), float(out[3 * i + 2])
            decided[key] = (went, wait)
            if leased:
                self._lease(key, leased)
        waits = []
        for key in keys:  # in the order asked: the first `went` of each key go
            went, wait = decided[key]
            waits.append(0.0 if went > 0 else wait)
            decided[key] = (went - 1, wait)
        return waits

    def _lease(self, key: str, tokens: int) -> None:
        now = time.monotonic()
        lease = self._leases.get(key)
        if lease is None or lease.until < now:
            if len(self._leases) >= self.max_keys:
                self._leases.clear()  # bounded memory; dropped leases only ever refuse early
            self._leases[key] = _Lease(tokens, now + self.lease_s)
        else:
            lease.tokens, lease.until = lease.tokens + tokens, now + self.lease_s

    def _say_local(self, exc: Exception) -> None:
        if time.monotonic() - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = time.monotonic()
            log.warning("predict rate limit: Redis did not answer (%s); limiting per API process until it does", exc)


async def predict_rate_limit(request: Request, principal: PrincipalDep) -> None:
    """RateLimited (→ 429 with Retry-After) when this key has used its PREDICT_RATE_PER_S (bursts: PREDICT_BURST)."""
    # async: on the event loop, no threadpool hop; a leased token answers without a Redis round trip
    wait_s = await request.app.state.predict_buckets.take(f"{principal.key_id}:{principal.owner}")
    if wait_s > 0:
        raise RateLimited(wait_s, retry_after_s=math.ceil(wait_s))


# for a route decorator: `dependencies=[PREDICT_RATE_LIMIT]`
PREDICT_RATE_LIMIT = Depends(predict_rate_limit)
