"""Uploaded datasets: POST (an image-folder zip or a CSV), list, look at one, delete."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.auth import PrincipalDep
from api.datasets.deps import FeedbackDatasetDep, UploadedDatasetDep
from api.datasets.feedback_zip import write_feedback_zip
from api.datasets.ingest import check_name_free, ingest_dataset
from api.datasets.presenters import dataset_public, feedback_counts_public
from api.datasets.schemas import DatasetPublic, DatasetsPublic, FeedbackCountsPublic
from api.deps import SessionDep, SettingsDep, StoreDep
from core import datasets as dataset_service
from core import feedback as feedback_service

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


@router.get("/{name}/feedback", response_model=FeedbackCountsPublic,
            responses={404: {"description": "no built-in dataset or upload of yours has this name"}})
def get_feedback_counts(dataset: FeedbackDatasetDep, session: SessionDep, principal: PrincipalDep) -> FeedbackCountsPublic:
    """The dataset's feedback set counted per label: your predictions' kept inputs with feedback (an admin: everyone's)."""
    counts = feedback_service.feedback_counts(session, dataset=dataset, owner=principal.owner_filter)
    return feedback_counts_public(dataset, counts, everyone=principal.owner_filter is None)


@router.get("/{name}/feedback.zip", response_class=FileResponse,
            responses={200: {"content": {"application/zip": {}},
                             "description": "<label>/<prediction_id>.png: POST it to /v1/datasets as an upload"},
                       404: {"description": "no built-in dataset or upload of yours has this name"}})
def download_feedback(dataset: FeedbackDatasetDep, session: SessionDep, principal: PrincipalDep, settings: SettingsDep,
                      store: StoreDep) -> FileResponse:
    """The feedback set as a zip in the upload format (labels with a '/' become '_' in folder names)."""
    # `def`: reading and re-encoding the inputs runs in the threadpool; the zip is streamed from a temp file
    rows = feedback_service.feedback_rows(session, dataset=dataset, owner=principal.owner_filter)
    session.close()  # hold no connection while the files are read
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=settings.cache_dir, prefix="feedback-", suffix=".zip", delete=False) as tmp:
        target = Path(tmp.name)
    try:
        write_feedback_zip(rows, store, target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return FileResponse(target, media_type="application/zip", filename=f"{dataset}-feedback.zip",
                        background=BackgroundTask(target.unlink, missing_ok=True))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "no upload has this name"},
                          409: {"description": "a queued or running job uses it"},
                          503: {"description": "some of its files could not be removed; nothing was deleted"}})
def delete_dataset(dataset: UploadedDatasetDep, session: SessionDep, store: StoreDep) -> Response:
    """Forget an upload and remove its files (unless another upload has the same content)."""
    dataset_service.delete_dataset(session, name=dataset.name, store=store)  # in use: DatasetConflict → 409
    return Response(status_code=status.HTTP_204_NO_CONTENT)
