"""Service functions for jobs: keyword-only, each takes a Session; the caller owns its lifetime."""
from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import CheckpointNotFound, IdempotencyConflict, JobNotCancellable, JobNotFound
from core.models import Checkpoint, EpochMetric, Job, JobStatus, utcnow

TERMINAL = tuple(s.value for s in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled))


def request_fingerprint(payload: dict[str, Any]) -> str:
    """A stable digest of a job request, to tell a retry from a different request under the same key."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def create_job(
    session: Session,
    *,
    config: dict[str, Any],
    name: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> tuple[Job, bool]:
    """Insert a queued job for a resolved `config`; returns (job, created).

    With an idempotency key already used for the same request, returns that job and created=False.
    """
    if idempotency_key:
        existing = get_job_by_idempotency_key(session, key=idempotency_key)
        if existing is not None:
            return _replayed(existing, idempotency_key, request_hash), False
    job = Job(
        id=str(uuid.uuid4()),
        name=name,
        model=config["model"],
        dataset=config["dataset"],
        config=config,
        seed=int(config.get("hyperparameters", {}).get("seed", 0)),
        status=JobStatus.queued.value,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        created_at=utcnow(),
    )
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        # two retries raced with the same key: the other insert won, answer with its job
        session.rollback()
        existing = get_job_by_idempotency_key(session, key=idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return _replayed(existing, idempotency_key, request_hash), False
    return job, True


def _replayed(job: Job, key: str, request_hash: str | None) -> Job:
    if job.request_hash and request_hash and job.request_hash != request_hash:
        raise IdempotencyConflict(key, job.id)
    return job


def get_job(session: Session, *, job_id: str) -> Job:
    """The job with this id, as the database has it now; raises JobNotFound."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise JobNotFound(job_id)
    return job


def get_job_by_idempotency_key(session: Session, *, key: str) -> Job | None:
    """The job created with this Idempotency-Key, if any."""
    return session.scalars(select(Job).where(Job.idempotency_key == key)).first()


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    dataset: str | None = None,
    model: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[Job], int]:
    """Jobs matching the filters, newest first, and how many match in all."""
    query = select(Job)
    if status:
        query = query.where(Job.status == status)
    if dataset:
        query = query.where(Job.dataset == dataset)
    if model:
        query = query.where(Job.model == model)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Job.created_at.desc(), Job.id).offset(offset).limit(limit)).all()
    return rows, count


def claim_job(session: Session, *, job_id: str, worker: str, code_version: str) -> bool:
    """Mark a queued job running for `worker`; False if it is not queued (cancelled, running, finished).

    One conditional UPDATE, so two deliveries of the same job can never both start it.
    """
    now = utcnow()
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued.value)
        .values(status=JobStatus.running.value, started_at=now, progress_at=now, worker=worker,
                code_version=code_version)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.commit()
    return claimed


def record_run_facts(session: Session, *, job_id: str, **facts: Any) -> None:
    """Store what the run learned about itself: device, torch version, dataset checksum."""
    allowed = {"device", "torch_version", "dataset_checksum"}
    values = {k: v for k, v in facts.items() if k in allowed and v is not None}
    if values:
        session.execute(update(Job).where(Job.id == job_id).values(**values))
        session.commit()


def record_progress(
    session: Session, *, job_id: str, epoch: int, epochs: int, batch: int | None, batches: int | None,
    samples_per_second: float | None,
) -> bool:
    """Store in-epoch progress; returns whether a cancel was requested (the SQL fallback to Redis)."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running.value)
        .values(progress_epoch=epoch, progress_epochs=epochs, progress_batch=batch,
                progress_batches=batches, samples_per_second=samples_per_second, progress_at=utcnow())
    )
    cancel_requested = session.scalar(select(Job.cancel_requested_at).where(Job.id == job_id)) is not None
    session.commit()
    return cancel_requested


def record_epoch(session: Session, *, job_id: str, metrics: dict[str, Any]) -> EpochMetric:
    """Store one finished epoch (replacing the row of a re-run epoch after a resume)."""
    epoch = int(metrics["epoch"])
    row = session.scalars(
        select(EpochMetric).where(EpochMetric.job_id == job_id, EpochMetric.epoch == epoch)
    ).first() or EpochMetric(job_id=job_id, epoch=epoch, created_at=utcnow())
    for field in EpochMetric.METRIC_FIELDS:
        setattr(row, field, metrics.get(field))
    session.add(row)
    session.commit()
    return row


def record_checkpoint(
    session: Session, *, job_id: str, epoch: int, path: str, sha256: str, size_bytes: int,
    is_best: bool, metrics: dict[str, Any],
) -> Checkpoint:
    """Store a finished checkpoint file; a new best clears the flag on the job's earlier ones."""
    row = session.scalars(
        select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.epoch == epoch)
    ).first() or Checkpoint(job_id=job_id, epoch=epoch, created_at=utcnow())
    row.path, row.sha256, row.size_bytes, row.metrics, row.is_best = path, sha256, size_bytes, metrics, is_best
    if is_best:
        session.execute(
            update(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.epoch != epoch).values(is_best=False)
        )
    session.add(row)
    if is_best:
        session.execute(update(Job).where(Job.id == job_id).values(best_epoch=epoch))
    session.commit()
    return row


