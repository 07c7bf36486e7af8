"""Request and response schemas of the predict endpoints. ORM rows never leak."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Public(BaseModel):
    model_config = ConfigDict(protected_namespaces=())


class RankedClass(_Public):
    label: str
    class_index: int
    confidence: float


class PredictionPublic(_Public):
    """One file's answer, in the order the files were sent: a label, or an abstention with its reason."""

    file: str | None = Field(None, description="the upload's file name")
    prediction_id: str | None = Field(None, description="this answer in the prediction log: GET /v1/predictions/{id}, "
                                                        "POST /v1/predictions/{id}/feedback (absent with PREDICTION_LOG off)")
    kept: bool | None = Field(None, description="keep asked: whether the upload was kept (false: over "
                                                "PREDICTION_INPUT_MAX_BYTES)")
    label: str | None = Field(None, description='class name: "7", "sneaker", "cat"; absent when abstained')
    class_index: int | None = None
    confidence: float | None = None
    top_k: list[RankedClass] | None = None
    low_confidence: bool | None = Field(None, description="confidence is under the dataset's threshold "
                                                          "(docs/INFERENCE.md): treat the label as a guess")
    abstained: bool = Field(False, description="true: the upload has nothing to read (blank, one colour, "
                                               "transparent, too small); see reason")
    reason: str | None = Field(None, description="why it abstained")
    out_of_distribution: bool | None = Field(
        None, description="true: the input looks unlike the training data (its ood_score is above the version's "
        "threshold, the 95th percentile of its validation split's by default): treat the label as meaningless. "
        "Measured on an mnist cnn: 4.5% of held-out MNIST test digits and 13.5% of drawn digits flagged, 98% of "
        "cat and dog photos and 94.5% of Fashion-MNIST images caught (docs/INFERENCE.md). Absent for versions "
        "trained before the calibration existed")
    ood_score: float | None = Field(None, description="the energy of the logits, −logsumexp: higher is less like "
                                                      "the training data; compared with the version's threshold")
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


class RowsRequest(BaseModel):
    """Feature rows: lists in the dataset's column order, or objects keyed by column."""

    rows: list[list[float] | dict[str, float]] = Field(min_length=1, max_length=10_000)
    top_k: int = Field(3, ge=1, le=1000, description="classification: how many ranked classes per row")


class RowsPublic(BaseModel):
    model: dict[str, Any]
    columns: list[str]
    predictions: list[dict[str, Any]]
