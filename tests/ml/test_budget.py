"""The memory estimate counts the dataset a run holds on its device, as the run would hold it."""
from __future__ import annotations

import pytest

from ml.budget import check_budget, estimate
from ml.config import resolve_config
from ml.errors import InvalidConfig


def test_the_dataset_held_on_the_device_is_counted(data_dir):
    config = resolve_config("mlp", "mnist", {})
    without, held = estimate(config), estimate(config, data_dir=data_dir)
    assert without.dataset_bytes == 0
    assert held.dataset_bytes == 70_000 * (784 * 4 + 8)  # every MNIST image, float32, and its label
    assert held.memory_bytes == without.memory_bytes + held.dataset_bytes
    smoke = estimate(resolve_config("mlp", "mnist", {"max_train_samples": 1000, "max_eval_samples": 500}),
                     data_dir=data_dir)
    assert smoke.dataset_bytes == 2000 * (784 * 4 + 8)


def test_a_dataset_too_big_for_the_budget_is_refused_and_the_message_says_why(data_dir):
    config = resolve_config("cnn", "cats_dogs", {"image_size": 128})
    held = estimate(config, data_dir=data_dir)
    budget = held.memory_bytes - held.dataset_bytes // 2  # the model fits; the model and its data do not
    assert check_budget(config, memory_bytes=budget, disk_bytes=20 * 1024**3) is not None  # data not counted
    with pytest.raises(InvalidConfig) as refused:
        check_budget(config, memory_bytes=budget, disk_bytes=20 * 1024**3, data_dir=data_dir)
    assert "for the dataset held on the device" in str(refused.value.errors)


def test_default_jobs_still_fit_the_default_budget(data_dir):
    for model, dataset in [("mlp", "mnist"), ("cnn", "fashion_mnist"), ("cnn", "cats_dogs")]:
        assert check_budget(resolve_config(model, dataset, {}), memory_bytes=8 * 1024**3, disk_bytes=20 * 1024**3,
                            data_dir=data_dir) is not None
