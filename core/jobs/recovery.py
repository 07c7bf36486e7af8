"""Recovery: a running job whose attempt ended early goes back in the queue (`requeue`), whether its
worker stopped, its process died, its worker went silent (`requeue_stale`) or came back under the
same name (`requeue_worker_jobs`); queued jobs the broker lost are sent again (`resend_lost`)."""
from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.bus import NoPublisher, Publisher
from core.jobs.ending import StoppedAt, end_attempt
from core.jobs.reads import list_attempts
from core.jobs.submit import Dispatcher
from core.orm import AttemptEnd, Job, JobAttempt, JobStatus, utcnow

_QUIET = NoPublisher()


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
    where = [Job.id == job_id, Job.status == JobStatus.running]
    if worker is not None:
        where.append(Job.worker == worker)
    job = session.scalars(select(Job).where(*where)).first()
    if job is None:
        return None
    end_attempt(session, job_id, ended, detail, stopped_at)
    attempts = list_attempts(session, job_id=job_id)
    crashes = sum(1 for a in attempts if a.ended and a.ended.is_crash)
    now = utcnow()
    if job.cancel_requested_at is not None:
        status, values = JobStatus.cancelled, dict(finished_at=now, error_type="TrainingCancelled",
                                                   error=f"cancelled; the last attempt ended: {detail}")
    elif crashes >= max_attempts:
        status, values = JobStatus.failed, dict(finished_at=now, error_type="TooManyAttempts",
                                                error=_history(attempts, max_attempts))
    else:
        status, values = JobStatus.queued, dict(queued_at=now, heartbeat_at=None)
    moved = session.execute(update(Job).where(*where).values(status=status, **values)).rowcount == 1
    if not moved:
        session.rollback()
        return None
    session.commit()
    publisher.publish(job_id, "status", {"status": status, "error": values.get("error"), "why": detail})
    if status is JobStatus.queued and dispatcher is not None:
        try:
            dispatcher.enqueue(job_id, ahead=True)  # it was queued before the jobs waiting now
        except Exception:
            pass  # the maintenance pass re-sends queued jobs the broker does not know
    return status


# the words an attempt's detail starts with when the kernel's count shows an out-of-memory kill
OUT_OF_MEMORY = "out of memory"


def _history(attempts: Sequence[JobAttempt], max_attempts: int) -> str:
    """Why the job was given up: each attempt and what ended it, and a memory hint only where memory is likely."""
    lines = "; ".join(f"attempt {a.number} on {a.worker}: {a.ended} ({a.detail})" for a in attempts)
    died = [a.detail or "" for a in attempts if a.ended is AttemptEnd.process_died]
    if any(d.startswith(OUT_OF_MEMORY) for d in died):
        hint = "; the training ran out of memory: try a smaller batch_size, image_size or max_train_samples"
    elif any("SIGKILL" in d for d in died):
        hint = ("; its process was killed (SIGKILL), which is often the kernel's out-of-memory killer: "
                "try a smaller batch_size or max_train_samples")
    else:
        hint = ""  # worker restarts and lost workers say nothing about the job's memory
    return f"given up after {max_attempts} attempts that crashed{hint}. {lines}"


def requeue_stale(
    session: Session, *, timeout_s: float, max_attempts: int, dispatcher: Dispatcher | None,
    publisher: Publisher = _QUIET,
) -> list[str]:
    """Requeue running jobs whose heartbeat is older than `timeout_s` (their worker is gone)."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    stale = session.execute(
        # jobs started before heartbeats existed have none: their progress time stands in
        select(Job.id, Job.worker).where(Job.status == JobStatus.running,
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
    ids = session.scalars(select(Job.id).where(Job.worker == worker, Job.status == JobStatus.running)).all()
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
    ids = session.scalars(select(Job.id).where(Job.status == JobStatus.queued,
                                               func.coalesce(Job.queued_at, Job.created_at) < cutoff)).all()
    session.rollback()
    lost = [job_id for job_id in ids if job_id not in known]
    for job_id in lost:
        dispatcher.enqueue(job_id, ahead=True)
    if lost:
        session.execute(update(Job).where(Job.id.in_(lost), Job.status == JobStatus.queued)
                        .values(queued_at=utcnow()))
        session.commit()
    return lost
