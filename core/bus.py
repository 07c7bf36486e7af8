"""Redis as a side channel: live job events (pub/sub) and cancel flags. SQL stays the source of truth."""
from __future__ import annotations

import json
from typing import Any

import redis

EVENT_KINDS = ("status", "progress", "epoch", "checkpoint")
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


def publish_event(client: redis.Redis, job_id: str, kind: str, data: dict[str, Any]) -> None:
    """Tell live listeners; best effort, since a listener also re-reads SQL."""
    try:
        client.publish(events_channel(job_id), encode_event(kind, data))
    except redis.RedisError:
        pass


def request_cancel_flag(client: redis.Redis, job_id: str) -> None:
    """Raise the flag a running job checks between batches."""
    client.set(cancel_key(job_id), "1", ex=CANCEL_FLAG_TTL_S)


def cancel_flag_raised(client: redis.Redis, job_id: str) -> bool:
    """Whether someone asked this job to stop."""
    return bool(client.exists(cancel_key(job_id)))


def make_client(url: str) -> redis.Redis:
    """A client with short timeouts: the side channel must never hang a training loop."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)
