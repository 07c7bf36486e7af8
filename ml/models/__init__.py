"""Models by name: `build_model(config, input_shape, num_classes)` and how to read their outputs."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ml.config import TrainConfig, config_from_dict
from ml.models import cnn, linear, mlp  # noqa: F401  (registers the builders)
from ml.models.registry import get_builder, model_names, register_model

__all__ = ["build_model", "model_names", "register_model", "output_kind", "probabilities"]


def _as_config(config: TrainConfig | dict[str, Any]) -> TrainConfig:
    return config if isinstance(config, TrainConfig) else config_from_dict(config)


def output_kind(config: TrainConfig | dict[str, Any]) -> str:
    """'identity' (regression), 'sigmoid' (one logit, BCE) or 'softmax' (a logit per class)."""
    config = _as_config(config)
    if config.task == "regression":
        return "identity"
    return "sigmoid" if config.hp.loss == "bce" else "softmax"


def num_outputs(config: TrainConfig, num_classes: int) -> int:
    """Output units: 1 for regression and BCE, else one per class."""
    return 1 if output_kind(config) in ("identity", "sigmoid") else num_classes


def build_model(config: TrainConfig | dict[str, Any], input_shape, num_classes: int) -> nn.Module:
    """A fresh model for `config` (a TrainConfig or its model_dump()), e.g. to load a checkpoint into."""
    config = _as_config(config)
    builder = get_builder(config.model)
    return builder(config.hp, tuple(int(s) for s in input_shape), num_outputs(config, num_classes))


def probabilities(outputs: torch.Tensor, kind: str) -> torch.Tensor:
    """Model outputs -> class probabilities (n, classes); for 'sigmoid' the classes are [0, 1]."""
    if kind == "sigmoid":
        p1 = torch.sigmoid(outputs.reshape(-1, 1).float())
        return torch.cat([1 - p1, p1], dim=1)
    if kind == "softmax":
        return torch.softmax(outputs.float(), dim=1)
    raise ValueError("regression outputs have no class probabilities")
