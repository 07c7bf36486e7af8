"""A kept input as a PNG: PNG bytes as they were, any other image decoded and re-encoded."""
from __future__ import annotations

import io

from ml.inference import decode_upload


def as_png(data: bytes, media_type: str | None, *, max_bytes: int, max_pixels: int) -> bytes:
    """The kept upload as PNG bytes (decoded under the predict limits it already passed once)."""
    if media_type == "image/png":
        return data
    image = decode_upload(data, max_bytes=max_bytes, max_pixels=max_pixels)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
