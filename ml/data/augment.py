"""Batch augmentation on normalised tensors: one affine warp per sample, vectorised, on the batch's device."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ml.errors import InvalidConfig

Augmenter = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AUGMENT_KINDS = ("none", "basic")

DIGIT_MAX_DEGREES = 10.0
DIGIT_MAX_SHIFT_PX = 2.0
DIGIT_NOISE_STD = 0.1  # in normalised units (~0.03 of the [0, 1] pixel range for MNIST)
PHOTO_MIN_CROP = 0.8  # a random crop keeps 80-100% of each side, then is resized back


def _uniform(n: int, low: float, high: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    # drawn on the generator's device so a CPU generator also drives a CUDA batch
    return (torch.rand(n, generator=g, device=g.device) * (high - low) + low).to(device)


def _warp(x: torch.Tensor, theta: torch.Tensor, padding_mode: str) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def augment_digits(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Per sample: rotate up to ±10°, shift up to ±2 px, add a little Gaussian noise."""
    n, _, h, w = x.shape
    angle = _uniform(n, -DIGIT_MAX_DEGREES, DIGIT_MAX_DEGREES, g, x.device) * (math.pi / 180)
    # affine_grid works in [-1, 1] coordinates, where one pixel is 2 / size
    tx = _uniform(n, -DIGIT_MAX_SHIFT_PX, DIGIT_MAX_SHIFT_PX, g, x.device) * (2.0 / w)
    ty = _uniform(n, -DIGIT_MAX_SHIFT_PX, DIGIT_MAX_SHIFT_PX, g, x.device) * (2.0 / h)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    # "border" repeats the edge pixels, which are background in digit images
    out = _warp(x, theta, padding_mode="border")
    noise = torch.randn(x.shape, generator=g, device=g.device).to(x.device, x.dtype)
    return out.add_(noise, alpha=DIGIT_NOISE_STD)


def augment_photos(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Per sample: random horizontal flip and a random crop of 80-100% of the side, resized back."""
    n = x.shape[0]
    flip = torch.where(_uniform(n, 0.0, 1.0, g, x.device) < 0.5, -1.0, 1.0)
    scale = _uniform(n, PHOTO_MIN_CROP, 1.0, g, x.device)
    # the crop window stays inside the image: its centre moves at most (1 - scale)
    tx = _uniform(n, -1.0, 1.0, g, x.device) * (1 - scale)
    ty = _uniform(n, -1.0, 1.0, g, x.device) * (1 - scale)
    zero = torch.zeros_like(scale)
    theta = torch.stack([torch.stack([scale * flip, zero, tx], 1), torch.stack([zero, scale, ty], 1)], 1)
    return _warp(x, theta, padding_mode="reflection")


def make_augmenter(input_kind: str, kind: str) -> Augmenter | None:
    """The batch augmenter for `kind` ("none" | "basic") on this input kind; None when nothing to do."""
    if kind not in AUGMENT_KINDS:
        raise InvalidConfig([{
            "field": "hyperparameters.augment", "message": f"must be one of {', '.join(AUGMENT_KINDS)}, got {kind!r}",
        }])
    if kind == "none" or input_kind == "tabular":
        return None
    if input_kind == "grayscale":
        return augment_digits
    if input_kind == "photos":
        return augment_photos
    raise ValueError(f"no augmentation defined for input kind {input_kind!r}")
