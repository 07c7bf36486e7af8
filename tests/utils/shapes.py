"""Shapes drawn with Pillow: a small image-folder dataset with a known answer, zipped like a user would."""
from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def draw(shape: str, rng: random.Random, size: int = 48) -> Image.Image:
    """One shape of random size, place and colours on a plain background."""
    bg = tuple(rng.randint(200, 255) for _ in range(3))
    fg = tuple(rng.randint(0, 90) for _ in range(3))
    image = Image.new("RGB", (size, size), bg)
    pen = ImageDraw.Draw(image)
    r = rng.randint(size // 5, size // 3)
    cx, cy = rng.randint(r + 2, size - r - 2), rng.randint(r + 2, size - r - 2)
    if shape == "circle":
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg)
    elif shape == "square":
        pen.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fg)
    else:
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    return image


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def shapes_zip(per_class: int = 30, seed: int = 0, folder: str | None = "shapes", extra: dict | None = None,
               only: tuple[str, ...] = SHAPES) -> bytes:
    """A zip of <folder>/<shape>/<n>.png; `extra` adds {name: bytes} entries (e.g. a broken file)."""
    rng = random.Random(seed)
    buf = io.BytesIO()
    prefix = f"{folder}/" if folder else ""
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for shape in only:
            for i in range(per_class):
                zf.writestr(f"{prefix}{shape}/{i}.png", png(draw(shape, rng)))
        for name, data in (extra or {}).items():
            zf.writestr(f"{prefix}{name}", data)
    return buf.getvalue()


def short_png(width: int, height: int, rows: int, *, interlace: int = 0) -> bytes:
    """A well-formed grey PNG whose complete zlib stream holds only `rows` rows of its header's `height`."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace)
    raw = b"".join(b"\x00" + bytes([i % 256]) * width for i in range(rows))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))
