"""Responses of /v1/datasets: DatasetPublic / DatasetsPublic. ORM rows never leak."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ClassCount(BaseModel):
    """A class and how many samples it has."""

    name: str
    count: int


class Refusal(BaseModel):
    """A file (image folders) or line (CSVs) that was left out, and why."""

    file: str | None = None
    line: int | None = None
    reason: str


class DatasetPublic(BaseModel):
    """An uploaded dataset: what was found in it and what was refused."""

    name: str
    kind: str = Field(description="image_folder or csv")
    task: str = Field(description="classification, binary or regression")
    classes: list[ClassCount] = Field(description="classes with their sample counts ([] for regression)")
    columns: list[str] = Field(description="CSV feature columns, in order ([] for images)")
    target: str | None = None
    samples: int
    sha256: str = Field(description="sha256 of the uploaded file")
    size_bytes: int
    refused: list[Refusal] = Field(description="files or lines left out (the first 100)")
    refused_count: int
    models: list[str] = Field(description="models that train on it")
    created_at: datetime


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class FeedbackCountsPublic(BaseModel):
    """A dataset's feedback set: kept inputs a person labelled, counted per label."""

    dataset: str
    scope: str = Field(description="'yours' (a user: your own predictions' feedback) or 'all' (an admin)")
    labels: list[ClassCount] = Field(description="each label with its rows, by label")
    count: int = Field(description="rows in all: what a job with include_feedback would train on besides the dataset")
    download_url: str = Field(description="the set as a zip in the upload format (<label>/<prediction_id>.png)")
