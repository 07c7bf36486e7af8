"""Predictor: rebuilt from a checkpoint file alone; probabilities, top-k and both output kinds."""
from __future__ import annotations

import threading

import pytest
import torch
from PIL import Image, ImageDraw

from ml.checkpoint import save_checkpoint
from ml.config import resolve_config
from ml.data.transforms import normalize, photo_to_uint8
from ml.inference import Predictor
from ml.inference.predictor import FORWARD_THREADS
from ml.models import build_model, output_kind

CATS_DOGS = {"name": "cats_dogs", "task": "binary", "classes": ["cat", "dog"], "input_shape": [3, 32, 32],
             "input_kind": "photos", "image_size": 32, "mean": [0.5, 0.45, 0.4], "std": [0.25, 0.25, 0.25]}
FASHION = {"name": "fashion_mnist", "task": "classification",
           "classes": ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                       "ankle boot"],
           "input_shape": [1, 28, 28], "input_kind": "grayscale", "upload_framing": "digit", "image_size": None, "mean": [0.286], "std": [0.353]}


def _checkpoint(tmp_path, model_name: str, dataset: dict, overrides: dict | None = None):
    config = resolve_config(model_name, dataset["name"], overrides or {})
    torch.manual_seed(0)
    model = build_model(config, dataset["input_shape"], len(dataset["classes"]))
    path = tmp_path / "epoch-001.pt"
    save_checkpoint(path, {"model_state": model.state_dict(), "optimizer_state": {}, "epoch": 1, "rng": {},
                           "config": config.model_dump(), "metrics": [], "best": {}, "dataset": dataset,
                           "output": output_kind(config)})
    return path, model.eval()


def _photo(colour) -> Image.Image:
    img = Image.new("RGB", (120, 80), colour)
    ImageDraw.Draw(img).ellipse([30, 10, 90, 70], fill=(240, 220, 200))
    return img


def test_binary_logistic_regression_gives_two_class_probabilities(tmp_path):
    path, model = _checkpoint(tmp_path, "logistic_regression", CATS_DOGS, {"image_size": 32})
    predictor = Predictor.load(path)
    images = [_photo((90, 60, 30)), _photo((20, 20, 120))]
    predictions = predictor.predict(images, top_k=5)
    assert [len(p.top_k) for p in predictions] == [2, 2]  # capped at the number of classes
    for image, p in zip(images, predictions):
        assert {c["label"] for c in p.top_k} == {"cat", "dog"}
        assert sum(c["confidence"] for c in p.top_k) == pytest.approx(1.0, abs=1e-5)
        # exactly the evaluation transform, then one logit through a sigmoid
        x = normalize(photo_to_uint8(image, 32)[None], CATS_DOGS["mean"], CATS_DOGS["std"])
        p_dog = torch.sigmoid(model(x)).item()
        assert dict((c["label"], c["confidence"]) for c in p.top_k)["dog"] == pytest.approx(p_dog, abs=1e-5)
        assert p.label == ("dog" if p_dog > 0.5 else "cat") and p.class_index == (p_dog > 0.5)


def test_softmax_top_k_is_ranked_and_labelled(tmp_path):
    path, _ = _checkpoint(tmp_path, "softmax_regression", FASHION)
    predictor = Predictor.load(path)
    img = Image.new("L", (60, 90), 255)
    ImageDraw.Draw(img).rectangle([15, 10, 45, 80], fill=30)
    [p] = predictor.predict([img], top_k=3)
    confidences = [c["confidence"] for c in p.top_k]
    assert confidences == sorted(confidences, reverse=True) and len(confidences) == 3
    assert p.top_k[0] == {"label": p.label, "class_index": p.class_index, "confidence": p.confidence}
    assert p.label == FASHION["classes"][p.class_index]
    assert predictor.dataset_name == "fashion_mnist" and predictor.model_type == "softmax_regression"


def test_batch_equals_one_by_one(tmp_path):
    path, _ = _checkpoint(tmp_path, "cnn", {**FASHION, "name": "mnist", "classes": list("0123456789")})
    predictor = Predictor.load(path)
    images = [Image.effect_noise((50 + 10 * i, 40), 80 + 10 * i).convert("L") for i in range(4)]
    together = predictor.predict(images, top_k=3)
    alone = [predictor.predict([img], top_k=3)[0] for img in images]
    for a, b in zip(together, alone):
        assert a.class_index == b.class_index and a.confidence == pytest.approx(b.confidence, abs=1e-5)
    assert predictor.predict([], top_k=3) == []


def test_regression_checkpoints_are_not_servable(tmp_path):
    dataset = {"name": "synthetic_linear", "task": "regression", "classes": [], "input_shape": [2],
               "input_kind": "tabular", "image_size": None, "mean": [], "std": []}
    path, _ = _checkpoint(tmp_path, "linear_regression", dataset)
    with pytest.raises(ValueError, match="not an image classifier"):
        Predictor.load(path)


def _asymmetric_photo() -> Image.Image:
    img = Image.new("RGB", (90, 90), (30, 30, 30))
    ImageDraw.Draw(img).polygon([(5, 5), (60, 45), (5, 85)], fill=(250, 200, 40))  # points right, sits left
    return img


@pytest.mark.parametrize("tta, invariant", [("flip", True), ("zoom_flip", True), ("none", False)])
def test_flip_tta_answers_a_photo_and_its_mirror_alike(tmp_path, tta, invariant):
    path, _ = _checkpoint(tmp_path, "cnn", CATS_DOGS, {"image_size": 32, "blocks": "residual", "tta": tta})
    predictor = Predictor.load(path)
    image = _asymmetric_photo()
    a, b = predictor.predict([image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)], top_k=2)
    conf = lambda p: dict((c["label"], c["confidence"]) for c in p.top_k)["dog"]  # noqa: E731
    # the averaged logits of (x, mirror x) are those of (mirror x, x): the same answer to the last digit
    assert (abs(conf(a) - conf(b)) < 1e-5) == invariant, (conf(a), conf(b))
    [shown] = predictor.predict([image], explain=True)
    assert ("mirror" in shown.steps[-1]) == invariant, shown.steps  # explain says how it was scored
    assert ("centre 80%" in shown.steps[-1]) == (tta == "zoom_flip"), shown.steps


def test_a_batch_of_large_photos_is_split_across_threads_and_answers_as_one_by_one(tmp_path):
    dataset = {**CATS_DOGS, "input_shape": [3, 128, 128], "image_size": 128}  # 128² ≥ SPLIT_MIN_PIXELS
    path, _ = _checkpoint(tmp_path, "cnn", dataset, {"image_size": 128, "tta": "flip"})
    predictor = Predictor.load(path)
    threads = []
    predictor.model.register_forward_hook(lambda *_: threads.append(threading.current_thread().name))
    images = [_photo((40 * i, 60, 200 - 30 * i)) for i in range(5)]
    together = predictor.predict(images, top_k=2)
    if FORWARD_THREADS > 1:  # the batch went in parts, each on a forward thread (with its mirror: TTA)
        assert len(threads) == 2 * min(FORWARD_THREADS, 5) and all(t.startswith("forward") for t in threads), threads
    threads.clear()
    alone = [predictor.predict([img], top_k=2)[0] for img in images]
    assert threads == [threading.current_thread().name] * 10  # a lone image is not worth a hop
    for a, b in zip(together, alone):
        assert a.class_index == b.class_index and a.confidence == pytest.approx(b.confidence, abs=1e-5)
