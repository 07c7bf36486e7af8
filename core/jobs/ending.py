"""A job's end: `finish` (the run ended), `cancel` (on request), `delete` (rows and files gone)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.artifacts import ArtifactsNotRemoved, ArtifactStorageError, ArtifactStore, get_store, storage_error
from core.bus import NoPublisher, Publisher
from core.errors import JobNotCancellable, JobNotDeletable
from core.jobs.reads import get_job, list_attempts, list_checkpoints
from core.model_registry import serving_model_of_job
from core.orm import AttemptEnd, Checkpoint, Job, JobAttempt, JobStatus, utcnow
from core.predictions import delete_inputs_of_job

_QUIET = NoPublisher()


@dataclass(frozen=True)
class Outcome:
    """What a run produced, recorded with its terminal status (every field is written, None too)."""

    best_epoch: int | None = None
    best_metric: dict[str, Any] | None = None
    test_metrics: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    device: str | None = None
    torch_version: str | None = None
    dataset_checksum: str | None = None


@dataclass(frozen=True)
class StoppedAt:
    """Where a graceful stop checkpointed: `batch` batches into `epoch`, in the stored object `path` (a key)."""

    path: str
    epoch: int
    batch: int


def finish(
    session: Session, *, job_id: str, status: JobStatus, worker: str | None = None, error: str | None = None,
    error_type: str | None = None, best_checkpoint: str | None = None,
    on_succeeded: Callable[[Session, Job], Any] | None = None, publisher: Publisher = _QUIET,
    retention: int | None = None, outcome: Outcome | None = None, store: ArtifactStore | None = None,
) -> bool:
    """Move a running job (of `worker`, when given) to a terminal status; False if it was not running.

    Status, outcome, the best checkpoint's flag, the attempt's end and `on_succeeded` (the model
    registry) land in one transaction: a succeeded job is never seen without its model version.
    """
    assert status.is_terminal
    values = dataclasses.asdict(outcome) if outcome is not None else {}
    where = [Job.id == job_id, Job.status == JobStatus.running]
    if worker is not None:
        where.append(Job.worker == worker)
    done = session.execute(
        update(Job).where(*where)
        .values(status=status, finished_at=utcnow(), error=error, error_type=error_type, **values)
    ).rowcount == 1
    if not done:
        session.rollback()
        return False
    end_attempt(session, job_id, AttemptEnd(status), error)
    if best_checkpoint is not None:
        _mark_best_checkpoint(session, job_id=job_id, path=best_checkpoint)
    if status is JobStatus.succeeded and on_succeeded is not None:
        on_succeeded(session, get_job(session, job_id=job_id))
    removed = _retention_victims(session, job_id, retention) if retention is not None else []
    # mid-epoch stop checkpoints only serve the next attempt: a finished job needs them no more
    removed += [a.stop_checkpoint for a in list_attempts(session, job_id=job_id) if a.stop_checkpoint]
    session.commit()
    _remove_objects(store or get_store(), removed)
    publisher.publish(job_id, "status", {"status": status, "error": error})
    return True


def end_attempt(session: Session, job_id: str, ended: AttemptEnd, detail: str | None,
                 stopped_at: StoppedAt | None = None) -> None:
    """Close the job's open attempt. Flushes only."""
    stop = dict(stop_checkpoint=stopped_at.path, stop_epoch=stopped_at.epoch, stop_batch=stopped_at.batch) \
        if stopped_at is not None else {}
    session.execute(
        update(JobAttempt).where(JobAttempt.job_id == job_id, JobAttempt.ended_at.is_(None))
        .values(ended_at=utcnow(), ended=ended, detail=detail, **stop)
    )
    session.flush()


def _mark_best_checkpoint(session: Session, *, job_id: str, path: str) -> None:
    """Flag the row of the checkpoint file the finished run called best, and only that one. Flushes only."""
    row = session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.path == path)).first()
    if row is not None:
        session.execute(update(Checkpoint).where(Checkpoint.job_id == job_id).values(is_best=Checkpoint.id == row.id))
        session.flush()


