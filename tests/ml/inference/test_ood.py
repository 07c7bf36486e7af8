"""Out-of-distribution flags: calibrated in training, stored in the checkpoint, raised on photos, rare on digits."""
from __future__ import annotations

import io
import random

import pytest
import torch
from PIL import Image

from ml.checkpoint import load_checkpoint, save_checkpoint
from ml.data import load_dataset
from ml.inference import Predictor, decode_upload
from ml.ood import OodCalibration, calibrate, energy
from tests.utils.models import digit_png


def _decoded(data: bytes) -> Image.Image:
    return decode_upload(data, max_bytes=10**8, max_pixels=10**8)


def _png(pixels: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels[0].numpy()).save(buf, format="PNG")
    return buf.getvalue()


def test_the_checkpoint_carries_its_validation_calibration(mnist_cnn_checkpoint, mnist_predictor):
    record = load_checkpoint(mnist_cnn_checkpoint)["ood"]
    assert record["score"] == "energy" and record["quantile"] == 0.95 and record["val_samples"] == 6000
    assert mnist_predictor.ood == OodCalibration.from_dict(record)
    assert mnist_predictor.ood.threshold < 0  # an energy: -logsumexp of a confident net's logits


def test_the_threshold_flags_the_chosen_share_of_validation_scores():
    logits = torch.randn(1000, 10, generator=torch.Generator().manual_seed(0)) * 3
    cal = calibrate(logits, "softmax", 0.9)
    assert (energy(logits) > cal.threshold).float().mean().item() == pytest.approx(0.1, abs=0.002)
    assert calibrate(torch.randn(5, 1), "identity", 0.95) is None  # regression: no flag
    one_logit = calibrate(torch.randn(200, 1), "sigmoid", 0.95)  # a one-logit binary classifier has one too
    assert one_logit is not None and one_logit.val_samples == 200


def test_a_version_without_calibration_answers_without_a_flag(mnist_cnn_checkpoint, mnist_predictor, tmp_path):
    state = load_checkpoint(mnist_cnn_checkpoint)
    del state["ood"]  # as checkpoints written before the calibration existed
    old = tmp_path / "old.pt"
    save_checkpoint(old, {k: v for k, v in state.items() if k != "format_version"})
    predictor = Predictor.load(old)
    assert predictor.ood is None
    upload = _decoded(digit_png())
    [answer] = predictor.predict([upload], top_k=1)
    assert answer.label is not None and answer.out_of_distribution is None and answer.ood_score is None
    [calibrated] = mnist_predictor.predict([upload], top_k=1)  # the same weights, calibrated
    assert isinstance(calibrated.out_of_distribution, bool) and isinstance(calibrated.ood_score, float)
    assert calibrated.as_dict()["out_of_distribution"] == (calibrated.ood_score > mnist_predictor.ood.threshold)


def test_photos_are_flagged_and_held_out_digits_mostly_not(mnist_predictor, data_dir, cache_dir):
    """Real MNIST test digits (never calibrated on) sent as uploads vs cats-dogs photos, seeded."""
    test = load_dataset("mnist", data_dir, cache_dir=cache_dir).test.x[:400]
    mean, std = mnist_predictor.dataset["mean"][0], mnist_predictor.dataset["std"][0]
    digits = [_png((d * std + mean).mul(255).round().clamp(0, 255).to(torch.uint8)) for d in test]
    files = sorted((data_dir / "cats-dogs").glob("*/*.jpg"))
    photos = [f.read_bytes() for f in random.Random(0).sample(files, 60)]

    def flagged(uploads):
        answers = mnist_predictor.predict([_decoded(u) for u in uploads], top_k=1)
        return sum(bool(a.out_of_distribution) for a in answers if not a.abstained) / len(uploads)

    on_digits, on_photos = flagged(digits), flagged(photos)
    # by construction ~5% of validation digits; 400 held-out ones: 5% ± 2.2% (2 s.d. ≈ 9.4%)
    assert on_digits < 0.10, on_digits
    assert on_photos > 0.35 and on_photos > on_digits + 0.25, (on_photos, on_digits)
