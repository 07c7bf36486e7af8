"""What image and CSV uploads share: limits, folder layout, how refusals are listed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ml.data.zipsafe import ZipLimits

IMAGES_DIR, TABLE_FILE = "images", "table.pt"
DEFAULT_IMAGE_SIZE = 64
# at most this many refusals are listed one by one (the count is always given)
MAX_LISTED_REFUSALS = 100
IGNORED = ("__MACOSX", ".DS_Store", "Thumbs.db")


@dataclass(frozen=True)
class UploadLimits:
    """Caps on an uploaded dataset; the service fills them from its settings."""

    zip: ZipLimits = ZipLimits()
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    min_images_per_class: int = 5
    max_rows: int = 1_000_000
    max_columns: int = 1_000
    min_rows: int = 10


def refusals(refused: list[dict[str, Any]]) -> dict[str, Any]:
    """The refused files or lines as a manifest lists them: the first ones and the count."""
    return {"refused": refused[:MAX_LISTED_REFUSALS], "refused_count": len(refused)}
