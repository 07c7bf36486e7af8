"""Request and response schemas of the model registry. ORM rows never leak."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.quality import MAX_WINDOWS, window_seconds


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


def _window_in_range(text: str) -> str:
    window_seconds(text)  # ValueError → 422 naming `window` and the allowed range
    return text


WindowQuery = Annotated[str, Query(pattern=r"^[1-9][0-9]{0,4}[mhd]$",
                                   description="window length: 5m .. 7d (m minutes, h hours, d days)"),
                        AfterValidator(_window_in_range)]
WindowsQuery = Annotated[int, Query(ge=1, le=MAX_WINDOWS, description=f"how many windows, 1..{MAX_WINDOWS}, "
                                                                       "ending with the one in progress")]


class ConfidencePublic(_Public):
    """Top-1 confidence of answered (not abstained) files."""

    count: int
    mean: float | None
    histogram: list[int] = Field(description="files per confidence bin [0, 0.1), [0.1, 0.2), … [0.9, 1.0]")


class QualityWindowPublic(_Public):
    """One time window of a version's predictions (rates: null when nothing arrived to divide by)."""

    start: datetime
    end: datetime
    requests: int = Field(description="files answered, abstentions included")
    abstain_rate: float | None
    low_confidence_rate: float | None
    ood_rate: float | None = Field(description="out-of-distribution share among files the version could judge "
                                               "(null: none; versions without calibration never judge)")
    label_counts: dict[str, int] = Field(description="predicted labels of answered files")
    label_js: float | None = Field(description="Jensen–Shannon divergence (base 2, 0..1) of the predicted-label mix "
                                               "from the training split's (null: no answered file, or no training mix)")
    confidence: ConfidencePublic
    confidence_shift: float | None = Field(description="mean confidence minus the reference's")
    feedback: int = Field(description="predictions someone gave feedback on")
    feedback_accuracy: float | None = Field(description="share of that feedback which confirmed the label")
    drift: bool | None = Field(description="the label mix or the confidence moved past its threshold "
                                           "(null: fewer answered files than drift_min_requests)")
    drift_reasons: list[str]


class DriftThresholdsPublic(_Public):
    label_js: float = Field(description="DRIFT_JS_THRESHOLD")
    confidence_shift: float = Field(description="DRIFT_CONFIDENCE_SHIFT")
    min_requests: int = Field(description="DRIFT_MIN_REQUESTS")
    reference_size: int = Field(description="DRIFT_REFERENCE_SIZE")


class QualityPublic(_Public):
    """A model version's live quality over time windows, oldest first, and whether it drifted."""

    model_id: int
    dataset: str
    window: str
    window_seconds: int
    windows: list[QualityWindowPublic]
    train_label_counts: dict[str, int] | None = Field(description="the training split's classes (null: the version "
                                                                  "was registered before they were recorded)")
    label_mix: str = Field(description="'compared' with the training mix, or why it is unavailable")
    reference: ConfidencePublic = Field(description="the version's first reference_size answered predictions")
    thresholds: DriftThresholdsPublic
    drift: bool = Field(description="any window drifted")
