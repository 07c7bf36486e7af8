"""Models by name: `build_model(config, input_shape, num_classes)` and how to read their outputs.

Each module here registers one ModelSpec (ml.models.spec) beside its builder; they are found by
listing this package, so adding a model is adding a file.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ml.models.spec import ModelSpec, get_model_spec, model_specs, register_model_spec

__all__ = ["ModelSpec", "build_model", "get_model_spec", "model_names", "model_outputs", "model_specs",
           "output_kind", "probabilities", "register_model_spec"]


def model_names() -> list[str]:
    """Registered model names."""
    return list(model_specs())


def _as_config(config):
    from ml.config import TrainConfig, config_from_dict

    return config if isinstance(config, TrainConfig) else config_from_dict(config)


def output_kind(config) -> str:
    """'identity' (regression), 'sigmoid' (one logit or score) or 'softmax' (a logit per class)."""
    config = _as_config(config)
    if config.task == "regression":
        return "identity"
    return "sigmoid" if config.hp.loss in get_model_spec(config.model).single_output_losses else "softmax"


def num_outputs(config, num_classes: int) -> int:
    """Output units: 1 for regression and single-logit losses, else one per class."""
    return 1 if output_kind(config) in ("identity", "sigmoid") else num_classes


def build_model(config: Any, input_shape, num_classes: int) -> nn.Module:
    """A fresh model for `config` (a TrainConfig or its model_dump()), e.g. to load a checkpoint into."""
    config = _as_config(config)
    spec = get_model_spec(config.model)
    return spec.build(config.hp, tuple(int(s) for s in input_shape), num_outputs(config, num_classes))


def model_outputs(model: nn.Module, x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """The model's outputs for a batch; tta "flip" averages them with the mirrored batch's (photos only)."""
    out = model(x)
    if tta == "flip":
        out = (out + model(torch.flip(x, dims=[3]))) / 2  # logits: the mean is the geometric mean of odds
    return out


def probabilities(outputs: torch.Tensor, kind: str) -> torch.Tensor:
    """Model outputs -> class probabilities (n, classes); for 'sigmoid' the classes are [0, 1]."""
    if kind == "sigmoid":
        p1 = torch.sigmoid(outputs.reshape(-1, 1).float())
        return torch.cat([1 - p1, p1], dim=1)
    if kind == "softmax":
        return torch.softmax(outputs.float(), dim=1)
    raise ValueError("regression outputs have no class probabilities")
