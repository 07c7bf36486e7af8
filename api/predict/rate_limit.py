"""Per-key rate limits: a token bucket per key in the API process (429 + Retry-After past it).

Buckets live in this process's memory: with N API processes a key gets N times the rate. That is
the trade for no Redis round trip per request; docs/SERVICE.md "Limits" says so.
"""
from __future__ import annotations

import math
import threading
import time

from fastapi import Depends, Request

from api.auth import PrincipalDep
from api.predict.errors import RateLimited


class TokenBuckets:
    """`rate` tokens per second per key, up to `burst` saved; take() answers how long to wait (0: go)."""

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


async def predict_rate_limit(request: Request, principal: PrincipalDep) -> None:
    """RateLimited (→ 429 with Retry-After) when this key has used its PREDICT_RATE_PER_S (bursts: PREDICT_BURST)."""
    # async: take() is a dict update under an uncontended lock, cheaper than the threadpool hop a sync
    # dependency costs
    wait_s = request.app.state.predict_buckets.take(f"{principal.key_id}:{principal.owner}")
    if wait_s > 0:
        raise RateLimited(wait_s, retry_after_s=math.ceil(wait_s))


# for a route decorator: `dependencies=[PREDICT_RATE_LIMIT]`
PREDICT_RATE_LIMIT = Depends(predict_rate_limit)
