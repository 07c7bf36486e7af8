"""Jobs survive what kills processes: real workers, a real redis-server and the API, killed for real.

Each test runs on a private stack (tests/utils/stack.py) with second-scale heartbeats and
MAX_ATTEMPTS=2, so it can kill, restart and wipe without touching the session's fixtures.
"""
from __future__ import annotations

import os
import re
import signal
import time

import httpx
import pytest

from tests.utils.jobs import submit, wait_for
from tests.utils.stack import Stack

pytestmark = [pytest.mark.service, pytest.mark.slow]

EPOCHS = 4
# ~1-2 s epochs on a busy CPU: long enough to be killed mid-epoch, short enough for CI
CRASHY = {"model": "mlp", "dataset": "mnist",
          "hyperparameters": {"epochs": EPOCHS, "max_train_samples": 16384, "batch_size": 8, "hidden_sizes": [32],
                              "max_eval_samples": 1000}}
# the worker parent usually reports a dead pool child at once (process_died); on a loaded machine the
# heartbeat timeout may notice first (worker_lost). Either way the job is requeued and resumes.
CRASH = {"process_died", "worker_lost"}
QUICK = {"model": "linear_regression", "dataset": "synthetic_linear", "hyperparameters": {"epochs": 2, "batch_size": 32}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("stack"))
    s.start_redis()
    s.start_api()
    yield s
    s.close()


def wait_mid_epoch(client: httpx.Client, job_id: str, epoch: int = 2, timeout_s: float = 120) -> dict:
    """Wait until the job is inside `epoch` (so earlier epochs are checkpointed), on its latest attempt."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        p = job["progress"]
        if job["status"] == "running" and (p["epoch"] or 0) >= epoch and p["batch"] and p["batch"] < p["batches"]:
            return job
        assert job["status"] in ("queued", "running"), job
        assert time.monotonic() < deadline, f"job never reached epoch {epoch}: {job}"
        time.sleep(0.02)


def assert_each_epoch_once(client: httpx.Client, job_id: str) -> list[dict]:
    rows = client.get(f"/v1/jobs/{job_id}/metrics").json()["data"]
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    return rows


def test_killed_training_process_resumes_and_matches_an_undisturbed_run(stack, api):
    worker = stack.start_worker("crash-a@test")
    try:
        job = submit(api, CRASHY)
        wait_mid_epoch(api, job["id"])
        os.kill(worker.child(), signal.SIGKILL)
        done = wait_for(api, job["id"], "succeeded", timeout_s=180)
        attempts = done["attempts"]
        assert attempts[0]["ended"] in CRASH and attempts[1]["ended"] == "succeeded" and len(attempts) == 2
        assert attempts[1]["resumed_from_epoch"] >= 1
        resumed = assert_each_epoch_once(api, job["id"])

        undisturbed = wait_for(api, submit(api, CRASHY)["id"], "succeeded", timeout_s=180)
        # CPU, same seed: the resumed run is the same run
        assert done["test_metrics"]["accuracy"] == undisturbed["test_metrics"]["accuracy"]
        straight = assert_each_epoch_once(api, undisturbed["id"])
        assert [r["val_loss"] for r in resumed] == [r["val_loss"] for r in straight]
    finally:
        stack.kill_tree(worker)


def start_then_lose_the_worker(stack: Stack, api: httpx.Client, name: str) -> dict:
    """Submit a job to a new worker `name` and SIGKILL that worker's whole tree mid-epoch."""
    worker = stack.start_worker(name)
    job = submit(api, CRASHY)
    wait_mid_epoch(api, job["id"])
    stack.kill_tree(worker)
    return job


def test_a_worker_killed_with_its_pool_is_resumed_by_a_new_worker_of_the_same_name(stack, api):
    job = start_then_lose_the_worker(stack, api, "crash-b@test")
    # the same node name comes back (a restarted process): it requeues its old run when ready,
    # unless the heartbeat timeout (3 s here) noticed first; both paths resume
    again = stack.start_worker("crash-b@test")
    try:
        done = wait_for(api, job["id"], "succeeded", timeout_s=180)
        assert [a["ended"] for a in done["attempts"]] in (["worker_restarted", "succeeded"],
                                                          ["worker_lost", "succeeded"])
        assert done["attempts"][1]["resumed_from_epoch"] >= 1
        assert_each_epoch_once(api, job["id"])
    finally:
        stack.kill_tree(again)


def test_an_abandoned_job_is_requeued_after_the_heartbeat_timeout_and_runs_under_another_name(stack, api):
    # the machine is gone; a recreated container has a new hostname
    job = start_then_lose_the_worker(stack, api, "crash-c@old-host")
    frozen = api.get(f"/v1/jobs/{job['id']}").json()
    assert frozen["status"] == "running"
    other = stack.start_worker("crash-c@new-host")
    try:
        done = wait_for(api, job["id"], "succeeded", timeout_s=180)
        first, second = done["attempts"]
        assert first["ended"] == "worker_lost" and "not seen" in first["detail"]
        assert second["worker"] == "crash-c@new-host" and second["resumed_from_epoch"] >= 1
        assert_each_epoch_once(api, job["id"])
    finally:
        stack.kill_tree(other)


