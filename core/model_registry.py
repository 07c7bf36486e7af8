"""The model registry's service functions: register, promote, and which version serves a dataset.

The serving version of a dataset is the latest ServingEvent's. Registering a version records an
`auto-best` event when it becomes the best by validation accuracy (ties: the newest), unless an
operator pinned one with `promote`; promoting (also to roll back) records a `promoted` event.

Auto-best compares like with like: only versions scored on the whole reference validation split of
their dataset (the engine carves it with a fixed seed and records which one) are candidates, and
only against versions scored on that same split. A job evaluated on a subset (`max_eval_samples`)
or on another split registers, can be promoted by hand, but never takes over by itself.

Who sees and who changes (docs/INFERENCE.md "Who changes what is served"): a version trained on a
private upload is private (`owner` = the upload's owner): others get ModelNotFound / NothingServed, as
for an unknown id; its owner (or an admin) promotes and rolls back, and any job on it may become
auto-best (only its owner and admins can train on it). A built-in dataset's versions are shared: everyone
sees them, only admins promote or roll back, and only versions of admins' jobs become auto-best, so a
user's job never changes what another user is served. Service functions take `owner` (None: an admin).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from core.errors import ModelNotFound, NothingServed, ServingNotYours
from core.keys import owner_is_admin
from core.orm import Checkpoint, Job, JobStatus, ModelVersion, ServingEvent, ServingReason, UploadedDataset, utcnow

def register_model_version(session: Session, *, job: Job, servable: bool = True,
                           auth_off: bool = False) -> ModelVersion | None:
    """Register a succeeded job's best checkpoint; None when it is not a servable classifier.

    `servable` comes from the dataset's spec (core cannot read it); `auth_off`: every caller is the admin
    (AUTH=off), so every job may serve. Idempotent: a job registers once. Does not commit: the worker records
    the job's outcome and its model version in one transaction, so a succeeded job is never seen without its version.
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
    upload = session.scalar(select(UploadedDataset).where(UploadedDataset.name == job.dataset))
    # a private upload's serving is its owner's (only they and admins train on it); a shared dataset's, the admins'
    may_serve = upload is not None or auth_off or owner_is_admin(session, job.owner)
    version = ModelVersion(
        job_id=job.id, dataset=job.dataset, model=job.model, epoch=checkpoint.epoch,
        val_accuracy=float(best["value"]), test_accuracy=test.get("accuracy"), test_metrics=test or None,
        checkpoint_path=checkpoint.path, checkpoint_sha256=checkpoint.sha256, created_at=utcnow(),
        val_split=split.get("id"), val_samples=split.get("samples"), val_split_size=split.get("size"),
        auto_promotable=may_serve and _scored_on_whole_reference_split(split),
        private=upload is not None, owner=upload.owner if upload is not None else None,
        train_label_counts=_train_label_counts(job.result),
    )
    session.add(version)
    session.flush()
    if version.auto_promotable:
        _follow_best(session, dataset=job.dataset, val_split=version.val_split)
        session.flush()
    return version


def _train_label_counts(result: dict | None) -> dict[str, int] | None:
    """The training split's {class: count} the engine reported; None for jobs that ran before it did."""
    counts = (result or {}).get("train_label_counts")
    if not isinstance(counts, dict) or not counts:
        return None
    return {str(label): int(n) for label, n in counts.items()}


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


def visible_to(version: ModelVersion, owner: str | None) -> bool:
    """Whether `owner` (None: an admin) may see the version: shared, or of their own upload."""
    return owner is None or not version.private or version.owner == owner


def _visible(query: Select, owner: str | None) -> Select:
    if owner is None:
        return query
    return query.where(or_(ModelVersion.private.is_(False), ModelVersion.owner == owner))


def get_model_version(session: Session, *, model_id: int, owner: str | None = None) -> ModelVersion:
    """The version with this id (`owner`: only one they may see); ModelNotFound otherwise."""
    version = session.get(ModelVersion, model_id)
    if version is None or not visible_to(version, owner):
        raise ModelNotFound(model_id)
    return version


def list_model_versions(session: Session, *, dataset: str | None = None,
                        owner: str | None = None) -> Sequence[ModelVersion]:
    """Registered versions `owner` may see, newest first, optionally of one dataset."""
    query = _visible(select(ModelVersion).order_by(ModelVersion.id.desc()), owner)
    if dataset:
        query = query.where(ModelVersion.dataset == dataset)
    return session.scalars(query).all()


