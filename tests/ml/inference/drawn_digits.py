"""Digits drawn the way users draw them: pen strokes on canvases of many sizes and colours.

Each digit is a few handwriting-like strokes (polylines, arcs, curves) in a unit box, slanted,
rotated, wobbled and scaled, then painted with a round brush of some width onto a canvas: a 400×400
white paint canvas with black strokes, blue ink on cream paper, light chalk on a dark board, grey
pencil on grey... Some are typed in a DejaVu font instead. Off-centre and small or large.
"""
from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

Point = tuple[float, float]
Stroke = list[Point]

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 24) -> Stroke:
    """Points on an ellipse from angle `start` to `end` (degrees, counter-clockwise, y up)."""
    return [(cx + rx * math.cos(math.radians(start + (end - start) * i / n)),
             cy - ry * math.sin(math.radians(start + (end - start) * i / n))) for i in range(n + 1)]


def _curve(p0: Point, p1: Point, p2: Point, n: int = 16) -> Stroke:
    """A quadratic Bézier curve from p0 to p2 pulled towards p1."""
    return [((1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * p1[0] + t * t * p2[0],
             (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * p1[1] + t * t * p2[1])
            for t in (i / n for i in range(n + 1))]


def digit_strokes(digit: int, rng: random.Random) -> list[Stroke]:
    """One handwriting-like way of writing `digit` (x right, y down, in about [0, 1]²)."""
    v = rng.random()
    if digit == 0:
        return [_arc(0.5, 0.5, 0.33, 0.46, 95, 95 + 365 + rng.uniform(-10, 10), 40)]
    if digit == 1:
        stem = [(0.52, 0.04), (0.48, 0.96)]
        if v < 0.5:
            return [stem]
        return [[(0.30, 0.22), (0.52, 0.04), (0.48, 0.96)]]
    if digit == 2:
        top = _arc(0.5, 0.3, 0.3, 0.26, 160, -30)
        return [top + [(0.15, 0.95), (0.88, 0.95)]]
    if digit == 3:
        upper = _arc(0.47, 0.27, 0.28, 0.23, 150, -90)
        lower = _arc(0.47, 0.72, 0.32, 0.24, 90, -150)
        return [upper + lower]
    if digit == 4:
        if v < 0.5:  # closed top, one stroke then the stem
            return [[(0.62, 0.04), (0.12, 0.66), (0.9, 0.66)], [(0.62, 0.04), (0.62, 0.97)]]
        return [[(0.25, 0.04), (0.15, 0.6), (0.9, 0.6)], [(0.68, 0.25), (0.68, 0.97)]]
    if digit == 5:
        bowl = _arc(0.46, 0.66, 0.33, 0.29, 140, -155)
        return [[(0.82, 0.05), (0.3, 0.05), (0.25, 0.45)] + bowl[1:]]
    if digit == 6:
        stem = _curve((0.72, 0.04), (0.2, 0.25), (0.22, 0.7))
        loop = _arc(0.5, 0.7, 0.29, 0.26, 180, 180 - 360)
        return [stem + loop]
    if digit == 7:
        strokes = [[(0.12, 0.06), (0.88, 0.06), (0.42, 0.97)]]
        if v < 0.25:  # continental crossbar
            strokes.append([(0.42, 0.5), (0.8, 0.5)])
        return strokes
    if digit == 8:
        top = _arc(0.5, 0.27, 0.24, 0.22, 270, 270 + 360)
        bottom = _arc(0.5, 0.72, 0.3, 0.25, 90, 90 - 360)
        return [top + bottom]
    if digit == 9:
        loop = _arc(0.5, 0.3, 0.28, 0.25, 0, 360)
        tail = _curve((0.78, 0.3), (0.78, 0.7), (0.62, 0.97)) if v < 0.5 else [(0.78, 0.3), (0.74, 0.97)]
        return [loop, tail]
    raise ValueError(f"not a digit: {digit}")


@dataclass(frozen=True)
class Canvas:
    """Where and with what a digit is drawn."""

    name: str
    size: tuple[int, int]
    paper: tuple[int, int, int]
    ink: tuple[int, int, int]
    stroke: tuple[float, float]  # brush width range, as a fraction of the digit's height
    height: tuple[float, float]  # digit height range, as a fraction of the canvas height


CANVASES = [
    Canvas("paint 400x400 black on white", (400, 400), (255, 255, 255), (0, 0, 0), (0.06, 0.14), (0.45, 0.85)),
    Canvas("blue ink on cream paper", (640, 480), (246, 238, 214), (28, 45, 150), (0.03, 0.06), (0.3, 0.6)),
    Canvas("chalk on a dark board", (300, 300), (35, 48, 40), (235, 235, 225), (0.08, 0.16), (0.5, 0.8)),
    Canvas("white on black canvas", (280, 280), (0, 0, 0), (255, 255, 255), (0.08, 0.16), (0.5, 0.85)),
    Canvas("pencil on grey", (500, 700), (200, 200, 196), (70, 70, 75), (0.02, 0.05), (0.25, 0.5)),
    Canvas("red marker on white", (256, 256), (250, 250, 250), (200, 30, 30), (0.12, 0.2), (0.5, 0.85)),
    Canvas("small dark on light", (64, 64), (230, 230, 230), (20, 20, 20), (0.08, 0.14), (0.55, 0.9)),
    Canvas("wide sticky note", (800, 300), (250, 240, 120), (30, 30, 60), (0.05, 0.1), (0.5, 0.8)),
]


def _transform(strokes: list[Stroke], rng: random.Random, height: float, origin: Point) -> list[Stroke]:
    """Slant, rotate, squash, wobble and place the unit-box strokes on the canvas."""
    slant = rng.uniform(-0.25, 0.3)  # italics lean right more often
    angle = math.radians(rng.uniform(-12, 12))
    aspect = rng.uniform(0.75, 1.1)
    wobble = [(rng.uniform(0, 2 * math.pi), rng.uniform(0.004, 0.015)) for _ in range(2)]
    cos, sin = math.cos(angle), math.sin(angle)
    out = []
    for stroke in strokes:
        pts = []
        for x, y in stroke:
            x += wobble[0][1] * math.sin(9 * y + wobble[0][0])  # a hand's slow tremor
            y += wobble[1][1] * math.sin(9 * x + wobble[1][0])
            x = (x - 0.5) * aspect * 0.8 - slant * (y - 0.5)
            y = y - 0.5
            rx, ry = x * cos - y * sin, x * sin + y * cos
            pts.append((origin[0] + rx * height, origin[1] + ry * height))
        out.append(pts)
    return out


def _paint(draw: ImageDraw.ImageDraw, strokes: list[Stroke], width: float, ink) -> None:
    """A round brush: line segments joined by discs."""
    r = width / 2
    for stroke in strokes:
        draw.line(stroke, fill=ink, width=max(1, round(width)), joint="curve")
        for x, y in stroke:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=ink)


def _fonts() -> list[Path]:
    names = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSans-Oblique.ttf",
             "DejaVuSansMono.ttf", "DejaVuSansCondensed-Oblique.ttf"]
    return [FONT_DIR / n for n in names if (FONT_DIR / n).exists()]


