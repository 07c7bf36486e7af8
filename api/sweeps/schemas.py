"""Sweep schemas: SweepCreate / SweepPublic / SweepsPublic, and a trial's leaderboard row."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.orm import SweepStatus

Metric = Literal["val_accuracy", "val_loss", "val_mse", "val_r2"]


class AshaOptions(BaseModel):
    """Asynchronous successive halving: decide at epochs grace × factor^k."""

    model_config = ConfigDict(extra="forbid")

    grace_epochs: int = Field(1, ge=1, le=500, description="epochs every trial runs before the first decision")
    reduction_factor: int = Field(3, ge=2, le=100, description="the top 1/factor at each rung continue")


class EarlyStopping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asha: AshaOptions


class SweepCreate(BaseModel):
    """A sweep request: one base config and a search space; each trial is validated like a job request."""

    model_config = ConfigDict(
        extra="forbid", protected_namespaces=(),
        json_schema_extra={"examples": [{
            "model": "logistic_regression", "dataset": "cats_vs_dogs",
            "hyperparameters": {"image_size": 64},
            "search": {"grid": {"lr": [0.01, 0.001], "batch_size": [32, 64], "epochs": [10, 20]}},
            "metric": "val_accuracy", "max_parallel": 2,
        }]},
    )

    model: str | None = Field(None, min_length=1, max_length=64)
    dataset: str | None = Field(None, min_length=1, max_length=64)
    preset: str | None = Field(None, min_length=1, max_length=64)
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="the base every trial overrides")
    search: dict[str, Any] = Field(description='{"grid": {name: [values]}} or {"random": {name: {"loguniform" | '
                                               '"uniform" | "int": [low, high]} | {"choice": [values]}}, '
                                               '"trials": n, "seed": s}')
    metric: Metric | None = Field(None, description="ranks trials; null: val_accuracy (val_mse for regression). "
                                                    "Accuracy and r2: higher is better; loss and mse: lower")
    max_parallel: int = Field(4, ge=1, le=256, description="most trials queued or running at once")
    early_stopping: EarlyStopping | None = None
    reuse: bool = Field(False, description="a trial whose config, dataset, code and seed equal a succeeded job's "
                                           "takes its result instead of training")
    name: str | None = Field(None, max_length=200)


class TrialPublic(BaseModel):
    """A trial's leaderboard row."""

    trial: int = Field(description="its index in the expanded search space")
    job_id: str | None = Field(description="null while it waits for a slot")
    status: str = Field(description="waiting, or its job's status (stopped: ended by early stopping)")
    hyperparameters: dict[str, Any] = Field(description="the searched values")
    metric: float | None = Field(description="its best value of the sweep's metric")
    epoch: int | None = Field(description="the epoch of that value")
    reused_from: str | None = None


class SweepLinks(BaseModel):
    self: str
    events: str
    cancel: str


class SweepSummary(BaseModel):
    """A sweep without its leaderboard (lists)."""

    id: str
    name: str | None
    model: str
    dataset: str
    status: SweepStatus
    metric: str
    mode: Literal["max", "min"]
    max_parallel: int
    early_stopping: dict[str, Any] | None
    reuse: bool
    counts: dict[str, int] = Field(description="trials by status; 'waiting': not launched yet")
    total: int
    best: TrialPublic | None = Field(description="the best succeeded trial once the sweep ended; while it runs, the "
                                                 "leader so far (a queued or running trial with a metric counts)")
    best_model_id: int | None = Field(None, description="the best trial's registered model version")
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    links: SweepLinks


class SweepPublic(SweepSummary):
    """A sweep and its leaderboard, best first."""

    trials: list[TrialPublic]


class SweepsPublic(BaseModel):
    data: list[SweepSummary]
    count: int
    offset: int
    limit: int
