"""The jobs service: the one owner of a job's lifecycle.

Transitions (submit, start, report_*, finish, cancel, requeue, delete) are keyword-only functions that
take a Session. Each is ONE transaction: the helpers below only flush; the transition commits once
at its end, and only then announces what happened through a `Publisher` (and hands ids to a
`Dispatcher`). A caller never sees a transition half done, and no event describes an uncommitted state.
Every state change is a conditional UPDATE, so racing callers (two deliveries, the reaper and the
worker) cannot both win.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.bus import NoPublisher, Publisher
from core.db import newest_page
from core.errors import (
    BrokerUnavailable, CheckpointNotFound, IdempotencyConflict, JobNotCancellable, JobNotDeletable, JobNotFound,
    TooManyQueued,
)
from core.orm import AttemptEnd, Checkpoint, EpochMetric, Job, JobAttempt, JobStatus, utcnow

_QUIET = NoPublisher()


class Dispatcher(Protocol):
    """Delivers job ids to workers (the broker)."""

    def enqueue(self, job_id: str) -> None:
        """Send one job id; raises when the broker is unreachable."""


@dataclass(frozen=True)
class ResumePoint:
    """A checkpoint to continue from: after `epoch` epochs, and `batch` batches into the next one."""

    path: str
    epoch: int
    batch: int | None = None


@dataclass(frozen=True)
class StoppedAt:
    """Where a graceful stop checkpointed: `batch` batches into `epoch`, in the file at `path`."""

    path: str
    epoch: int
    batch: int


@dataclass(frozen=True)
class StartedRun:
    """What a worker needs after it claimed a job: the config, its attempt, and where to resume."""

    config: dict[str, Any]
    attempt: int
    resume_from: str | None
    resume_epoch: int | None
    sweep_id: str | None = None


# ---------------------------------------------------------------- reading


def request_fingerprint(payload: dict[str, Any]) -> str:
    """A stable digest of a job request, to tell a retry from a different request under the same key."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def get_job(session: Session, *, job_id: str, owner: str | None = None) -> Job:
    """The job with this id, as the database has it now; raises JobNotFound (also when `owner` is given
    and the job is someone else's: ids of others' jobs don't leak)."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or (owner is not None and job.owner != owner):
        raise JobNotFound(job_id)
    return job


def get_job_by_idempotency_key(session: Session, *, key: str) -> Job | None:
    """The job created with this Idempotency-Key, if any."""
    return session.scalars(select(Job).where(Job.idempotency_key == key)).first()


def list_jobs(
    session: Session, *, status: str | None = None, dataset: str | None = None, model: str | None = None,
    offset: int = 0, limit: int = 50, owner: str | None = None,
) -> tuple[Sequence[Job], int]:
    """Jobs matching the filters (`owner`: only theirs), newest first, and how many match in all."""
    query = select(Job)
    if owner is not None:
        query = query.where(Job.owner == owner)
    if status:
        query = query.where(Job.status == status)
    if dataset:
        query = query.where(Job.dataset == dataset)
    if model:
        query = query.where(Job.model == model)
    return newest_page(session, query, Job, offset=offset, limit=limit)


def list_attempts(session: Session, *, job_id: str) -> Sequence[JobAttempt]:
    """The job's attempts, first to last."""
    return session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.number)).all()


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


def best_checkpoint(session: Session, *, job_id: str) -> Checkpoint | None:
    """The checkpoint flagged best, if any."""
    return session.scalars(
        select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.is_best.is_(True))
    ).first()


def get_checkpoint(session: Session, *, job_id: str, epoch: int) -> Checkpoint:
    """The job's checkpoint of `epoch`; raises CheckpointNotFound."""
    row = session.scalars(
        select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.epoch == epoch)
    ).first()
    if row is None:
        raise CheckpointNotFound(job_id, epoch)
    return row


def disk_bytes(job_dir: Path) -> int:
    """Bytes the job's files take on disk now."""
    if not job_dir.is_dir():
        return 0
    return sum(p.stat().st_size for p in job_dir.rglob("*") if p.is_file())


# ---------------------------------------------------------------- submit


