"""The catalog is enough for a client to build a job form."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.service


def test_catalog_lists_models_with_schemas_and_defaults_and_datasets(client):
    response = client.get("/v1/catalog", timeout=60)
    assert response.status_code == 200
    body = response.json()
    models = {m["name"]: m for m in body["models"]}
    assert {"linear_regression", "logistic_regression", "softmax_regression", "mlp", "cnn"} <= set(models)
    mlp = models["mlp"]
    assert "mnist" in mlp["datasets"] and "lr" in mlp["hyperparameters_schema"]["properties"]
    assert mlp["defaults"]["mnist"]["optimizer"] == "adam"
    datasets = {d["name"]: d for d in body["datasets"]}
    assert {"mnist", "fashion_mnist", "cats_dogs", "synthetic_linear"} <= set(datasets)
    assert datasets["synthetic_linear"]["present"] is True
    assert isinstance(datasets["mnist"]["present"], bool)


def test_catalog_defaults_are_what_a_job_resolves_to(client):
    mlp = {m["name"]: m for m in client.get("/v1/catalog", timeout=60).json()["models"]}["mlp"]
    job = client.post("/v1/jobs", json={"model": "mlp", "dataset": "mnist"}).json()
    client.post(f"/v1/jobs/{job['id']}/cancel")  # only its resolved config is of interest
    assert job["hyperparameters"] == mlp["defaults"]["mnist"]
