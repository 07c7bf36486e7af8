"""Hyperparameter sweeps: create (grid or random, optional ASHA), look (leaderboard), list, cancel, events."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from anyio import to_thread
from fastapi import APIRouter, Query, Request, status
from sqlalchemy.orm import Session
from sse_starlette.sse import EventSourceResponse

from api.auth import PrincipalDep
from api.deps import SessionDep, SettingsDep, SweepDep, check_dataset_visible
from api.sweep_schemas import SweepCreate, SweepLinks, SweepPublic, SweepsPublic, SweepSummary, TrialPublic
from core import sweeps as sweep_service
from core.db import session_scope
from core.jobs import Reuse
from core.orm import Sweep, SweepStatus
from core.settings import Settings
from core.version import code_version
from ml.catalog import dataset_checksum
from ml.config import TrainConfig
from ml.errors import InvalidConfig
from ml.search import expand_search, resolve_trials, search_field

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])
_SQL_READS = anyio.CapacityLimiter(4)  # streams read SQL on a few threads of their own (see events.py)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=SweepPublic,
             responses={422: {"description": "invalid search space or too large; `detail[].field` names it"}})
def create_sweep(body: SweepCreate, request: Request, session: SessionDep, settings: SettingsDep,
                 principal: PrincipalDep) -> SweepPublic:
    """Expand the search space, validate every trial, and queue the first `max_parallel` of them."""
    plan = dataclasses.replace(_plan(body, settings), owner=principal.owner)
    check_dataset_visible(session, plan.dataset, principal)  # someone else's upload: 422, as for a job
    sweep = sweep_service.create(session, plan=plan, dispatcher=request.app.state.dispatcher)
    return sweep_public(session, sweep)


@router.get("", response_model=SweepsPublic)
def list_sweeps(session: SessionDep, principal: PrincipalDep, status_: Annotated[SweepStatus | None, Query(alias="status")] = None,
                offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # past it: 422, not a database overflow
                limit: Annotated[int, Query(ge=1, le=200)] = 50) -> SweepsPublic:
    """Sweeps, newest first, without their leaderboards."""
    rows, count = sweep_service.list_sweeps(session, status=status_.value if status_ else None,
                                            offset=offset, limit=limit, owner=principal.owner_filter)
    return SweepsPublic(data=[sweep_summary(session, s) for s in rows], count=count, offset=offset, limit=limit)


@router.get("/{sweep_id}", response_model=SweepPublic, responses={404: {"description": "unknown sweep id"}})
def get_sweep(sweep: SweepDep, session: SessionDep) -> SweepPublic:
    """Status, counts by status, the leaderboard (best first) and the best trial."""
    return sweep_public(session, sweep)


@router.post("/{sweep_id}/cancel", response_model=SweepPublic,
             responses={404: {"description": "unknown sweep id"}, 409: {"description": "already finished"}})
def cancel_sweep(sweep: SweepDep, request: Request, session: SessionDep) -> SweepPublic:
    """Cancel every unfinished trial: waiting and queued ones never start, running ones stop within a batch."""
    sweep = sweep_service.cancel(session, sweep_id=sweep.id, publisher=request.app.state.publisher)
    return sweep_public(session, sweep)


# ---------------------------------------------------------------- validation


def _plan(body: SweepCreate, settings: Settings) -> sweep_service.SweepPlan:
    """The request as a SweepPlan; InvalidConfig (→ 422 naming the field) for anything wrong."""
    overrides = expand_search(body.search, shuffle_grid=body.early_stopping is not None)
    if len(overrides) > settings.max_sweep_trials:
        raise _invalid("search", f"expands to {len(overrides)} trials; at most {settings.max_sweep_trials} "
                                 "(MAX_SWEEP_TRIALS) are allowed")
    configs = resolve_trials(body.model, body.dataset, body.hyperparameters, overrides, preset=body.preset,
                             searched=search_field(body.search))
    epochs = sum(c.hyperparameters.epochs for c in configs)
    if epochs > settings.max_sweep_epochs:
        raise _invalid("search", f"{len(configs)} trials ask for {epochs} epochs in all; at most "
                                 f"{settings.max_sweep_epochs} (MAX_SWEEP_EPOCHS) are allowed")
    first = configs[0]
    metric = _metric(body.metric, first)
    asha = body.early_stopping.asha.model_dump() if body.early_stopping else None
    if asha and asha["grace_epochs"] >= max(c.hyperparameters.epochs for c in configs):
        raise _invalid("early_stopping.asha.grace_epochs", f"must be below the trials' epochs "
                       f"(at most {max(c.hyperparameters.epochs for c in configs)}), or no trial is ever compared")
    reuse = Reuse(dataset_checksum=dataset_checksum(first.dataset, settings.data_dir, settings.cache_dir),
                  code_version=code_version()) if body.reuse else None
    return sweep_service.SweepPlan(
        model=first.model, dataset=first.dataset, name=body.name, request=body.model_dump(mode="json"),
        trials=[c.model_dump(mode="json") for c in configs], searched=list(dict.fromkeys(
            name for trial in overrides for name in trial)), metric=metric, max_parallel=body.max_parallel,
        asha=asha, reuse=reuse)


def _metric(asked: str | None, config: TrainConfig) -> str:
    regression = config.task == "regression"
    metric = asked or ("val_mse" if regression else "val_accuracy")
    if regression and metric == "val_accuracy" or not regression and metric in ("val_mse", "val_r2"):
        raise _invalid("metric", f"{metric} is not recorded for a {config.task} dataset; use "
                                 + ("val_mse, val_r2 or val_loss" if regression else "val_accuracy or val_loss"))
    return metric


def _invalid(field: str, message: str) -> InvalidConfig:
    return InvalidConfig([{"field": field, "message": message}])


# ---------------------------------------------------------------- presenting


def _links(sweep_id: str) -> SweepLinks:
    base = f"/v1/sweeps/{sweep_id}"
    return SweepLinks(self=base, events=f"{base}/events", cancel=f"{base}/cancel")


def _trial(row: sweep_service.Trial) -> TrialPublic:
    return TrialPublic(trial=row.trial, job_id=row.job_id, status=row.status, hyperparameters=row.hyperparameters,
                       metric=row.metric, epoch=row.epoch, reused_from=row.reused_from)


def sweep_summary(session: Session, sweep: Sweep, board: list[sweep_service.Trial] | None = None) -> SweepSummary:
    """A sweep without its leaderboard."""
    board = board if board is not None else sweep_service.leaderboard(session, sweep)
    best = next((t for t in board if t.job_id == sweep.best_job_id), None) if sweep.best_job_id else None
    return SweepSummary(
        id=sweep.id, name=sweep.name, model=sweep.model, dataset=sweep.dataset, status=SweepStatus(sweep.status),
        metric=sweep.metric, mode=sweep.mode, max_parallel=sweep.max_parallel,
        early_stopping={"asha": sweep.asha} if sweep.asha else None, reuse=sweep.reuse is not None,
        counts=sweep_service.status_counts(session, sweep), total=len(sweep.trials),
        best=_trial(best) if best else None, best_model_id=sweep_service.best_model_id(session, sweep), error=sweep.error,
        created_at=sweep.created_at, finished_at=sweep.finished_at, links=_links(sweep.id))


def sweep_public(session: Session, sweep: Sweep) -> SweepPublic:
    """A sweep and its leaderboard, best first."""
    board = sweep_service.leaderboard(session, sweep)
    return SweepPublic(**sweep_summary(session, sweep, board).model_dump(), trials=[_trial(t) for t in board])


# ---------------------------------------------------------------- events


@router.get("/{sweep_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}, 404: {"description": "unknown sweep id"}})
async def sweep_events(sweep_id: str, request: Request, principal: PrincipalDep) -> EventSourceResponse:
    """`trial` events (a trial started, improved its best metric, stopped or finished) and `status` events
    (the sweep's status and counts); the last event is the final status.

    The stream polls SQL (each read takes a session and gives it back), so it holds no database
    connection while it waits and never misses what a lost pub/sub message would have said.
    """
    await _read(sweep_id, principal.owner_filter)  # SweepNotFound → 404 (also someone else's) before the stream starts
    stopping = anyio.Event()
    return EventSourceResponse(_stream(sweep_id, request.app.state.settings.events_db_poll_s, stopping), ping=15,
                               shutdown_event=stopping, shutdown_grace_period=2.0)


async def _read(sweep_id: str, owner: str | None = None) -> dict[str, Any]:
    return await to_thread.run_sync(_snapshot, sweep_id, owner, limiter=_SQL_READS)


def _snapshot(sweep_id: str, owner: str | None = None) -> dict[str, Any]:
    with session_scope() as session:
        sweep = sweep_service.get_sweep(session, sweep_id=sweep_id, owner=owner)
        board = sweep_service.leaderboard(session, sweep)
        trials = {t.trial: _trial(t).model_dump(mode="json") for t in board if t.job_id is not None}
        active = any(t.status in ("queued", "running") for t in board)
        return {"status": sweep.status, "counts": sweep_service.status_counts(session, sweep), "trials": trials,
                "best_job_id": sweep.best_job_id, "done": SweepStatus(sweep.status).is_terminal and not active}


def _sse(kind: str, data: dict[str, Any]) -> dict[str, str]:
    return {"event": kind, "data": json.dumps(data, default=str)}


async def _stream(sweep_id: str, poll_s: float, stopping: anyio.Event) -> AsyncIterator[dict[str, str]]:
    seen: dict[int, tuple] = {}
    last_status = None
    while not stopping.is_set():
        snap = await _read(sweep_id)
        for index, trial in sorted(snap["trials"].items()):
            key = (trial["status"], trial["epoch"], trial["metric"])
            if seen.get(index) != key:
                seen[index] = key
                yield _sse("trial", trial)
        if snap["status"] != last_status or snap["done"]:
            last_status = snap["status"]
            yield _sse("status", {k: snap[k] for k in ("status", "counts", "best_job_id")})
        if snap["done"]:
            return
        with anyio.move_on_after(poll_s):
            await stopping.wait()
    yield _sse("shutdown", {"reason": "the server is stopping; reconnect to continue"})

