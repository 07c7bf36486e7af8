"""The service's figures from SQL, for /metrics: jobs by status, attempts and resumes, speed per worker.

SQL is the source of truth for jobs, so these are right whichever process asks and however many
API processes there are; the API turns them into Prometheus gauges at scrape time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.orm import Job, JobAttempt, JobStatus


@dataclass
class Figures:
    jobs_by_status: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    resumed_attempts: int = 0
    # worker name -> samples/s of the job it is running now
    samples_per_second: dict[str, float] = field(default_factory=dict)


def service_figures(session: Session) -> Figures:
    """Counts by status (every status, zeros too), attempts, resumed attempts, running jobs' speed per worker."""
    counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    attempts, resumed = session.execute(
        select(func.count(JobAttempt.id), func.count(JobAttempt.resumed_from_epoch))).one()
    speeds = session.execute(select(Job.worker, func.sum(Job.samples_per_second)).where(
        Job.status == JobStatus.running, Job.worker.is_not(None)).group_by(Job.worker)).all()
    return Figures(jobs_by_status={str(s): int(counts.get(s, 0)) for s in JobStatus},
                   attempts=int(attempts or 0), resumed_attempts=int(resumed or 0),
                   samples_per_second={w: float(v or 0.0) for w, v in speeds})