def test_a_job_killed_max_attempts_times_fails_with_its_history(stack, api):
    worker = stack.start_worker("crash-d@test")
    try:
        job = submit(api, CRASHY)
        for attempt in (1, 2):  # MAX_ATTEMPTS=2 on this stack
            deadline = time.monotonic() + 120
            while len(api.get(f"/v1/jobs/{job['id']}").json()["attempts"]) < attempt:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            wait_mid_epoch(api, job["id"], epoch=1)
            os.kill(worker.child(), signal.SIGKILL)
        failed = wait_for(api, job["id"], "failed", timeout_s=60)
        assert failed["error_type"] == "TooManyAttempts"
        assert re.search(r"attempt 1 on crash-d@test: (process_died|worker_lost) \(", failed["error"])
        assert re.search(r"attempt 2 on crash-d@test: (process_died|worker_lost) \(", failed["error"])
        assert [a["ended"] in CRASH for a in failed["attempts"]] == [True, True]
        for attempt in failed["attempts"]:  # the pool child was SIGKILLed: the attempt says so
            if attempt["ended"] == "process_died":
                assert "killed by SIGKILL" in attempt["detail"] or attempt["detail"].startswith("out of memory")
    finally:
        stack.kill_tree(worker)


def test_sigterm_to_the_worker_parent_requeues_the_job_at_a_batch_boundary(stack, api):
    worker = stack.start_worker("crash-e@test")
    job = submit(api, CRASHY)
    wait_mid_epoch(api, job["id"])
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)  # `docker stop`: the parent only
    assert worker.process.wait(timeout=30) == 0
    assert time.monotonic() - started < 15  # it did not wait for the whole job
    stopped = api.get(f"/v1/jobs/{job['id']}").json()
    assert stopped["status"] == "queued" and stopped["attempts"][0]["ended"] == "worker_stopped"
    again = stack.start_worker("crash-e@test")
    try:
        done = wait_for(api, job["id"], "succeeded", timeout_s=180)
        stopped, resumed = done["attempts"]
        assert stopped["ended"] == "worker_stopped" and "checkpointed there" in stopped["detail"]
        # it continued at the batch where it stopped: no work lost
        assert resumed["resumed_from_epoch"] >= 1 and resumed["resumed_from_batch"] > 0
        # one convention: the stop's sentence counts the work done, as the resumed_from_* fields do
        epochs, batches = resumed["resumed_from_epoch"], resumed["resumed_from_batch"]
        said = re.search(r"stopped after (\d+) epochs? and (\d+) batch(es)? of epoch (\d+);", stopped["detail"])
        assert said and [int(said[1]), int(said[2]), int(said[4])] == [epochs, batches, epochs + 1], stopped["detail"]
        assert_each_epoch_once(api, job["id"])
    finally:
        stack.kill_tree(again)


def test_a_job_requeued_by_a_graceful_stop_runs_before_jobs_submitted_after_it(stack, api):
    worker = stack.start_worker("crash-g@test")
    first = submit(api, CRASHY)
    wait_mid_epoch(api, first["id"], epoch=1)
    later = [submit(api, {**QUICK, "hyperparameters": {**QUICK["hyperparameters"], "seed": s}})["id"]
             for s in (11, 12)]  # queued behind the running job on a one-slot worker
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0
    assert api.get(f"/v1/jobs/{first['id']}").json()["status"] == "queued"
    again = stack.start_worker("crash-g@test")
    try:
        resumed = wait_for(api, first["id"], "succeeded", timeout_s=180)["attempts"][-1]
        for job_id in later:
            (attempt,) = wait_for(api, job_id, "succeeded", timeout_s=120)["attempts"]
            # it kept its place: the later jobs waited for it instead of going first
            assert attempt["started_at"] > resumed["ended_at"], (resumed, attempt)
    finally:
        stack.kill_tree(again)


@pytest.mark.parametrize("wipe", [False, True], ids=["redis-restarted", "redis-restarted-empty"])
def test_queued_jobs_run_after_redis_restarts(stack, api, wipe):
    ids = [submit(api, {**QUICK, "hyperparameters": {**QUICK["hyperparameters"], "seed": s}})["id"]
           for s in range(3)]
    stack.stop_redis(signal.SIGKILL if wipe else signal.SIGTERM)
    stack.start_redis(wipe=wipe)  # wiped: the jobs are `queued` in SQL only; reconciliation re-sends them
    worker = stack.start_worker("crash-f@test")
    try:
        for job_id in ids:
            assert wait_for(api, job_id, "succeeded", timeout_s=120)["status"] == "succeeded"
    finally:
        stack.kill_tree(worker)
