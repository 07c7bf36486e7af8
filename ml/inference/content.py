"""Is there anything to read? Uploads with no content get a reason instead of a confident-looking guess."""
from __future__ import annotations

from PIL import Image

# a side this short shows nothing any of our models could read (MNIST digits are 20 px tall)
MIN_SIDE = 4
# every band's max - min at most this (of 255): one colour, give or take JPEG noise
FLAT_RANGE = 6


def nothing_to_read(image: Image.Image) -> str | None:
    """Why a decoded image (mode L or RGB) has no content to classify; None when it has some."""
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        return f"the image is {width}×{height} pixels: too small to show anything (at least {MIN_SIDE}×{MIN_SIDE})"
    extrema = image.getextrema()
    bands = [extrema] if image.mode == "L" else extrema
    if all(high - low <= FLAT_RANGE for low, high in bands):
        return "the image is one colour (blank, or fully transparent): there is nothing to read"
    return None
