"""Live job events over Server-Sent Events: progress, epoch, checkpoint and status, ending at the end."""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from anyio import to_thread
from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from api.auth import PrincipalDep
from api.presenters import job_progress
from api.schemas import EpochMetricsPublic
from core.bus import decode_event, events_channel
from core.db import session_scope
from core.jobs import get_job, list_epoch_metrics
from core.orm import JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
log = logging.getLogger("trainserve.api")
TERMINAL = {s.value for s in JobStatus if s.is_terminal}
# streams read SQL on their own few threads: hundreds of open streams never take the threads
# (or the pooled connections) that the other routes need
_SQL_READS = anyio.CapacityLimiter(4)


async def _read_snapshot(job_id: str, owner: str | None = None) -> dict[str, Any]:
    return await to_thread.run_sync(_snapshot, job_id, owner, limiter=_SQL_READS)


@router.get("/{job_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}, 404: {"description": "unknown job id"}})
async def job_events(job_id: str, request: Request,
                     principal: PrincipalDep) -> EventSourceResponse:
    """`status`, `progress`, `epoch` and `checkpoint` events as they happen; the last one is the final status.

    A stream holds no database connection while it waits: each SQL read takes a session and gives
    it back. When the server stops, the last event is `shutdown`; reconnect to continue.
    """
    await _read_snapshot(job_id, principal.owner_filter)  # JobNotFound → 404 before the stream starts
    settings = request.app.state.settings
    stopping = anyio.Event()
    return EventSourceResponse(
        _stream(job_id, request.app.state.redis, settings.events_db_poll_s, stopping), ping=15,
        shutdown_event=stopping, shutdown_grace_period=2.0,
    )


def _snapshot(job_id: str, owner: str | None = None) -> dict[str, Any]:
    """The job's state from SQL: status, error, progress and its finished epochs (`owner`: only theirs)."""
    with session_scope() as session:
        job = get_job(session, job_id=job_id, owner=owner)
        epochs = [EpochMetricsPublic.model_validate(r).model_dump(mode="json")
                  for r in list_epoch_metrics(session, job_id=job_id)]
        return {"status": job.status, "error": job.error,
                "progress": job_progress(job).model_dump(mode="json"), "epochs": epochs}


def _sse(kind: str, data: dict[str, Any]) -> dict[str, str]:
    return {"event": kind, "data": json.dumps(data, default=str)}


async def _stream(job_id: str, redis_async, db_poll_s: float, stopping: anyio.Event,
                  ) -> AsyncIterator[dict[str, str]]:
    pubsub = await _subscribe(job_id, redis_async)  # before reading SQL, so nothing in between is missed
    try:
        snap = await _read_snapshot(job_id)
        sent_epochs = 0
        for row in snap["epochs"]:
            yield _sse("epoch", row)
            sent_epochs = row["epoch"]
        if snap["status"] in TERMINAL:
            yield _sse("status", {"status": snap["status"], "error": snap["error"]})
            return
        yield _sse("status", {"status": snap["status"]})
        if snap["status"] == JobStatus.running.value:
            yield _sse("progress", snap["progress"])
        loop = asyncio.get_running_loop()
        next_db_check = loop.time() + _poll_s(pubsub, db_poll_s)
        while not stopping.is_set():
            message = None
            wait_s = max(0.01, next_db_check - loop.time())
            if pubsub is not None:
                try:
                    message = await pubsub.get_message(timeout=min(wait_s, 0.5))
                except Exception as exc:  # Redis went away mid-stream: carry on by polling SQL
                    log.warning("events for %s: live channel lost (%s); polling SQL", job_id, exc)
                    await _close(pubsub)
                    pubsub = None
                    next_db_check = loop.time()
            else:
                with anyio.move_on_after(wait_s):
                    await stopping.wait()
            if message is not None and message.get("type") == "message":
                kind, data = decode_event(message["data"])
                if kind == "epoch":
                    if data.get("epoch", 0) <= sent_epochs:
                        continue
                    sent_epochs = data["epoch"]
                yield _sse(kind, data)
                if kind == "status" and data.get("status") in TERMINAL:
                    return
            if loop.time() >= next_db_check:
                # the DB is the truth: a lost message must not leave a client waiting forever
                next_db_check = loop.time() + _poll_s(pubsub, db_poll_s)
                snap = await _read_snapshot(job_id)
                for row in snap["epochs"]:
                    if row["epoch"] > sent_epochs:
                        yield _sse("epoch", row)
                        sent_epochs = row["epoch"]
                if snap["status"] in TERMINAL:
                    yield _sse("status", {"status": snap["status"], "error": snap["error"]})
                    return
        yield _sse("shutdown", {"reason": "the server is stopping; reconnect to continue"})
    finally:
        await _close(pubsub)


def _poll_s(pubsub, db_poll_s: float) -> float:
    # without a live channel, SQL is the only news: read it more often
    return db_poll_s if pubsub is not None else min(db_poll_s, 0.5)


async def _subscribe(job_id: str, redis_async):
    if redis_async is None:
        return None
    try:
        pubsub = redis_async.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(events_channel(job_id))
        return pubsub
    except Exception as exc:  # Redis down: SQL polling alone still ends the stream correctly
        log.warning("events for %s: no live channel (%s); polling SQL", job_id, exc)
        return None


async def _close(pubsub) -> None:
    if pubsub is None:
        return
    try:
        await pubsub.unsubscribe()
        await pubsub.aclose()
    except Exception:
        pass
