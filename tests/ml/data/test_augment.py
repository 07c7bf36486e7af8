"""Batch augmentation: shape and dtype kept, seeded, actually changes the input, cheap; "strong" photo shifts."""
from __future__ import annotations

import time

import pytest
import torch

from ml.data.augment import STRONG_JITTER, make_augmenter
from ml.errors import InvalidConfig

MEAN, STD = [0.49, 0.45, 0.41], [0.25, 0.24, 0.25]


def _digits() -> torch.Tensor:
    x = torch.full((64, 1, 28, 28), -0.42)
    x[:, :, 8:20, 12:16] = 2.8  # a vertical bar, like a "1"
    return x


def _photos() -> torch.Tensor:
    return torch.randn(32, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kind, strength, batch", [("grayscale", "basic", _digits), ("photos", "basic", _photos),
                                                    ("grayscale", "strong", _digits), ("photos", "strong", _photos)])
def test_shape_dtype_determinism_and_change(kind, strength, batch):
    augment = make_augmenter(kind, strength, MEAN, STD)
    x = batch()
    original = x.clone()
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    c = augment(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == torch.float32
    assert torch.equal(x, original)  # the batch itself is left alone
    assert torch.equal(a, b) and not torch.equal(a, c)
    changed = (a - x).abs().flatten(1).mean(1)
    assert (changed > 0.01).float().mean() > 0.9  # nearly every sample is transformed
    assert changed.std() > 0  # ... each its own way


def test_digits_move_only_a_little():
    x = _digits()
    a = make_augmenter("grayscale", "basic")(x, torch.Generator().manual_seed(0))
    # the bar's mass stays near where it was: ±2 px shifts and ±10° rotations
    cols = torch.arange(28.0)
    centre = lambda t: ((t.clamp(min=0) * cols).sum((1, 2, 3)) / t.clamp(min=0).sum((1, 2, 3)))
    assert (centre(a) - centre(x)).abs().max() < 3.5
    assert float((a - x).abs().mean()) < 1.0


def test_photos_flip_about_half_the_batch():
    x = torch.linspace(-1, 1, 64).expand(256, 3, 64, 64).contiguous()  # dark left, bright right
    a = make_augmenter("photos", "basic")(x, torch.Generator().manual_seed(0))
    flipped = (a[:, 0, :, :8].mean((1, 2)) > a[:, 0, :, -8:].mean((1, 2))).float().mean()
    assert 0.35 < float(flipped) < 0.65


def test_none_and_tabular_need_no_augmenter():
    assert make_augmenter("grayscale", "none") is None
    assert make_augmenter("tabular", "basic") is None


def test_unknown_kind_names_the_field():
    with pytest.raises(InvalidConfig) as err:
        make_augmenter("grayscale", "heavy")
    assert err.value.errors[0]["field"] == "hyperparameters.augment"


def test_cheap_next_to_a_training_step():
    # ~1 ms on one core. One thread and the best of 20, because on a busy shared machine a
    # two-thread op can wait a whole scheduler slice for its second core; per-image work would still fail
    augment = make_augmenter("grayscale", "basic")
    x, g = _digits(), torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        augment(x, g)
        times = []
        for _ in range(20):
            started = time.perf_counter()
            augment(x, g)
            times.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
    assert min(times) < 0.02, f"{min(times) * 1000:.1f} ms per batch of 64 digits"


def _pixels(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)


def _normalised(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_strong_photos_stay_real_pixels_and_vary_in_brightness_and_framing():
    x = _normalised(torch.rand(256, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    a = _pixels(make_augmenter("photos", "strong", MEAN, STD)(x, torch.Generator().manual_seed(0)))
    assert float(a.min()) >= -1e-5 and float(a.max()) <= 1 + 1e-5  # clamped to what a photo can hold
    brightness = a.mean((1, 2, 3)) / _pixels(x).mean((1, 2, 3))
    assert float(brightness.min()) < 1 - STRONG_JITTER / 2 and float(brightness.max()) > 1 + STRONG_JITTER / 2


def test_strong_crops_zoom_into_the_photo():
    # a white square in the middle of black: zooming in makes it cover more of the frame, never less
    pixels = torch.zeros(256, 3, 64, 64)
    pixels[:, :, 24:40, 24:40] = 1.0
    a = _pixels(make_augmenter("photos", "strong", MEAN, STD)(_normalised(pixels), torch.Generator().manual_seed(0)))
    # brightness and contrast move the levels, so count pixels brighter than the frame's own mean
    covered = (a.mean(1) > a.mean((1, 2, 3)).view(-1, 1, 1)).float().mean((1, 2))
    assert float(covered.median()) > 16 * 16 / 64 / 64 * 1.3  # the median crop keeps about 65% of the area
