"""Shifts a user's photo brings, applied to held-out photos before serving preprocessing.

Each shift is PIL image in, PIL image out, seeded per photo so every model sees the same shifted
set. bench/accuracy.py --spread scores a served checkpoint on each.
"""
from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Callable

from PIL import Image, ImageEnhance, ImageOps

Shift = Callable[[Image.Image, random.Random], Image.Image]


def random_crop(side: float) -> Shift:
    """A window of `side` of each side at a random place: the subject framed tighter, off-centre."""

    def shift(image: Image.Image, rng: random.Random) -> Image.Image:
        w, h = image.size
        cw, ch = max(1, round(w * side)), max(1, round(h * side))
        left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
        return image.crop((left, top, left + cw, top + ch))

    return shift


def centre_aspect(ratio: float) -> Shift:
    """The largest centred window of width/height `ratio`: the photo taken in another format."""

    def shift(image: Image.Image, rng: random.Random) -> Image.Image:
        w, h = image.size
        cw, ch = (w, round(w / ratio)) if w / h < ratio else (round(h * ratio), h)
        left, top = (w - cw) // 2, (h - ch) // 2
        return image.crop((left, top, left + cw, top + ch))

    return shift


def enhance(kind: type, factor: float) -> Shift:
    """Pillow's brightness or contrast enhancer at `factor` (1 = unchanged)."""
    return lambda image, rng: kind(image).enhance(factor)


def jpeg(quality: int) -> Shift:
    """Re-encoded as JPEG at `quality`, as messaging apps and thumbnails do."""

    def shift(image: Image.Image, rng: random.Random) -> Image.Image:
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        return Image.open(buf)

    return shift


SHIFTS: dict[str, Shift] = {
    "crop 80% (zoom 1.25x)": random_crop(0.8),
    "crop 60% (zoom 1.7x)": random_crop(0.6),
    "darker x0.6": enhance(ImageEnhance.Brightness, 0.6),
    "brighter x1.5": enhance(ImageEnhance.Brightness, 1.5),
    "contrast x0.5": enhance(ImageEnhance.Contrast, 0.5),
    "JPEG quality 10": jpeg(10),
    "16:9 landscape": centre_aspect(16 / 9),
    "9:16 portrait": centre_aspect(9 / 16),
}


def shifted_accuracy(predictor, paths: list[Path], labels: list[int], batch: int = 64,
                     shifts: dict[str, Shift] | None = None) -> dict[str, float]:
    """Top-1 accuracy of a served Predictor on the photos as they are ("none") and under each of `shifts`
    (default: all of SHIFTS)."""
    photos = []
    for path in paths:  # decoded once; every shift starts from the same upright RGB photo
        with Image.open(path) as image:
            photos.append(ImageOps.exif_transpose(image).convert("RGB"))
    out = {}
    for name, shift in {"none": lambda image, rng: image, **(SHIFTS if shifts is None else shifts)}.items():
        shifted = [shift(photo, random.Random(i)) for i, photo in enumerate(photos)]
        answers = [a for start in range(0, len(shifted), batch)
                   for a in predictor.predict(shifted[start:start + batch], top_k=1)]
        out[name] = sum(a.class_index == y for a, y in zip(answers, labels)) / len(paths)
    return out
