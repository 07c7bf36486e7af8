"""An upload turned into a stored dataset: saved while hashed, checked and normalised by ml, filed by content, recorded."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from pathlib import Path
from typing import Any

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
# uploads parsed at once, each in its own process; more wait in their request's thread
MAX_PARALLEL_INGESTS = 2
_ingest_slots = threading.BoundedSemaphore(MAX_PARALLEL_INGESTS)


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
        manifest = ingest_in_child(incoming / "upload", filename=upload.filename or "", kind=kind, target=target,
                                   out_dir=incoming / "dataset", limits=_limits(settings))
        store.put_folder(dataset_service.dataset_prefix(sha), incoming / "dataset")  # same content: shares it
        return dataset_service.create_dataset(session, name=name, sha256=sha, size_bytes=size, manifest=manifest,
                                              owner=owner)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


@lru_cache(maxsize=1)
def _forkserver():
    # a forkserver that imported the ingest code (and torch) once: each child forks from it in
    # milliseconds instead of importing torch again, and is clean (no API threads, no event loop)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["ml.data.uploads"])
    return context


def ingest_in_child(source: Path, **kwargs: Any) -> dict[str, Any]:
    """ml's `ingest_upload` in a child process of its own, which exits when it is done.

    A thread would share the API's GIL: building a 100k-row table (millions of Python objects, the
    garbage collector's passes over them, one GIL-holding tensor conversion) stalled the event loop
    for 0.3-0.5 s at a time. A child shares nothing, and the memory a hostile upload made it use goes
    back to the OS when it exits instead of staying in the API's heap.
    """
    with _ingest_slots, ProcessPoolExecutor(max_workers=1, mp_context=_forkserver()) as pool:
        try:
            return pool.submit(ingest_upload, source, **kwargs).result()
        except BrokenProcessPool:
            raise BadUpload("the upload could not be processed: its parser was stopped (out of memory?); "
                            "try a smaller file") from None


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
