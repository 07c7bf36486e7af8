"""The uploaded dataset named in a path, and whether a request may name a dataset at all."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy.orm import Session

from api.auth import PrincipalDep
from api.deps import SessionDep
from core import datasets as dataset_service
from core.errors import DatasetNotFound
from core.keys import Principal
from core.orm import UploadedDataset
from ml.data.registry import is_builtin
from ml.errors import InvalidConfig


def valid_dataset_name(session: SessionDep, principal: PrincipalDep,
                       name: Annotated[str, Path(max_length=64, description="an uploaded dataset's name")]) -> UploadedDataset:
    """The caller's upload named in the path; DatasetNotFound (→ 404 naming it) otherwise, or when it is someone else's."""
    return dataset_service.get_dataset(session, name=name, owner=principal.owner_filter)


UploadedDatasetDep = Annotated[UploadedDataset, Depends(valid_dataset_name)]


def feedback_dataset_name(session: SessionDep, principal: PrincipalDep,
                          name: Annotated[str, Path(max_length=64, description="a built-in or uploaded dataset's name")]) -> str:
    """A built-in dataset's name, or the caller's upload's; DatasetNotFound (→ 404) for someone else's or an unknown one."""
    if not is_builtin(name):
        dataset_service.get_dataset(session, name=name, owner=principal.owner_filter)
    return name


FeedbackDatasetDep = Annotated[str, Depends(feedback_dataset_name)]


def check_dataset_visible(session: Session, dataset: str, principal: Principal) -> None:
    """Someone else's upload is as unknown to a user as to the dataset lookup (InvalidConfig → 422 naming the field)."""
    if is_builtin(dataset):
        return
    try:
        dataset_service.get_dataset(session, name=dataset, owner=principal.owner_filter)
    except DatasetNotFound:  # in a request body it is a bad field, not a missing resource
        raise InvalidConfig([{"field": "dataset", "message": f"unknown dataset {dataset!r}; GET /v1/datasets "
                                                            "lists your uploads, GET /v1/catalog the built-in ones"}]) from None
