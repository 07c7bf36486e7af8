"""Uploaded datasets: POST (an image-folder zip or a CSV), list, look at one, delete."""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, HTTPException, Response, UploadFile, status

from api.dataset_schemas import DatasetPublic, DatasetsPublic
from api.auth import PrincipalDep
from api.deps import SessionDep, SettingsDep, UploadedDatasetDep
from core import datasets as dataset_service
from core.orm import UploadedDataset
from core.settings import Settings
from ml.catalog import models_for
from ml.data.registry import is_builtin
from ml.data.uploads import UploadLimits, ingest_upload
from ml.data.zipsafe import ZipLimits
from ml.errors import BadUpload

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

DatasetName = Annotated[str, Form(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$",
                                  description="lower-case letters, digits, _ and -; not a built-in dataset's name")]
Kind = Literal["image_folder", "csv", "regression", "classification"]
_CHUNK = 1 << 20


def dataset_public(row: UploadedDataset) -> DatasetPublic:
    """The response for one upload."""
    m = row.manifest
    return DatasetPublic(name=row.name, kind=row.kind, task=row.task, classes=m.get("classes", []),
                         columns=m.get("columns", []), target=m.get("target"), samples=m["samples"],
                         sha256=row.sha256, size_bytes=row.size_bytes, refused=m.get("refused", []),
                         refused_count=m.get("refused_count", 0), models=models_for(row.name),
                         created_at=row.created_at)


def _limits(settings: Settings) -> UploadLimits:
    return UploadLimits(
        zip=ZipLimits(max_files=settings.max_dataset_files, max_total_bytes=settings.max_dataset_unpacked_bytes,
                      max_ratio=settings.max_dataset_zip_ratio),
        max_image_bytes=settings.max_upload_bytes, max_image_pixels=settings.max_upload_pixels,
        min_images_per_class=settings.min_images_per_class)


def _save(upload: UploadFile, path: Path, max_bytes: int) -> tuple[str, int]:
    """Copy the upload to `path`, hashing it; 413 past the cap."""
    digest, size = hashlib.sha256(), 0
    with open(path, "wb") as out:
        while chunk := upload.file.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise BadUpload(f"the upload is larger than {max_bytes:,} bytes", 413)
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise BadUpload("the file is empty")
    return digest.hexdigest(), size


def _store(ingested: Path, folder: Path) -> None:
    """Move the ingested files to their content-hash folder; the same content under another name shares it."""
    try:
        os.rename(ingested, folder)
    except OSError:
        if not folder.is_dir():  # not "already there from an identical upload": a real failure
            raise


def _check_name_free(session, name: str) -> None:
    if is_builtin(name) or dataset_service.dataset_exists(session, name=name):
        raise HTTPException(409, detail=f"a dataset named {name!r} already exists; choose another name")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic,
             responses={409: {"description": "the name is a built-in's or another upload's"},
                        413: {"description": "the upload, the unpacked zip or its entry count is over a cap"},
                        422: {"description": "unsafe or unusable upload; `detail` says why"}})
def upload_dataset(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="a .zip of <class>/<image> folders, or a .csv with a header row")],
    name: DatasetName,
    kind: Annotated[Kind | None, Form(description="default: from the file (zip: image_folder, .csv: csv)")] = None,
    target: Annotated[str | None, Form(max_length=200, description="CSV: the target column (default 'target')")] = None,
) -> DatasetPublic:
    """Check, normalise and store an upload; says what was found and what was refused."""
    # `def`: hashing, unzipping and decoding run in the threadpool, never on the event loop
    _check_name_free(session, name)
    session.close()  # hold no connection while the upload is ingested
    root = dataset_service.datasets_root(settings)
    incoming = root / ".incoming" / uuid.uuid4().hex
    (incoming / "dataset").mkdir(parents=True)
    try:
        sha, size = _save(file, incoming / "upload", settings.max_dataset_upload_bytes)
        manifest = ingest_upload(incoming / "upload", filename=file.filename or "", kind=kind, target=target,
                                 out_dir=incoming / "dataset", limits=_limits(settings))
        _store(incoming / "dataset", dataset_service.dataset_folder(sha, settings))
        row = dataset_service.create_dataset(session, name=name, sha256=sha, size_bytes=size, manifest=manifest,
                                             owner=principal.owner)
    except BadUpload as exc:
        raise HTTPException(exc.status, detail=exc.reason) from None
    except dataset_service.DatasetConflict as exc:
        raise HTTPException(409, detail=str(exc)) from None
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return dataset_public(row)


@router.get("", response_model=DatasetsPublic)
def list_datasets(session: SessionDep, principal: PrincipalDep) -> DatasetsPublic:
    """Your uploaded datasets (an admin: everyone's), newest first (GET /v1/catalog lists the built-in ones too)."""
    rows = dataset_service.list_datasets(session, owner=principal.owner_filter)
    return DatasetsPublic(data=[dataset_public(r) for r in rows], count=len(rows))


@router.get("/{name}", response_model=DatasetPublic, responses={404: {"description": "no upload has this name"}})
def get_dataset(dataset: UploadedDatasetDep) -> DatasetPublic:
    """One uploaded dataset."""
    return dataset_public(dataset)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "no upload has this name"},
                          409: {"description": "a queued or running job uses it"}})
def delete_dataset(dataset: UploadedDatasetDep, session: SessionDep) -> Response:
    """Forget an upload and remove its files (unless another upload has the same content)."""
    try:
        folder = dataset_service.delete_dataset(session, name=dataset.name)
    except dataset_service.DatasetConflict as exc:
        raise HTTPException(409, detail=str(exc)) from None
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