def _retention_victims(session: Session, job_id: str, keep_last: int) -> list[str]:
    """Delete the rows of checkpoints that are neither best nor among the last `keep_last`; their keys."""
    rows = list(list_checkpoints(session, job_id=job_id))
    kept = {r.id for r in rows if r.is_best} | {r.id for r in rows[len(rows) - keep_last:]} if keep_last else \
        {r.id for r in rows if r.is_best}
    victims = [r for r in rows if r.id not in kept]
    for row in victims:
        session.delete(row)
    session.flush()
    return [r.path for r in victims]


def _remove_objects(store: ArtifactStore, keys: Collection[str]) -> None:
    # after the commit: a row never points at a removed object; a failure here leaves an unlisted
    # object that DELETE of the job removes (it removes the job's whole prefix)
    for key in keys:
        try:
            store.delete(key)
        except (ArtifactStorageError, OSError):
            pass


def cancel(session: Session, *, job_id: str, publisher: Publisher = _QUIET) -> Job:
    """Cancel a queued job at once, or flag a running one to stop; raises for finished jobs."""
    job = get_job(session, job_id=job_id)
    now = utcnow()
    cancelled = session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.queued)
        .values(status=JobStatus.cancelled, cancel_requested_at=now, finished_at=now,
                error="cancelled before it started")
    ).rowcount == 1
    if not cancelled:  # running (or claimed meanwhile): flag it; the worker stops within a batch
        session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.running,
                              Job.cancel_requested_at.is_(None))
            .values(cancel_requested_at=now)
        )
    session.commit()
    session.refresh(job)
    if job.status == JobStatus.running:
        publisher.raise_cancel_flag(job_id)
        return job
    if cancelled:
        publisher.publish(job_id, "status", {"status": job.status, "error": job.error})
    if job.status == JobStatus.cancelled:
        return job  # cancelling twice is harmless
    raise JobNotCancellable(job_id, job.status)


def delete(session: Session, *, job_id: str, store: ArtifactStore) -> None:
    """Remove a job that is not running, its stored objects and its rows; raises JobNotDeletable otherwise
    (also while the model it produced serves predictions: promote another first), ArtifactsNotRemoved
    when some objects could not be removed (the rows stay, so a retry finds them)."""
    job = get_job(session, job_id=job_id)
    if job.status == JobStatus.running:
        raise JobNotDeletable(job_id, "it is running; cancel it first")
    model = serving_model_of_job(session, job_id)
    if model is not None:
        raise JobNotDeletable(job_id, f"its model {model} serves predictions; promote another model first")
    _delete_objects(store, job_id)
    # its model version's predictions go with it (cascade): their kept inputs first
    delete_inputs_of_job(session, store=store, job_id=job_id)
    # conditional: a job that a worker started meanwhile is not deleted under it
    gone = session.execute(sql_delete(Job).where(Job.id == job_id, Job.status != JobStatus.running)).rowcount
    if not gone:
        session.rollback()
        raise JobNotDeletable(job_id, "it started running; cancel it first")
    session.commit()


def _delete_objects(store: ArtifactStore, job_id: str) -> None:
    """Remove every object of the job before its rows, so a failure leaves rows to retry with; ArtifactsNotRemoved."""
    prefix = f"jobs/{job_id}/"
    try:
        left = store.delete_prefix(prefix)
    except (ArtifactStorageError, OSError) as exc:
        raise ArtifactsNotRemoved(f"job {job_id!r}", [o.key for o in _listed(store, prefix)] or [prefix],
                                  str(storage_error(exc) or type(exc).__name__)) from None
    if left:
        raise ArtifactsNotRemoved(f"job {job_id!r}", left)


def _listed(store: ArtifactStore, prefix: str) -> list:
    try:
        return store.list(prefix)
    except (ArtifactStorageError, OSError):
        return []
