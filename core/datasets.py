"""Uploaded datasets: record, look up, list and delete them. Their files live under the artifact dir
by content hash; a name only ever finds its folder through this table."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import session_scope
from core.errors import DatasetConflict, DatasetNotFound
from core.jobs import best_checkpoint
from core.orm import Checkpoint, Job, JobStatus, UploadedDataset, utcnow
from core.settings import Settings, get_settings


def datasets_root(settings: Settings | None = None) -> Path:
    """Where uploads live: <artifact_dir>/datasets."""
    return Path((settings or get_settings()).artifact_dir) / "datasets"


def dataset_folder(sha256: str, settings: Settings | None = None) -> Path:
    """The folder of an upload's content; named by its hash, never by a user's name."""
    return datasets_root(settings) / sha256


def create_dataset(session: Session, *, name: str, sha256: str, size_bytes: int, manifest: dict[str, Any],
                   owner: str | None = None) -> UploadedDataset:
    """Record an ingested upload of `owner` (commits); DatasetConflict when the name was taken meanwhile."""
    row = UploadedDataset(name=name, kind=manifest["kind"], task=manifest["task"], sha256=sha256,
                          size_bytes=size_bytes, manifest=manifest, created_at=utcnow(), owner=owner)
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise DatasetConflict(f"a dataset named {name!r} already exists; choose another name") from None
    return row


def get_dataset(session: Session, *, name: str, owner: str | None = None) -> UploadedDataset:
    """The upload named `name` (`owner`: only theirs); DatasetNotFound otherwise."""
    row = session.scalar(select(UploadedDataset).where(UploadedDataset.name == name))
    if row is None or (owner is not None and row.owner != owner):
        raise DatasetNotFound(name)
    return row


def upload_visible(session: Session, name: str, owner: str | None) -> bool:
    """Whether `owner` (None: an admin) may see an upload named `name`: theirs, or none has that name."""
    if owner is None:
        return True
    row_owner = session.execute(select(UploadedDataset.owner).where(UploadedDataset.name == name)).first()
    return row_owner is None or row_owner[0] == owner


def hidden_upload_names(session: Session, *, owner: str | None) -> set[str]:
    """Names of the uploads `owner` may not see (someone else's); none for an admin (None)."""
    if owner is None:
        return set()
    return set(session.scalars(select(UploadedDataset.name).where(UploadedDataset.owner.is_distinct_from(owner))))


def dataset_exists(session: Session, *, name: str) -> bool:
    """Whether an upload has this name."""
    return session.scalar(select(func.count()).where(UploadedDataset.name == name)) > 0


def list_datasets(session: Session, *, owner: str | None = None) -> Sequence[UploadedDataset]:
    """Every upload (`owner`: only theirs), newest first."""
    query = select(UploadedDataset).order_by(UploadedDataset.id.desc())
    if owner is not None:
        query = query.where(UploadedDataset.owner == owner)
    return session.scalars(query).all()


def delete_dataset(session: Session, *, name: str) -> Path | None:
    """Forget an upload (commits); its folder when no other upload shares the content, to remove.

    DatasetConflict while a queued or running job uses it: its worker reads the files.
    """
    row = get_dataset(session, name=name)
    busy = session.scalars(select(Job.id).where(
        Job.dataset == name, Job.status.in_([JobStatus.queued, JobStatus.running])).limit(5)).all()
    if busy:
        raise DatasetConflict(f"dataset {name!r} is used by job(s) {', '.join(busy)}; "
                              "cancel them or wait until they finish, then delete it")
    sha = row.sha256
    session.delete(row)
    session.commit()
    shared = session.scalar(select(func.count()).where(UploadedDataset.sha256 == sha)) > 0
    return None if shared else dataset_folder(sha)


def find_uploaded(name: str) -> tuple[dict[str, Any], Path] | None:
    """(manifest with sha256, folder) of the upload named `name`, or None; for the engine's registry."""
    with session_scope() as session:
        row = session.scalar(select(UploadedDataset).where(UploadedDataset.name == name))
        if row is None:
            return None
        return {**row.manifest, "sha256": row.sha256}, dataset_folder(row.sha256)


def uploaded_names() -> list[str]:
    """Names of every upload."""
    with session_scope() as session:
        return list(session.scalars(select(UploadedDataset.name).order_by(UploadedDataset.name)))


def best_table_model(session: Session, *, dataset: str) -> tuple[Job, Checkpoint] | None:
    """The succeeded job on `dataset` with the best validation figure (lowest MSE or highest accuracy,
    ties: the newest) and its best checkpoint; what serves feature rows for an uploaded table."""
    jobs = session.scalars(select(Job).where(Job.dataset == dataset, Job.status == JobStatus.succeeded)
                           .order_by(Job.finished_at.desc())).all()
    scored = [j for j in jobs if (j.best_metric or {}).get("value") is not None]
    if not scored:
        return None
    lower_is_better = scored[0].best_metric.get("name") == "val_mse"
    best = (min if lower_is_better else max)(scored, key=lambda j: float(j.best_metric["value"]))
    checkpoint = best_checkpoint(session, job_id=best.id)
    return (best, checkpoint) if checkpoint is not None else None
