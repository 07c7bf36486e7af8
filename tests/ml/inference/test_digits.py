"""MNIST-style framing: whatever the canvas, the model sees light strokes on black, 20 px tall, centred by mass."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from ml.inference.digits import DIGITS, GARMENTS, style_for, to_mnist_uint8


def _seven(size=(400, 400), paper=(255, 255, 255), ink=(0, 0, 0), box=(100, 60, 300, 340), width=24):
    """A "7" drawn as two strokes inside `box` (left, top, right, bottom)."""
    img = Image.new("RGB", size, paper)
    left, top, right, bottom = box
    ImageDraw.Draw(img).line([(left, top), (right, top), ((left + right) / 2, bottom)], fill=ink, width=width)
    return img


def _stats(t: torch.Tensor):
    a = t[0].numpy().astype(np.float64)
    rows, cols = np.flatnonzero(a.max(1) > 90), np.flatnonzero(a.max(0) > 90)
    ys, xs = np.indices(a.shape)
    com = ((a * ys).sum() / a.sum(), (a * xs).sum() / a.sum())
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1, com


def test_output_is_uint8_light_on_black_28x28():
    t = to_mnist_uint8(_seven())
    assert t.shape == (1, 28, 28) and t.dtype == torch.uint8
    assert t.max() == 255
    assert t[0, 0].max() == 0 and t[0, -1].max() == 0 and t[0, :, 0].max() == 0  # black frame


def test_fits_20_pixels_keeping_aspect_and_centres_by_mass():
    height, width, (cy, cx) = _stats(to_mnist_uint8(_seven()))
    assert 19 <= height <= 21
    assert 12 <= width <= 16  # the drawing is 200 wide for 280 tall: 20 × 200/280 ≈ 14
    assert abs(cy - 14) < 0.8 and abs(cx - 14) < 0.8


def test_dark_on_light_equals_light_on_dark():
    dark_on_light = to_mnist_uint8(_seven())
    light_on_dark = to_mnist_uint8(_seven(paper=(0, 0, 0), ink=(255, 255, 255)))
    assert torch.equal(dark_on_light, light_on_dark)


def test_off_centre_small_digit_on_coloured_paper_is_framed_like_a_centred_one():
    centred = to_mnist_uint8(_seven(box=(100, 60, 300, 340), width=24)).float()
    # blue ink on cream paper, a quarter of the size, in the top-left corner of a wider sheet
    corner = to_mnist_uint8(_seven(size=(800, 600), paper=(246, 238, 214), ink=(28, 45, 150),
                                   box=(30, 20, 80, 90), width=6)).float()
    assert (centred - corner).abs().mean() < 20  # of 255: the same picture, up to resampling


def test_hairline_strokes_are_thickened_to_pen_width():
    thick = to_mnist_uint8(_seven(width=30))
    hairline = to_mnist_uint8(_seven(width=2))
    ink = lambda t: int((t > 128).sum())  # noqa: E731
    assert ink(hairline) >= 0.6 * ink(thick)


def test_thick_marker_stays_recognisably_thin_strokes():
    t = to_mnist_uint8(_seven(width=40))
    assert (t > 128).float().mean() < 0.35  # not a blob


def test_blank_canvas_gives_a_black_frame():
    assert to_mnist_uint8(Image.new("RGB", (300, 300), "white")).max() == 0


def test_paper_texture_is_not_ink():
    def on(paper: np.ndarray) -> torch.Tensor:
        img = Image.fromarray(paper).convert("RGB")
        ImageDraw.Draw(img).line([(100, 60), (200, 60), (150, 240)], fill=(20, 20, 20), width=14)
        return to_mnist_uint8(img)

    rng = np.random.default_rng(0)
    textured = on(np.clip(rng.normal(235, 6, (300, 300)), 0, 255).astype(np.uint8))
    flat = on(np.full((300, 300), 235, dtype=np.uint8))
    assert (textured.float() - flat.float()).abs().mean() < 6
    assert int((textured > 40).sum()) <= int((flat > 40).sum()) + 4  # no speckles survive


def test_garments_fill_the_frame_centred():
    shirt = Image.new("RGB", (300, 300), "white")
    ImageDraw.Draw(shirt).rectangle([60, 30, 240, 270], fill=(90, 40, 40))
    t = to_mnist_uint8(shirt, GARMENTS)
    height, width, _ = _stats(t)
    assert height == 28 and 20 <= width <= 23  # longest edge 28, as Fashion-MNIST was made
    assert style_for("garment") is GARMENTS and style_for("digit") is DIGITS


def test_pale_parts_of_a_garment_are_kept_when_cropping():
    shirt = Image.new("RGB", (300, 300), "white")
    draw = ImageDraw.Draw(shirt)
    draw.rectangle([80, 20, 220, 280], fill=(205, 205, 205))  # a pale grey shirt
    draw.rectangle([130, 20, 170, 60], fill=(20, 20, 20))  # with a dark collar
    height, width, _ = _stats(to_mnist_uint8(shirt, GARMENTS).clamp(max=1) * 255)
    assert height == 28 and 14 <= width <= 16  # the whole shirt, not just its collar
