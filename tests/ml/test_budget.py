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


def _efficientnet(hp: dict):
    config = resolve_config("efficientnet_lite0", "cats_dogs", hp)
    import torch

    from ml.models import build_model

    with torch.device("meta"):
        model = build_model(config, (3, 224, 224), 2)
    return config, model


def test_a_frozen_backbone_has_no_gradients_or_optimizer_state_and_keeps_no_activations():
    head_config, model = _efficientnet({"train": "head"})
    head = estimate(head_config)
    head_params = sum(p.numel() for p in model.head.parameters())
    assert head.parameters == sum(p.numel() for p in model.parameters())  # every weight is held (and checkpointed)
    assert head.trainable == head_params == 1280 * 2 + 2
    assert (head.gradient_bytes, head.optimizer_bytes) == (4 * head_params, 2 * 4 * head_params)  # Adam: 2 buffers
    assert head.checkpoint_bytes == head.weights_bytes + head.optimizer_bytes

    tune_config, model = _efficientnet({"train": "fine_tune", "fine_tune_blocks": 3})
    tune = estimate(tune_config)
    learning = [*model.backbone._blocks[13:], model.backbone._conv_head, model.backbone._bn1, model.head]
    assert tune.trainable == sum(p.numel() for m in learning for p in m.parameters())
    assert tune.optimizer_bytes == 2 * 4 * tune.trainable < 2 * tune.weights_bytes

    whole = estimate(_efficientnet({"train": "fine_tune", "fine_tune_blocks": 16})[0])
    # what backward keeps grows with what learns; head mode keeps only the largest map of one forward
    assert head.activation_bytes < tune.activation_bytes < whole.activation_bytes
    assert head.activation_bytes * 5 < whole.activation_bytes
    assert head.memory_bytes < tune.memory_bytes < whole.memory_bytes