def draw_digit(digit: int, rng: random.Random, canvas: Canvas, typed: bool = False) -> Image.Image:
    """One RGB image of `digit` drawn (or typed) on `canvas`, somewhere off-centre."""
    w, h = canvas.size
    img = Image.new("RGB", canvas.size, canvas.paper)
    draw = ImageDraw.Draw(img)
    height = rng.uniform(*canvas.height) * h
    # anywhere that keeps the whole digit on the canvas
    margin_x, margin_y = 0.45 * height, 0.6 * height
    cx = rng.uniform(min(margin_x, w / 2), max(w - margin_x, w / 2))
    cy = rng.uniform(min(margin_y, h / 2), max(h - margin_y, h / 2))
    fonts = _fonts()
    if typed and fonts:
        font = ImageFont.truetype(str(rng.choice(fonts)), size=max(8, round(height * 1.3)))
        draw.text((cx, cy), str(digit), fill=canvas.ink, font=font, anchor="mm")
    else:
        strokes = _transform(digit_strokes(digit, rng), rng, height, (cx, cy))
        _paint(draw, strokes, rng.uniform(*canvas.stroke) * height, canvas.ink)
    if rng.random() < 0.3:  # a phone photo or a soft brush: a little blur
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    return img


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    """The bytes a user would upload."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def drawn_digit_set(n_per_digit: int = 20, seed: int = 0) -> list[tuple[int, str, bytes]]:
    """(digit, description, uploaded bytes) for every digit on every kind of canvas, PNG and JPEG."""
    rng = random.Random(seed)
    out = []
    for digit in range(10):
        for i in range(n_per_digit):
            canvas = CANVASES[i % len(CANVASES)]
            typed = i % 5 == 4  # one in five typed in a font, the rest handwritten strokes
            fmt = "JPEG" if i % 3 == 2 else "PNG"
            img = draw_digit(digit, rng, canvas, typed=typed)
            out.append((digit, f"{canvas.name}{' typed' if typed else ''} {fmt}", encode(img, fmt)))
    return out
