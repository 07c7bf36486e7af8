"""Turn uploaded bytes into a plain RGB or L image, refusing anything unsafe or unreadable.

Every refusal raises `BadImage` with a sentence saying what is wrong. The pixel cap is checked
from the header, before any pixel is decoded, so a decompression bomb costs nothing.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ml.errors import BadImage

# Formats people upload (JPEG includes MPO, what many phones write). Restricting the list keeps Pillow from guessing magic-less formats
# (TGA reads almost any bytes) and from formats that shell out (EPS needs Ghostscript).
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
Image.init()  # register every plugin now, so `formats=` finds them all (and not lazily per thread)

_WHITE = (255, 255, 255)


def decode_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode one upload (first frame, EXIF orientation applied) to mode "L" or "RGB"."""
    if not data:
        raise BadImage("the file is empty")
    if len(data) > max_bytes:
        raise BadImage(f"the file is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    image = _open(data)
    width, height = image.size
    # PIL only warns between MAX_IMAGE_PIXELS and twice that; we refuse from the lower of both caps.
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    if width * height > limit:
        raise BadImage(
            f"the image is {width}×{height} = {width * height:,} pixels; the limit is {limit:,} pixels"
        )
    if image.format == "PNG":  # before the load: a short stream is refused before its pixels are allocated
        _check_png_rows(data)
    try:
        image.seek(0)  # animations: the first frame
        image.load()
    except Exception as exc:  # any decoder failure on user bytes is the upload's fault
        raise BadImage(f"the image data is truncated or corrupt ({_reason(exc)})") from None
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the user their prediction
        pass
    return _to_plain_mode(image)


def _open(data: bytes) -> Image.Image:
    try:
        # Image.open reads only the header; PIL's own bomb guard (MAX_IMAGE_PIXELS) applies here.
        return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:
        raise BadImage("the image has too many pixels (refused as a possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise BadImage(
            "the file is not an image in a supported format (PNG, JPEG, GIF, BMP, TIFF, WebP, PPM)"
        ) from None
    except Exception as exc:
        raise BadImage(f"the image header is unreadable ({_reason(exc)})") from None


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # IHDR colour type -> samples per pixel
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_raw_bytes(width: int, height: int, bit_depth: int, colour_type: int, interlaced: bool) -> int:
    """The size of a PNG's decompressed image data: each row of each (Adam7) pass plus its filter byte."""
    bits = bit_depth * _PNG_CHANNELS.get(colour_type, 4)
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        w, h = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if w > 0 and h > 0:
            total += h * (1 + (w * bits + 7) // 8)
    return total


def _check_png_rows(data: bytes) -> None:
    """Refuse a PNG whose image data ends before its header's size, like a truncated JPEG.

    Pillow fills the rows a complete but short zlib stream never reached with zeros and says
    nothing (a header claiming 6300² with 8 rows of data decodes as a black 6300² image). The
    stream is inflated once more into a small buffer, only counting, up to the size it must have.
    """
    width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    need = _png_raw_bytes(width, height, bit_depth, colour_type, bool(interlace))
    inflate, got, at = zlib.decompressobj(), 0, 8
    try:
        while at + 8 <= len(data) and got < need:
            length, kind = struct.unpack(">I4s", data[at:at + 8])
            if kind == b"IDAT":
                got += _inflated(inflate, data[at + 8:at + 8 + length], need - got)
            elif kind == b"IEND":
                break
            at += 12 + length
    except zlib.error as exc:
        raise BadImage(f"the image data is corrupt ({_reason(exc)})") from None
    if got < need:
        raise BadImage(f"the image data is truncated: it holds {got:,} of the {need:,} bytes its "
                       f"{width}×{height} header needs")


def _inflated(inflate, compressed: bytes, limit: int) -> int:
    """Bytes `compressed` inflates to, counted 1 MiB at a time and at most `limit`."""
    count = 0
    while compressed and count < limit:
        count += len(inflate.decompress(compressed, min(1 << 20, limit - count)))
        compressed = inflate.unconsumed_tail
    return count


def _to_plain_mode(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> "L" (grayscale sources) or "RGB"; transparency composited on white."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_l(image)
    if mode == "P":
        has_alpha = "transparency" in image.info or image.palette.mode == "RGBA"
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
    if mode in ("LA", "La", "PA"):
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "RGBa"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, _WHITE)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float grayscale -> 8-bit, scaled by the range the data uses."""
    a = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        top = 1.0 if a.max(initial=0) <= 1.0 else 255.0
    elif image.mode.startswith("I;16") or a.max(initial=0) > 255:
        top = 65535.0
    else:
        top = 255.0
    a = np.clip(a / top * 255.0, 0, 255)
    return Image.fromarray(np.round(a).astype(np.uint8))


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]
