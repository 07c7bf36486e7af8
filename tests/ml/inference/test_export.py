"""Export round trip: the TorchScript archive alone gives the predictor's probabilities."""
from __future__ import annotations

import json
import random

import pytest
import torch

from ml.data.transforms import normalize
from ml.inference.export import export_model, export_torchscript, load_torchscript
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


def test_the_onnx_export_gives_the_same_predictions(mnist_predictor):
    import onnx
    import onnxruntime

    images = [draw_digit(d, random.Random(d), CANVASES[0]).resize((90, 90)) for d in range(5)]
    model = onnx.load_from_string(export_model(mnist_predictor, "onnx", checkpoint_sha256="abc"))
    metadata = json.loads({p.key: p.value for p in model.metadata_props}["metadata"])
    assert metadata["format"] == "onnx" and metadata["preprocessing"]["version"] == "digits/2"
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    pre = metadata["preprocessing"]
    pixels = torch.stack([mnist_predictor.prepare(img).pixels for img in images])
    [probs] = session.run(None, {session.get_inputs()[0].name: normalize(pixels, pre["mean"], pre["std"]).numpy()})
    served = mnist_predictor.predict(images, top_k=1)
    assert probs.argmax(1).tolist() == [p.class_index for p in served]
    assert probs.max(1).tolist() == pytest.approx([p.confidence for p in served], abs=1e-5)
