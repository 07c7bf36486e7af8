"""A job's feedback snapshot as a local image folder for the engine: `<label>/<prediction_id>` files,
fetched from the artifact store and checked against the digests recorded when they were predicted."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.artifacts import get_store
from core.db import session_scope
from core.errors import ArtifactCorrupt, ArtifactMissing, FeedbackSnapshotChanged
from core.feedback import snapshot_rows
from core.orm import Job

# the stored input keeps the uploader's format; the extension only helps a person looking at the folder
_SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/bmp": ".bmp",
           "image/tiff": ".tif", "image/webp": ".webp"}


@contextmanager
def feedback_folder(job_id: str, work_root: Path) -> Iterator[Path | None]:
    """The job's snapshot written under `work_root` as an image folder (removed afterwards); None without one.

    Rebuilt on every attempt from the snapshot, never from the current feedback set: a resumed or
    rerun job trains on the rows it was submitted with (FeedbackSnapshotChanged when they are gone).
    """
    with session_scope() as session:
        job = session.get(Job, job_id)
        snapshot = job.feedback if job is not None else None
        if not snapshot:
            rows = None
        else:
            rows = [(r.id, r.feedback_label, r.input_key, r.input_sha256, r.input_media_type)
                    for r in snapshot_rows(session, job_id=job_id, snapshot=snapshot)]
    if rows is None:
        yield None
        return
    work_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"feedback-{job_id[:8]}-", dir=work_root))
    try:
        _fetch(job_id, rows, folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fetch(job_id: str, rows: list[tuple[str, str, str, str, str | None]], folder: Path) -> None:
    from ml.extra_train import label_folder  # in the pool child: the engine's modules load torch

    store = get_store()
    for prediction_id, label, key, sha256, media_type in rows:
        try:
            source = store.get(key, sha256)  # a changed or truncated input is refused here
        except (ArtifactMissing, ArtifactCorrupt):
            raise FeedbackSnapshotChanged(job_id, f"the kept input of prediction {prediction_id} is missing "
                                                  "or changed in the artifact store") from None
        target = folder / label_folder(label) / f"{prediction_id}{_SUFFIX.get(media_type or '', '')}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
