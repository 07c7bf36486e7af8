"""Helpers for registry and predict tests: train model versions through the service, draw uploads."""
from __future__ import annotations

import random
import time
from typing import Any

import httpx

from tests.ml.inference.drawn_digits import CANVASES, draw_digit, encode
from tests.utils.jobs import TINY_MNIST, submit, wait_for


def train_versions(client: httpx.Client, n: int, dataset_request: dict[str, Any] = TINY_MNIST) -> list[dict]:
    """Run `n` tiny jobs (seeds 1..n) through the worker; returns their registered model versions."""
    jobs = [submit(client, {**dataset_request, "hyperparameters": {**dataset_request["hyperparameters"],
                                                                    "seed": seed}})
            for seed in range(1, n + 1)]
    versions = []
    for job in jobs:
        wait_for(client, job["id"], "succeeded", timeout_s=300)
        versions.append(_registered(client, job))
    return versions


def _registered(client: httpx.Client, job: dict, timeout_s: float = 15.0) -> dict:
    # the worker registers the version right after it commits the job's success: allow that moment
    deadline = time.monotonic() + timeout_s
    while True:
        listed = client.get("/v1/models", params={"dataset": job["dataset"]}).json()["data"]
        found = [m for m in listed if m["job_id"] == job["id"]]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"job {job['id']} succeeded but no model version was registered"
        time.sleep(0.05)


def digit_png(digit: int = 7, seed: int = 0) -> bytes:
    """A small PNG of a handwritten-looking digit, dark on white."""
    return encode(draw_digit(digit, random.Random(seed), CANVASES[0]).resize((100, 100)))


def predict(client: httpx.Client, dataset: str, files: list[tuple[str, bytes]], **form: Any) -> httpx.Response:
    """POST /v1/predict/{dataset} with multipart `files`."""
    return client.post(f"/v1/predict/{dataset}", files=[("files", (name, data)) for name, data in files],
                       data={k: str(v) for k, v in form.items()})


def wait_until_serving(client: httpx.Client, dataset: str, model_id: int, timeout_s: float = 10.0) -> dict:
    """Predict until the answer comes from `model_id` (the API checks the registry every second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = predict(client, dataset, [("d.png", digit_png())])
        assert response.status_code == 200, response.text
        if response.json()["model"]["id"] == model_id:
            return response.json()
        assert time.monotonic() < deadline, f"model {model_id} did not start serving within {timeout_s}s"
        time.sleep(0.1)
