"""Training jobs: submit, look, list, per-epoch metrics, cancel, delete."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status

from api.auth import PrincipalDep
from api.deps import SessionDep, SettingsDep, StoreDep
from api.jobs.deps import AMBIGUOUS, JOB_ID_RESPONSES, JobDep
from api.jobs.presenters import accepted_public, job_public, jobs_public
from api.jobs.schemas import EpochMetricsList, EpochMetricsPublic, JobCreate, JobPublic, JobsPublic
from api.jobs.submit import submit_job
from core import jobs as job_service
from core.orm import JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200,
                                              description="retrying with the same key returns the same job")]


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic,
             responses={409: {"description": "Idempotency-Key reused for a different request"},
                        422: {"description": "invalid request; `detail[].field` names the field"},
                        429: {"description": "too many of your jobs are queued (MAX_QUEUED_JOBS_PER_OWNER)"},
                        503: {"description": "the broker or the database is unreachable, busy or full (JSON, with "
                                              "Retry-After); retry with the same Idempotency-Key"}})
def create_job(body: JobCreate, request: Request, response: Response, session: SessionDep,
               principal: PrincipalDep, settings: SettingsDep, idempotency_key: IdempotencyKey = None) -> JobPublic:
    """Queue a training job; answers at once with the job and its resolved hyperparameters."""
    job, created = submit_job(session, body, principal=principal, settings=settings,
                              dispatcher=request.app.state.dispatcher, idempotency_key=idempotency_key)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    try:
        return accepted_public(session, job, created=created)
    finally:
        # give the connection back now: get_session's close runs only after the answer is sent, and under a
        # burst of submits on PostgreSQL the finished requests held the pool (without this line the load
        # test got 111 x 503 pool timeouts in 30 s; with it, none)
        session.close()


@router.get("", response_model=JobsPublic)
def list_jobs(
    session: SessionDep,
    principal: PrincipalDep,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
    model: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # past it: 422, not a database overflow
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobsPublic:
    """Jobs, newest first, filtered by status, dataset and model."""
    rows, count = job_service.list_jobs(session, status=status_,
                                        dataset=dataset, model=model, offset=offset, limit=limit,
                                        owner=principal.owner_filter)
    return JobsPublic(data=jobs_public(session, rows), count=count, offset=offset, limit=limit)


@router.get("/{job_id}", response_model=JobPublic, responses=JOB_ID_RESPONSES)
def get_job(job: JobDep, session: SessionDep, store: StoreDep) -> JobPublic:
    """One job: status, progress, latest and best metrics, error, timestamps, worker, device, attempts, disk used."""
    return job_public(session, job, store=store)


@router.get("/{job_id}/metrics", response_model=EpochMetricsList, responses=JOB_ID_RESPONSES)
def get_metrics(job: JobDep, session: SessionDep) -> EpochMetricsList:
    """One row per finished epoch."""
    rows = job_service.list_epoch_metrics(session, job_id=job.id)
    return EpochMetricsList(job_id=job.id, data=[EpochMetricsPublic.model_validate(r) for r in rows],
                            count=len(rows))


@router.post("/{job_id}/cancel", response_model=JobPublic,
             responses={404: {"description": "unknown job id"}, 409: {"description": f"already finished; or {AMBIGUOUS}"}})
def cancel_job(job: JobDep, request: Request, response: Response, session: SessionDep) -> JobPublic:
    """Cancel: a queued job never starts (200); a running one stops within a batch, keeping its checkpoints (202)."""
    job = job_service.cancel(session, job_id=job.id, publisher=request.app.state.publisher)
    if job.status == JobStatus.running:
        response.status_code = status.HTTP_202_ACCEPTED
    return job_public(session, job)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "unknown job id"},
                          409: {"description": f"running (cancel it first), or its model serves predictions; or {AMBIGUOUS}"},
                          503: {"description": "some of its files could not be removed; nothing was deleted"}})
def delete_job(job: JobDep, session: SessionDep, store: StoreDep) -> Response:
    """Remove a finished or queued job: its rows, checkpoints and files (503 names files that could not go)."""
    job_service.delete(session, job_id=job.id, store=store)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
