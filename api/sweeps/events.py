"""Live sweep events over Server-Sent Events: a trial's row as it moves (started, a new epoch or best metric,
stopped, finished); the sweep's status, counts and leader so far."""
from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path
from sqlalchemy.orm import Session
from sse_starlette.sse import EventSourceResponse

from api.auth import PrincipalDep
from api.deps import SettingsDep
from api.sse import read_sql, shutdown, sse, stream_response
from api.sweeps.deps import SWEEP_ID_RESPONSES
from api.sweeps.presenters import trial_public
from core import sweeps as sweep_service
from core.orm import SweepStatus
from core.settings import Settings

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


@router.get("/{sweep_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}, **SWEEP_ID_RESPONSES})
async def sweep_events(sweep_id: Annotated[str, Path(description="a sweep id, or its first 8 or more characters")],
                       principal: PrincipalDep, settings: SettingsDep) -> EventSourceResponse:
    """`trial` events (a trial's leaderboard row, each time its status, epoch or best metric changes) and
    `status` events (the sweep's status, counts by status and best_job_id, the leader so far, each time one
    of them changes); the last event is the final status.

    The stream polls SQL (each read takes a session and gives it back), so it holds no database
    connection while it waits and never misses what a lost pub/sub message would have said.
    """
    # SweepNotFound → 404 (also someone else's), AmbiguousId → 409, before the stream starts; a prefix
    # becomes the full id
    sweep_id = await read_sql(settings.database_url, _full_id, sweep_id, principal.owner_filter)
    return stream_response(partial(_stream, sweep_id, settings))


def _full_id(session: Session, sweep_id: str, owner: str | None) -> str:
    return sweep_service.get_sweep(session, sweep_id=sweep_id, owner=owner).id


def _snapshot(session: Session, sweep_id: str, owner: str | None = None) -> dict[str, Any]:
    sweep = sweep_service.get_sweep(session, sweep_id=sweep_id, owner=owner)
    board = sweep_service.leaderboard(session, sweep)
    trials = {t.trial: trial_public(t).model_dump(mode="json") for t in board if t.job_id is not None}
    active = any(t.status in ("queued", "running") for t in board)
    return {"status": sweep.status, "counts": sweep_service.status_counts(session, sweep), "trials": trials,
            "best_job_id": sweep_service.current_best_job_id(sweep, board), "done": SweepStatus(sweep.status).is_terminal and not active}


async def _stream(sweep_id: str, settings: Settings, stopping: anyio.Event) -> AsyncIterator[dict[str, str]]:
    seen: dict[int, tuple] = {}
    last_status: dict[str, Any] | None = None
    while not stopping.is_set():
        snap = await read_sql(settings.database_url, _snapshot, sweep_id)
        for index, trial in sorted(snap["trials"].items()):
            key = (trial["status"], trial["epoch"], trial["metric"])
            if seen.get(index) != key:
                seen[index] = key
                yield sse("trial", trial)
        status = {k: snap[k] for k in ("status", "counts", "best_job_id")}
        if status != last_status or snap["done"]:  # a trial's move changes the counts, often the leader too
            last_status = status
            yield sse("status", status)
        if snap["done"]:
            return
        with anyio.move_on_after(settings.events_db_poll_s):
            await stopping.wait()
    yield shutdown()