def submit(
    session: Session, *, config: dict[str, Any], dispatcher: Dispatcher | None, name: str | None = None,
    idempotency_key: str | None = None, request_hash: str | None = None, reuse: Reuse | None = None,
    owner: str | None = None, max_queued: int | None = None, **facts: Any,
) -> tuple[Job, bool]:
    """Insert a queued job for `owner` and send its id to the workers; returns (job, created).

    With `reuse`, a succeeded job with the same inputs gives its result instead (see `add_job`).

    With an idempotency key already used for the same request, returns that job and created=False.
    TooManyQueued when the owner already has `max_queued` jobs waiting.
    When the broker cannot take the id, the job is failed (no one waits on a message never sent) and
    BrokerUnavailable is raised.
    """
    if idempotency_key:
        existing = get_job_by_idempotency_key(session, key=idempotency_key)
        if existing is not None:
            return _replayed(existing, idempotency_key, request_hash, owner), False
    if max_queued is not None:
        waiting = session.scalar(select(func.count()).select_from(Job).where(
            Job.owner == owner, Job.status == JobStatus.queued.value)) or 0
        if waiting >= max_queued:
            raise TooManyQueued(waiting)
    job = add_job(session, config=config, name=name, reuse=reuse, idempotency_key=idempotency_key,
                  request_hash=request_hash, owner=owner, **facts)
    try:
        session.commit()
    except IntegrityError:
        # two retries raced with the same key: the other insert won, answer with its job
        session.rollback()
        existing = get_job_by_idempotency_key(session, key=idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return _replayed(existing, idempotency_key, request_hash, owner), False
    # the row is committed before its id is sent (a worker must find it); a failed send is a second,
    # compensating transaction, so no job waits `queued` on a message that never went
    dispatch(session, job, dispatcher)
    return job, True


def add_job(session: Session, *, config: dict[str, Any], reuse: Reuse | None = None, **fields: Any) -> Job:
    """Add a queued job row, or, when `reuse` finds a succeeded job with the same inputs, a succeeded copy
    of its result (recorded in `reused_from`). Flushes only; `dispatch` it after the commit."""
    now = utcnow()
    job = Job(id=str(uuid.uuid4()), model=config["model"], dataset=config["dataset"], config=config,
              seed=int(config.get("hyperparameters", {}).get("seed", 0)), status=JobStatus.queued.value,
              created_at=now, queued_at=now,
              **{k: v for k, v in fields.items() if k in ("name", "dataset_checksum", "idempotency_key",
                                                           "request_hash", "sweep_id", "trial", "owner")})
    source = find_reusable(session, config=config, reuse=reuse) if reuse is not None else None
    if source is not None:
        _copy_result(job, source, now)
    session.add(job)
    session.flush()
    if source is not None:
        for row in list_epoch_metrics(session, job_id=source.id):
            session.add(EpochMetric(job_id=job.id, epoch=row.epoch, created_at=now,
                                    **{f: getattr(row, f) for f in EpochMetric.METRIC_FIELDS}))
        session.flush()
    return job


@dataclass(frozen=True)
class Reuse:
    """What must equal a succeeded job's, besides the resolved config, for its result to be reused."""

    dataset_checksum: str
    code_version: str


def find_reusable(session: Session, *, config: dict[str, Any], reuse: Reuse) -> Job | None:
    """The newest succeeded job (not itself a copy) with this resolved config, dataset checksum, code and seed."""
    candidates = session.scalars(
        select(Job).where(Job.status == JobStatus.succeeded.value, Job.model == config["model"],
                          Job.dataset == config["dataset"], Job.reused_from.is_(None),
                          Job.seed == int(config.get("hyperparameters", {}).get("seed", 0)),
                          Job.dataset_checksum == reuse.dataset_checksum, Job.code_version == reuse.code_version)
        .order_by(Job.finished_at.desc())
    ).all()
    key = _config_key(config)
    return next((job for job in candidates if _config_key(job.config) == key), None)


def _config_key(config: dict[str, Any]) -> str:
    # what was trained: notes and the preset's name only describe how the config was reached
    return json.dumps({k: config.get(k) for k in ("model", "dataset", "hyperparameters")}, sort_keys=True)


def _copy_result(job: Job, source: Job, now) -> None:
    job.status, job.reused_from, job.finished_at, job.queued_at = JobStatus.succeeded.value, source.id, now, None
    for field in ("best_epoch", "best_metric", "test_metrics", "result", "device", "torch_version",
                  "dataset_checksum", "code_version", "worker"):
        setattr(job, field, getattr(source, field))


def _replayed(job: Job, key: str, request_hash: str | None, owner: str | None) -> Job:
    if job.owner != owner:  # a conflict that names no job: a replay never hands out someone else's
        raise IdempotencyConflict(key, None)
    if job.request_hash and request_hash and job.request_hash != request_hash:
        raise IdempotencyConflict(key, job.id)
    return job


def dispatch(session: Session, job: Job, dispatcher: Dispatcher | None) -> None:
    """Send a committed queued job's id to the workers (a reused result needs none).

    When the broker cannot take it the job is failed and committed, and BrokerUnavailable raised.
    """
    if job.status != JobStatus.queued.value:
        return
    try:
        if dispatcher is None:
            raise RuntimeError("REDIS_URL is not set")
        dispatcher.enqueue(job.id)
    except Exception as exc:
        session.execute(
            update(Job).where(Job.id == job.id, Job.status == JobStatus.queued.value)
            .values(status=JobStatus.failed.value, finished_at=utcnow(), error_type="BrokerUnavailable",
                    error=f"could not reach the broker to start the job ({type(exc).__name__}); submit it again")
        )
        session.commit()
        raise BrokerUnavailable(job.id, exc) from exc


# ---------------------------------------------------------------- start


def start(
    session: Session, *, job_id: str, worker: str, code_version: str, publisher: Publisher = _QUIET,
) -> StartedRun | None:
    """Claim a queued job for `worker` and open its next attempt; None if it is not queued.

    One conditional UPDATE claims it, so two deliveries can never both start a job (a redelivery
    is harmless). A job that ran before resumes from its last checkpoint: rows of later epochs
    are deleted in the same transaction, so every epoch row exists once.
    """
    now = utcnow()
    claimed = session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.queued.value)
        .values(status=JobStatus.running.value, started_at=func.coalesce(Job.started_at, now), progress_at=now,
                heartbeat_at=now, worker=worker, code_version=code_version, queued_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not claimed:
        session.rollback()
        return None
    job = get_job(session, job_id=job_id)
    resume = _resume_point(session, job)
    _forget_after(session, job, resume.epoch if resume is not None else 0)
    number = (session.scalar(select(func.max(JobAttempt.number)).where(JobAttempt.job_id == job_id)) or 0) + 1
    session.add(JobAttempt(job_id=job_id, number=number, worker=worker, started_at=now,
                           resumed_from_epoch=resume.epoch if resume is not None else None,
                           resumed_from_batch=resume.batch if resume is not None else None))
    session.commit()
    publisher.publish(job_id, "status", {"status": JobStatus.running.value, "attempt": number, "worker": worker,
                                         "resumed_from_epoch": resume.epoch if resume is not None else None,
                                         "resumed_from_batch": resume.batch if resume is not None else None})
    return StartedRun(config=job.config, attempt=number, resume_from=resume.path if resume is not None else None,
                      resume_epoch=resume.epoch if resume is not None else None, sweep_id=job.sweep_id)


def _resume_point(session: Session, job: Job) -> ResumePoint | None:
    """Where a new attempt continues: the last epoch checkpoint whose file exists (the final one too:
    then the attempt only tests), or a later mid-epoch checkpoint that a graceful stop wrote."""
    epochs = int((job.config.get("hyperparameters") or {}).get("epochs", 0))
    rows = session.scalars(
        select(Checkpoint).where(Checkpoint.job_id == job.id, Checkpoint.epoch <= epochs)
        .order_by(Checkpoint.epoch.desc())
    ).all()
    best = next((ResumePoint(row.path, row.epoch) for row in rows if Path(row.path).is_file()), None)
    # every attempt follows the same trajectory (same seed, exact resume): the furthest point wins
    stops = [ResumePoint(a.stop_checkpoint, a.stop_epoch - 1, a.stop_batch)
             for a in list_attempts(session, job_id=job.id)
             if a.stop_checkpoint and a.stop_epoch <= epochs and Path(a.stop_checkpoint).is_file()]
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


# ---------------------------------------------------------------- report


def heartbeat(session: Session, *, job_id: str, worker: str) -> bool:
    """The training process is alive; False when the job is no longer this worker's to run."""
    alive = session.execute(
        update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.running.value)
        .values(heartbeat_at=utcnow())
    ).rowcount == 1
    session.commit()
    return alive


