"""Checkpoints and job configs written before per-model specs still load and serve the same way."""
from __future__ import annotations

import torch

from ml.checkpoint import load_checkpoint
from ml.config import config_from_dict, resolve_config
from ml.inference.digits import GARMENTS
from ml.inference.predictor import Predictor
from ml.train import train

# the flat Hyperparameters of the old schema stored every model's knobs with every config
OLD_KNOBS = {"hidden_sizes": [128, 64], "activation": "relu", "polynomial_degree": 1, "dropout": 0.5,
             "image_size": None, "augment": "none"}


def test_an_old_cnn_checkpoint_loads_and_frames_uploads_as_its_dataset_did(tmp_path, data_dir, one_thread):
    config = resolve_config("cnn", "fashion_mnist", {"epochs": 1, "max_train_samples": 64, "max_steps": 1,
                                                     "max_eval_samples": 32})
    result = train(config, data_dir=data_dir, out_dir=tmp_path)
    state = torch.load(result.best_checkpoint, weights_only=True)
    state["config"]["hyperparameters"].update(OLD_KNOBS)
    state["config"].pop("notes"), state["config"].pop("preset")
    state["dataset"]["input_kind"] = "digits"
    del state["dataset"]["upload_framing"]
    old = tmp_path / "old.pt"
    torch.save(state, old)

    assert load_checkpoint(old)["dataset"]["input_kind"] == "grayscale"
    predictor = Predictor.load(old)
    assert predictor._style is GARMENTS and predictor.input_kind == "grayscale"
    assert config_from_dict(state["config"]).hp.dropout == 0.5
