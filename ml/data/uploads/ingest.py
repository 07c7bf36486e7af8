"""An upload in: an image-folder zip or a CSV, told apart and handed to its own checker."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.data.uploads.common import UploadLimits
from ml.data.uploads.images import ingest_images
from ml.data.uploads.tables import ingest_csv
from ml.errors import BadUpload


def ingest_upload(source: Path, *, filename: str, kind: str | None, target: str | None, out_dir: Path,
                  limits: UploadLimits = UploadLimits()) -> dict[str, Any]:
    """Check and normalise an upload into `out_dir` (empty); the manifest. BadUpload says what is wrong."""
    with open(source, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    kind = kind or ("image_folder" if is_zip else "csv" if filename.lower().endswith(".csv") else None)
    if kind == "image_folder":
        if not is_zip:
            raise BadUpload("an image_folder upload must be a .zip archive")
        return ingest_images(source, out_dir, limits)
    if kind in ("csv", "regression", "classification"):
        if is_zip:
            raise BadUpload("a CSV upload must be the .csv file itself, not a zip")
        task = kind if kind != "csv" else None
        return ingest_csv(source, out_dir, target or "target", task, limits)
    raise BadUpload("send a .zip of <class>/<image> folders or a .csv with a header row "
                    "(or set kind to image_folder, csv, regression or classification)")
