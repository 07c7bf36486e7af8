"""Helpers for tests that run sweeps: tiny trial bases, create, wait, read events."""
from __future__ import annotations

import time
from typing import Any

import httpx

SWEEP_DONE = {"succeeded", "failed", "cancelled"}
TRIAL_DONE = {"succeeded", "failed", "cancelled", "stopped"}

# a trial small enough to train in a second or two on one thread
TINY_TRIAL = {"epochs": 2, "max_train_samples": 512, "max_eval_samples": 500, "batch_size": 64,
              "hidden_sizes": [32]}


def create_sweep(client: httpx.Client, request: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/sweeps and return the sweep; fails the test unless it was accepted."""
    response = client.post("/v1/sweeps", json=request)
    assert response.status_code == 202, response.text
    return response.json()


def wait_sweep(client: httpx.Client, sweep_id: str, timeout_s: float = 180.0) -> dict[str, Any]:
    """Poll until the sweep is finished and none of its trials is still queued or running."""
    deadline = time.monotonic() + timeout_s
    while True:
        sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
        if sweep["status"] in SWEEP_DONE and all(t["status"] in TRIAL_DONE | {"cancelled"} for t in sweep["trials"]):
            return sweep
        assert time.monotonic() < deadline, f"sweep {sweep_id} not done after {timeout_s}s: {sweep}"
        time.sleep(0.1)
