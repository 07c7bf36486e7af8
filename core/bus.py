"""Redis as a side channel: live job events (pub/sub) and cancel flags. SQL stays the source of truth."""
from __future__ import annotations

import json
from typing import Any, Protocol

import redis

CANCEL_FLAG_TTL_S = 7 * 24 * 3600


def events_channel(job_id: str) -> str:
    """The pub/sub channel that carries one job's events."""
    return f"trainserve:jobs:{job_id}:events"


def cancel_key(job_id: str) -> str:
    """The key whose presence asks a running job to stop."""
    return f"trainserve:jobs:{job_id}:cancel"


def encode_event(kind: str, data: dict[str, Any]) -> str:
    """One event as the JSON text sent on the channel."""
    return json.dumps({"event": kind, "data": data}, default=str)


def decode_event(raw: str | bytes) -> tuple[str, dict[str, Any]]:
    """(kind, data) from the text `encode_event` produced."""
    payload = json.loads(raw)
    return payload["event"], payload["data"]


class Publisher(Protocol):
    """Where the jobs service announces what it committed (live listeners; SQL stays the truth)."""

    def publish(self, job_id: str, kind: str, data: dict[str, Any]) -> None:
        """Announce one event; must not raise."""

    def raise_cancel_flag(self, job_id: str) -> None:
        """Ask a running job to stop soon; must not raise."""


class NoPublisher:
    """Announces nothing: listeners fall back to reading SQL."""

    def publish(self, job_id: str, kind: str, data: dict[str, Any]) -> None:
        pass

    def raise_cancel_flag(self, job_id: str) -> None:
        pass


class RedisPublisher:
    """Pub/sub events and cancel flags on Redis, best effort (a listener also re-reads SQL)."""

    def __init__(self, client: redis.Redis | None):
        self.client = client

    def publish(self, job_id: str, kind: str, data: dict[str, Any]) -> None:
        if self.client is None:
            return
        try:
            self.client.publish(events_channel(job_id), encode_event(kind, data))
        except redis.RedisError:
            pass

    def raise_cancel_flag(self, job_id: str) -> None:
        if self.client is None:
            return
        try:
            self.client.set(cancel_key(job_id), "1", ex=CANCEL_FLAG_TTL_S)
        except redis.RedisError:
            pass  # the SQL flag, read back with each progress write, still gets through


def cancel_flag_raised(client: redis.Redis, job_id: str) -> bool:
    """Whether someone asked this job to stop."""
    return bool(client.exists(cancel_key(job_id)))


def make_client(url: str) -> redis.Redis:
    """A client with short timeouts: the side channel must never hang a training loop."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)