def report_facts(session: Session, *, job_id: str, **facts: Any) -> None:
    """Store what the run learned about itself: device, torch version, dataset checksum."""
    allowed = {"device", "torch_version", "dataset_checksum"}
    values = {k: v for k, v in facts.items() if k in allowed and v is not None}
    if values:
        session.execute(update(Job).where(Job.id == job_id).values(**values))
    session.commit()


def report_progress(
    session: Session, *, job_id: str, epoch: int, epochs: int, batch: int | None, batches: int | None,
    samples_per_second: float | None,
) -> bool:
    """Store in-epoch progress; returns whether a cancel was requested (the SQL fallback to Redis)."""
    session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.running.value)
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
    """Store a finished checkpoint file with the epochs it makes durable; a new best clears the older flags.

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


# ---------------------------------------------------------------- finish


def finish(
    session: Session, *, job_id: str, status: JobStatus, worker: str | None = None, error: str | None = None,
    error_type: str | None = None, best_checkpoint: str | None = None,
    on_succeeded: Callable[[Session, Job], Any] | None = None, publisher: Publisher = _QUIET,
    retention: int | None = None, **outcome: Any,
) -> bool:
    """Move a running job (of `worker`, when given) to a terminal status; False if it was not running.

    Status, outcome, the best checkpoint's flag, the attempt's end and `on_succeeded` (the model
    registry) land in one transaction: a succeeded job is never seen without its model version.
    """
    assert status.is_terminal
    allowed = {"best_epoch", "best_metric", "test_metrics", "result", "device", "torch_version", "dataset_checksum"}
    values = {k: v for k, v in outcome.items() if k in allowed}
    where = [Job.id == job_id, Job.status == JobStatus.running.value]
    if worker is not None:
        where.append(Job.worker == worker)
    done = session.execute(
        update(Job).where(*where)
        .values(status=status.value, finished_at=utcnow(), error=error, error_type=error_type, **values)
    ).rowcount == 1
    if not done:
        session.rollback()
        return False
    _end_attempt(session, job_id, AttemptEnd(status.value), error)
    if best_checkpoint is not None:
        _mark_best_checkpoint(session, job_id=job_id, path=best_checkpoint)
    if status is JobStatus.succeeded and on_succeeded is not None:
        on_succeeded(session, get_job(session, job_id=job_id))
    removed = _retention_victims(session, job_id, retention) if retention is not None else []
    # mid-epoch stop checkpoints only serve the next attempt: a finished job needs them no more
    removed += [a.stop_checkpoint for a in list_attempts(session, job_id=job_id) if a.stop_checkpoint]
    session.commit()
    _remove_files(removed)
    publisher.publish(job_id, "status", {"status": status.value, "error": error})
    return True


def _end_attempt(session: Session, job_id: str, ended: AttemptEnd, detail: str | None,
                 stopped_at: StoppedAt | None = None) -> None:
    """Close the job's open attempt. Flushes only."""
    stop = dict(stop_checkpoint=stopped_at.path, stop_epoch=stopped_at.epoch, stop_batch=stopped_at.batch) \
        if stopped_at is not None else {}
    session.execute(
        update(JobAttempt).where(JobAttempt.job_id == job_id, JobAttempt.ended_at.is_(None))
        .values(ended_at=utcnow(), ended=ended.value, detail=detail, **stop)
    )
    session.flush()


