"""The event stream reports a run as it happens and ends with its terminal status."""
from __future__ import annotations

import pytest

from tests.utils.jobs import TINY_MNIST, read_events, submit, wait_for

pytestmark = pytest.mark.service


def test_stream_of_a_live_job_ends_with_the_terminal_status(service):
    job = submit(service, {**TINY_MNIST, "hyperparameters": {**TINY_MNIST["hyperparameters"], "epochs": 3}})
    events = read_events(service, job["id"])
    kinds = [k for k, _ in events]
    assert kinds[-1] == "status" and events[-1][1]["status"] == "succeeded"
    assert [d["epoch"] for k, d in events if k == "epoch"] == [1, 2, 3]
    assert "progress" in kinds and "checkpoint" in kinds
    progress = [d for k, d in events if k == "progress"]
    assert all(0.0 <= p["fraction"] <= 1.0 and p["epochs"] == 3 for p in progress)
    terminal = [d for k, d in events if k == "status" and d["status"] in ("succeeded", "failed", "cancelled")]
    assert len(terminal) == 1


def test_stream_of_a_finished_job_replays_its_epochs_and_ends(service):
    job = submit(service, TINY_MNIST)
    wait_for(service, job["id"], "succeeded")
    events = read_events(service, job["id"], timeout_s=10)
    assert [d["epoch"] for k, d in events if k == "epoch"] == [1, 2]
    assert events[-1] == ("status", {"status": "succeeded", "error": None})
