"""Refuse request bodies over a cap while they stream, before the multipart parser spools them to disk."""
from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from `receive`; an HTTPException so FastAPI's body parser passes it on as a 413."""

    def __init__(self, max_bytes: int):
        super().__init__(413, detail=_detail(max_bytes))


def _detail(max_bytes: int) -> str:
    return f"the upload is larger than {max_bytes:,} bytes (MAX_DATASET_UPLOAD_BYTES)"


class BodySizeLimit:
    """ASGI middleware: requests to paths under `prefix` may send at most `max_bytes` of body (413 otherwise)."""

    def __init__(self, app: ASGIApp, *, prefix: str, max_bytes: int):
        self.app, self.prefix, self.max_bytes = app, prefix, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": _detail(self.max_bytes)}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
