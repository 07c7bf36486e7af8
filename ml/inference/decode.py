"""Turn uploaded bytes into a plain RGB or L image, refusing anything unsafe or unreadable.

Every refusal raises `BadImage` with a sentence saying what is wrong. The pixel cap is checked
from the header, before any pixel is decoded, so a decompression bomb costs nothing.
"""
from __future__ import annotations

import io

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
    try:
        image.seek(0)  # animations: the first frame
        image.load()
    except BadImage:
        raise
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
