"""Workers alone keep the lifecycle honest: with no API process, a worker parent runs the maintenance pass,
so a job whose worker vanished is requeued and trained by the worker that is left."""
from __future__ import annotations

import time

import pytest

from core import jobs
from core.db import session_scope
from core.orm import JobStatus
from core.version import code_version
from ml.config import resolve_config
from tests.utils.stack import Stack

pytestmark = pytest.mark.service


class Lost:
    """A broker that loses the id (the maintenance pass re-sends it only once the job is stale anyway)."""

    def enqueue(self, job_id: str, *, ahead: bool = False) -> None:
        pass


def test_a_worker_without_an_api_requeues_a_job_whose_worker_vanished(tmp_path):
    stack = Stack(tmp_path)
    try:
        stack.start_redis()
        config = resolve_config("linear_regression", "synthetic_linear", {"epochs": 2, "batch_size": 32})
        with session_scope(stack.database_url) as session:
            job, _ = jobs.submit(session, config=config.model_dump(mode="json"), dispatcher=Lost())
            job_id = job.id
        with session_scope(stack.database_url) as session:  # a worker that is gone took it and never beat
            assert jobs.start(session, job_id=job_id, worker="ghost@gone", code_version=code_version()) is not None
        stack.start_worker("alone@%h")
        deadline = time.monotonic() + 120
        while True:
            with session_scope(stack.database_url) as session:
                job = jobs.get_job(session, job_id=job_id)
                attempts = jobs.list_attempts(session, job_id=job_id) if job.status == JobStatus.succeeded else []
            if job.status == JobStatus.succeeded:
                break
            assert time.monotonic() < deadline, job.status
            time.sleep(0.2)
        assert [a.worker for a in attempts][0] == "ghost@gone" and attempts[-1].worker.startswith("alone@")
    finally:
        stack.close()
