"""Plain records the engine hands to callbacks and returns: metrics, progress, checkpoints, results."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Progress:
    """Where a run is within an epoch (epoch and batch are 1-based)."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    samples_per_second: float
    note: str | None = None  # what the run does when it is not training, e.g. "extracting features 812/2002"


@dataclass(frozen=True)
class EpochMetrics:
    """One epoch's figures. `*_accuracy` for classifiers; `*_mse` and `val_r2` for regression."""

    epoch: int
    train_loss: float
    val_loss: float | None
    lr: float
    seconds: float
    samples_per_second: float
    train_accuracy: float | None = None
    val_accuracy: float | None = None
    train_mse: float | None = None
    val_mse: float | None = None
    val_r2: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint file the engine has finished writing (atomically)."""

    path: Path
    epoch: int
    sha256: str
    size_bytes: int
    is_best: bool
    metrics: dict[str, Any]


@dataclass
class TestMetrics:
    """Held-out test figures, computed once with the best checkpoint's weights."""

    loss: float
    accuracy: float | None = None  # classifiers
    mse: float | None = None  # regression
    r2: float | None = None
    per_class_accuracy: dict[str, float] | None = None
    confusion_matrix: list[list[int]] | None = None  # rows: true class, columns: predicted
    top_mistakes: list[dict[str, Any]] = field(default_factory=list)  # index, true, predicted, confidence


@dataclass
class TrainResult:
    """Everything a finished run produced; `as_dict()` is JSON-ready."""

    config: dict[str, Any]  # the resolved TrainConfig
    epochs: list[EpochMetrics]
    best_epoch: int | None
    best_metric: dict[str, Any]  # e.g. {"name": "val_accuracy", "value": 0.98}
    test: TestMetrics | None
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    stopped_early: bool
    device: str
    dataset_checksum: str
    torch_version: str
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. closed-form weights for regression
    precision: str = "fp32"  # what the training step computed in: hp.precision with auto resolved
    notes: list[str] = field(default_factory=list)  # e.g. a generator re-seeded after moving between device kinds
    # {class: samples} of the training split it learned from (None for regression): serving compares
    # the live predictions' label mix against it
    train_label_counts: dict[str, int] | None = None
    # classifiers: the kept weights' out-of-distribution calibration (ml/ood.py) and its test_flagged share
    ood: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["best_checkpoint"] = str(self.best_checkpoint) if self.best_checkpoint else None
        d["last_checkpoint"] = str(self.last_checkpoint) if self.last_checkpoint else None
        return d
