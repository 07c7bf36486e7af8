"""Response schemas of the model registry and the predict endpoint. ORM rows never leak."""
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
    auto_promotable: bool = Field(description="scored on the dataset's whole reference validation split, so it "
                                              "can become auto-best; otherwise only a promotion makes it serve")


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


class RankedClass(_Public):
    label: str
    class_index: int
    confidence: float


class PredictionPublic(_Public):
    """One file's answer, in the order the files were sent: a label, or an abstention with its reason."""

    file: str | None = Field(None, description="the upload's file name")
    label: str | None = Field(None, description='class name: "7", "sneaker", "cat"; absent when abstained')
    class_index: int | None = None
    confidence: float | None = None
    top_k: list[RankedClass] | None = None
    low_confidence: bool | None = Field(None, description="confidence is under the dataset's threshold "
                                                          "(docs/INFERENCE.md): treat the label as a guess")
    abstained: bool = Field(False, description="true: the upload has nothing to read (blank, one colour, "
                                               "transparent, too small); see reason")
    reason: str | None = Field(None, description="why it abstained")
    input_png: str | None = Field(None, description="explain: the preprocessed input the model saw, base64 PNG")
    steps: list[str] | None = Field(None, description="explain: the preprocessing steps applied, in order")


class PredictModelPublic(_Public):
    """The model that answered, exactly: its version, checkpoint and preprocessing."""

    id: int = Field(description="the model version id (GET /v1/models/{id})")
    type: str
    dataset: str
    job_id: str
    validation_accuracy: float
    checkpoint_sha256: str
    preprocessing_version: str = Field(description='e.g. "digits/2": same version, same input for the same upload')


class PredictPublic(_Public):
    model: PredictModelPublic
    predictions: list[PredictionPublic]
