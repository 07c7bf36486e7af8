"""Helpers for tests that submit jobs: tiny configs, submit, wait, read events."""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from core.db import session_scope
from core.orm import AttemptEnd, EpochMetric, Job, JobAttempt, JobStatus, utcnow

TERMINAL = {"succeeded", "failed", "cancelled", "stopped"}

# small enough to train in a second or two on CPU, big enough to have a few batches per epoch
TINY_MNIST = {"model": "mlp", "dataset": "mnist",
              "hyperparameters": {"epochs": 2, "max_train_samples": 512, "batch_size": 64,
                                  "hidden_sizes": [32]}}
# long enough to still be running when a test acts on it (minutes of small batches): the test cancels it
LONG_MNIST = {"model": "mlp", "dataset": "mnist",
              "hyperparameters": {"epochs": 200, "max_train_samples": 2048, "batch_size": 8, "hidden_sizes": [64]}}
TINY_LINEAR = {"model": "linear_regression", "dataset": "synthetic_linear",
               "hyperparameters": {"epochs": 2, "batch_size": 32}}


def submit(client: httpx.Client, request: dict[str, Any], **headers: str) -> dict[str, Any]:
    """POST /v1/jobs and return the job; fails the test unless it was accepted."""
    response = client.post("/v1/jobs", json=request, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


def wait_for(client: httpx.Client, job_id: str, statuses: set[str] | str = TERMINAL,
             timeout_s: float = 120.0, poll_s: float = 0.05) -> dict[str, Any]:
    """Poll GET /v1/jobs/{id} until its status is one of `statuses`; returns the job."""
    statuses = {statuses} if isinstance(statuses, str) else statuses
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        if job["status"] in TERMINAL:
            raise AssertionError(f"job ended {job['status']} while waiting for {statuses}: {job.get('error')}")
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s}s")
        time.sleep(poll_s)


def read_events(client: httpx.Client, job_id: str, timeout_s: float = 120.0,
                on_event: Callable[[list[tuple[str, dict]]], None] | None = None) -> list[tuple[str, dict]]:
    """Read the job's SSE stream to its end; returns (event, data) pairs."""
    return read_stream(client, f"/v1/jobs/{job_id}/events", timeout_s, on_event)


def read_stream(client: httpx.Client, path: str, timeout_s: float = 120.0,
                on_event: Callable[[list[tuple[str, dict]]], None] | None = None) -> list[tuple[str, dict]]:
    """Read an SSE stream (a job's or a sweep's) to its end; returns (event, data) pairs.

    `on_event` is called with the events so far after each one arrives (e.g. to act once subscribed)."""
    events: list[tuple[str, dict]] = []
    kind = None
    with client.stream("GET", path, timeout=timeout_s) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind is not None:
                events.append((kind, json.loads(line.split(":", 1)[1].strip())))
                kind = None
                if on_event is not None:
                    on_event(events)
    return events


def add_finished_jobs(url: str, n: int, *, owner: str, epochs: int = 5) -> None:
    """Straight into the database: `n` succeeded jobs of `owner`, each with two attempts and `epochs`
    epoch rows (best: the middle one)."""
    now = utcnow()
    with session_scope(url) as session:
        for i in range(n):
            job = Job(id=str(uuid.uuid4()), model="mlp", dataset="mnist", seed=i, owner=owner,
                      config={"model": "mlp", "dataset": "mnist", "hyperparameters": {"epochs": epochs}},
                      status=JobStatus.succeeded, created_at=now - timedelta(seconds=i), best_epoch=epochs // 2 + 1,
                      best_metric={"name": "val_accuracy", "value": 0.9})
            job.attempts = [JobAttempt(number=k, worker="w", started_at=now, ended_at=now,
                                       ended=AttemptEnd.worker_lost if k == 1 else AttemptEnd.succeeded)
                            for k in (1, 2)]
            job.epoch_metrics = [EpochMetric(epoch=e, train_loss=1.0 / e, val_accuracy=0.8 + e / 100, lr=0.1,
                                             seconds=1.0, samples_per_second=100.0) for e in range(1, epochs + 1)]
            session.add(job)
        session.commit()
