"""What a loaded dataset looks like to the train loop: tensors already in memory, split three ways."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

Task = Literal["classification", "binary", "regression"]
InputKind = Literal["grayscale", "photos", "tabular"]


@dataclass
class TensorSplit:
    """x: float32, normalised, (n, C, H, W) for images or (n, d) for tabular.
    y: int64 class indices for classification/binary, float32 (n, 1) for regression."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class RawDataset:
    """A dataset as decoded from its source, before splitting and normalising.

    x: uint8 (n, C, H, W) images or float32 (n, d) features; y as in TensorSplit.
    test_x/test_y: the source's own test split, None when it has none."""

    x: torch.Tensor
    y: torch.Tensor
    checksum: str  # sha256 over the source files' bytes, or over the generator's parameters
    test_x: torch.Tensor | None = None
    test_y: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class DatasetBundle:
    """A dataset ready to train on, with what serving needs to preprocess identically."""

    name: str
    task: Task
    input_kind: InputKind
    classes: list[str]  # [] for regression
    input_shape: tuple[int, ...]  # one sample's shape, e.g. (1, 28, 28) or (2,)
    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    mean: list[float] = field(default_factory=list)  # per-channel, images only
    std: list[float] = field(default_factory=list)
    image_size: int | None = None
    checksum: str = ""  # sha256 over the source files (or the generator's parameters)
    extra: dict = field(default_factory=dict)  # e.g. true w, b of synthetic_linear

    @property
    def num_classes(self) -> int:
        return len(self.classes)
