"""Make an upload look like an MNIST / Fashion-MNIST sample: light-on-black 28×28, framed as they were made.

MNIST (LeCun et al.): the digit's bounding box fitted into 20×20 keeping its aspect ratio, then placed
in 28×28 so that its centre of mass is the centre. Fashion-MNIST (Xiao et al.): the longest edge
resized to 28 and the item centred. A drawing on white paper, a photo of ink, a 400×400 canvas all
differ from that in background, contrast, framing and stroke width; this module removes those
differences so the model sees what it was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from PIL import Image

SIZE = 28
# MNIST's mean centre of mass, in array index coordinates (measured on the training set).
_MNIST_CENTRE = 14.0
# Stroke width / longest side of the digit's box in MNIST (≈2.6 px in a 20 px box).
_MNIST_STROKE_RATIO = 0.13
# Work on at most this many pixels along the content's longest side (speed; 20 are kept anyway).
_WORK_SIZE = 160


@dataclass(frozen=True)
class MnistStyle:
    """How a dataset's samples were framed."""

    name: str  # names the framing in the preprocessing version a response carries
    box: int  # the content's longest side, in pixels of the 28×28 frame
    centre_by_mass: bool  # MNIST: centre of mass at the centre; otherwise the box is centred
    even_strokes: bool  # make stroke width match the dataset's (line drawings only)
    noise_floor: float  # ink below this fraction of the darkest ink is background (paper texture)
    content: float  # ink above this fraction of the darkest counts when cropping to the content


DIGITS = MnistStyle(name="digits", box=20, centre_by_mass=True, even_strokes=True, noise_floor=0.15, content=0.35)
# garments are filled shapes with pale parts (a light shirt on white): keep faint ink when cropping
GARMENTS = MnistStyle(name="garments", box=28, centre_by_mass=False, even_strokes=False, noise_floor=0.04, content=0.1)


def style_for(framing: str | None) -> MnistStyle:
    """The style of a dataset spec's upload framing ("digit" or "garment")."""
    return GARMENTS if framing == "garment" else DIGITS


@dataclass
class Framed:
    """A framed 28×28 input, the steps that made it, and why there is nothing to read (else None)."""

    pixels: torch.Tensor  # uint8 (1, 28, 28)
    steps: list[str] = field(default_factory=list)
    empty: str | None = None


def to_mnist_uint8(image: Image.Image, style: MnistStyle = DIGITS) -> torch.Tensor:
    """Any PIL image -> uint8 tensor (1, 28, 28), light content on black, framed like `style`."""
    return frame(image, style).pixels


def frame(image: Image.Image, style: MnistStyle = DIGITS) -> Framed:
    """Any PIL image -> a Framed 28×28 input, light content on black, framed like `style`."""
    ink, steps = _ink(image, style.noise_floor)
    found = _bbox(ink > style.content)
    if found is None:
        return Framed(torch.zeros(1, SIZE, SIZE, dtype=torch.uint8), steps,
                      empty="no ink found: the image has almost no contrast (blank or one colour)")
    ink = _crop(ink, found)
    steps.append(f"cropped to the content ({found[3] - found[2]}×{found[1] - found[0]} px)")
    ink = _shrink(ink, _WORK_SIZE)
    if style.even_strokes:
        ink, grown = _even_strokes(ink)
        if grown:
            steps.append(f"strokes thickened to MNIST's pen width ({grown}px filter)")
            found = _bbox(ink > style.content)
            if found is not None:
                ink = _crop(ink, found)
    small = _fit(ink, style.box)
    steps.append(f"scaled to fit {style.box}×{style.box}, keeping the aspect ratio")
    placed = _place(small, style.centre_by_mass)
    steps.append(f"centred by mass in {SIZE}×{SIZE}" if style.centre_by_mass else f"centred in {SIZE}×{SIZE}")
    placed *= 255.0
    return Framed(torch.from_numpy(np.round(placed, out=placed).astype(np.uint8)[None]), steps)


