"""An upload turned into a stored dataset: saved while hashed, checked and normalised by ml, filed by content, recorded."""
from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

from fastapi import UploadFile
from sqlalchemy.orm import Session

from core import datasets as dataset_service
from core.artifacts import ArtifactStore
from core.errors import DatasetConflict
from core.orm import UploadedDataset
from core.settings import Settings
from ml.data.registry import is_builtin
from ml.data.uploads import UploadLimits, ingest_upload
from ml.data.zipsafe import ZipLimits
from ml.errors import BadUpload, UploadTooLarge

_CHUNK = 1 << 20


def check_name_free(session: Session, name: str) -> None:
    """DatasetConflict (→ 409) when a built-in dataset or another upload has this name."""
    if is_builtin(name) or dataset_service.dataset_exists(session, name=name):
        raise DatasetConflict(f"a dataset named {name!r} already exists; choose another name")


def ingest_dataset(session: Session, upload: UploadFile, *, name: str, kind: str | None, target: str | None,
                   owner: str, settings: Settings, store: ArtifactStore) -> UploadedDataset:
    """Store `upload` as `owner`'s dataset `name`; BadUpload (→ 422) or UploadTooLarge (→ 413) says what is wrong."""
    # checked and normalised in a local folder (a local store's own, so the files move into place in one rename)
    incoming = store.staging_dir("datasets/.incoming") / uuid.uuid4().hex
    (incoming / "dataset").mkdir(parents=True)
    try:
        sha, size = _save(upload, incoming / "upload", settings.max_dataset_upload_bytes)
        manifest = ingest_upload(incoming / "upload", filename=upload.filename or "", kind=kind, target=target,
                                 out_dir=incoming / "dataset", limits=_limits(settings))
        store.put_folder(dataset_service.dataset_prefix(sha), incoming / "dataset")  # same content: shares it
        return dataset_service.create_dataset(session, name=name, sha256=sha, size_bytes=size, manifest=manifest,
                                              owner=owner)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _limits(settings: Settings) -> UploadLimits:
    return UploadLimits(
        zip=ZipLimits(max_files=settings.max_dataset_files, max_total_bytes=settings.max_dataset_unpacked_bytes,
                      max_ratio=settings.max_dataset_zip_ratio),
        max_image_bytes=settings.max_upload_bytes, max_image_pixels=settings.max_upload_pixels,
        min_images_per_class=settings.min_images_per_class)


def _save(upload: UploadFile, path: Path, max_bytes: int) -> tuple[str, int]:
    """Copy the upload to `path`, hashing it; UploadTooLarge past the cap."""
    digest, size = hashlib.sha256(), 0
    with open(path, "wb") as out:
        while chunk := upload.file.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLarge(f"the upload is larger than {max_bytes:,} bytes")
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise BadUpload("the file is empty")
    return digest.hexdigest(), size
