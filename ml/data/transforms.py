"""Eval transforms shared by training and serving, so both preprocess identically.

Training decodes each image once through these functions and caches the uint8 tensors;
the predictor runs the same functions on uploads, then `normalize` with the checkpoint's mean/std.
"""
from __future__ import annotations

import torch
from PIL import Image
from torchvision.transforms import v2 as T


def photo_eval_transform(image_size: int) -> T.Compose:
    """PIL RGB photo -> uint8 tensor (3, image_size, image_size): resize short side, centre-crop."""
    return T.Compose([
        T.PILToTensor(),
        T.Resize(image_size, antialias=True),
        T.CenterCrop(image_size),
    ])


def photo_to_uint8(image: Image.Image, image_size: int) -> torch.Tensor:
    """Apply the photo eval transform to one image of any mode."""
    return photo_eval_transform(image_size)(image.convert("RGB"))


def normalize(x_uint8: torch.Tensor, mean: list[float] | torch.Tensor, std: list[float] | torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 scaled to [0, 1] and standardised per channel.

    `mean`, `std`: per channel, as lists or as float32 tensors (a caller that normalises often keeps those).
    """
    x = x_uint8.float().div_(255.0)
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)
