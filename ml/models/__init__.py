"""Models by name: `build_model(config, input_shape, num_classes)` and how to read their outputs.

Each module here registers one ModelSpec (ml.models.spec) beside its builder; they are found by
listing this package, so adding a model is adding a file.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ml.models.outputs import OutputKind
from ml.models.spec import ModelSpec, get_model_spec, model_specs, register_model_spec

__all__ = ["ModelSpec", "OutputKind", "build_model", "get_model_spec", "memory_format", "model_names", "model_outputs",
           "model_specs", "output_kind", "probabilities", "register_model_spec"]


def model_names() -> list[str]:
    """Registered model names."""
    return list(model_specs())


def _as_config(config):
    from ml.config import TrainConfig, config_from_dict

    return config if isinstance(config, TrainConfig) else config_from_dict(config)


def output_kind(config) -> OutputKind:
    """IDENTITY (regression), SIGMOID (one logit or score) or SOFTMAX (a logit per class)."""
    config = _as_config(config)
    if config.task == "regression":
        return OutputKind.IDENTITY
    single = config.hp.loss in get_model_spec(config.model).single_output_losses
    return OutputKind.SIGMOID if single else OutputKind.SOFTMAX


def num_outputs(config, num_classes: int) -> int:
    """Output units: 1 for regression and single-logit losses, else one per class."""
    return output_kind(config).units or num_classes


def build_model(config: Any, input_shape, num_classes: int) -> nn.Module:
    """A fresh model for `config` (a TrainConfig or its model_dump()), e.g. to load a checkpoint into."""
    config = _as_config(config)
    spec = get_model_spec(config.model)
    return spec.build(config.hp, tuple(int(s) for s in input_shape), num_outputs(config, num_classes))


def memory_format(model: nn.Module) -> torch.memory_format:
    """channels-last for conv nets (oneDNN and cuDNN convolve NHWC faster; NCHW sends a lone small
    image to PyTorch's slow reference conv), the default layout for every other model."""
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return torch.channels_last if has_conv else torch.contiguous_format


# "zoom_flip" also scores the centre of each side, resized back: strong augmentation's crops (30-100%
# of the area, median side ~0.8) show subjects larger in training than a full frame does (FixRes)
ZOOM_SIDE = 0.8


def centre_zoom(x: torch.Tensor, side: float = ZOOM_SIDE) -> torch.Tensor:
    """The centre `side` of each image side, resized back to the full size (bilinear, as the augmenter).

    Equal margins on both sides (64 px: the centre 52), so the zoom of a mirror is the mirror of the zoom.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])  # plain ints, also while an export traces (the size is fixed)
    top, left = round(h * (1 - side) / 2), round(w * (1 - side) / 2)
    centre = x[..., top:h - top, left:w - left]
    return F.interpolate(centre, size=(h, w), mode="bilinear", align_corners=False)


def model_outputs(model: nn.Module, x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """The model's outputs for a batch with test-time augmentation `tta` (photos only): "flip" averages
    them with the mirrored batch's, "zoom_flip" with the mirror, the centre zoom and its mirror."""
    out = model(x)
    if tta == "none":
        return out
    views = [torch.flip(x, dims=[3])]
    if tta == "zoom_flip":
        zoomed = centre_zoom(x)
        views += [zoomed, torch.flip(zoomed, dims=[3])]
    for view in views:  # a forward per view: memory stays that of one batch
        out = out + model(view)
    return out / (len(views) + 1)  # logits: the mean is the geometric mean of odds


def probabilities(outputs: torch.Tensor, kind: OutputKind | str) -> torch.Tensor:
    """Model outputs -> class probabilities (n, classes); for SIGMOID the classes are [0, 1]."""
    if kind == OutputKind.SIGMOID:
        p1 = torch.sigmoid(outputs.reshape(-1, 1).float())
        return torch.cat([1 - p1, p1], dim=1)
    if kind == OutputKind.SOFTMAX:
        return torch.softmax(outputs.float(), dim=1)
    raise ValueError("regression outputs have no class probabilities")
