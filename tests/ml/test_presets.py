"""Every preset trains: a smoke run of each here (the quick ones in full, reaching their figure);
full-data figures of the image presets come from bench/accuracy.py --presets."""
from __future__ import annotations

import math

import pytest

from ml.config import resolve_config
from ml.presets import PRESETS, measure, reached
from ml.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

# image presets: a few hundred samples and one epoch; cats_dogs at 32 px so the photo decode stays cheap
SMOKE = {
    "softmax_fashion_mnist": dict(epochs=1, max_train_samples=512, max_eval_samples=256),
    "mlp_mnist": dict(epochs=1, max_train_samples=512, max_eval_samples=256),
    "mlp_mnist_mse_momentum": dict(epochs=1, max_train_samples=1024, max_eval_samples=256),
    "logistic_cats_dogs_128": dict(epochs=1, image_size=32, max_train_samples=256),
    "line_single_sample_gd": dict(epochs=5),
    "transfer_cats_dogs": dict(epochs=2, image_size=32),  # the backbone at 32 px: extraction takes seconds
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains(name, tmp_path, data_dir, cache_dir):
    preset = PRESETS[name]
    config = resolve_config(None, None, SMOKE.get(name, {}), preset=name)
    assert (config.model, config.dataset, config.preset) == (preset.model, preset.dataset, name)
    result = train(config, data_dir=data_dir, out_dir=tmp_path, cache_dir=cache_dir)
    assert result.epochs and all(math.isfinite(e.train_loss) for e in result.epochs)
    value = measure(preset, result)
    if name not in SMOKE:  # run in full: it must reach its documented figure
        assert reached(preset, value), (name, value, preset.figure)
