"""The predict rate limit in Redis: requests that ask together share a round trip and get exactly the
decisions they would get one by one."""
from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as redis_async

from api.predict.rate_limit import SharedBuckets


def _takes(redis_url: str, keys: list[str], rate: float, burst: int) -> tuple[list[float], int]:
    """Every take asked at once on one event loop: (the waits, in order; round trips made)."""
    async def run() -> tuple[list[float], int]:
        client = redis_async.Redis.from_url(redis_url)
        try:
            buckets = SharedBuckets(rate, burst, client)
            waits = await asyncio.gather(*(buckets.take(key) for key in keys))
            return list(waits), buckets.round_trips
        finally:
            await client.aclose()
    return asyncio.run(run())


def test_concurrent_takes_share_round_trips_and_keep_the_bucket_exact(redis_url):
    alice, bob = f"alice-{uuid.uuid4()}", f"bob-{uuid.uuid4()}"
    # 39 requests at once: 30 of alice's against a burst of 10, then 9 of bob's
    waits, trips = _takes(redis_url, [alice] * 30 + [bob] * 9, rate=0.01, burst=10)
    assert trips <= 3, trips  # the first alone, the rest together (one more if the loop split them)
    went = [w == 0 for w in waits]
    assert went[:10] == [True] * 10 and not any(went[10:30])  # alice: her burst, in the order asked
    assert all(went[30:])  # bob's bucket is his own
    assert all(w > 1 for w in waits[10:30])  # each refused one is told how long to wait (1 token at 0.01/s)
    # the buckets are in Redis: the next process to ask finds alice's empty and bob's last token
    again, _ = _takes(redis_url, [alice, bob], rate=0.01, burst=10)
    assert again[0] > 0 and again[1] == 0


def test_a_lone_take_is_one_round_trip(redis_url):
    waits, trips = _takes(redis_url, [f"carol-{uuid.uuid4()}"], rate=1.0, burst=1)
    assert waits == [0.0] and trips == 1


def test_without_redis_each_process_limits_on_its_own_buckets():
    buckets = SharedBuckets(0.01, 2, redis_async.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5))

    async def run() -> list[float]:
        return list(await asyncio.gather(*(buckets.take("dave") for _ in range(4))))
    waits = asyncio.run(run())
    assert [w == 0 for w in waits] == [True, True, False, False]
