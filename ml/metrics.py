"""Metrics on whole tensors: accuracy, MSE, R², confusion matrix, per-class accuracy, top mistakes."""
from __future__ import annotations

from typing import Any

import torch

from ml.models import OutputKind, probabilities


def predict(outputs: torch.Tensor, kind: OutputKind) -> tuple[torch.Tensor, torch.Tensor]:
    """Class outputs -> (predicted class, confidence in it)."""
    conf, pred = probabilities(outputs, kind).max(dim=1)
    return pred, conf


def correct_count(outputs: torch.Tensor, y: torch.Tensor, kind: OutputKind) -> torch.Tensor:
    """Number of right predictions, as a tensor (no device sync)."""
    pred = (outputs.reshape(-1) > 0).long() if kind == OutputKind.SIGMOID else outputs.argmax(dim=1)
    return (pred == y).sum()


def accuracy(outputs: torch.Tensor, y: torch.Tensor, kind: OutputKind) -> float:
    """Fraction of right predictions."""
    return float(correct_count(outputs, y, kind)) / max(1, len(y))


def mse(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error."""
    return float(((pred.reshape(-1) - y.reshape(-1)) ** 2).mean())


def r2_score(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Coefficient of determination: 1 - SSE / SST (1.0 is perfect, 0 is predicting the mean)."""
    y = y.reshape(-1).double()
    sse = ((pred.reshape(-1).double() - y) ** 2).sum()
    sst = ((y - y.mean()) ** 2).sum()
    return float(1 - sse / sst) if sst > 0 else 0.0


def confusion_matrix(y: torch.Tensor, pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(classes, classes) counts; rows are the true class, columns the predicted one."""
    flat = y.long().cpu() * num_classes + pred.long().cpu()
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_accuracy(cm: torch.Tensor, classes: list[str]) -> dict[str, float]:
    """Recall of each class: right predictions of it over its true count."""
    totals = cm.sum(dim=1).clamp_min(1)
    return {c: float(cm[i, i] / totals[i]) for i, c in enumerate(classes)}


def top_mistakes(y: torch.Tensor, pred: torch.Tensor, conf: torch.Tensor, classes: list[str],
                 k: int = 10) -> list[dict[str, Any]]:
    """The k wrong predictions made with the highest confidence."""
    y, pred, conf = y.cpu(), pred.cpu(), conf.cpu()
    wrong = (pred != y).nonzero().flatten()
    order = wrong[conf[wrong].argsort(descending=True)][:k]
    return [{"index": int(i), "true": classes[int(y[i])], "predicted": classes[int(pred[i])],
             "confidence": round(float(conf[i]), 4)} for i in order]