def _mark_best_checkpoint(session: Session, *, job_id: str, path: str) -> None:
    """Flag the row of the checkpoint file the finished run called best, and only that one. Flushes only."""
    row = session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.path == path)).first()
    if row is not None:
        session.execute(update(Checkpoint).where(Checkpoint.job_id == job_id).values(is_best=Checkpoint.id == row.id))
        session.flush()


def _retention_victims(session: Session, job_id: str, keep_last: int) -> list[str]:
    """Delete the rows of checkpoints that are neither best nor among the last `keep_last`; their paths."""
    rows = list(list_checkpoints(session, job_id=job_id))
    kept = {r.id for r in rows if r.is_best} | {r.id for r in rows[len(rows) - keep_last:]} if keep_last else \
        {r.id for r in rows if r.is_best}
    victims = [r for r in rows if r.id not in kept]
    for row in victims:
        session.delete(row)
    session.flush()
    return [r.path for r in victims]


def _remove_files(paths: Collection[str]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


# ---------------------------------------------------------------- cancel


def cancel(session: Session, *, job_id: str, publisher: Publisher = _QUIET) -> Job:
    """Cancel a queued job at once, or flag a running one to stop; raises for finished jobs."""
    job = get_job(session, job_id=job_id)
    now = utcnow()
    cancelled = session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.queued.value)
        .values(status=JobStatus.cancelled.value, cancel_requested_at=now, finished_at=now,
                error="cancelled before it started")
    ).rowcount == 1
    if not cancelled:  # running (or claimed meanwhile): flag it; the worker stops within a batch
        session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.running.value,
                              Job.cancel_requested_at.is_(None))
            .values(cancel_requested_at=now)
        )
    session.commit()
    session.refresh(job)
    if job.status == JobStatus.running.value:
        publisher.raise_cancel_flag(job_id)
        return job
    if cancelled:
        publisher.publish(job_id, "status", {"status": job.status, "error": job.error})
    if job.status == JobStatus.cancelled.value:
        return job  # cancelling twice is harmless
    raise JobNotCancellable(job_id, job.status)


