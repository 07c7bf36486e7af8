"""The model registry's service functions: register, promote, and which version serves a dataset.

The serving version of a dataset is the latest ServingEvent's. Registering a version records an
`auto-best` event when it becomes the best by validation accuracy (ties: the newest), unless an
operator pinned one with `promote`; promoting (also to roll back) records a `promoted` event.

Auto-best compares like with like: only versions scored on the whole reference validation split of
their dataset (the engine carves it with a fixed seed and records which one) are candidates, and
only against versions scored on that same split. A job evaluated on a subset (`max_eval_samples`)
or on another split registers, can be promoted by hand, but never takes over by itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ModelNotFound, NothingServed
from core.orm import Checkpoint, Job, JobStatus, ModelVersion, ServingEvent, ServingReason, utcnow

def register_model_version(session: Session, *, job: Job, servable: bool = True) -> ModelVersion | None:
    """Register a succeeded job's best checkpoint; None when it is not a servable classifier.

    `servable` comes from the dataset's spec (core cannot read it). Idempotent: a job registers once. Does not commit: the worker records the job's outcome and
    its model version in one transaction, so a succeeded job is never seen without its version.
    """
    if job.status != JobStatus.succeeded or not servable:
        return None
    existing = session.scalar(select(ModelVersion).where(ModelVersion.job_id == job.id))
    if existing is not None:
        return existing
    best = job.best_metric or {}
    checkpoint = _best_checkpoint(session, job)
    if best.get("name") != "val_accuracy" or best.get("value") is None or checkpoint is None:
        return None
    test = {k: v for k, v in (job.test_metrics or {}).items() if k in ("loss", "accuracy")}
    split = best.get("split") or {}
    version = ModelVersion(
        job_id=job.id, dataset=job.dataset, model=job.model, epoch=checkpoint.epoch,
        val_accuracy=float(best["value"]), test_accuracy=test.get("accuracy"), test_metrics=test or None,
        checkpoint_path=checkpoint.path, checkpoint_sha256=checkpoint.sha256, created_at=utcnow(),
        val_split=split.get("id"), val_samples=split.get("samples"), val_split_size=split.get("size"),
        auto_promotable=_scored_on_whole_reference_split(split),
    )
    session.add(version)
    session.flush()
    if version.auto_promotable:
        _follow_best(session, dataset=job.dataset, val_split=version.val_split)
        session.flush()
    return version


def _scored_on_whole_reference_split(split: dict) -> bool:
    """True when every sample of the dataset's reference validation split was scored."""
    return (bool(split.get("id")) and split.get("reference") is True and isinstance(split.get("size"), int)
            and split["size"] > 0 and split.get("samples") == split["size"])


def _best_checkpoint(session: Session, job: Job) -> Checkpoint | None:
    rows = session.scalars(select(Checkpoint).where(Checkpoint.job_id == job.id)).all()
    flagged = [c for c in rows if c.is_best]
    if flagged:
        return max(flagged, key=lambda c: c.epoch)
    return next((c for c in rows if c.epoch == job.best_epoch), None)


def _follow_best(session: Session, *, dataset: str, val_split: str | None) -> None:
    """Serve the best version scored on `val_split` unless an operator pinned one."""
    latest = _latest_event(session, dataset=dataset)
    if latest is not None and latest.reason == ServingReason.promoted:
        return
    best = best_version(session, dataset=dataset, val_split=val_split)
    current = latest.model_version_id if latest is not None else None
    if best is not None and best.id != current:
        session.add(ServingEvent(dataset=dataset, model_version_id=best.id, previous_model_version_id=current,
                                 reason=ServingReason.auto_best, at=utcnow()))


def best_version(session: Session, *, dataset: str, val_split: str | None) -> ModelVersion | None:
    """The auto-promotable version scored on `val_split` with the highest accuracy; ties go to the newest."""
    return session.scalar(
        select(ModelVersion).where(ModelVersion.dataset == dataset, ModelVersion.auto_promotable.is_(True),
                                   ModelVersion.val_split == val_split)
        .order_by(ModelVersion.val_accuracy.desc(), ModelVersion.created_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )


def _latest_event(session: Session, *, dataset: str) -> ServingEvent | None:
    return session.scalar(
        select(ServingEvent).where(ServingEvent.dataset == dataset).order_by(ServingEvent.id.desc()).limit(1)
    )


def get_model_version(session: Session, *, model_id: int) -> ModelVersion:
    """The version with this id; ModelNotFound otherwise."""
    version = session.get(ModelVersion, model_id)
    if version is None:
        raise ModelNotFound(model_id)
    return version


def list_model_versions(session: Session, *, dataset: str | None = None) -> Sequence[ModelVersion]:
    """Registered versions, newest first, optionally of one dataset."""
    query = select(ModelVersion).order_by(ModelVersion.id.desc())
    if dataset:
        query = query.where(ModelVersion.dataset == dataset)
    return session.scalars(query).all()


def serving_version_id(session: Session, *, dataset: str) -> int | None:
    """Just the id of the serving version: one indexed query, cheap enough to poll."""
    return session.scalar(
        select(ServingEvent.model_version_id).where(ServingEvent.dataset == dataset)
        .order_by(ServingEvent.id.desc()).limit(1)
    )


def serving_at(session: Session, *, dataset: str, at: datetime) -> ServingEvent:
    """The event that put in place what served `dataset` at `at` (NothingServed if nothing did yet)."""
    at = at.astimezone(timezone.utc) if at.tzinfo else at.replace(tzinfo=timezone.utc)
    event = session.scalar(
        select(ServingEvent).where(ServingEvent.dataset == dataset, ServingEvent.at <= at)
        .order_by(ServingEvent.at.desc(), ServingEvent.id.desc()).limit(1)
    )
    if event is None:
        raise NothingServed(dataset, at)
    return event


def promote(session: Session, *, model_id: int) -> ServingEvent:
    """Pin version `model_id` as the one serving its dataset (also how to roll back). Commits."""
    version = get_model_version(session, model_id=model_id)
    latest = _latest_event(session, dataset=version.dataset)
    event = ServingEvent(dataset=version.dataset, model_version_id=version.id,
                         previous_model_version_id=latest.model_version_id if latest is not None else None,
                         reason=ServingReason.promoted, at=utcnow())
    session.add(event)
    session.commit()
    return event


def rollback_to(session: Session, *, dataset: str, at: datetime) -> ServingEvent:
    """Pin the version that served `dataset` at `at` (NothingServed if none did). Commits."""
    return promote(session, model_id=serving_at(session, dataset=dataset, at=at).model_version_id)


def serving_history(session: Session, *, dataset: str | None = None) -> Sequence[ServingEvent]:
    """Which version served when and why, oldest first."""
    query = select(ServingEvent).order_by(ServingEvent.id)
    if dataset:
        query = query.where(ServingEvent.dataset == dataset)
    return session.scalars(query).all()


def serving_model_of_job(session: Session, job_id: str) -> str | None:
    """'<model> #<id> (<dataset>)' when the version a job produced serves its dataset now; else None."""
    version = session.scalar(select(ModelVersion).where(ModelVersion.job_id == job_id))
    if version is None or serving_version_id(session, dataset=version.dataset) != version.id:
        return None
    return f"{version.model} #{version.id} ({version.dataset})"
