"""A run that fails ends `failed` with a sentence the user can act on, not a stack trace."""
from __future__ import annotations

import pytest

from tests.utils.jobs import submit, wait_for

pytestmark = pytest.mark.service


def test_diverging_job_fails_with_what_to_try(service):
    job = submit(service, {"model": "linear_regression", "dataset": "synthetic_linear",
                           "hyperparameters": {"epochs": 3, "lr": 10, "optimizer": "sgd", "batch_size": 32}})
    failed = wait_for(service, job["id"], "failed")
    assert failed["error_type"] == "TrainingDiverged"
    assert "epoch" in failed["error"] and "lr" in failed["error"].lower()
    assert "Traceback" not in failed["error"] and failed["finished_at"]
