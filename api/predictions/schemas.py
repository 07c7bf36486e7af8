"""Request and response schemas of the prediction log. ORM rows never leak."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Public(BaseModel):
    model_config = ConfigDict(protected_namespaces=())


class FeedbackCreate(BaseModel):
    """What the file really is: one of the model version's classes."""

    label: str = Field(min_length=1, max_length=128, description='a class name of the model, e.g. "7" or "cat"')


class FeedbackPublic(_Public):
    label: str
    by: str | None = Field(description="who gave it (the key's owner)")
    at: datetime


class LoggedPredictionPublic(_Public):
    """One answered file as the log remembers it: what the model said, the input's digest, the feedback."""

    id: str
    model_id: int = Field(description="the model version that answered (GET /v1/models/{id})")
    dataset: str
    owner: str | None
    created_at: datetime
    label: str | None = Field(description="what the model said; null when it abstained")
    confidence: float | None
    top_k: list[dict[str, Any]]
    abstained: bool
    low_confidence: bool
    out_of_distribution: bool | None
    input_sha256: str
    input_size: int = Field(description="the upload's size in bytes")
    kept: bool = Field(description="whether the upload's bytes were kept (keep=true)")
    input_url: str | None = Field(description="the kept input as a PNG, when kept")
    feedback: FeedbackPublic | None = Field(description="what a person said the file is")
    wrong: bool | None = Field(description="feedback given: whether it differs from the model's label")


class LoggedPredictionsPublic(_Public):
    """A page of predictions, newest first; pass `next_cursor` as `cursor` for the next page (null: the end)."""

    data: list[LoggedPredictionPublic]
    next_cursor: str | None
    limit: int
