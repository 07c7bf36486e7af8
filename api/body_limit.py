"""Refuse oversized requests before any work: headers over a cap (431), and bodies over their path's cap
(413) while they stream, before the multipart parser spools a byte of them to disk."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class BodyCap:
    """Requests whose path starts with `prefix` may send `max_bytes` of body; `setting` names the knob."""

    prefix: str
    max_bytes: int
    setting: str

    def detail(self) -> str:
        return f"the request body is larger than {self.max_bytes:,} bytes ({self.setting})"


class BodyTooLarge(HTTPException):
    """Raised from `receive`; an HTTPException so FastAPI's body parser passes it on as a 413."""

    def __init__(self, cap: BodyCap):
        super().__init__(413, detail=cap.detail())


class BodySizeLimit:
    """ASGI middleware: the first cap whose prefix matches applies (the last cap should have prefix "/")."""

    def __init__(self, app: ASGIApp, *, caps: Sequence[BodyCap], max_header_bytes: int = 16 * 1024):
        self.app, self.caps, self.max_header_bytes = app, list(caps), max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        if sum(len(k) + len(v) for k, v in headers) > self.max_header_bytes:
            await _refuse(send, 431, f"the request headers are larger than {self.max_header_bytes:,} bytes "
                                     "(MAX_HEADER_BYTES)")
            return
        cap = next((c for c in self.caps if scope["path"].startswith(c.prefix)), None)
        if cap is None:
            await self.app(scope, receive, send)
            return
        declared = dict(headers).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap.max_bytes:
            await _refuse(send, 413, cap.detail())
            return
        await self._counted(scope, receive, send, cap)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, cap: BodyCap) -> None:
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap.max_bytes:
                    raise BodyTooLarge(cap)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, 413, cap.detail())


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
