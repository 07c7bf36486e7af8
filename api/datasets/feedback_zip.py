"""A dataset's feedback set as a zip in the upload format: `<label>/<prediction_id>.png`, one folder per label,
so it can be POSTed back to /v1/datasets as an image-folder upload."""
from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

from core.artifacts import ArtifactStore
from core.errors import ArtifactMissing
from core.orm import Prediction
from api.predictions.png import as_png
from ml.errors import BadImage
from ml.extra_train import label_folder

# a kept input was accepted by the predict route; this only bounds what a stored object may make us decode
_MAX_BYTES, _MAX_PIXELS = 64 * 1024**2, 40_000_000


def write_feedback_zip(rows: Sequence[Prediction], store: ArtifactStore, target: Path) -> int:
    """Write the rows' kept inputs as PNGs into a zip at `target`; how many went in (an input gone meanwhile is left out)."""
    written = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for row in rows:
            png = _as_png(store, row)
            if png is not None:
                archive.writestr(f"{label_folder(row.feedback_label)}/{row.id}.png", png)
                written += 1
    return written


def _as_png(store: ArtifactStore, row: Prediction) -> bytes | None:
    try:
        with store.open(row.input_key) as f:
            data = f.read()
    except ArtifactMissing:  # deleted since the rows were read
        return None
    try:  # another format: re-encoded as the predictor decoded it (first frame, EXIF orientation applied)
        return as_png(data, row.input_media_type, max_bytes=_MAX_BYTES, max_pixels=_MAX_PIXELS)
    except BadImage:
        return None
