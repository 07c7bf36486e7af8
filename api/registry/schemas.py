"""Request and response schemas of the model registry. ORM rows never leak."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Public(BaseModel):
    model_config = ConfigDict(protected_namespaces=())


class ModelPublic(_Public):
    """A registered model version: what it is, how good, and whether it serves its dataset now."""

    id: int
    dataset: str
    model: str = Field(description="the model type, e.g. cnn")
    job_id: str
    epoch: int = Field(description="epoch of the checkpoint it serves (the job's best)")
    val_accuracy: float
    test_accuracy: float | None
    test_metrics: dict[str, Any] | None
    checkpoint_sha256: str
    created_at: datetime
    serving: bool = Field(description="true if it answers POST /v1/predict/{dataset} now")
    val_split: str | None = Field(description="which validation split scored val_accuracy (null: not recorded)")
    val_samples: int | None = Field(description="how many of its samples were scored")
    val_split_size: int | None = None
    auto_promotable: bool = Field(description="scored on the dataset's whole reference validation split and trained "
                                              "by someone who may change the dataset's serving (an admin; for an "
                                              "upload, its owner), so it can become auto-best; otherwise only a "
                                              "promotion makes it serve")


class ModelsPublic(_Public):
    data: list[ModelPublic]
    count: int


class ServingEventPublic(_Public):
    """From `at` on, `model_id` served `dataset` because of `reason`."""

    id: int
    dataset: str
    model_id: int
    previous_model_id: int | None
    reason: str = Field(description="auto-best (best validation accuracy) or promoted (pinned by an operator)")
    at: datetime


class ServingHistoryPublic(_Public):
    data: list[ServingEventPublic]
    count: int


class PromotedPublic(_Public):
    model: ModelPublic
    event: ServingEventPublic


class ServingAtPublic(_Public):
    """What served `dataset` at `at`, and the event that put it in place."""

    dataset: str
    at: datetime
    model: ModelPublic
    event: ServingEventPublic


class RollbackRequest(_Public):
    """Serve again the version that served `dataset` at `at` (pinned, like a promotion)."""

    dataset: str = Field(max_length=64)
    at: datetime = Field(description="ISO 8601; without a zone it is UTC")
