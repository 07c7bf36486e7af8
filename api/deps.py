"""Dependencies as Annotated aliases: short route signatures and one override point for tests."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy.orm import Session

from api.auth import PrincipalDep
from core import datasets as dataset_service
from core.datasets import get_dataset
from core.db import get_sessionmaker
from core.jobs import get_job
from core.keys import Principal
from core.orm import Job, Sweep, UploadedDataset
from core.settings import Settings, get_settings
from core.sweeps import get_sweep
from ml.data.registry import is_builtin
from ml.errors import InvalidConfig


def get_session() -> Iterator[Session]:
    """One session per request; the services it calls commit their own changes, never the route."""
    session = get_sessionmaker()()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def valid_job_id(session: SessionDep, principal: PrincipalDep,
                 job_id: Annotated[str, Path(description="a job id")]) -> Job:
    """The caller's job named in the path; JobNotFound (→ 404 naming the id) otherwise, or when it is someone else's."""
    return get_job(session, job_id=job_id, owner=principal.owner_filter)


JobDep = Annotated[Job, Depends(valid_job_id)]


def valid_dataset_name(session: SessionDep, principal: PrincipalDep,
                       name: Annotated[str, Path(max_length=64, description="an uploaded dataset's name")]) -> UploadedDataset:
    """The caller's upload named in the path; DatasetNotFound (→ 404 naming it) otherwise, or when it is someone else's."""
    return get_dataset(session, name=name, owner=principal.owner_filter)


UploadedDatasetDep = Annotated[UploadedDataset, Depends(valid_dataset_name)]


def valid_sweep_id(session: SessionDep, principal: PrincipalDep,
                   sweep_id: Annotated[str, Path(description="a sweep id")]) -> Sweep:
    """The caller's sweep named in the path; SweepNotFound (→ 404 naming the id) otherwise, or when it is someone else's."""
    return get_sweep(session, sweep_id=sweep_id, owner=principal.owner_filter)


SweepDep = Annotated[Sweep, Depends(valid_sweep_id)]


def check_dataset_visible(session: Session, dataset: str, principal: Principal) -> None:
    """Someone else's upload is as unknown to a user as to the dataset lookup (422 naming the field)."""
    if is_builtin(dataset):
        return
    try:
        dataset_service.get_dataset(session, name=dataset, owner=principal.owner_filter)
    except dataset_service.DatasetNotFound:
        raise InvalidConfig([{"field": "dataset", "message": f"unknown dataset {dataset!r}; GET /v1/datasets "
                                                            "lists your uploads, GET /v1/catalog the built-in ones"}]) from None
