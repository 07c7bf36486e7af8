"""Submit → worker → succeeded over real HTTP, with metrics and checkpoints recorded in SQL."""
from __future__ import annotations

import hashlib

import pytest

from tests.utils.jobs import TINY_LINEAR, TINY_MNIST, submit, wait_for

pytestmark = pytest.mark.service


def test_submit_poll_succeeds_with_a_row_per_epoch_and_checkpoints_matching_their_files(service):
    accepted = service.post("/v1/jobs", json={**TINY_MNIST, "name": "tiny mnist"})
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert accepted.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    hp = job["hyperparameters"]
    # the overrides and the pair's course defaults (mnist + mlp: adam, lr 1e-3, dropout 0.2)
    assert hp["epochs"] == 2 and hp["max_train_samples"] == 512 and hp["hidden_sizes"] == [32]
    assert hp["optimizer"] == "adam" and hp["lr"] == pytest.approx(1e-3) and hp["dropout"] == pytest.approx(0.2)

    done = wait_for(service, job["id"], "succeeded")
    assert done["error"] is None
    assert done["progress"]["fraction"] == 1.0 and done["progress"]["epochs"] == 2
    assert done["started_at"] and done["finished_at"] and done["finished_at"] >= done["started_at"]
    assert done["worker"].startswith("test-") and done["device"] == "cpu"
    assert done["torch_version"] and done["code_version"] and len(done["dataset_checksum"]) >= 16
    assert done["seed"] == hp["seed"]
    assert 0.0 <= done["test_metrics"]["accuracy"] <= 1.0
    assert done["latest_metrics"]["epoch"] == 2
    assert done["best"]["epoch"] in (1, 2) and done["best"]["metric"]["name"] == "val_accuracy"

    metrics = service.get(f"/v1/jobs/{job['id']}/metrics").json()
    assert [row["epoch"] for row in metrics["data"]] == [1, 2] and metrics["count"] == 2
    assert all(row["train_loss"] > 0 and 0 <= row["val_accuracy"] <= 1 for row in metrics["data"])

    checkpoints = service.get(f"/v1/jobs/{job['id']}/checkpoints").json()["data"]
    assert checkpoints and sum(c["is_best"] for c in checkpoints) == 1
    assert [c for c in checkpoints if c["is_best"]][0]["epoch"] == done["best"]["epoch"]
    for ckpt in checkpoints:
        file = service.get(ckpt["download_url"])
        assert file.status_code == 200
        assert len(file.content) == ckpt["size_bytes"]
        assert hashlib.sha256(file.content).hexdigest() == ckpt["sha256"] == file.headers["x-checkpoint-sha256"]
    missing = service.get(f"/v1/jobs/{job['id']}/checkpoints/99/file")
    assert missing.status_code == 404 and job["id"] in missing.json()["detail"] and "99" in missing.json()["detail"]


def test_regression_job_records_mse_metrics(service):
    job = submit(service, TINY_LINEAR)
    done = wait_for(service, job["id"], "succeeded")
    rows = service.get(f"/v1/jobs/{job['id']}/metrics").json()["data"]
    assert len(rows) == 2 and rows[-1]["val_mse"] is not None and rows[-1]["val_accuracy"] is None
    assert done["best"]["metric"]["name"] == "val_mse"


def test_idempotency_key_returns_the_same_job_on_retry(client):
    key = "retry-me-7f3a"
    first = client.post("/v1/jobs", json=TINY_LINEAR, headers={"Idempotency-Key": key})
    again = client.post("/v1/jobs", json=TINY_LINEAR, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    listed = client.get("/v1/jobs", params={"dataset": "synthetic_linear", "limit": 200}).json()["data"]
    assert sum(j["id"] == first.json()["id"] for j in listed) == 1
    other = client.post("/v1/jobs", json={**TINY_LINEAR, "name": "different"}, headers={"Idempotency-Key": key})
    assert other.status_code == 409 and key in other.json()["detail"]


def test_list_filters_and_paginates(client):
    ids = [submit(client, {**TINY_LINEAR, "name": f"page {i}"})["id"] for i in range(3)]
    page = client.get("/v1/jobs", params={"model": "linear_regression", "limit": 2}).json()
    assert page["count"] >= 3 and len(page["data"]) == 2 and page["limit"] == 2
    rest = client.get("/v1/jobs", params={"model": "linear_regression", "limit": 2, "offset": 2}).json()
    seen = [j["id"] for j in page["data"] + rest["data"]]
    assert len(seen) == len(set(seen))
    assert set(ids) <= set(j["id"] for j in client.get(
        "/v1/jobs", params={"model": "linear_regression", "limit": 200}).json()["data"])
    assert all(j["model"] == "linear_regression" for j in page["data"])
    none = client.get("/v1/jobs", params={"dataset": "no-such-dataset"}).json()
    assert none == {"data": [], "count": 0, "offset": 0, "limit": 50}
    for status in ("queued", "succeeded"):
        assert all(j["status"] == status for j in client.get("/v1/jobs", params={"status": status}).json()["data"])


def test_a_job_shows_its_attempts_and_disk_use_and_delete_removes_it(service, service_settings):
    done = wait_for(service, submit(service, TINY_LINEAR)["id"], "succeeded")
    (attempt,) = done["attempts"]
    assert attempt["number"] == 1 and attempt["ended"] == "succeeded" and attempt["resumed_from_epoch"] is None
    assert attempt["worker"] == done["worker"] and attempt["ended_at"] >= attempt["started_at"]
    files = service_settings.artifact_dir / "jobs" / done["id"]
    assert done["disk_bytes"] == sum(p.stat().st_size for p in files.rglob("*") if p.is_file()) > 0

    assert service.delete(f"/v1/jobs/{done['id']}").status_code == 204
    assert service.get(f"/v1/jobs/{done['id']}").status_code == 404
    assert not files.exists()
    missing = service.delete(f"/v1/jobs/{done['id']}")
    assert missing.status_code == 404 and done["id"] in missing.json()["detail"]


def test_delete_refuses_a_running_job_until_it_is_cancelled(service):
    slow = submit(service, {"model": "mlp", "dataset": "mnist",
                            "hyperparameters": {"epochs": 50, "max_train_samples": 2048, "batch_size": 8}})
    wait_for(service, slow["id"], "running")
    refused = service.delete(f"/v1/jobs/{slow['id']}")
    assert refused.status_code == 409 and "cancel it first" in refused.json()["detail"]
    service.post(f"/v1/jobs/{slow['id']}/cancel")
    wait_for(service, slow["id"], "cancelled")
    assert service.delete(f"/v1/jobs/{slow['id']}").status_code == 204

