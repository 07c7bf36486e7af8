"""Submitting a job: insert it queued (or as a reused result), commit, then hand its id to the workers."""
from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy import false, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import BrokerUnavailable, IdempotencyConflict, TooManyQueued
from core.jobs.reads import get_job_by_idempotency_key
from core.jobs.reuse import Reuse, config_seed, copy_epochs, copy_result, find_reusable
from core.orm import Job, JobStatus, utcnow


class Dispatcher(Protocol):
    """Delivers job ids to workers (the broker)."""

    def enqueue(self, job_id: str, *, ahead: bool = False) -> None:
        """Send one job id (`ahead`: before jobs sent without it, as one queued earlier); raises when the broker is unreachable."""


def submit(
    session: Session, *, config: dict[str, Any], dispatcher: Dispatcher | None, name: str | None = None,
    idempotency_key: str | None = None, request_hash: str | None = None, reuse: Reuse | None = None,
    owner: str | None = None, max_queued: int | None = None, feedback: dict[str, Any] | None = None,
) -> tuple[Job, bool]:
    """Insert a queued job for `owner` and send its id to the workers; returns (job, created).

    With `reuse`, a succeeded job with the same inputs gives its result instead (see `add_job`).
    `feedback`: the snapshot of the feedback set it trains on besides the dataset (core.feedback).
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
        _lock_owner_queue(session, owner)
        waiting = session.scalar(select(func.count()).select_from(Job).where(
            Job.owner == owner, Job.status == JobStatus.queued)) or 0
        if waiting >= max_queued:
            # release the owner's lock now: the request's session closes only after the error is answered,
            # in a threadpool thread that the submits queued behind this lock may all be holding (a deadlock)
            session.rollback()
            raise TooManyQueued(waiting)
    job = add_job(session, config=config, name=name, reuse=reuse, idempotency_key=idempotency_key,
                  request_hash=request_hash, owner=owner, feedback=feedback)
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


def _lock_owner_queue(session: Session, owner: str | None) -> None:
    """Serialise this owner's submits until the commit, so the queued-jobs cap counts what is really there.

    Without it two submits both count 49 and both insert (52 admitted on SQLite, 84 on PostgreSQL under
    100 concurrent submits). PostgreSQL: a transaction-scoped advisory lock on the owner's hash (other
    owners never wait). SQLite has one writer at a time: a write that changes nothing takes the database's
    write lock now (like BEGIN IMMEDIATE, waiting up to busy_timeout), so the count below is read under it.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:owner, 0))"),
                        {"owner": f"queued-jobs:{owner or ''}"})
    else:
        session.execute(update(Job).where(false()).values(owner=Job.owner))


def add_job(
    session: Session, *, config: dict[str, Any], reuse: Reuse | None = None, name: str | None = None,
    owner: str | None = None, idempotency_key: str | None = None, request_hash: str | None = None,
    sweep_id: str | None = None, trial: int | None = None, feedback: dict[str, Any] | None = None,
) -> Job:
    """Add a queued job row, or, when `reuse` finds a succeeded job with the same inputs, a succeeded copy
    of its result (recorded in `reused_from`). Flushes only; `dispatch` it after the commit."""
    now = utcnow()
    job = Job(id=str(uuid.uuid4()), model=config["model"], dataset=config["dataset"], config=config,
              seed=config_seed(config), status=JobStatus.queued, created_at=now, queued_at=now, name=name,
              owner=owner, idempotency_key=idempotency_key, request_hash=request_hash, sweep_id=sweep_id, trial=trial,
              feedback=feedback)
    source = find_reusable(session, config=config, reuse=reuse) if reuse is not None else None
    if source is not None:
        copy_result(job, source, now)
    session.add(job)
    session.flush()
    if source is not None:
        copy_epochs(session, job, source, now)
    return job


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
    if job.status != JobStatus.queued:
        return
    try:
        if dispatcher is None:
            raise RuntimeError("REDIS_URL is not set")
        dispatcher.enqueue(job.id)
    except Exception as exc:
        session.execute(
            update(Job).where(Job.id == job.id, Job.status == JobStatus.queued)
            .values(status=JobStatus.failed, finished_at=utcnow(), error_type="BrokerUnavailable",
                    error=f"could not reach the broker to start the job ({type(exc).__name__}); submit it again")
        )
        session.commit()
        raise BrokerUnavailable(job.id, exc) from exc
