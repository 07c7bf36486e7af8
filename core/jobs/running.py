"""A job's run: a worker claims it (`start`), then reports heartbeats, progress, epochs and checkpoints."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.artifacts import ArtifactStore, get_store
from core.bus import NoPublisher, Publisher
from core.jobs.reads import get_job, list_attempts
from core.orm import Checkpoint, EpochMetric, Job, JobAttempt, JobStatus, utcnow

_QUIET = NoPublisher()


@dataclass(frozen=True)
class ResumePoint:
    """A checkpoint to continue from (its key in the store): after `epoch` epochs, `batch` batches into the next one."""

    path: str
    epoch: int
    batch: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class StartedRun:
    """What a worker needs after it claimed a job: the config, its attempt, and where to resume."""

    config: dict[str, Any]
    attempt: int
    resume_from: str | None
    resume_epoch: int | None
    sweep_id: str | None = None
    resume_sha256: str | None = None  # of an epoch checkpoint: checked after download


def start(
    session: Session, *, job_id: str, worker: str, code_version: str, publisher: Publisher = _QUIET,
    store: ArtifactStore | None = None,
) -> StartedRun | None:
    """Claim a queued job for `worker` and open its next attempt; None if it is not queued.

    One conditional UPDATE claims it, so two deliveries can never both start a job (a redelivery
    is harmless). A job that ran before resumes from its last checkpoint: rows of later epochs
    are deleted in the same transaction, so every epoch row exists once.
    """
    now = utcnow()
    claimed = session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.queued)
        .values(status=JobStatus.running, started_at=func.coalesce(Job.started_at, now), progress_at=now,
                heartbeat_at=now, worker=worker, code_version=code_version, queued_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not claimed:
        session.rollback()
        return None
    job = get_job(session, job_id=job_id)
    resume = _resume_point(session, job, store or get_store())
    _forget_after(session, job, resume.epoch if resume is not None else 0)
    number = (session.scalar(select(func.max(JobAttempt.number)).where(JobAttempt.job_id == job_id)) or 0) + 1
    session.add(JobAttempt(job_id=job_id, number=number, worker=worker, started_at=now,
                           resumed_from_epoch=resume.epoch if resume is not None else None,
                           resumed_from_batch=resume.batch if resume is not None else None))
    session.commit()
    publisher.publish(job_id, "status", {"status": JobStatus.running, "attempt": number, "worker": worker,
                                         "resumed_from_epoch": resume.epoch if resume is not None else None,
                                         "resumed_from_batch": resume.batch if resume is not None else None})
    return StartedRun(config=job.config, attempt=number, resume_from=resume.path if resume is not None else None,
                      resume_epoch=resume.epoch if resume is not None else None, sweep_id=job.sweep_id,
                      resume_sha256=resume.sha256 if resume is not None else None)


def _resume_point(session: Session, job: Job, store: ArtifactStore) -> ResumePoint | None:
    """Where a new attempt continues: the last epoch checkpoint in the store (the final one too:
    then the attempt only tests), or a later mid-epoch checkpoint that a graceful stop wrote."""
    epochs = int((job.config.get("hyperparameters") or {}).get("epochs", 0))
    rows = session.scalars(
        select(Checkpoint).where(Checkpoint.job_id == job.id, Checkpoint.epoch <= epochs)
        .order_by(Checkpoint.epoch.desc())
    ).all()
    best = next((ResumePoint(row.path, row.epoch, sha256=row.sha256) for row in rows if store.exists(row.path)), None)
    # every attempt follows the same trajectory (same seed, exact resume): the furthest point wins
    stops = [ResumePoint(a.stop_checkpoint, a.stop_epoch - 1, a.stop_batch)
             for a in list_attempts(session, job_id=job.id)
             if a.stop_checkpoint and a.stop_epoch <= epochs and store.exists(a.stop_checkpoint)]
    candidates = stops + ([best] if best is not None else [])
    return max(candidates, key=lambda p: (p.epoch, p.batch if p.batch is not None else -1), default=None)


def _forget_after(session: Session, job: Job, epoch: int) -> None:
    """Drop epoch and checkpoint rows after `epoch`: the new attempt writes them again. Flushes only."""
    session.execute(sql_delete(EpochMetric).where(EpochMetric.job_id == job.id, EpochMetric.epoch > epoch))
    session.execute(sql_delete(Checkpoint).where(Checkpoint.job_id == job.id, Checkpoint.epoch > epoch))
    best = session.scalar(select(func.max(Checkpoint.epoch)).where(Checkpoint.job_id == job.id,
                                                                   Checkpoint.is_best.is_(True)))
    session.execute(update(Job).where(Job.id == job.id).values(
        best_epoch=best, progress_epoch=epoch or None, progress_batch=None, progress_batches=None))
    session.flush()


def heartbeat(session: Session, *, job_id: str, worker: str) -> bool:
    """The training process is alive; False when the job is no longer this worker's to run."""
    alive = session.execute(
        update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.running)
        .values(heartbeat_at=utcnow())
    ).rowcount == 1
    session.commit()
    return alive


