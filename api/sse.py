"""Server-Sent Events, one way for every stream: the event shape, the SQL reads, the response.

A stream holds nothing while it waits: each SQL read takes a session on one of a few threads of
its own and gives it back, so hundreds of open streams never take the threads (or the pooled
connections) that the other routes need.
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
from anyio import to_thread
from sse_starlette.event import ServerSentEvent
from sse_starlette.sse import EventSourceResponse

from core.db import get_sessionmaker

T = TypeVar("T")
SQL_READS = anyio.CapacityLimiter(4)  # the threads every stream's SQL reads share
SHUTDOWN = "the server is stopping; reconnect to continue"


def sse(kind: str, data: dict[str, Any]) -> dict[str, str]:
    """One event: its kind and its data as JSON."""
    return {"event": kind, "data": json.dumps(data, default=str)}


def together(events: list[dict[str, str]]) -> bytes:
    """Several events as one write (sse-starlette sends bytes as they are): one send, not one per event."""
    return b"".join(ServerSentEvent(**event).encode() for event in events)


def shutdown() -> dict[str, str]:
    """The last event of a stream the server closes: the client reconnects to continue."""
    return sse("shutdown", {"reason": SHUTDOWN})


async def read_sql(database_url: str, read: Callable[..., T], *args: Any) -> T:
    """`read(session, *args)` in a short session of its own, on the streams' SQL threads, off the event loop."""
    return await to_thread.run_sync(_in_session, database_url, read, args, limiter=SQL_READS)


def _in_session(database_url: str, read: Callable[..., T], args: tuple) -> T:
    with get_sessionmaker(database_url)() as session:  # closed, and its connection back in the pool, on return
        return read(session, *args)


def stream_response(events: Callable[[anyio.Event], AsyncIterator[dict[str, str] | bytes]]) -> EventSourceResponse:
    """The response for `events(stopping)`: pings every 15 s; `stopping` is set when the server shuts down."""
    stopping = anyio.Event()
    return EventSourceResponse(events(stopping), ping=15, shutdown_event=stopping, shutdown_grace_period=2.0)
