"""Reading jobs and what they produced: rows as the database has them now. Reads never commit."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from core.artifacts import ArtifactStore
from core.db import newest_page
from core.errors import CheckpointNotFound, JobNotFound
from core.ids import as_prefix, ids_starting_with
from core.orm import Checkpoint, EpochMetric, Job, JobAttempt, JobStatus


def request_fingerprint(payload: dict[str, Any]) -> str:
    """A stable digest of a job request, to tell a retry from a different request under the same key."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def get_job(session: Session, *, job_id: str, owner: str | None = None) -> Job:
    """The job with this id or id prefix (core/ids.py), as the database has it now; raises JobNotFound (also
    when `owner` is given and the job is someone else's: ids of others' jobs don't leak), AmbiguousId."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None and (prefix := as_prefix(job_id)) is not None:  # an unambiguous prefix of one of theirs
        mine = () if owner is None else (Job.owner == owner,)
        full = ids_starting_with(session, Job.id, prefix, kind="job", where=mine)
        job = session.get(Job, full, populate_existing=True) if full is not None else None
    if job is None or (owner is not None and job.owner != owner):
        raise JobNotFound(job_id)
    return job


def get_job_by_idempotency_key(session: Session, *, key: str) -> Job | None:
    """The job created with this Idempotency-Key, if any."""
    return session.scalars(select(Job).where(Job.idempotency_key == key)).first()


def list_jobs(
    session: Session, *, status: JobStatus | None = None, dataset: str | None = None, model: str | None = None,
    offset: int = 0, limit: int = 50, owner: str | None = None,
) -> tuple[Sequence[Job], int]:
    """Jobs matching the filters (`owner`: only theirs), newest first, and how many match in all.

    Their attempts come with them in one more query (a page costs the same few queries whatever its size).
    """
    query = select(Job).options(selectinload(Job.attempts))
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


@dataclass(frozen=True)
class ShownEpochs:
    """The epoch rows a job's summary shows: its last finished epoch and its best one (either may be None)."""

    latest: EpochMetric | None = None
    best: EpochMetric | None = None


def shown_epochs(session: Session, jobs: Iterable[Job]) -> dict[str, ShownEpochs]:
    """Each job's latest and best epoch rows, in ONE query whatever the number of jobs (a job without
    epoch rows is absent from the answer)."""
    jobs = list(jobs)
    if not jobs:
        return {}
    newer = aliased(EpochMetric)
    last_epoch = select(func.max(newer.epoch)).where(newer.job_id == EpochMetric.job_id).scalar_subquery()
    rows = session.execute(
        select(EpochMetric, Job.best_epoch).join(Job, Job.id == EpochMetric.job_id)
        .where(EpochMetric.job_id.in_([j.id for j in jobs]),
               or_(EpochMetric.epoch == last_epoch, EpochMetric.epoch == Job.best_epoch))
    ).all()
    latest: dict[str, EpochMetric] = {}
    best: dict[str, EpochMetric] = {}
    for row, best_epoch in rows:
        if row.epoch == best_epoch:
            best[row.job_id] = row
        if row.job_id not in latest or row.epoch > latest[row.job_id].epoch:
            latest[row.job_id] = row
    return {job_id: ShownEpochs(latest=latest[job_id], best=best.get(job_id)) for job_id in latest}


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


def disk_bytes(store: ArtifactStore, job_id: str) -> int:
    """Bytes the job's stored objects take now."""
    return sum(o.size_bytes for o in store.list(f"jobs/{job_id}/"))
