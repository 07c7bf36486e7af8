"""Sweeps measured: ASHA vs the full sweep, the sweep vs the same trials as separate jobs, 2 workers vs 1.

A 16-trial grid of the MNIST MLP (4 lrs x 2 batch sizes x 2 hidden sizes), each scenario on a fresh
private stack (tests/utils/stack.py: redis-server, SQLite, the API, N one-thread workers):

  full      the sweep without early stopping, one worker
  asha      the same sweep with ASHA (grace 1, reduction factor 3), one worker
  jobs      the same 16 trials POSTed to /v1/jobs at once, one worker
  full-2w   the sweep without early stopping, two workers (max_parallel 4)

Prints wall time, epochs trained, best trial's test accuracy, and the ratios; targets: ASHA <= 0.4x
the full sweep's time within 0.3 points of its best accuracy; two workers >= 1.7x the trials per minute.

    .venv/bin/python bench/sweep.py                                       # full data, 8 epochs
    .venv/bin/python bench/sweep.py --samples 4096 --epochs 4 --scenarios full,asha   # a quick check
    .venv/bin/python bench/sweep.py --course    # the course's cats-vs-dogs logistic-regression grid
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.utils.stack import Stack  # noqa: E402

GRID = {"lr": [0.1, 0.03, 0.01, 0.001], "batch_size": [64, 256], "hidden_sizes": [[128], [256, 64]]}
# the course exercise: logistic regression on cats vs dogs, lr x batch_size x epochs, best by val accuracy
COURSE = {"model": "logistic_regression", "dataset": "cats_dogs", "hyperparameters": {"image_size": 128},
          "search": {"grid": {"lr": [0.01, 0.001, 0.0001], "batch_size": [32, 64], "epochs": [5, 10]}},
          "metric": "val_accuracy", "max_parallel": 2}
DONE = {"succeeded", "failed", "cancelled", "stopped"}


def base(args) -> dict:
    hp = {"epochs": args.epochs, "max_eval_samples": args.max_eval}
    if args.samples:
        hp["max_train_samples"] = args.samples
    return {"model": "mlp", "dataset": "mnist", "hyperparameters": hp}


def sweep_request(args, *, asha: bool, max_parallel: int) -> dict:
    request = {**base(args), "search": {"grid": GRID}, "max_parallel": max_parallel}
    if asha:
        request["early_stopping"] = {"asha": {"grace_epochs": 1, "reduction_factor": 3}}
    return request


def wait_all(client: httpx.Client, job_ids: list[str], timeout_s: float) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = [client.get(f"/v1/jobs/{j}").json() for j in job_ids]
        if all(j["status"] in DONE for j in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.5)


def run_sweep(client: httpx.Client, request: dict, timeout_s: float) -> tuple[dict, list[dict]]:
    sweep = client.post("/v1/sweeps", json=request)
    assert sweep.status_code == 202, sweep.text
    sweep_id = sweep.json()["id"]
    deadline = time.monotonic() + timeout_s
    while True:
        done = client.get(f"/v1/sweeps/{sweep_id}").json()
        if done["status"] in ("succeeded", "failed", "cancelled") and done.get("counts", {}).get("running", 0) == 0:
            break
        assert time.monotonic() < deadline, f"sweep not done after {timeout_s}s"
        time.sleep(0.5)
    return done, wait_all(client, [t["job_id"] for t in done["trials"] if t["job_id"]], 60)


def run_jobs(client: httpx.Client, args, timeout_s: float) -> list[dict]:
    from ml.search import expand_grid

    ids = []
    for overrides in expand_grid(GRID):
        request = base(args)
        request["hyperparameters"] = {**request["hyperparameters"], **overrides}
        ids.append(client.post("/v1/jobs", json=request).json()["id"])
    return wait_all(client, ids, timeout_s)


def summary(name: str, seconds: float, jobs: list[dict], metric: str = "val_accuracy") -> dict:
    def best_value(job):
        return (job.get("best") or {}).get("metric", {}).get("value") or -1

    finished = [j for j in jobs if j["status"] == "succeeded"]
    best = max(finished, key=best_value) if finished else None
    epochs = sum((j.get("latest_metrics") or {}).get("epoch") or 0 for j in jobs)
    return {"scenario": name, "seconds": round(seconds, 1), "trials": len(jobs),
            "succeeded": len(finished), "stopped": sum(j["status"] == "stopped" for j in jobs),
            "epochs": epochs, "trials_per_min": round(len(jobs) / seconds * 60, 2),
            "best_val_accuracy": best_value(best) if best else None,
            "best_test_accuracy": (best.get("test_metrics") or {}).get("accuracy") if best else None,
            "best_hyperparameters": {k: best["hyperparameters"][k] for k in GRID} if best else None}


def scenario(name: str, args) -> dict:
    workers = 2 if name.endswith("-2w") else 1
    with tempfile.TemporaryDirectory(prefix=f"sweep-{name}-") as root:
        stack = Stack(Path(root))
        try:
            stack.start_redis()
            stack.start_api()
            for i in range(workers):
                stack.start_worker(f"bench-{i}@sweep")
            with httpx.Client(base_url=stack.url, timeout=60) as client:
                started = time.monotonic()
                if name == "jobs":
                    jobs = run_jobs(client, args, args.timeout)
                else:
                    _, jobs = run_sweep(client, sweep_request(args, asha=name == "asha",
                                                              max_parallel=2 * workers), args.timeout)
                return summary(name, time.monotonic() - started, jobs)
        finally:
            stack.close()


def course(args) -> None:
    """The course's grid as one sweep request; prints the leaderboard as a Markdown table."""
    with tempfile.TemporaryDirectory(prefix="sweep-course-") as root:
        stack = Stack(Path(root))
        try:
            stack.start_redis()
            stack.start_api()
            stack.start_worker("bench-course@sweep")
            with httpx.Client(base_url=stack.url, timeout=600) as client:
                started = time.monotonic()
                sweep, jobs = run_sweep(client, COURSE, args.timeout)
                seconds = time.monotonic() - started
        finally:
            stack.close()
    tests = {j["id"]: (j.get("test_metrics") or {}).get("accuracy") for j in jobs}
    print(f"cats_dogs logistic regression grid: {sweep['status']} in {seconds:.0f}s")
    print("| rank | lr | batch_size | epochs | best val accuracy (epoch) | test accuracy |")
    print("|---|---|---|---|---|---|")
    for rank, t in enumerate(sweep["trials"], start=1):
        hp = t["hyperparameters"]
        test = tests.get(t["job_id"])
        val = f"{t['metric']:.3f} ({t['epoch']})" if t["metric"] is not None else "—"
        print(f"| {rank} | {hp['lr']} | {hp['batch_size']} | {hp['epochs']} | {val} | "
              f"{f'{test:.3f}' if test is not None else '—'} |")
    print(json.dumps({"best": sweep["best"], "seconds": round(seconds, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--samples", type=int, default=None, help="max_train_samples (default: full data)")
    parser.add_argument("--max-eval", type=int, default=10_000, help="max_eval_samples")
    parser.add_argument("--scenarios", default="full,asha,jobs,full-2w")
    parser.add_argument("--timeout", type=float, default=3 * 3600)
    parser.add_argument("--course", action="store_true", help="run the cats-vs-dogs exercise instead")
    args = parser.parse_args()
    if args.course:
        course(args)
        return
    results = {}
    for name in args.scenarios.split(","):
        results[name] = scenario(name, args)
        print(json.dumps(results[name]), flush=True)
    full = results.get("full")
    if full and "asha" in results:
        asha = results["asha"]
        print(f"ASHA / full: time {asha['seconds'] / full['seconds']:.2f}x (target <= 0.4), best test accuracy "
              f"{100 * (asha['best_test_accuracy'] - full['best_test_accuracy']):+.2f} points (target >= -0.3)")
    if full and "jobs" in results:
        print(f"sweep / separate jobs: time {full['seconds'] / results['jobs']['seconds']:.2f}x")
    if full and "full-2w" in results:
        print(f"two workers / one: trials per minute {results['full-2w']['trials_per_min'] / full['trials_per_min']:.2f}x "
              "(target >= 1.7)")


if __name__ == "__main__":
    main()
