"""Jobs that would allocate absurd memory or disk are refused at submit, with the estimate (no job is made)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.service


def _count(client) -> int:
    return client.get("/v1/jobs", params={"limit": 1}).json()["count"]


def test_a_hidden_size_of_a_million_is_refused_up_front(client):
    before = _count(client)
    refused = client.post("/v1/jobs", json={"model": "mlp", "dataset": "mnist",
                                            "hyperparameters": {"hidden_sizes": [1_000_000]}})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "hyperparameters.hidden_sizes.0"
    assert _count(client) == before


def test_a_knob_the_dataset_does_not_take_is_refused_at_submit_not_in_the_worker(client):
    before = _count(client)
    refused = client.post("/v1/jobs", json={"model": "mlp", "dataset": "mnist",
                                            "hyperparameters": {"image_size": 64}})
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["detail"]
    assert error["field"] == "hyperparameters.image_size" and "28 px" in error["msg"]
    assert _count(client) == before


@pytest.mark.parametrize("hyperparameters, says", [
    # the measured cases: ≈100 GB of activations; ≈15 GB of training state and ≈11 GB per checkpoint
    ({"image_size": 256, "batch_size": 1600}, "of activations for a batch of 1600"),
    ({"image_size": 256, "hidden_sizes": [4096] * 8, "optimizer": "adam"}, "JOB_DISK_BUDGET_BYTES"),
])
def test_configs_over_the_memory_or_disk_budget_are_refused_with_the_estimate(client, hyperparameters, says):
    model = "mlp" if "hidden_sizes" in hyperparameters else "cnn"
    before = _count(client)
    refused = client.post("/v1/jobs", json={"model": model, "dataset": "cats_dogs", "hyperparameters": hyperparameters})
    assert refused.status_code == 422, refused.text
    messages = " ".join(e["msg"] for e in refused.json()["detail"])
    assert says in messages and " GB" in messages and "JOB_MEMORY_BUDGET_BYTES" in messages
    assert _count(client) == before
