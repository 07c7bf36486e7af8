"""The predict rate limit in Redis: requests that ask together share a round trip and get exactly the
decisions they would get one by one; a key well under its limit spends tokens leased to its process,
and no process ever lets through more than the shared bucket gives."""
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


def _in_turn(redis_url: str, key: str, takes: int, processes: int, rate: float, burst: int,
             **lease) -> tuple[list[float], list[int]]:
    """`takes` requests one after another, going round `processes` SharedBuckets (one per API process)
    on one Redis: (the waits, in order; each process's round trips)."""
    async def run() -> tuple[list[float], list[int]]:
        clients = [redis_async.Redis.from_url(redis_url) for _ in range(processes)]
        try:
            buckets = [SharedBuckets(rate, burst, client, **lease) for client in clients]
            waits = []
            for i in range(takes):
                waits.append(await buckets[i % processes].take(key))
                await asyncio.sleep(0.002)  # background top-ups get their turn, as between real requests
            return waits, [b.round_trips for b in buckets]
        finally:
            for client in clients:
                await client.aclose()
    return asyncio.run(run())


def test_a_key_well_under_its_limit_spends_its_lease_without_a_round_trip_each(redis_url):
    waits, [trips] = _in_turn(redis_url, f"erin-{uuid.uuid4()}", 40, 1, rate=0.01, burst=1000)
    assert waits == [0.0] * 40
    assert trips <= 12, trips  # ~1 in 4 tops the lease of 8 up, in the background; one each without leases


def test_leases_never_let_more_through_than_the_shared_bucket_gives(redis_url):
    # two processes in turn against a burst of 20 (no refill to speak of): exactly 20 go, whoever held them
    waits, _ = _in_turn(redis_url, f"fay-{uuid.uuid4()}", 60, 2, rate=0.001, burst=20)
    assert sum(w == 0 for w in waits) == 20, waits
    assert all(w > 0 for w in waits[-20:])  # once spent, both refuse


def test_near_the_limit_no_lease_is_taken(redis_url):
    # a burst of 2: one process's lease would starve the other, so each token is decided in Redis
    waits, _ = _in_turn(redis_url, f"gus-{uuid.uuid4()}", 4, 2, rate=0.001, burst=2)
    assert [w == 0 for w in waits] == [True, True, False, False]


def test_an_unspent_lease_is_dropped_after_lease_s(redis_url):
    key = f"hal-{uuid.uuid4()}"

    async def run() -> tuple[float, int, int]:
        client = redis_async.Redis.from_url(redis_url)
        try:
            buckets = SharedBuckets(0.001, 100, client, lease_s=0.05)
            await buckets.take(key)  # leases 8 for this process
            trips = buckets.round_trips
            await asyncio.sleep(0.1)
            wait = await buckets.take(key)
            return wait, trips, buckets.round_trips
        finally:
            await client.aclose()
    wait, before, after = asyncio.run(run())
    assert wait == 0.0 and after == before + 1  # decided in Redis again: the stale lease was not spent


def test_without_redis_each_process_limits_on_its_own_buckets():
    buckets = SharedBuckets(0.01, 2, redis_async.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5))

    async def run() -> list[float]:
        return list(await asyncio.gather(*(buckets.take("dave") for _ in range(4))))
    waits = asyncio.run(run())
    assert [w == 0 for w in waits] == [True, True, False, False]