def mark_best_checkpoint(session: Session, *, job_id: str, path: str) -> Checkpoint | None:
    """Flag the row of the checkpoint file the finished run called best, and only that one."""
    row = session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.path == path)).first()
    if row is not None:
        session.execute(update(Checkpoint).where(Checkpoint.job_id == job_id).values(is_best=Checkpoint.id == row.id))
        session.flush()  # the caller commits: a run's outcome is recorded in one transaction
        session.refresh(row)
    return row


def finish_job(
    session: Session, *, job_id: str, status: JobStatus, error: str | None = None,
    error_type: str | None = None, **outcome: Any,
) -> bool:
    """Move a running job to a terminal status with its outcome; False if it was not running. Does not commit."""
    assert status.is_terminal
    allowed = {"best_epoch", "best_metric", "test_metrics", "result", "device", "torch_version",
               "dataset_checksum"}
    values = {k: v for k, v in outcome.items() if k in allowed}
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running.value)
        .values(status=status.value, finished_at=utcnow(), error=error, error_type=error_type, **values)
    ).rowcount == 1
    session.flush()  # the caller commits, so the outcome and its model version land together
    return done


def request_cancel(session: Session, *, job_id: str) -> Job:
    """Cancel a queued job at once, or flag a running one to stop; raises for finished jobs."""
    job = get_job(session, job_id=job_id)
    now = utcnow()
    if job.status == JobStatus.queued.value:
        # conditional: if a worker claimed it meanwhile, fall through to the running case
        cancelled = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.queued.value)
            .values(status=JobStatus.cancelled.value, cancel_requested_at=now, finished_at=now,
                    error="cancelled before it started")
        ).rowcount == 1
        session.commit()
        if cancelled:
            session.refresh(job)
            return job
    session.refresh(job)
    if job.status == JobStatus.running.value:
        if job.cancel_requested_at is None:
            session.execute(update(Job).where(Job.id == job_id).values(cancel_requested_at=now))
            session.commit()
            session.refresh(job)
        return job
    if job.status == JobStatus.cancelled.value:
        return job  # cancelling twice is harmless
    raise JobNotCancellable(job_id, job.status)


def fail_queued_job(session: Session, *, job_id: str, error: str, error_type: str) -> bool:
    """Fail a job that never started (its message could not be sent)."""
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued.value)
        .values(status=JobStatus.failed.value, finished_at=utcnow(), error=error, error_type=error_type)
    ).rowcount == 1
    session.commit()
    return done


def fail_abandoned_jobs(session: Session, *, worker: str) -> list[str]:
    """Fail the jobs `worker` was running when it stopped (a restarted worker cannot resume them)."""
    ids = session.scalars(
        select(Job.id).where(Job.worker == worker, Job.status == JobStatus.running.value)
    ).all()
    if ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.status == JobStatus.running.value)
            .values(status=JobStatus.failed.value, finished_at=utcnow(), error_type="WorkerLost",
                    error="the worker stopped while this job was running; submit it again")
        )
    session.commit()
    return list(ids)


def list_epoch_metrics(session: Session, *, job_id: str) -> Sequence[EpochMetric]:
    """One row per finished epoch, in order."""
    return session.scalars(
        select(EpochMetric).where(EpochMetric.job_id == job_id).order_by(EpochMetric.epoch)
    ).all()


def latest_epoch_metric(session: Session, *, job_id: str) -> EpochMetric | None:
    """The last finished epoch, if any."""
    return session.scalars(
        select(EpochMetric).where(EpochMetric.job_id == job_id).order_by(EpochMetric.epoch.desc()).limit(1)
    ).first()


def list_checkpoints(session: Session, *, job_id: str) -> Sequence[Checkpoint]:
    """The job's checkpoints, by epoch."""
    return session.scalars(
        select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.epoch)
    ).all()


def get_checkpoint(session: Session, *, job_id: str, epoch: int) -> Checkpoint:
    """The job's checkpoint of `epoch`; raises CheckpointNotFound."""
    row = session.scalars(
        select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.epoch == epoch)
    ).first()
    if row is None:
        raise CheckpointNotFound(job_id, epoch)
    return row


def best_checkpoint(session: Session, *, job_id: str) -> Checkpoint | None:
    """The checkpoint flagged best, if any."""
    return session.scalars(
        select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.is_best.is_(True))
    ).first()
