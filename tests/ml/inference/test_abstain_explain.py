"""Uploads with nothing to read abstain, answers show their work, unsure answers are flagged."""
from __future__ import annotations

import base64
import io
import random

import numpy as np
import pytest
import torch
from PIL import Image

from ml.inference.content import nothing_to_read
from ml.inference.predictor import low_confidence_threshold
from tests.ml.inference.drawn_digits import CANVASES, draw_digit


def _digit() -> Image.Image:
    return draw_digit(3, random.Random(1), CANVASES[0]).resize((120, 120))


def _transparent() -> Image.Image:
    from ml.inference.decode import decode_upload

    buf = io.BytesIO()
    Image.new("RGBA", (64, 64), (200, 10, 10, 0)).save(buf, format="PNG")
    return decode_upload(buf.getvalue(), max_bytes=10**6, max_pixels=10**6)


NO_CONTENT = {
    "blank white": lambda: Image.new("L", (200, 200), 255),
    "one colour": lambda: Image.new("RGB", (90, 60), (30, 120, 200)),
    "fully transparent": _transparent,
    "1x1": lambda: Image.new("RGB", (1, 1), (0, 0, 0)),
}


@pytest.mark.parametrize("name", NO_CONTENT)
def test_no_content_abstains_with_a_reason_others_answered_in_order(mnist_predictor, name):
    answers = mnist_predictor.predict([_digit(), NO_CONTENT[name](), _digit()], top_k=3)
    assert [a.abstained for a in answers] == [False, True, False]
    empty = answers[1]
    assert empty.label is None and empty.class_index is None and empty.top_k is None
    assert "pixels" in empty.reason if name == "1x1" else "one colour" in empty.reason
    assert answers[0].label == answers[2].label == "3"


def test_faint_noise_on_a_photo_still_counts_as_one_colour():
    noisy = Image.new("RGB", (50, 50), (128, 128, 128))
    noisy.putpixel((10, 10), (131, 126, 129))
    assert nothing_to_read(noisy) is not None
    assert nothing_to_read(_digit()) is None


def test_explain_returns_the_model_input_as_a_png_and_the_steps(mnist_predictor):
    [answer] = mnist_predictor.predict([_digit()], top_k=1, explain=True)
    shown = Image.open(io.BytesIO(base64.b64decode(answer.input_png)))
    assert shown.size == (28, 28) and shown.mode == "L"
    framed = mnist_predictor.prepare(_digit()).pixels
    assert np.array_equal(np.asarray(shown), framed[0].numpy())  # exactly what the model saw
    assert answer.steps[0] == "grayscale" and any("inverted" in s for s in answer.steps)
    assert any("20×20" in s for s in answer.steps) and "centred by mass" in answer.steps[-2]
    [plain] = mnist_predictor.predict([_digit()], top_k=1)
    assert plain.input_png is None and plain.steps is None
    assert mnist_predictor.preprocessing_version == "digits/2"


def test_low_confidence_is_flagged_by_the_dataset_threshold(mnist_predictor):
    assert low_confidence_threshold({"classes": ["cat", "dog"]}) == 0.75
    assert low_confidence_threshold({"classes": list("0123456789")}) == 0.6
    assert low_confidence_threshold({"classes": ["a", "b"], "low_confidence": 0.9}) == 0.9
    [sure] = mnist_predictor.predict([_digit()])
    assert sure.confidence >= 0.6 and sure.low_confidence is False
    unsure = mnist_predictor.predictions(torch.tensor([[0.5, 0.4] + [0.0125] * 8]))
    assert unsure[0].low_confidence is True
