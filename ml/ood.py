"""Out-of-distribution scores: how unlike the training data an input looks to a classifier, and its calibration.

The score is the energy of the logits, E(x) = -T·logsumexp(f(x)/T) with T = 1 (Liu et al., "Energy-based
Out-of-distribution Detection", NeurIPS 2020): in-distribution inputs get large logits and a low
energy, an input unlike every class a higher one. bench/ood.py measured it against the max-logit
score and the top-1 softmax confidence (docs/INFERENCE.md "Out of distribution"). A version is
calibrated on its own validation split: the threshold is the `quantile` of the validation energies,
so about 1 − quantile of in-distribution inputs are flagged by construction. Classifiers only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch

from ml.models import OutputKind

TEMPERATURE = 1.0


def class_logits(outputs: torch.Tensor, kind: OutputKind | str) -> torch.Tensor:
    """Model outputs -> a logit per class (n, classes); one sigmoid logit z becomes [-z/2, z/2] (same softmax)."""
    outputs = outputs.float()
    if kind == OutputKind.SIGMOID:
        half = outputs.reshape(-1, 1) / 2
        return torch.cat([-half, half], dim=1)
    return outputs


def energy(logits: torch.Tensor) -> torch.Tensor:
    """-T·logsumexp(logits/T) per row: higher is more unlike the training data."""
    if TEMPERATURE == 1.0:  # the same numbers without two tensor ops per predict batch
        return torch.logsumexp(logits, dim=1).neg_()
    return -TEMPERATURE * torch.logsumexp(logits / TEMPERATURE, dim=1)


def negative_max_logit(logits: torch.Tensor) -> torch.Tensor:
    """-max logit per row (Hendrycks et al. 2022): higher is more unlike the training data."""
    return -logits.max(dim=1).values


def negative_confidence(logits: torch.Tensor) -> torch.Tensor:
    """-top-1 softmax probability per row: the baseline the low-confidence flag already is."""
    return -torch.softmax(logits, dim=1).max(dim=1).values


# name -> (class logits -> score per row, higher = more out of distribution)
SCORES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "energy": energy, "max_logit": negative_max_logit, "confidence": negative_confidence}


@dataclass(frozen=True)
class OodCalibration:
    """A version's flag: inputs whose score is above `threshold`, the `quantile` of its validation scores."""

    score: str
    threshold: float
    quantile: float
    val_samples: int
    temperature: float = TEMPERATURE

    def scores(self, outputs: torch.Tensor, kind: OutputKind | str) -> torch.Tensor:
        """Model outputs (n, ...) -> the score of each row (n,)."""
        return SCORES[self.score](class_logits(outputs, kind))

    def as_dict(self) -> dict[str, Any]:
        """The checkpoint's "ood" record (plain types: weights_only loading reads it)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any] | None) -> "OodCalibration | None":
        """Back from a checkpoint's "ood" record; None for checkpoints written before it existed."""
        if not record or record.get("score") not in SCORES:
            return None
        return cls(score=record["score"], threshold=float(record["threshold"]), quantile=float(record["quantile"]),
                   val_samples=int(record["val_samples"]), temperature=float(record.get("temperature", TEMPERATURE)))


def calibrate(outputs: torch.Tensor, kind: OutputKind | str, quantile: float,
              score: str = "energy") -> OodCalibration | None:
    """The threshold at `quantile` of the validation outputs' scores; None for regression or no samples."""
    if kind == OutputKind.IDENTITY or len(outputs) == 0:
        return None
    values = SCORES[score](class_logits(outputs, kind))
    threshold = float(torch.quantile(values.double(), quantile, interpolation="higher"))
    return OodCalibration(score=score, threshold=threshold, quantile=quantile, val_samples=len(outputs))