# ---------------------------------------------------------------- requeue


def requeue(
    session: Session, *, job_id: str, ended: AttemptEnd, detail: str, max_attempts: int,
    dispatcher: Dispatcher | None, worker: str | None = None, stopped_at: StoppedAt | None = None,
    publisher: Publisher = _QUIET,
) -> JobStatus | None:
    """Put a running job whose attempt ended early back in the queue; returns its new status.

    Conditional on the job still running (under `worker`, when given), so the reaper and the
    worker cannot both act. A job whose cancel was requested ends cancelled; one whose crashes
    reached `max_attempts` fails, with what happened each time. Returns None if it was not running.
    """
    where = [Job.id == job_id, Job.status == JobStatus.running.value]
    if worker is not None:
        where.append(Job.worker == worker)
    job = session.scalars(select(Job).where(*where)).first()
    if job is None:
        return None
    _end_attempt(session, job_id, ended, detail, stopped_at)
    attempts = list_attempts(session, job_id=job_id)
    crashes = sum(1 for a in attempts if a.ended and AttemptEnd(a.ended).is_crash)
    now = utcnow()
    if job.cancel_requested_at is not None:
        status, values = JobStatus.cancelled, dict(finished_at=now, error_type="TrainingCancelled",
                                                   error=f"cancelled; the last attempt ended: {detail}")
    elif crashes >= max_attempts:
        status, values = JobStatus.failed, dict(finished_at=now, error_type="TooManyAttempts",
                                                error=_history(attempts, max_attempts))
    else:
        status, values = JobStatus.queued, dict(queued_at=now, heartbeat_at=None)
    moved = session.execute(update(Job).where(*where).values(status=status.value, **values)).rowcount == 1
    if not moved:
        session.rollback()
        return None
    session.commit()
    publisher.publish(job_id, "status", {"status": status.value, "error": values.get("error"), "why": detail})
    if status is JobStatus.queued and dispatcher is not None:
        try:
            dispatcher.enqueue(job_id)
        except Exception:
            pass  # the maintenance pass re-sends queued jobs the broker does not know
    return status


