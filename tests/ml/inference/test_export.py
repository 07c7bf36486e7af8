"""Export round trip: the TorchScript archive alone gives the predictor's probabilities."""
from __future__ import annotations

import json
import random

import pytest
import torch

from ml.data.transforms import normalize
from ml.inference.export import export_model, export_torchscript, load_program, load_torchscript
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


def test_the_pt2_export_gives_the_same_predictions_and_loads_without_a_deprecation_warning(mnist_predictor):
    import warnings

    images = [draw_digit(d, random.Random(d), CANVASES[0]).resize((90, 90)) for d in range(5)]
    data = export_model(mnist_predictor, "pt2", checkpoint_sha256="abc")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # torch.jit.load's "deprecated" is a FutureWarning
        warnings.simplefilter("error", DeprecationWarning)
        module, metadata = load_program(data)
    assert metadata["format"] == "pt2" and metadata["checkpoint_sha256"] == "abc"
    pre = metadata["preprocessing"]
    pixels = torch.stack([mnist_predictor.prepare(img).pixels for img in images])
    probs = module(normalize(pixels, pre["mean"], pre["std"]))  # 5 images: the batch size is not the traced 2
    served = mnist_predictor.predict(images, top_k=1)
    assert probs.argmax(1).tolist() == [p.class_index for p in served]
    assert probs.max(1).values.tolist() == pytest.approx([p.confidence for p in served], abs=1e-5)


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


@pytest.mark.parametrize("tta", ["flip", "zoom_flip"])
@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "pt2"])
def test_a_photo_model_exports_with_its_tta_inside(tmp_path, fmt, tta):
    # an untrained residual cats_dogs net with TTA: the export must average the same views
    from PIL import Image, ImageDraw

    from ml.checkpoint import save_checkpoint
    from ml.config import resolve_config
    from ml.inference import Predictor
    from ml.models import build_model, output_kind

    dataset = {"name": "cats_dogs", "task": "binary", "classes": ["cat", "dog"], "input_shape": [3, 32, 32],
               "input_kind": "photos", "image_size": 32, "mean": [0.5, 0.45, 0.4], "std": [0.25, 0.25, 0.25]}
    config = resolve_config("cnn", "cats_dogs", {"image_size": 32, "blocks": "residual", "tta": tta})
    torch.manual_seed(0)
    model = build_model(config, dataset["input_shape"], 2)
    with torch.no_grad():  # an untrained net answers ~0.5 to everything: spread its logits so views differ
        model[-1].weight.mul_(20)
    path = tmp_path / "epoch-001.pt"
    save_checkpoint(path, {"model_state": model.state_dict(), "optimizer_state": {}, "epoch": 1, "rng": {},
                           "config": config.model_dump(), "metrics": [], "best": {}, "dataset": dataset,
                           "output": output_kind(config)})
    predictor = Predictor.load(path)
    images = []
    for i in range(4):
        img = Image.new("RGB", (80, 60), (40 * i, 90, 200 - 40 * i))
        ImageDraw.Draw(img).polygon([(5, 5), (60, 30 + i), (5, 55)], fill=(250, 220, 30))
        images.append(img)
    data = export_model(predictor, fmt)
    pixels = normalize(torch.stack([predictor.prepare(img).pixels for img in images]), dataset["mean"], dataset["std"])
    if fmt in ("torchscript", "pt2"):
        module, metadata = (load_torchscript if fmt == "torchscript" else load_program)(data)
        exported = module(pixels)
    else:
        import onnx
        import onnxruntime

        proto = onnx.load_from_string(data)
        metadata = json.loads({p.key: p.value for p in proto.metadata_props}["metadata"])
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        exported = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: pixels.numpy()})[0])
    assert metadata["test_time_augmentation"] == tta
    served = predictor.predict(images, top_k=2)
    dog = torch.tensor([dict((c["label"], c["confidence"]) for c in p.top_k)["dog"] for p in served])
    assert torch.allclose(exported[:, 1], dog, atol=1e-5)
    without_tta = torch.softmax(predictor.model(pixels), 1)[:, 1]
    assert not torch.allclose(without_tta, dog, atol=1e-4)  # the views really changed the answer
    if tta == "zoom_flip":
        from ml.models import OutputKind, model_outputs, probabilities

        mirrored = probabilities(model_outputs(predictor.model, pixels, "flip"), OutputKind.SOFTMAX)[:, 1]
        assert not torch.allclose(mirrored, dog, atol=1e-4)  # and the zoom is inside too
