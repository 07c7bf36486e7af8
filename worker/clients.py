"""The worker's clients: Redis (events, cancel flags) and the broker (putting job ids back), one per process."""
from __future__ import annotations

import redis

from core.bus import RedisPublisher, make_client
from core.queue import CeleryDispatcher
from core.settings import get_settings
from worker.app import celery_app

_redis: redis.Redis | None = None


def reset_clients() -> None:
    """Forget the Redis client (after fork: a child must not share its parent's socket)."""
    global _redis
    _redis = None


def redis_client() -> redis.Redis | None:
    """This process's Redis client, made at first use; None when REDIS_URL is not set."""
    global _redis
    url = get_settings().redis_url
    if _redis is None and url:
        _redis = make_client(url)
    return _redis


def publisher() -> RedisPublisher:
    """The worker's event publisher."""
    return RedisPublisher(redis_client())


def dispatcher() -> CeleryDispatcher:
    """The worker's way to put a job id back in the queue."""
    return CeleryDispatcher(celery_app)
