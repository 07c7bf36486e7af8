"""Hyperparameter sweeps: create (grid or random, optional ASHA), look (leaderboard), list, cancel."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from api.auth import PrincipalDep
from api.datasets.deps import check_dataset_visible
from api.deps import SessionDep, SettingsDep
from api.sweeps.deps import AMBIGUOUS, SWEEP_ID_RESPONSES, SweepDep
from api.sweeps.plan import sweep_plan
from api.sweeps.presenters import sweep_public, sweep_summaries
from api.sweeps.schemas import SweepCreate, SweepPublic, SweepsPublic
from core import sweeps as sweep_service
from core.orm import SweepStatus

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=SweepPublic,
             responses={422: {"description": "invalid search space or too large; `detail[].field` names it"}})
def create_sweep(body: SweepCreate, request: Request, session: SessionDep, settings: SettingsDep,
                 principal: PrincipalDep) -> SweepPublic:
    """Expand the search space, validate every trial, and queue the first `max_parallel` of them."""
    plan = sweep_plan(body, settings, owner=principal.owner)
    check_dataset_visible(session, plan.dataset, principal)  # someone else's upload: 422, as for a job
    sweep = sweep_service.create(session, plan=plan, dispatcher=request.app.state.dispatcher)
    return sweep_public(session, sweep)


@router.get("", response_model=SweepsPublic)
def list_sweeps(session: SessionDep, principal: PrincipalDep, status_: Annotated[SweepStatus | None, Query(alias="status")] = None,
                offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # past it: 422, not a database overflow
                limit: Annotated[int, Query(ge=1, le=200)] = 50) -> SweepsPublic:
    """Sweeps, newest first, without their leaderboards."""
    rows, count = sweep_service.list_sweeps(session, status=status_,
                                            offset=offset, limit=limit, owner=principal.owner_filter)
    return SweepsPublic(data=sweep_summaries(session, rows), count=count, offset=offset, limit=limit)


@router.get("/{sweep_id}", response_model=SweepPublic, responses=SWEEP_ID_RESPONSES)
def get_sweep(sweep: SweepDep, session: SessionDep) -> SweepPublic:
    """Status, counts by status, the leaderboard (best first) and the best trial."""
    return sweep_public(session, sweep)


@router.post("/{sweep_id}/cancel", response_model=SweepPublic,
             responses={404: {"description": "unknown sweep id"}, 409: {"description": f"already finished; or {AMBIGUOUS}"}})
def cancel_sweep(sweep: SweepDep, request: Request, session: SessionDep) -> SweepPublic:
    """Cancel every unfinished trial: waiting and queued ones never start, running ones stop within a batch."""
    sweep = sweep_service.cancel(session, sweep_id=sweep.id, publisher=request.app.state.publisher)
    return sweep_public(session, sweep)
