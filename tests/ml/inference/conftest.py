"""A default mnist cnn trained once per session (on a subset, to keep the suite fast)."""
from __future__ import annotations

from pathlib import Path

import pytest

from ml.config import resolve_config
from ml.inference import Predictor
from ml.train import train

# The course defaults of cnn on mnist (resolve_config("cnn", "mnist", {})); only the amount of
# training is cut for the suite: 6,000 samples × 2 epochs instead of 54,000 × 8.
SMOKE = {"max_train_samples": 6_000, "epochs": 2}


@pytest.fixture(scope="session")
def mnist_cnn_checkpoint(data_dir, cache_dir, tmp_path_factory) -> Path:
    config = resolve_config("cnn", "mnist", SMOKE)
    result = train(config, data_dir=data_dir, out_dir=tmp_path_factory.mktemp("mnist-cnn"), cache_dir=cache_dir)
    assert result.test.accuracy > 0.93, result.test.accuracy
    return result.best_checkpoint


@pytest.fixture(scope="session")
def mnist_predictor(mnist_cnn_checkpoint) -> Predictor:
    return Predictor.load(mnist_cnn_checkpoint)
