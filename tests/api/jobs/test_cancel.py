"""Cancelling: a running job stops within a batch and keeps its checkpoint; a queued one never starts."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.utils.jobs import LONG_MNIST, TINY_MNIST, submit, wait_for

pytestmark = pytest.mark.service


def test_cancel_running_then_queued_job(service, worker, db_session):
    running = submit(service, LONG_MNIST)
    wait_for(service, running["id"], "running")
    # wait for the first checkpoint, which the cancelled job must keep
    deadline = time.monotonic() + 120
    while not service.get(f"/v1/jobs/{running['id']}/checkpoints").json()["data"]:
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.1)

    live = service.get(f"/v1/jobs/{running['id']}").json()
    progress = live["progress"]
    assert live["status"] == "running" and progress["epochs"] == 200 and progress["epoch"] >= 1
    assert 0 < progress["fraction"] < 1 and progress["eta_seconds"] > 0 and progress["samples_per_second"] > 0
    assert live["latest_metrics"]["epoch"] >= 1 and live["best"]["epoch"] >= 1

    # the worker is busy, so this one waits in the queue (prefetch disabled: not reserved by it)
    queued = submit(service, TINY_MNIST)
    time.sleep(0.5)
    assert service.get(f"/v1/jobs/{queued['id']}").json()["status"] == "queued"
    cancelled_queued = service.post(f"/v1/jobs/{queued['id']}/cancel")
    assert cancelled_queued.status_code == 200
    assert cancelled_queued.json()["status"] == "cancelled"

    asked = time.monotonic()
    response = service.post(f"/v1/jobs/{running['id']}/cancel")
    assert response.status_code == 202 and response.json()["cancel_requested_at"]
    done = wait_for(service, running["id"], "cancelled", timeout_s=30, poll_s=0.02)
    stop_s = time.monotonic() - asked
    # one batch of 8 samples takes milliseconds: well within a second, allowing for a busy machine
    assert stop_s < 3.0, f"took {stop_s:.2f}s to stop"
    assert done["progress"]["epoch"] < 200
    assert "cancelled on request" in done["error"] and "is kept" in done["error"]
    checkpoints = service.get(f"/v1/jobs/{running['id']}/checkpoints").json()["data"]
    assert checkpoints
    for ckpt in checkpoints:
        assert service.get(ckpt["download_url"]).status_code == 200

    # the queued job's message reaches the worker now, and is dropped there
    deadline = time.monotonic() + 30
    while f"job {queued['id']} not started" not in worker.log_text():
        assert time.monotonic() < deadline, "the worker never saw the cancelled job's message"
        time.sleep(0.1)
    never = service.get(f"/v1/jobs/{queued['id']}").json()
    assert never["status"] == "cancelled" and never["started_at"] is None and never["worker"] is None
    assert service.get(f"/v1/jobs/{queued['id']}/metrics").json()["count"] == 0

    # cancelling again is harmless; cancelling a finished job is refused
    assert service.post(f"/v1/jobs/{running['id']}/cancel").status_code == 200


def test_cancel_finished_job_is_409(service):
    job = submit(service, TINY_MNIST)
    wait_for(service, job["id"], "succeeded")
    response = service.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 409 and "succeeded" in response.json()["detail"]
