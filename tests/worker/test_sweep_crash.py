"""A sweep survives a worker killed mid-trial: the trial resumes on another worker and every trial finishes.

Runs on a private stack (tests/utils/stack.py) with second-scale heartbeats, like the job crash tests.
"""
from __future__ import annotations

import pytest

from tests.utils.stack import Stack
from tests.utils.sweeps import create_sweep, wait_sweep
from tests.worker.test_crashes import CRASHY, wait_mid_epoch

pytestmark = [pytest.mark.service, pytest.mark.slow]

EPOCHS = 3


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path)
    s.start_redis()
    s.start_api()
    yield s
    s.close()


def test_a_worker_killed_mid_sweep_loses_no_trial(stack):
    first = stack.start_worker("sweep-a@test")
    with stack.client() as api:
        hp = {**CRASHY["hyperparameters"], "epochs": EPOCHS, "max_train_samples": 8192}
        sweep = create_sweep(api, {"model": "mlp", "dataset": "mnist", "hyperparameters": hp,
                                   "search": {"grid": {"lr": [0.1, 0.05, 0.02]}}, "max_parallel": 1})
        victim = next(t["job_id"] for t in sweep["trials"] if t["job_id"])
        wait_mid_epoch(api, victim)
        stack.kill_tree(first)  # the machine is gone: no one reports it; the heartbeat timeout notices
        second = stack.start_worker("sweep-b@other-host")
        try:
            done = wait_sweep(api, sweep["id"], timeout_s=300)
        finally:
            stack.kill_tree(second)
        assert done["status"] == "succeeded" and done["counts"] == {"succeeded": 3}, done
        resumed = api.get(f"/v1/jobs/{victim}").json()
        assert [a["ended"] for a in resumed["attempts"]] == ["worker_lost", "succeeded"]
        assert resumed["attempts"][1]["resumed_from_epoch"] >= 1
        for trial in done["trials"]:
            rows = api.get(f"/v1/jobs/{trial['job_id']}/metrics").json()["data"]
            assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
