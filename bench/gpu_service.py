"""The CUDA path through the whole service: a private stack (redis-server, SQLite, the API, one worker with
WORKER_GPUS=0) trains full-MNIST jobs on the GPU, then predict serves the result. Run by bench/gpu_smoke.sh
as its last step; prints JSON lines and the worker's log tail (which names the GPU the pool child took).

    DATA_DIR=../shared/data python bench/gpu_service.py [--epochs 2] [--models cnn mlp]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.utils.jobs import submit, wait_for  # noqa: E402
from tests.utils.models import digit_png, predict  # noqa: E402
from tests.utils.stack import Stack  # noqa: E402

# predict is measured, not rate-limited
UNLIMITED = {"WORKER_GPUS": "0", "PREDICT_RATE_PER_S": "10000", "PREDICT_BURST": "10000"}


def time_job(api, config: dict) -> dict:
    """Submit one job and time it to running and to its end."""
    start = time.monotonic()
    job = submit(api, config)
    wait_for(api, job["id"], "running", timeout_s=120)
    running = time.monotonic()
    done = wait_for(api, job["id"], timeout_s=600)
    return {"check": "job", "model": config["model"], "status": done["status"], "error": done.get("error"),
            "post_to_running_s": round(running - start, 2), "post_to_end_s": round(time.monotonic() - start, 2),
            "latest_metrics": done.get("latest_metrics")}


def time_predict(api, requests: int = 50, warmup: int = 10) -> dict:
    """One digit per request, p50 after a warm-up, then 32 digits in one request five times."""
    one = digit_png(7)
    latencies = []
    for _ in range(requests):
        start = time.perf_counter()
        response = predict(api, "mnist", [("d.png", one)])
        latencies.append(time.perf_counter() - start)
    files = [(f"d{i}.png", digit_png(i % 10, i)) for i in range(32)]
    batch_ms = []
    for _ in range(5):
        start = time.perf_counter()
        batch = predict(api, "mnist", files)
        batch_ms.append(round((time.perf_counter() - start) * 1000, 1))
    labels = [p["label"] for p in batch.json()["predictions"]]
    return {"check": "predict", "status": response.status_code,
            "one_digit_p50_ms": round(statistics.median(latencies[warmup:]) * 1000, 2),
            "thirty_two_digits_ms": batch_ms, "thirty_two_right": sum(l == str(i % 10) for i, l in enumerate(labels))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["cnn", "mlp"], choices=["cnn", "mlp"])
    args = parser.parse_args()
    stack = Stack(Path(tempfile.mkdtemp(prefix="gpu-service-")), extra_env=UNLIMITED)
    try:
        stack.start_redis()
        stack.start_api()
        stack.start_worker("gpu@bench")
        with stack.client() as api:
            for model in args.models:
                print(json.dumps(time_job(api, {"model": model, "dataset": "mnist",
                                                "hyperparameters": {"epochs": args.epochs}}), default=str), flush=True)
            print(json.dumps(time_predict(api)), flush=True)
        print("--- worker log tail")
        print(stack.workers[0].log_text()[-2500:])
    finally:
        stack.close()


if __name__ == "__main__":
    main()
