"""The pretrained photo model through the service: an uploaded zip trains in head mode (its event stream
shows the feature extraction), a second job reuses the cached features (its record says so), and the
predict route serves it."""
from __future__ import annotations

import random

import pytest

from tests.utils.jobs import read_events, submit, wait_for
from tests.utils.shapes import SHAPES, draw, png, shapes_zip

pytestmark = pytest.mark.service

SMALL = {"image_size": 64, "epochs": 20}  # 64 px: the backbone costs a twelfth of its 224 px forward


def test_uploaded_shapes_train_in_head_mode_reuse_the_features_and_are_served(service):
    response = service.post("/v1/datasets", data={"name": "drawn"}, timeout=120,
                            files={"file": ("drawn.zip", shapes_zip(per_class=20), "application/octet-stream")})
    assert response.status_code == 201, response.text
    assert "efficientnet_lite0" in response.json()["models"]

    # the one worker is kept busy until the stream is open, so the stream sees the extraction live
    blocker = submit(service, {"model": "mlp", "dataset": "mnist", "name": "blocker",
                               "hyperparameters": {"epochs": 200, "max_train_samples": 2048, "batch_size": 8}})
    wait_for(service, blocker["id"], "running")
    first_id = submit(service, {"model": "efficientnet_lite0", "dataset": "drawn", "hyperparameters": SMALL})["id"]

    def release_the_worker(events):
        if len(events) == 1:  # subscribed while the job waits: now let the worker go
            assert events[0] == ("status", {"status": "queued"}), events
            assert service.post(f"/v1/jobs/{blocker['id']}/cancel").status_code == 202  # asked of a running job

    events = read_events(service, first_id, timeout_s=300, on_event=release_the_worker)
    # the worker's extraction notes reach the job's event stream, with the step's own counters (3 shapes x 20)
    progress = [data for kind, data in events if kind == "progress"]
    notes = [p for p in progress if p["note"]]
    assert notes and notes[-1]["note"] == "extracting features 60/60", progress
    assert all(p["epoch"] == 0 and p["batches"] == 60 for p in notes), notes
    assert notes[-1]["fraction"] == 1.0 and notes[-1]["eta_seconds"] == 0.0
    assert any((p["epoch"] or 0) >= 1 and p["note"] is None for p in progress), progress  # then the epochs, no note
    first = wait_for(service, first_id, timeout_s=60)
    assert first["status"] == "succeeded", first.get("error")
    assert first["result"]["extra"]["features"]["cache"] == "miss"
    assert first["progress"]["note"] is None
    second = wait_for(service, submit(service, {"model": "efficientnet_lite0", "dataset": "drawn",
                                                "hyperparameters": {**SMALL, "seed": 1}})["id"], timeout_s=300)
    assert second["status"] == "succeeded", second.get("error")
    features = second["result"]["extra"]["features"]
    assert (features["cache"], features["extraction_skipped"], features["extracted"]) == ("hit", True, 0)

    rng = random.Random(123)  # drawings the model has never seen
    drawn = [(shape, draw(shape, rng, size=80)) for shape in SHAPES for _ in range(4)]
    files = [("files", (f"{i}.png", png(image), "image/png")) for i, (_, image) in enumerate(drawn)]
    predicted = service.post("/v1/predict/drawn", files=files)
    assert predicted.status_code == 200, predicted.text
    labels = [p["label"] for p in predicted.json()["predictions"]]
    assert sum(label == shape for label, (shape, _) in zip(labels, drawn)) >= 10, labels  # of 12


def test_grayscale_digits_are_a_422_naming_the_reason(service):
    response = service.post("/v1/jobs", json={"model": "efficientnet_lite0", "dataset": "mnist"})
    assert response.status_code == 422, response.text
    assert "grayscale" in response.text and "efficientnet_lite0" in response.text
