"""The model registry over HTTP: succeeded jobs register; promotion and rollback change what serves."""
from __future__ import annotations

import pytest

from tests.utils.models import train_versions, wait_until_serving

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def versions(api):
    return train_versions(api, 2)


def test_succeeded_jobs_are_registered_with_their_figures(api, versions):
    for version in versions:
        job = api.get(f"/v1/jobs/{version['job_id']}").json()
        assert version["dataset"] == "mnist" and version["model"] == "mlp"
        assert version["val_accuracy"] == pytest.approx(job["best"]["metric"]["value"])
        assert version["test_accuracy"] == pytest.approx(job["test_metrics"]["accuracy"])
        assert version["epoch"] == job["best"]["epoch"]
        checkpoints = api.get(f"/v1/jobs/{version['job_id']}/checkpoints").json()["data"]
        [best] = [c for c in checkpoints if c["is_best"]]
        assert version["checkpoint_sha256"] == best["sha256"]
        assert api.get(f"/v1/models/{version['id']}").json() == version


def test_exactly_one_version_serves_and_history_says_so(api, versions):
    listed = api.get("/v1/models", params={"dataset": "mnist"}).json()
    assert listed["count"] == len(listed["data"]) >= 2
    serving = [m for m in listed["data"] if m["serving"]]
    assert len(serving) == 1
    history = api.get("/v1/models/history", params={"dataset": "mnist"}).json()["data"]
    assert history[-1]["model_id"] == serving[0]["id"]
    if history[-1]["reason"] == "auto-best":  # nobody pinned one: the best by validation accuracy serves
        best = max(listed["data"], key=lambda m: (m["val_accuracy"], m["created_at"], m["id"]))
        assert serving[0]["id"] == best["id"]


def test_promotion_and_rollback_change_what_serves_with_history(api, versions):
    a, b = versions
    before = len(api.get("/v1/models/history", params={"dataset": "mnist"}).json()["data"])

    promoted = api.post(f"/v1/models/{a['id']}/promote")
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["event"]["reason"] == "promoted" and promoted.json()["model"]["serving"] is True
    assert wait_until_serving(api, "mnist", a["id"])["model"]["validation_accuracy"] == pytest.approx(a["val_accuracy"])

    assert api.post(f"/v1/models/{b['id']}/promote").status_code == 200
    wait_until_serving(api, "mnist", b["id"])
    assert api.get(f"/v1/models/{a['id']}").json()["serving"] is False

    assert api.post(f"/v1/models/{a['id']}/promote").status_code == 200  # roll back
    wait_until_serving(api, "mnist", a["id"])

    history = api.get("/v1/models/history", params={"dataset": "mnist"}).json()["data"][before:]
    assert [(e["model_id"], e["reason"], e["previous_model_id"]) for e in history] == [
        (a["id"], "promoted", history[0]["previous_model_id"]),
        (b["id"], "promoted", a["id"]),
        (a["id"], "promoted", b["id"]),
    ]
    assert history[0]["at"] <= history[1]["at"] <= history[2]["at"]


def test_unknown_model_ids_are_404_naming_the_id(api):
    for response in (api.get("/v1/models/999999"), api.post("/v1/models/999999/promote")):
        assert response.status_code == 404
        assert "model 999999 not found" in response.json()["detail"]
    assert api.get("/v1/models/not-a-number").status_code == 404  # {model_id:int}: no such route (rollback is a 405)


TINY_FASHION = {"model": "mlp", "dataset": "fashion_mnist",
                "hyperparameters": {"epochs": 1, "max_train_samples": 512, "batch_size": 64, "hidden_sizes": [32]}}


@pytest.fixture(scope="module")
def honest_and_gamed(api):
    """A fashion_mnist job scored on the whole validation split, then one scored on a single sample."""
    [honest] = train_versions(api, 1, TINY_FASHION)
    gamed_request = {**TINY_FASHION, "hyperparameters": {**TINY_FASHION["hyperparameters"], "max_eval_samples": 1}}
    [gamed] = train_versions(api, 1, gamed_request)
    return honest, gamed


def test_a_job_scored_on_one_sample_does_not_displace_the_serving_model(api, honest_and_gamed):
    honest, gamed = honest_and_gamed
    assert honest["auto_promotable"] and honest["val_samples"] == honest["val_split_size"] == 6000
    assert not gamed["auto_promotable"] and gamed["val_samples"] == 1 and gamed["val_split"] == honest["val_split"]
    served = api.get("/v1/models/serving", params={"dataset": "fashion_mnist"}).json()
    assert served["model"]["id"] == honest["id"] and served["event"]["reason"] == "auto-best"
    assert wait_until_serving(api, "fashion_mnist", honest["id"])["model"]["id"] == honest["id"]


def test_time_travel_and_rollback_to_a_time(api, honest_and_gamed):
    honest, gamed = honest_and_gamed
    before = api.get("/v1/models/serving", params={"dataset": "fashion_mnist"}).json()
    promoted = api.post(f"/v1/models/{gamed['id']}/promote").json()  # by hand it can serve
    assert promoted["event"]["reason"] == "promoted"
    now = api.get("/v1/models/serving", params={"dataset": "fashion_mnist"}).json()
    assert now["model"]["id"] == gamed["id"]
    # what served just before the promotion is what the history says served then
    then = api.get("/v1/models/serving", params={"dataset": "fashion_mnist", "at": before["at"]}).json()
    assert then["model"]["id"] == honest["id"] and then["event"]["id"] == before["event"]["id"]
    rolled = api.post("/v1/models/rollback", json={"dataset": "fashion_mnist", "at": before["at"]})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["model"]["id"] == honest["id"] and rolled.json()["event"]["previous_model_id"] == gamed["id"]
    assert wait_until_serving(api, "fashion_mnist", honest["id"])["model"]["id"] == honest["id"]
    too_early = api.get("/v1/models/serving", params={"dataset": "fashion_mnist", "at": "2000-01-01T00:00:00"})
    assert too_early.status_code == 404 and "no model served 'fashion_mnist'" in too_early.json()["detail"]
