"""Generated regression sets: the least-squares fit recovers w and b; data is fixed, splits seeded."""
from __future__ import annotations

import torch

from ml.data import load_dataset


def test_least_squares_recovers_w_and_b():
    b = load_dataset("synthetic_linear", "/nonexistent", seed=0)
    assert (b.task, b.input_kind, b.classes, b.input_shape) == ("regression", "tabular", [], (2,))
    assert (len(b.train), len(b.val), len(b.test)) == (800, 100, 100)
    assert b.train.x.dtype == b.train.y.dtype == torch.float32 and b.train.y.shape == (800, 1)
    design = torch.cat([b.train.x, torch.ones(len(b.train), 1)], 1).double()
    solution = torch.linalg.lstsq(design, b.train.y.double()).solution.squeeze(1)
    assert torch.allclose(solution[:2], torch.tensor([2.0, -3.4], dtype=torch.float64), atol=0.01)
    assert abs(float(solution[2]) - 4.2) < 0.01
    assert b.extra["true_w"] == [2.0, -3.4] and b.extra["true_b"] == 4.2


def test_data_and_splits_are_fixed_the_seed_only_draws_the_train_subset():
    a = load_dataset("synthetic_linear", "/nonexistent", seed=0, max_train_samples=200)
    b = load_dataset("synthetic_linear", "/nonexistent", seed=1, max_train_samples=200)
    assert a.checksum == b.checksum and len(a.checksum) == 64
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.val.x, b.val.x)  # comparable runs
    assert not torch.equal(a.train.x, b.train.x)


def test_sine_is_small_and_noisy():
    b = load_dataset("synthetic_sine", "/nonexistent")
    assert len(b.train) == 100 and b.input_shape == (1,)
    x, y = b.train.x, b.train.y
    assert float(x.min()) >= -3 and float(x.max()) <= 3
    residual = (y - torch.sin(x)).std()
    assert 0.05 < float(residual) < 0.2
    assert b.checksum != load_dataset("synthetic_linear", "/nonexistent").checksum
