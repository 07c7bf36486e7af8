"""Export round trip: the TorchScript archive alone gives the predictor's probabilities."""
from __future__ import annotations

import random

import torch

from ml.data.transforms import normalize
from ml.inference.export import export_torchscript, load_torchscript
from tests.ml.inference.drawn_digits import CANVASES, draw_digit


def test_the_exported_model_gives_the_same_predictions(mnist_predictor):
    images = [draw_digit(d, random.Random(d), CANVASES[d % len(CANVASES)]).resize((90, 90)) for d in range(10)]
    module, metadata = load_torchscript(export_torchscript(mnist_predictor, checkpoint_sha256="abc"))
    pre = metadata["preprocessing"]
    assert metadata["classes"] == list("0123456789") and metadata["checkpoint_sha256"] == "abc"
    assert pre["version"] == mnist_predictor.preprocessing_version and pre["size"] == 28
    pixels = torch.stack([mnist_predictor.prepare(img).pixels for img in images])
    exported = module(normalize(pixels, pre["mean"], pre["std"]))
    served = mnist_predictor.predict(images, top_k=10)
    assert exported.argmax(1).tolist() == [p.class_index for p in served]
    expected = torch.tensor([[c["confidence"] for c in sorted(p.top_k, key=lambda c: c["class_index"])]
                             for p in served])
    assert torch.allclose(exported, expected, atol=1e-5)
