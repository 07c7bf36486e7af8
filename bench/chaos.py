"""Kill workers at random moments and count what is lost: nothing, if the job lifecycle holds.

Runs each of N small jobs twice, interleaved so machine load hits both alike: undisturbed, then
again (same seed) killed once at a random moment of its run — its pool child (SIGKILL, as an OOM
kill does) and the whole worker (SIGKILL of the process tree, then a new worker) alternating.
Prints jobs succeeded / lost / epochs run twice, whether the final metrics equal the undisturbed
run's, and the wall-time cost of the kills.
Targets: N / 0 / 0, cost ≤ one epoch per kill (worker restarts counted apart).

    .venv/bin/python bench/chaos.py [--jobs 10] [--epochs 4] [--samples 16384]

Starts its own private stack (tests/utils/stack.py: redis-server, SQLite, the API, one worker).
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.utils.stack import Stack, Worker  # noqa: E402

WORKER = "chaos@bench"


def request(seed: int, epochs: int, samples: int) -> dict:
    return {"model": "mlp", "dataset": "mnist",
            "hyperparameters": {"epochs": epochs, "max_train_samples": samples, "batch_size": 8,
                                "hidden_sizes": [32], "max_eval_samples": 1000, "seed": seed}}


def wait_status(client: httpx.Client, job_id: str, statuses: set[str], timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses or time.monotonic() > deadline:
            return job
        time.sleep(0.02)


def run_undisturbed(client: httpx.Client, req: dict) -> tuple[float, dict]:
    """Seconds from running to succeeded, and the finished job."""
    job = client.post("/v1/jobs", json=req).json()
    wait_status(client, job["id"], {"running"})
    started = time.monotonic()
    done = wait_status(client, job["id"], {"succeeded", "failed", "cancelled"})
    return time.monotonic() - started, done


def kill(stack: Stack, worker: Worker, whole_tree: bool) -> None:
    """SIGKILL the pool child (as an OOM kill does), or the worker with its pool (the machine is gone)."""
    if whole_tree:
        stack.kill_tree(worker)
    else:
        os.kill(worker.child(), signal.SIGKILL)


def run_killed(stack: Stack, client: httpx.Client, req: dict, after_s: float, whole_tree: bool,
               ) -> tuple[float, float, dict, int]:
    """The job killed once after `after_s`; (seconds to succeeded, worker restart seconds, job, epochs run twice)."""
    job = client.post("/v1/jobs", json=req).json()
    wait_status(client, job["id"], {"running"})
    started = time.monotonic()
    time.sleep(after_s)
    kill(stack, stack.workers[-1], whole_tree)
    finished_before_kill = len(client.get(f"/v1/jobs/{job['id']}/metrics").json()["data"])
    restart_s = 0.0
    if whole_tree:  # a new worker under the same name, as a restarted service would be
        restart_started = time.monotonic()
        stack.start_worker(WORKER)
        restart_s = time.monotonic() - restart_started
    final = wait_status(client, job["id"], {"succeeded", "failed", "cancelled"})
    twice = 0
    if len(final["attempts"]) > 1:  # else the kill came after the job's end and hit an idle process
        twice = max(0, finished_before_kill - (final["attempts"][1]["resumed_from_epoch"] or 0))
    return time.monotonic() - started, restart_s, final, twice


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    reqs = [request(seed, args.epochs, args.samples) for seed in range(args.jobs)]
    stack = Stack(Path(tempfile.mkdtemp(prefix="chaos-")), extra_env={"MAX_ATTEMPTS": "3"})
    try:
        stack.start_redis()
        stack.start_api()
        stack.start_worker(WORKER)
        rng = random.Random(args.seed)
        calm_s, calm, hit_s, restarts, hit, twice = [], [], [], [], [], 0
        with stack.client() as client:
            for i, req in enumerate(reqs):  # interleaved, so machine load hits both runs of a job alike
                seconds, job = run_undisturbed(client, req)
                calm_s.append(seconds)
                calm.append(job)
                seconds, restart_s, job, again = run_killed(stack, client, req, rng.uniform(0.15, 0.85) * seconds,
                                                            whole_tree=i % 2 == 1)
                hit_s.append(seconds)
                hit.append(job)
                restarts.append(restart_s)
                twice += again
            epoch_s = statistics.median(r["seconds"] for j in calm
                                        for r in client.get(f"/v1/jobs/{j['id']}/metrics").json()["data"])
    finally:
        stack.close()
    report(args.jobs, calm, calm_s, hit, hit_s, restarts, twice, epoch_s)
    return 0


def report(n: int, calm: list[dict], calm_s: list[float], hit: list[dict], hit_s: list[float],
           restarts: list[float], twice: int, epoch_s: float) -> None:
    succeeded = sum(j["status"] == "succeeded" for j in hit)
    same = sum(a["test_metrics"] == b["test_metrics"] for a, b in zip(calm, hit) if b["status"] == "succeeded")
    cost = sum(hit_s) - sum(calm_s)
    lost_work = cost - sum(restarts)
    print(f"jobs: {n}, each killed once (pool child and whole worker alternating)")
    print(f"succeeded {succeeded} / lost {n - succeeded} / epochs run twice {twice}; "
          f"final metrics equal to the undisturbed run: {same}/{succeeded}")
    print(f"wall time undisturbed {sum(calm_s):.1f} s, with kills {sum(hit_s):.1f} s: cost {cost:.1f} s "
          f"({cost / n:.2f} s per kill), of which {sum(r > 0 for r in restarts)} worker restarts {sum(restarts):.1f} s")
    print(f"cost per kill without worker restarts: {lost_work / n:.2f} s; one epoch: {epoch_s:.2f} s "
          f"→ {lost_work / n / epoch_s:.2f} epochs per kill")


if __name__ == "__main__":
    sys.exit(main())