def report_facts(
    session: Session, *, job_id: str, device: str | None = None, torch_version: str | None = None,
    dataset_checksum: str | None = None,
) -> None:
    """Store what the run learned about itself: device, torch version, dataset checksum (None: left as is)."""
    known = {"device": device, "torch_version": torch_version, "dataset_checksum": dataset_checksum}
    values = {k: v for k, v in known.items() if v is not None}
    if values:
        session.execute(update(Job).where(Job.id == job_id).values(**values))
    session.commit()


def report_progress(
    session: Session, *, job_id: str, epoch: int, epochs: int, batch: int | None, batches: int | None,
    samples_per_second: float | None,
) -> bool:
    """Store in-epoch progress; returns whether a cancel was requested (the SQL fallback to Redis)."""
    session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.running)
        .values(progress_epoch=epoch, progress_epochs=epochs, progress_batch=batch,
                progress_batches=batches, samples_per_second=samples_per_second, progress_at=utcnow())
    )
    cancel_requested = session.scalar(select(Job.cancel_requested_at).where(Job.id == job_id)) is not None
    session.commit()
    return cancel_requested


def report_epochs(session: Session, *, job_id: str, epochs: Sequence[dict[str, Any]],
                  publisher: Publisher = _QUIET) -> None:
    """Store finished epochs (unique per job and epoch: a resumed run replaces a row)."""
    for metrics in epochs:
        _upsert_epoch(session, job_id, metrics)
    session.commit()
    for metrics in epochs:
        publisher.publish(job_id, "epoch", metrics)


def _upsert_epoch(session: Session, job_id: str, metrics: dict[str, Any]) -> None:
    epoch = int(metrics["epoch"])
    row = session.scalars(
        select(EpochMetric).where(EpochMetric.job_id == job_id, EpochMetric.epoch == epoch)
    ).first() or EpochMetric(job_id=job_id, epoch=epoch, created_at=utcnow())
    for field in EpochMetric.METRIC_FIELDS:
        setattr(row, field, metrics.get(field))
    session.add(row)
    session.flush()


def report_checkpoint(
    session: Session, *, job_id: str, epoch: int, path: str, sha256: str, size_bytes: int,
    is_best: bool, metrics: dict[str, Any], epochs: Sequence[dict[str, Any]] = (), publisher: Publisher = _QUIET,
) -> None:
    """Record a stored checkpoint (`path`: its key) with the epochs it makes durable; a new best clears older flags.

    An epoch's row is written with the checkpoint that can resume after it, so a crash between the
    two never leaves a row for an epoch the next attempt runs again.
    """
    for finished in epochs:
        _upsert_epoch(session, job_id, finished)
    row = session.scalars(
        select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.epoch == epoch)
    ).first() or Checkpoint(job_id=job_id, epoch=epoch, created_at=utcnow())
    row.path, row.sha256, row.size_bytes, row.metrics, row.is_best = path, sha256, size_bytes, metrics, is_best
    if is_best:
        session.execute(
            update(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.epoch != epoch).values(is_best=False)
        )
        session.execute(update(Job).where(Job.id == job_id).values(best_epoch=epoch))
    session.add(row)
    session.commit()
    for finished in epochs:
        publisher.publish(job_id, "epoch", finished)
    publisher.publish(job_id, "checkpoint", {"epoch": epoch, "sha256": sha256, "size_bytes": size_bytes,
                                             "is_best": is_best})
