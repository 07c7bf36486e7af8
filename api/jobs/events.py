"""Live job events over Server-Sent Events: progress, epoch, checkpoint and status, ending at the end."""
from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Request
from sqlalchemy.orm import Session
from sse_starlette.sse import EventSourceResponse

from api.auth import PrincipalDep
from api.deps import SettingsDep
from api.jobs.deps import JOB_ID_RESPONSES
from api.jobs.presenters import job_progress
from api.jobs.schemas import EpochMetricsPublic
from api.sse import read_sql, shutdown, sse, stream_response, together
from api.jobs.live import JobEvents, LiveChannelLost, LiveEvent, Subscription
from core.jobs import get_job, list_epoch_metrics
from core.orm import JobStatus
from core.settings import Settings

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
log = logging.getLogger("trainserve.api")
TERMINAL = {str(s) for s in JobStatus if s.is_terminal}  # snapshots carry plain strings
_LOST = object()  # the live channel went away


@router.get("/{job_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}, **JOB_ID_RESPONSES})
async def job_events(job_id: Annotated[str, Path(description="a job id, or its first 8 or more characters")],
                     request: Request, principal: PrincipalDep,
                     settings: SettingsDep) -> EventSourceResponse:
    """`status`, `progress`, `epoch` and `checkpoint` events as they happen; the last one is the final status.

    A stream holds no database connection while it waits: each SQL read takes a session and gives
    it back. When the server stops, the last event is `shutdown`; reconnect to continue.
    """
    # JobNotFound → 404 (AmbiguousId → 409) before the stream starts; a prefix becomes the full id
    job_id = await read_sql(settings.database_url, _full_id, job_id, principal.owner_filter)
    return stream_response(partial(_stream, job_id, getattr(request.app.state, "job_events", None), settings))


def _full_id(session: Session, job_id: str, owner: str | None) -> str:
    return get_job(session, job_id=job_id, owner=owner).id


def _snapshot(session: Session, job_id: str, owner: str | None = None) -> dict[str, Any]:
    """The job's state from SQL: status, error, progress and its finished epochs (`owner`: only theirs)."""
    job = get_job(session, job_id=job_id, owner=owner)
    epochs = [EpochMetricsPublic.model_validate(r).model_dump(mode="json")
              for r in list_epoch_metrics(session, job_id=job_id)]
    progress = job_progress(job, job.attempts[-1] if job.attempts else None)
    return {"status": job.status, "error": job.error, "progress": progress.model_dump(mode="json"), "epochs": epochs}


async def _stream(job_id: str, hub: JobEvents | None, settings: Settings,
                  stopping: anyio.Event) -> AsyncIterator[dict[str, str] | bytes]:
    # subscribed before reading SQL, so nothing in between is missed
    live = await hub.subscribe(job_id) if hub is not None else None
    stream = _JobStream(job_id, live, settings, stopping)
    try:
        async for event in stream.events():
            yield event
    finally:
        if stream.live is not None:
            stream.live.close()


class _JobStream:
    """One client's events of one job: SQL first, then the live channel, and SQL again when it goes quiet."""

    def __init__(self, job_id: str, live: Subscription | None, settings: Settings, stopping: anyio.Event):
        self.job_id, self.live, self.stopping = job_id, live, stopping
        self.database_url, self.db_poll_s = settings.database_url, settings.events_db_poll_s
        self.sent_epochs = 0
        self.done = False  # the final status was sent
        self.pacer = _Pacer(settings.events_batch_interval_s)

    async def events(self) -> AsyncIterator[dict[str, str] | bytes]:
        for event in self._from_snapshot(await read_sql(self.database_url, _snapshot, self.job_id), first=True):
            yield event
        loop = asyncio.get_running_loop()
        next_db_check = loop.time() + self._poll_s()
        while not self.done and not self.stopping.is_set():
            wake = min(next_db_check, self.pacer.due_at())
            message = await self._next_message(max(0.01, wake - loop.time()))
            if message is _LOST or message is Subscription.RESYNC or self._skips_an_epoch(message):
                next_db_check = loop.time()  # the missing events are in SQL
            elif message is not None:
                # the channel is alive: SQL is read only once it has been quiet for a poll interval
                # (a finished job goes quiet), not every interval per stream (200 streams on a running
                # job read SQL 100 times a second, slowing every other route)
                next_db_check = loop.time() + self._poll_s()
                if (event := self._from_message(message)) is not None:
                    for paced in self.pacer.offer(event, loop.time(), final=self.done, epoch=message.data.get("epoch")):
                        yield paced
            if due := self.pacer.take_due(loop.time()):
                yield together(due)  # one write per tick, however many events it carries
            if not self.done and loop.time() >= next_db_check:
                # the DB is the truth: a lost message must not leave a client waiting forever
                next_db_check = loop.time() + self._poll_s()
                snapshot = self._from_snapshot(await read_sql(self.database_url, _snapshot, self.job_id), first=False)
                for event in self.pacer.flush() + snapshot if snapshot else ():  # held ones first, in order
                    yield event
        for event in self.pacer.flush():
            yield event
        if not self.done:
            yield shutdown()

    def _from_snapshot(self, snap: dict[str, Any], *, first: bool) -> list[dict[str, str]]:
        """The epochs not sent yet and, when it is final (or the stream's first), the status."""
        events = []
        for row in snap["epochs"]:
            if first or row["epoch"] > self.sent_epochs:
                events.append(sse("epoch", row))
                self.sent_epochs = row["epoch"]
        if snap["status"] in TERMINAL:
            events.append(sse("status", {"status": snap["status"], "error": snap["error"]}))
            self.done = True
        elif first:
            events.append(sse("status", {"status": snap["status"]}))
            if snap["status"] == JobStatus.running:
                events.append(sse("progress", snap["progress"]))
        return events

    def _skips_an_epoch(self, message) -> bool:
        """An epoch message past the next one expected: one between was lost."""
        if not isinstance(message, LiveEvent):
            return False
        return message.kind == "epoch" and message.data.get("epoch", 0) > self.sent_epochs + 1

    def _from_message(self, message: LiveEvent) -> dict[str, str] | None:
        """The event a live message carries; None for an epoch already sent."""
        kind, data = message.kind, message.data
        if kind == "epoch":
            if data.get("epoch", 0) <= self.sent_epochs:
                return None
            self.sent_epochs = data["epoch"]
        self.done = kind == "status" and data.get("status") in TERMINAL
        return {"event": kind, "data": message.text}  # sse(kind, data), its JSON made once for every stream

    async def _next_message(self, wait_s: float):
        """The next live event within `wait_s` (None: none came), RESYNC, or _LOST when the channel broke."""
        if self.live is None:
            with anyio.move_on_after(wait_s):
                await self.stopping.wait()
            return None
        try:
            return await self.live.get(wait_s)
        except LiveChannelLost as exc:  # Redis went away mid-stream: carry on by polling SQL
            log.warning("events for %s: %s; polling SQL", self.job_id, exc)
            self.live.close()
            self.live = None
            return _LOST

    def _poll_s(self) -> float:
        # without a live channel, SQL is the only news: read it more often
        return self.db_poll_s if self.live is not None else min(self.db_poll_s, 0.5)


class _Pacer:
    """Holds a stream's events until its own next tick, then sends them together; the end goes at once.

    Each stream ticks every `interval_s` from a random phase, so a job's many streams write spread over
    the interval: an update no longer makes every stream write in one loop turn (200 streams on a
    running job made `GET /v1/jobs` p99 3-4x). Of consecutive held `progress` events of one epoch (epoch
    0: the steps before the first, such as feature extraction) only the latest is kept, so each epoch's
    last word gets through; epoch, checkpoint and status events are all kept, in order.
    """

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.held: list[dict[str, str]] = []
        self.last_epoch: int | None = None  # of the last held event when it is a progress event
        self.tick: float | None = None  # set at the first event, from a random phase

    def offer(self, event: dict[str, str], now: float, *, final: bool, epoch: int | None = None) -> list[dict[str, str]]:
        """What to send now: nothing until the tick, except the `final` status (behind what is held)."""
        if self.interval_s == 0:
            return [event]
        if final:
            return self.flush() + [event]
        if self.tick is None:
            self.tick = now + random.uniform(0, self.interval_s)
        elif not self.held and self.tick < now:  # idle ticks passed: keep the phase, skip to the next
            self.tick += self.interval_s * math.ceil((now - self.tick) / self.interval_s)
        progress = event["event"] == "progress"
        if progress and self.held and self.held[-1]["event"] == "progress" and self.last_epoch == epoch:
            self.held[-1] = event  # the latest progress of the epoch wins
        else:
            self.held.append(event)
        self.last_epoch = epoch if progress else None
        return []

    def due_at(self) -> float:
        return self.tick if self.held and self.tick is not None else math.inf

    def take_due(self, now: float) -> list[dict[str, str]]:
        """The held events once the tick has come (none before)."""
        if not self.held or self.tick is None or now < self.tick:
            return []
        self.tick += self.interval_s
        return self.flush()

    def flush(self) -> list[dict[str, str]]:
        held, self.held = self.held, []
        return held
