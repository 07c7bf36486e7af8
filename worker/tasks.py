"""The one Celery task: a thin wrapper that hands a job id to the runner."""
from __future__ import annotations

import socket

from core.logs import job_context
from core.queue import TRAIN_TASK
from worker.app import celery_app
from worker.runner import run_job


@celery_app.task(name=TRAIN_TASK, bind=True, acks_late=True)
def train_job(self, job_id: str) -> dict:
    """Run the job `job_id` if it is still queued; returns what happened (for logs and tests)."""
    with job_context(str(job_id)):  # every log record of the run carries the job id
        return run_job(str(job_id), worker=self.request.hostname or socket.gethostname())
