"""A job's heartbeat stops before its final write, so a job that ends is never called lost by its own worker."""
from __future__ import annotations

import pytest

from tests.utils.jobs import TINY_LINEAR, submit, wait_for
from tests.utils.stack import Stack

pytestmark = [pytest.mark.service, pytest.mark.slow]

# the fastest beat the settings allow (50 ms): now and then one lands in the moment a job ends
BEATING = {"HEARTBEAT_INTERVAL_S": "0.05", "HEARTBEAT_TIMEOUT_S": "3"}


def test_a_job_that_ends_is_not_lost_to_its_own_heartbeat(tmp_path):
    stack = Stack(tmp_path, extra_env=BEATING)
    try:
        stack.start_redis()
        stack.start_api()
        worker = stack.start_worker("beating@test")
        with stack.client() as api:
            ids = [submit(api, TINY_LINEAR)["id"] for _ in range(20)]
            done = [wait_for(api, job_id, timeout_s=120) for job_id in ids]
        assert [job["status"] for job in done] == ["succeeded"] * len(ids)
        assert all(len(job["attempts"]) == 1 for job in done)
        log = worker.log_text()
        assert "no longer this worker's" not in log, log[-3000:]
        assert "heartbeat of job" not in log, log[-3000:]  # fast beats and no failed one
    finally:
        stack.close()
