"""Model versions and serving events as public schemas."""
from __future__ import annotations

import dataclasses

from api.registry.schemas import (
    ConfidencePublic, DriftThresholdsPublic, ModelPublic, QualityPublic, QualityWindowPublic, ServingEventPublic,
)
from core.orm import ModelVersion, ServingEvent
from core.quality import Quality


def model_public(version: ModelVersion, serving_id: int | None) -> ModelPublic:
    """A registered version; `serving_id` is the version serving its dataset now."""
    return ModelPublic(id=version.id, dataset=version.dataset, model=version.model, job_id=version.job_id,
                       epoch=version.epoch, val_accuracy=version.val_accuracy,
                       test_accuracy=version.test_accuracy, test_metrics=version.test_metrics,
                       checkpoint_sha256=version.checkpoint_sha256, created_at=version.created_at,
                       serving=version.id == serving_id, val_split=version.val_split,
                       val_samples=version.val_samples, val_split_size=version.val_split_size,
                       auto_promotable=version.auto_promotable)


def event_public(event: ServingEvent) -> ServingEventPublic:
    """One change of what serves a dataset, and why."""
    return ServingEventPublic(id=event.id, dataset=event.dataset, model_id=event.model_version_id,
                              previous_model_id=event.previous_model_version_id, reason=event.reason, at=event.at)


def quality_public(quality: Quality, *, dataset: str, window: str) -> QualityPublic:
    """A version's quality report; says why the label mix is not compared when it is not."""
    windows = [QualityWindowPublic(**{**dataclasses.asdict(w), "confidence": ConfidencePublic(**dataclasses.asdict(
        w.confidence))}) for w in quality.windows]
    label_mix = "compared with the training split's" if quality.label_mix_available else (
        "unavailable: the version was registered before training label counts were recorded")
    return QualityPublic(model_id=quality.model_version_id, dataset=dataset, window=window,
                         window_seconds=quality.window_s, windows=windows,
                         train_label_counts=quality.train_label_counts, label_mix=label_mix,
                         reference=ConfidencePublic(**dataclasses.asdict(quality.reference)),
                         thresholds=DriftThresholdsPublic(**dataclasses.asdict(quality.thresholds)),
                         drift=quality.drift)