def serving_version_id(session: Session, *, dataset: str) -> int | None:
    """Just the id of the serving version: one indexed query, cheap enough to poll."""
    return session.scalar(
        select(ServingEvent.model_version_id).where(ServingEvent.dataset == dataset)
        .order_by(ServingEvent.id.desc()).limit(1)
    )


def serving_versions(session: Session, *, shared_only: bool = True) -> Sequence[ModelVersion]:
    """The version serving each dataset now (one query); `shared_only`: built-in datasets' only, for places
    anyone may read (/metrics), where a private upload's name and versions must not show."""
    latest = select(func.max(ServingEvent.id)).group_by(ServingEvent.dataset)
    query = (select(ModelVersion).join(ServingEvent, ServingEvent.model_version_id == ModelVersion.id)
             .where(ServingEvent.id.in_(latest)).order_by(ModelVersion.dataset))
    if shared_only:
        query = query.where(ModelVersion.private.is_(False))
    return session.scalars(query).all()


def serving_at(session: Session, *, dataset: str, at: datetime, owner: str | None = None) -> ServingEvent:
    """The event that put in place what served `dataset` at `at` (NothingServed if nothing did yet, or when
    it is a version `owner` may not see)."""
    at = at.astimezone(timezone.utc) if at.tzinfo else at.replace(tzinfo=timezone.utc)
    event = session.scalar(
        select(ServingEvent).where(ServingEvent.dataset == dataset, ServingEvent.at <= at)
        .order_by(ServingEvent.at.desc(), ServingEvent.id.desc()).limit(1)
    )
    if event is None or not visible_to(event.model_version, owner):
        raise NothingServed(dataset, at)
    return event


def check_may_change_serving(version: ModelVersion, *, owner: str | None) -> None:
    """ServingNotYours unless `owner` is an admin (None) or the version is of their own upload."""
    if owner is not None and not (version.private and version.owner == owner):
        raise ServingNotYours(version.dataset)


def promote(session: Session, *, model_id: int, owner: str | None = None) -> ServingEvent:
    """Pin version `model_id` as the one serving its dataset (also how to roll back). Commits.

    `owner` (None: an admin): ModelNotFound for a version they may not see, ServingNotYours for a shared one.
    """
    version = get_model_version(session, model_id=model_id, owner=owner)
    check_may_change_serving(version, owner=owner)
    latest = _latest_event(session, dataset=version.dataset)
    event = ServingEvent(dataset=version.dataset, model_version_id=version.id,
                         previous_model_version_id=latest.model_version_id if latest is not None else None,
                         reason=ServingReason.promoted, at=utcnow())
    session.add(event)
    session.commit()
    return event


def rollback_to(session: Session, *, dataset: str, at: datetime, owner: str | None = None) -> ServingEvent:
    """Pin the version that served `dataset` at `at` (NothingServed if none did); as `promote`. Commits.

    A user may roll back only their own uploads: a shared dataset is ServingNotYours before anything is
    looked up; someone else's upload is NothingServed, as if it did not exist."""
    if owner is not None:
        upload_owner = session.scalar(select(UploadedDataset.owner).where(UploadedDataset.name == dataset))
        if upload_owner is None:
            raise ServingNotYours(dataset)
        if upload_owner != owner:
            raise NothingServed(dataset, at)
    event = serving_at(session, dataset=dataset, at=at, owner=owner)
    return promote(session, model_id=event.model_version_id, owner=owner)


def serving_history(session: Session, *, dataset: str | None = None,
                    owner: str | None = None) -> Sequence[ServingEvent]:
    """Which version served when and why, oldest first (`owner`: of the versions they may see)."""
    query = select(ServingEvent).order_by(ServingEvent.id)
    if owner is not None:
        query = _visible(query.join(ModelVersion, ModelVersion.id == ServingEvent.model_version_id), owner)
    if dataset:
        query = query.where(ServingEvent.dataset == dataset)
    return session.scalars(query).all()


def serving_model_of_job(session: Session, job_id: str) -> str | None:
    """'<model> #<id> (<dataset>)' when the version a job produced serves its dataset now; else None."""
    version = session.scalar(select(ModelVersion).where(ModelVersion.job_id == job_id))
    if version is None or serving_version_id(session, dataset=version.dataset) != version.id:
        return None
    return f"{version.model} #{version.id} ({version.dataset})"
