"""Training jobs: submit, look, list, per-epoch metrics, cancel."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status

from api.deps import JobDep, SessionDep
from api.presenters import job_public
from api.schemas import EpochMetricsList, EpochMetricsPublic, JobCreate, JobPublic, JobsPublic
from core import jobs as job_service
from core.bus import publish_event, request_cancel_flag
from core.models import JobStatus
from core.queue import enqueue_training
from ml.config import resolve_config

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                              description="retrying with the same key returns the same job")]


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic,
             responses={409: {"description": "Idempotency-Key reused for a different request"},
                        422: {"description": "invalid request; `detail[].field` names the field"},
                        503: {"description": "the broker is unreachable"}})
def create_job(body: JobCreate, request: Request, response: Response, session: SessionDep,
               idempotency_key: IdempotencyKey = None) -> JobPublic:
    """Queue a training job; answers at once with the job and its resolved hyperparameters."""
    request_hash = job_service.request_fingerprint(body.model_dump())
    config = resolve_config(body.model, body.dataset, body.hyperparameters, preset=body.preset)  # InvalidConfig → 422
    job, created = job_service.create_job(
        session, config=config.model_dump(mode="json"), name=body.name,
        idempotency_key=idempotency_key, request_hash=request_hash,
    )
    if created:
        _enqueue_or_fail(request, session, job.id)
    return _accepted(response, job, session, replayed=not created)


def _accepted(response: Response, job, session, *, replayed: bool) -> JobPublic:
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return job_public(session, job)


def _enqueue_or_fail(request: Request, session, job_id: str) -> None:
    celery = request.app.state.celery
    try:
        if celery is None:
            raise RuntimeError("REDIS_URL is not set")
        enqueue_training(celery, job_id)
    except Exception as exc:  # the job row exists: fail it so no one waits on a message never sent
        job_service.fail_queued_job(
            session, job_id=job_id, error_type="BrokerUnavailable",
            error=f"could not reach the broker to start the job ({type(exc).__name__}); submit it again")
        raise HTTPException(status_code=503, detail=f"job {job_id!r} could not be queued: the broker is "
                            f"unreachable ({type(exc).__name__}); try again shortly") from exc


@router.get("", response_model=JobsPublic)
def list_jobs(
    session: SessionDep,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
    model: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobsPublic:
    """Jobs, newest first, filtered by status, dataset and model."""
    rows, count = job_service.list_jobs(session, status=status_.value if status_ else None,
                                        dataset=dataset, model=model, offset=offset, limit=limit)
    return JobsPublic(data=[job_public(session, j) for j in rows], count=count, offset=offset, limit=limit)


@router.get("/{job_id}", response_model=JobPublic, responses={404: {"description": "unknown job id"}})
def get_job(job: JobDep, session: SessionDep) -> JobPublic:
    """One job: status, progress, latest and best metrics, error, timestamps, worker and device."""
    return job_public(session, job)


@router.get("/{job_id}/metrics", response_model=EpochMetricsList, responses={404: {"description": "unknown job id"}})
def get_metrics(job: JobDep, session: SessionDep) -> EpochMetricsList:
    """One row per finished epoch."""
    rows = job_service.list_epoch_metrics(session, job_id=job.id)
    return EpochMetricsList(job_id=job.id, data=[EpochMetricsPublic.model_validate(r) for r in rows],
                            count=len(rows))


@router.post("/{job_id}/cancel", response_model=JobPublic,
             responses={404: {"description": "unknown job id"}, 409: {"description": "already finished"}})
def cancel_job(job: JobDep, request: Request, response: Response, session: SessionDep) -> JobPublic:
    """Cancel: a queued job never starts (200); a running one stops within a batch, keeping its checkpoints (202)."""
    job = job_service.request_cancel(session, job_id=job.id)
    if job.status == JobStatus.running.value:
        response.status_code = status.HTTP_202_ACCEPTED
    redis_sync = request.app.state.redis_sync
    if job.status == JobStatus.running.value and redis_sync is not None:
        try:
            request_cancel_flag(redis_sync, job.id)  # the fast path; the SQL flag is the fallback
        except Exception:
            pass
    elif job.status == JobStatus.cancelled.value and redis_sync is not None:
        publish_event(redis_sync, job.id, "status", {"status": job.status, "error": job.error})
    return job_public(session, job)
