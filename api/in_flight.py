"""A bound on the requests the app works on at once, so that the database pool always covers them.

A request holds its database connection until its response is serialized, and serializing a sync route's
answer waits for a thread; with more requests in the app than connections, the pool ran dry and
requests failed. Here at most MAX_REQUESTS_IN_FLIGHT are inside; the rest wait at the door holding
nothing, up to REQUEST_QUEUE_TIMEOUT_S, then get a JSON 503 with Retry-After (never a dropped socket).
Event streams (they hold no connection while they wait) and /healthz are not counted.
"""
from __future__ import annotations

import json
import math

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send


class ServerBusy(Exception):
    """Every slot stayed taken for REQUEST_QUEUE_TIMEOUT_S; the client should come back shortly."""

    def __init__(self, waited_s: float):
        self.headers = {"Retry-After": str(max(1, math.ceil(waited_s / 10)))}
        super().__init__(f"the service is busy: the request waited {waited_s:g} s for a free slot "
                         "(MAX_REQUESTS_IN_FLIGHT); retry shortly, with the same Idempotency-Key for a POST /v1/jobs")


def is_bounded(path: str) -> bool:
    """Requests that may hold a database connection while they work: the API, /readyz and /metrics,
    but not event streams (a short session per read) nor liveness."""
    return (path.startswith("/v1/") or path in ("/readyz", "/metrics")) and not path.endswith("/events")


class InFlightLimit:
    """ASGI middleware: at most `limit` bounded requests inside at once; the rest wait up to `wait_s`,
    then are answered `status` (JSON, with ServerBusy's Retry-After)."""

    def __init__(self, app: ASGIApp, *, limit: int, wait_s: float, status: int):
        self.app, self.wait_s, self.status = app, wait_s, status
        self.slots = anyio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_bounded(scope["path"]):
            await self.app(scope, receive, send)
            return
        if not await self._enter():
            await self._busy(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()

    async def _enter(self) -> bool:
        """Take a slot, waiting at most `wait_s`; False if none came free."""
        try:  # a free slot: no timeout scope to set up (~1% of a prediction's CPU); never ahead of a waiter
            self.slots.acquire_nowait()
            return True
        except anyio.WouldBlock:
            pass
        with anyio.move_on_after(self.wait_s):  # bounds the wait only, never the request itself
            await self.slots.acquire()
            return True
        return False

    async def _busy(self, send: Send) -> None:
        busy = ServerBusy(self.wait_s)
        body = json.dumps({"detail": str(busy)}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   *((k.lower().encode(), v.encode()) for k, v in busy.headers.items())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
