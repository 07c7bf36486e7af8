"""Small conv nets: the course's digit net, and a batch-norm variant for RGB photos."""
from __future__ import annotations

from torch import nn

from ml.models.registry import register_model


def digits_cnn(in_channels: int, size: int, num_outputs: int, dropout: float) -> nn.Sequential:
    """conv32 → pool → conv64 → pool → fc128 → dropout → fc, for 28×28 grayscale."""
    flat = 64 * (size // 4) * (size // 4)
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(128, num_outputs),
    )


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]


# 16-32-64-128 plateaued at ~0.90 train / 0.76 test accuracy on cats vs dogs; twice as wide reached 0.80
PHOTO_WIDTHS = (32, 64, 128, 256)


def photo_cnn(in_channels: int, num_outputs: int, dropout: float) -> nn.Sequential:
    """Four conv-BN-ReLU-pool blocks (32-64-128-256) → global average pool → dropout → fc.

    Global pooling keeps the head the same size for any image_size from 32 to 256 px; the widths
    double as the resolution halves so each block costs about the same, ~60M multiply-adds per
    64 px photo in all: an epoch of ~1,600 photos takes about 6 s on two CPU cores.
    """
    w1, w2, w3, w4 = PHOTO_WIDTHS
    return nn.Sequential(
        *_block(in_channels, w1), *_block(w1, w2), *_block(w2, w3), *_block(w3, w4),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(w4, num_outputs),
    )


@register_model("cnn")
def build_cnn(hp, input_shape, num_outputs):
    channels, height = input_shape[0], input_shape[1]
    if channels == 1 and height <= 32:
        return digits_cnn(channels, height, num_outputs, hp.dropout)
    return photo_cnn(channels, num_outputs, hp.dropout)
