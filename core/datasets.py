"""Uploaded datasets: record, look up, list and delete them. Their files live in the artifact store under
`datasets/<sha256>/` (by content); a name only ever finds its files through this table."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.artifacts import ArtifactsNotRemoved, ArtifactStore, get_store
from core.db import session_scope
from core.errors import DatasetConflict, DatasetNotFound
from core.jobs import best_checkpoint
from core.orm import Checkpoint, Job, JobStatus, UploadedDataset, utcnow


def dataset_prefix(sha256: str) -> str:
    """The store prefix of an upload's content; named by its hash, never by a user's name."""
    return f"datasets/{sha256}"


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


def delete_dataset(session: Session, *, name: str, store: ArtifactStore) -> None:
    """Forget an upload and remove its files when no other upload shares them (commits).

    DatasetConflict while a queued or running job uses it: its worker reads the files. The files go
    first: when some cannot, ArtifactsNotRemoved and the row stays, so a retry finds them.
    """
    row = get_dataset(session, name=name)
    busy = session.scalars(select(Job.id).where(
        Job.dataset == name, Job.status.in_([JobStatus.queued, JobStatus.running])).limit(5)).all()
    if busy:
        raise DatasetConflict(f"dataset {name!r} is used by job(s) {', '.join(busy)}; "
                              "cancel them or wait until they finish, then delete it")
    shared = session.scalar(select(func.count()).where(UploadedDataset.sha256 == row.sha256,
                                                        UploadedDataset.id != row.id)) > 0
    if not shared:
        left = store.delete_prefix(dataset_prefix(row.sha256) + "/")
        if left:
            raise ArtifactsNotRemoved(f"dataset {name!r}", left)
    session.delete(row)
    session.commit()


def find_uploaded(name: str) -> tuple[dict[str, Any], Path] | None:
    """(manifest with sha256, folder) of the upload named `name`, or None; for the engine's registry."""
    with session_scope() as session:
        row = session.scalar(select(UploadedDataset).where(UploadedDataset.name == name))
        if row is None:
            return None
        manifest, sha = {**row.manifest, "sha256": row.sha256}, row.sha256
    # outside the session: a remote store's first read downloads the files into this host's cache
    return manifest, get_store().get_folder(dataset_prefix(sha))


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