def _ink(image: Image.Image, noise_floor: float) -> tuple[np.ndarray, list[str]]:
    """Grayscale float [0, 1] where 0 is background and 1 the strongest ink, whatever the colours."""
    steps = ["grayscale"]
    g = np.asarray(image.convert("L"), dtype=np.float32)
    g /= 255.0  # in place from here on: the same float32 numbers without a new array per step
    # The border is mostly background, even for off-centre content: its median is the paper's tone.
    b = max(1, min(g.shape) // 32)
    border = np.concatenate([g[:b].ravel(), g[-b:].ravel(), g[:, :b].ravel(), g[:, -b:].ravel()])
    background = _median(border)
    if background > 0.5:  # dark on light (paper, paint canvas): invert, as MNIST is light on black
        np.subtract(1.0, g, out=g)
        background = 1.0 - background
        steps.append("inverted (dark on a light background)")
    g -= background
    top = float(g.max())
    if top < 0.08:  # no contrast at all: a blank canvas
        return np.zeros_like(g), steps
    g /= top
    steps.append("background removed, contrast stretched")
    # one clip for both steps: a value below 0 stays below 0 after taking noise_floor off, and g / top <= 1
    g -= noise_floor
    g /= 1.0 - noise_floor
    return np.clip(g, 0.0, 1.0, out=g), steps


def _median(a: np.ndarray) -> float:
    """np.median's number (the mean of the middle two of an even count) without its ~25 µs of dispatch."""
    k = a.size // 2
    if a.size % 2:
        return float(np.partition(a, k)[k])
    middle = np.partition(a, (k - 1, k))
    return float((middle[k - 1] + middle[k]) / 2)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the True pixels, ends exclusive; None when there are none."""
    # Pillow's getbbox on the mask's bytes, wrapped without a copy: 7.5 µs against numpy's 12 (four calls)
    m = np.ascontiguousarray(mask).view(np.uint8)
    box = Image.frombuffer("L", (m.shape[1], m.shape[0]), m, "raw", "L", 0, 1).getbbox()
    if box is None:
        return None
    left, top, right, bottom = box
    return top, bottom, left, right


def _crop(a: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    top, bottom, left, right = box
    return a[top:bottom, left:right]


def _shrink(a: np.ndarray, longest: int) -> np.ndarray:
    h, w = a.shape
    if max(h, w) <= longest:
        return a
    s = longest / max(h, w)
    return _resize(a, max(1, round(w * s)), max(1, round(h * s)))


def _resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float32)  # frombuffer wraps it as it is: no copy, unlike fromarray
    out = Image.frombuffer("F", (a.shape[1], a.shape[0]), a, "raw", "F", 0, 1)
    return np.asarray(out.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def _even_strokes(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """Thicken hairlines / thin brush strokes to MNIST's pen width; (ink, filter size or 0)."""
    mask = ink > 0.35
    area = np.count_nonzero(mask)
    padded = _padded(mask, 1)
    interior = padded[1:-1, 1:-1] & padded[:-2, 1:-1]
    for neighbour in (padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        interior &= neighbour
    edge = area - np.count_nonzero(interior)  # interior pixels are mask pixels
    if area == 0 or edge == 0:
        return ink, 0
    width = 2.0 * area / edge  # a stroke of length L and width w: area L·w, edge pixels ≈ 2L
    want = _MNIST_STROKE_RATIO * max(ink.shape)
    grow = int(round(want - width))
    if grow < 2:
        return ink, 0
    size = grow + 1 if grow % 2 == 0 else grow  # MaxFilter needs an odd size
    size = min(size, 15)
    return _max_filter(ink, size), size


def _max_filter(ink: np.ndarray, size: int) -> np.ndarray:
    """Each pixel -> the max of its size×size window, on the ink padded by size // 2 (room to grow).

    The same numbers as Pillow's MaxFilter on the padded image, as two 1-D passes of shifted maxima:
    Pillow's rank filter sorts every window (12.6 ms at size 15 on a 120×90 crop), torch's max_pool2d
    costs 60 µs even at size 3 in call overhead, this 20 µs at size 3 and 80 µs at size 15.
    """
    m = size // 2
    grown = _padded(ink.astype(np.float32, copy=False), m)
    for axis in (0, 1):
        source, grown = grown, grown.copy()
        for k in range(1, m + 1):  # a window reaches k pixels either way
            ahead, behind = _shifted(grown, axis, k), _shifted(source, axis, -k)
            np.maximum(ahead, behind, out=ahead)
            ahead, behind = _shifted(grown, axis, -k), _shifted(source, axis, k)
            np.maximum(ahead, behind, out=ahead)
    return grown


def _shifted(a: np.ndarray, axis: int, k: int) -> np.ndarray:
    """The view of `a` that drops |k| pixels at the start (k > 0) or the end (k < 0) along `axis`."""
    cut = slice(k, None) if k > 0 else slice(None, k)
    return a[cut] if axis == 0 else a[:, cut]


def _padded(a: np.ndarray, m: int) -> np.ndarray:
    """`a` with m zeros around it (np.pad's general machinery costs ~10 µs a call)."""
    out = np.zeros((a.shape[0] + 2 * m, a.shape[1] + 2 * m), dtype=a.dtype)
    out[m:m + a.shape[0], m:m + a.shape[1]] = a
    return out


def _fit(ink: np.ndarray, box: int) -> np.ndarray:
    """Scale so the longest side is `box` pixels, keeping the aspect ratio (anti-aliased)."""
    h, w = ink.shape
    s = box / max(h, w)
    # no clip: the ink is >= 0 and a bilinear filter's weights are too
    small = _resize(ink, max(1, round(w * s)), max(1, round(h * s)))
    top = float(small.max())
    return small / top if top > 0 else small


def _place(small: np.ndarray, centre_by_mass: bool) -> np.ndarray:
    """Paste into a black 28×28 frame, centred by mass (MNIST) or by the box (Fashion-MNIST)."""
    h, w = small.shape
    if centre_by_mass:
        total = float(small.sum())
        ys, xs = _indices(h, w)
        cy = float((small * ys).sum()) / total
        cx = float((small * xs).sum()) / total
        top, left = round(_MNIST_CENTRE - cy), round(_MNIST_CENTRE - cx)
    else:
        top, left = (SIZE - h) // 2, (SIZE - w) // 2
    top = min(max(top, 0), SIZE - h)
    left = min(max(left, 0), SIZE - w)
    frame = np.zeros((SIZE, SIZE), dtype=np.float32)
    frame[top:top + h, left:left + w] = small
    return frame


@lru_cache(maxsize=1024)
def _indices(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """np.indices((h, w)), made once per shape (at most box × box of them), read-only."""
    ys, xs = np.indices((h, w))
    ys.flags.writeable = xs.flags.writeable = False
    return ys, xs