def _history(attempts: Sequence[JobAttempt], max_attempts: int) -> str:
    lines = "; ".join(f"attempt {a.number} on {a.worker}: {a.ended} ({a.detail})" for a in attempts)
    return (f"given up after {max_attempts} attempts that crashed; this is often memory: try a smaller "
            f"batch_size or max_train_samples. {lines}")


def requeue_stale(
    session: Session, *, timeout_s: float, max_attempts: int, dispatcher: Dispatcher | None,
    publisher: Publisher = _QUIET,
) -> list[str]:
    """Requeue running jobs whose heartbeat is older than `timeout_s` (their worker is gone)."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    stale = session.execute(
        # jobs started before heartbeats existed have none: their progress time stands in
        select(Job.id, Job.worker).where(Job.status == JobStatus.running.value,
                                         func.coalesce(Job.heartbeat_at, Job.progress_at, Job.started_at) < cutoff)
    ).all()
    session.rollback()
    done = []
    for job_id, worker in stale:
        if requeue(session, job_id=job_id, worker=worker, ended=AttemptEnd.worker_lost, max_attempts=max_attempts,
                   dispatcher=dispatcher, publisher=publisher,
                   detail=f"worker {worker} not seen for over {timeout_s:g}s") is not None:
            done.append(job_id)
    return done


def requeue_worker_jobs(
    session: Session, *, worker: str, max_attempts: int, dispatcher: Dispatcher | None,
    publisher: Publisher = _QUIET,
) -> list[str]:
    """Requeue the jobs `worker` was running when it last stopped (it just started again: they are dead)."""
    ids = session.scalars(select(Job.id).where(Job.worker == worker, Job.status == JobStatus.running.value)).all()
    session.rollback()
    return [job_id for job_id in ids
            if requeue(session, job_id=job_id, worker=worker, ended=AttemptEnd.worker_restarted,
                       detail=f"worker {worker} restarted while it ran", max_attempts=max_attempts,
                       dispatcher=dispatcher, publisher=publisher) is not None]


def resend_lost(session: Session, *, known: Collection[str], min_age_s: float, dispatcher: Dispatcher) -> list[str]:
    """Send again the queued jobs the broker does not hold (Redis came back empty); SQL is the truth.

    A job queued less than `min_age_s` ago is left alone (its message may be on its way); a double
    delivery is harmless anyway, since `start` claims conditionally.
    """
    cutoff = utcnow() - timedelta(seconds=min_age_s)
    ids = session.scalars(select(Job.id).where(Job.status == JobStatus.queued.value,
                                               func.coalesce(Job.queued_at, Job.created_at) < cutoff)).all()
    session.rollback()
    lost = [job_id for job_id in ids if job_id not in known]
    for job_id in lost:
        dispatcher.enqueue(job_id)
    if lost:
        session.execute(update(Job).where(Job.id.in_(lost), Job.status == JobStatus.queued.value)
                        .values(queued_at=utcnow()))
        session.commit()
    return lost


# ---------------------------------------------------------------- delete


def delete(session: Session, *, job_id: str, job_dir: Path, serving_model: Callable[[Session, str], str | None]) -> None:
    """Remove a job that is not running, its rows and its files; raises JobNotDeletable otherwise.

    `serving_model(session, job_id)` names the model the job produced if it serves predictions now.
    """
    job = get_job(session, job_id=job_id)
    if job.status == JobStatus.running.value:
        raise JobNotDeletable(job_id, "it is running; cancel it first")
    model = serving_model(session, job_id)
    if model is not None:
        raise JobNotDeletable(job_id, f"its model {model} serves predictions; promote another model first")
    # conditional: a job that a worker started meanwhile is not deleted under it
    gone = session.execute(sql_delete(Job).where(Job.id == job_id, Job.status != JobStatus.running.value)).rowcount
    if not gone:
        session.rollback()
        raise JobNotDeletable(job_id, "it started running; cancel it first")
    session.commit()
    shutil.rmtree(job_dir, ignore_errors=True)
