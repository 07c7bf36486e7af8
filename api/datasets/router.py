"""Uploaded datasets: POST (an image-folder zip or a CSV), list, look at one, delete."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from api.auth import PrincipalDep
from api.datasets.deps import UploadedDatasetDep
from api.datasets.ingest import check_name_free, ingest_dataset
from api.datasets.presenters import dataset_public
from api.datasets.schemas import DatasetPublic, DatasetsPublic
from api.deps import SessionDep, SettingsDep, StoreDep
from core import datasets as dataset_service

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

DatasetName = Annotated[str, Form(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$",
                                  description="lower-case letters, digits, _ and -; not a built-in dataset's name")]
Kind = Literal["image_folder", "csv", "regression", "classification"]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic,
             responses={409: {"description": "the name is a built-in's or another upload's"},
                        413: {"description": "the upload, the unpacked zip or its entry count is over a cap"},
                        422: {"description": "unsafe or unusable upload; `detail` says why"}})
def upload_dataset(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: StoreDep,
    file: Annotated[UploadFile, File(description="a .zip of <class>/<image> folders, or a .csv with a header row")],
    name: DatasetName,
    kind: Annotated[Kind | None, Form(description="default: from the file (zip: image_folder, .csv: csv)")] = None,
    target: Annotated[str | None, Form(max_length=200, description="CSV: the target column (default 'target')")] = None,
) -> DatasetPublic:
    """Check, normalise and store an upload; says what was found and what was refused."""
    # `def`: hashing, unzipping and decoding run in the threadpool, never on the event loop
    check_name_free(session, name)
    session.close()  # hold no connection while the upload is ingested
    row = ingest_dataset(session, file, name=name, kind=kind, target=target, owner=principal.owner, settings=settings,
                         store=store)
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
                          409: {"description": "a queued or running job uses it"},
                          503: {"description": "some of its files could not be removed; nothing was deleted"}})
def delete_dataset(dataset: UploadedDatasetDep, session: SessionDep, store: StoreDep) -> Response:
    """Forget an upload and remove its files (unless another upload has the same content)."""
    dataset_service.delete_dataset(session, name=dataset.name, store=store)  # in use: DatasetConflict → 409
    return Response(status_code=status.HTTP_204_NO_CONTENT)
