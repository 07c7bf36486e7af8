"""Batch augmentation on normalised tensors: one affine warp per sample, vectorised, on the batch's device.

"basic" is the course's flip and mild crop. "strong" is for photos that come from elsewhere: a user's
photo is framed tighter or looser, tilted, lit and exposed differently; each batch sample gets a
random resized crop (area, aspect), flip, small rotation and a colour jitter, all as tensor ops.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F

from ml.errors import InvalidConfig

Augmenter = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AUGMENT_KINDS = ("none", "basic", "strong")

DIGIT_MAX_DEGREES = 10.0
DIGIT_MAX_SHIFT_PX = 2.0
DIGIT_NOISE_STD = 0.1  # in normalised units (~0.03 of the [0, 1] pixel range for MNIST)
PHOTO_MIN_CROP = 0.8  # a random crop keeps 80-100% of each side, then is resized back
# "strong": the crop keeps 30-100% of the area at an aspect of 3:4 to 4:3 (torchvision's
# RandomResizedCrop, narrowed: below ~30% a 64 px crop often loses the animal)
STRONG_AREA = (0.30, 1.0)
STRONG_ASPECT = (3 / 4, 4 / 3)
STRONG_MAX_DEGREES = 10.0
STRONG_JITTER = 0.4  # brightness, contrast and saturation factors drawn from [0.6, 1.4]
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as Pillow's convert("L")


@lru_cache(maxsize=64)
def _channels(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A (1, C, 1, 1) constant, built once per device and dtype: on a GPU each build is a host-to-device copy."""
    return torch.tensor(values, dtype=dtype, device=device).view(1, -1, 1, 1)


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


def _resized_crops(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Per sample: a random crop (area and aspect as STRONG_*), flipped half the time, tilted, resized back."""
    n = x.shape[0]
    area = _uniform(n, *STRONG_AREA, g, x.device)
    aspect = torch.exp(_uniform(n, math.log(STRONG_ASPECT[0]), math.log(STRONG_ASPECT[1]), g, x.device))
    sx, sy = (area * aspect).sqrt().clamp(max=1.0), (area / aspect).sqrt().clamp(max=1.0)
    flip = torch.where(_uniform(n, 0.0, 1.0, g, x.device) < 0.5, -1.0, 1.0)
    angle = _uniform(n, -STRONG_MAX_DEGREES, STRONG_MAX_DEGREES, g, x.device) * (math.pi / 180)
    tx = _uniform(n, -1.0, 1.0, g, x.device) * (1 - sx)
    ty = _uniform(n, -1.0, 1.0, g, x.device) * (1 - sy)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # output -> input coordinates: rotate, then scale each axis (and mirror x), then move the window
    theta = torch.stack([torch.stack([cos * sx * flip, -sin * sy, tx], 1),
                         torch.stack([sin * sx * flip, cos * sy, ty], 1)], 1)
    return _warp(x, theta, padding_mode="reflection")


def _jitter(pixels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation of [0, 1] RGB pixels, one random factor of each per sample."""
    n = pixels.shape[0]
    low, high = 1 - STRONG_JITTER, 1 + STRONG_JITTER
    brightness, contrast, saturation = (_uniform(n, low, high, g, pixels.device).view(n, 1, 1, 1)
                                        for _ in range(3))
    luma = _channels(LUMA, pixels.device, pixels.dtype)
    out = pixels * brightness
    grey = (out * luma).sum(1, keepdim=True)
    out = torch.lerp(grey.mean((2, 3), keepdim=True), out, contrast)  # about the mean grey, as torchvision
    grey = (out * luma).sum(1, keepdim=True)
    return torch.lerp(grey, out, saturation).clamp_(0.0, 1.0)


def strong_photo_augmenter(mean: list[float], std: list[float]) -> Augmenter:
    """The "strong" augmenter of photos normalised with `mean` and `std` (the jitter works on pixels)."""

    mean, std = tuple(mean), tuple(std)

    def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        m, s = _channels(mean, x.device, x.dtype), _channels(std, x.device, x.dtype)
        pixels = _resized_crops(x, g).mul_(s).add_(m).clamp_(0.0, 1.0)
        return _jitter(pixels, g).sub_(m).div_(s)

    return augment


def make_augmenter(input_kind: str, kind: str, mean: list[float] | None = None,
                   std: list[float] | None = None) -> Augmenter | None:
    """The batch augmenter for `kind` on this input kind (mean/std: the normalisation, for "strong"); None when nothing to do."""
    if kind not in AUGMENT_KINDS:
        raise InvalidConfig([{
            "field": "hyperparameters.augment", "message": f"must be one of {', '.join(AUGMENT_KINDS)}, got {kind!r}",
        }])
    if kind == "none" or input_kind == "tabular":
        return None
    if input_kind == "grayscale":
        return augment_digits  # "strong" is "basic" for digits: a mirrored or recoloured digit is no digit
    if input_kind == "photos":
        return augment_photos if kind == "basic" else strong_photo_augmenter(mean, std)
    raise ValueError(f"no augmentation defined for input kind {input_kind!r}")
