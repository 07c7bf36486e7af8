"""A training request turned into a queued job: the one place a submission is put together.

The route hands over the request; this checks it in the order that refuses cheapest first (the
config, the dataset's visibility, the per-job budgets) and asks core.jobs to queue it.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from api.datasets.deps import check_dataset_visible
from api.jobs.schemas import JobCreate
from core import jobs as job_service
from core.feedback import take_snapshot
from core.keys import Principal
from core.orm import Job
from core.settings import Settings
from core.version import code_version
from ml.budget import check_budget
from ml.catalog import dataset_checksum
from ml.config import TrainConfig, resolve_config
from ml.data import get_dataset_spec
from ml.errors import InvalidConfig


def reuse_key(dataset: str, settings: Settings, feedback: dict | None = None) -> job_service.Reuse:
    """What a job must match to reuse a succeeded one's result: the dataset's checksum, the code version and
    the feedback snapshot's sha256 (None without include_feedback)."""
    return job_service.Reuse(dataset_checksum=dataset_checksum(dataset, settings.data_dir, settings.cache_dir),
                             code_version=code_version(), feedback_sha256=feedback["sha256"] if feedback else None)


def feedback_snapshot(session: Session, config: TrainConfig, principal: Principal) -> dict:
    """include_feedback: the caller's feedback set of the dataset (an admin: everyone's), fixed now; InvalidConfig
    when the dataset is not image classification or has no feedback yet."""
    spec = get_dataset_spec(config.dataset)
    if not spec.is_image or spec.task not in ("classification", "binary"):
        raise InvalidConfig([{"field": "include_feedback", "message":
                              f"feedback is for image classification datasets; {config.dataset} is {spec.task} "
                              f"on {spec.input_kind} inputs (leave include_feedback false)"}])
    snapshot = take_snapshot(session, dataset=config.dataset, owner=principal.owner_filter)
    if not snapshot["count"]:
        raise InvalidConfig([{"field": "include_feedback", "message":
                              f"{config.dataset} has no feedback of yours yet: predict with keep=true, then "
                              "POST /v1/predictions/{id}/feedback {\"label\": ...} (or leave include_feedback false)"}])
    return snapshot


def submit_job(session: Session, body: JobCreate, *, principal: Principal, settings: Settings, dispatcher: job_service.Dispatcher | None,
               idempotency_key: str | None) -> tuple[Job, bool]:
    """The queued job (or the one this Idempotency-Key already made) and whether it is new; InvalidConfig → 422."""
    config = resolve_config(body.model, body.dataset, body.hyperparameters, preset=body.preset)
    check_dataset_visible(session, config.dataset, principal)
    # refused before anything is queued when it would not fit the per-job budgets
    check_budget(config, memory_bytes=settings.job_memory_budget_bytes, disk_bytes=settings.job_disk_budget_bytes,
                 retention=settings.checkpoint_retention, data_dir=settings.data_dir)
    feedback = feedback_snapshot(session, config, principal) if body.include_feedback else None
    return job_service.submit(
        session, config=config.model_dump(mode="json"), name=body.name, dispatcher=dispatcher,
        idempotency_key=idempotency_key, request_hash=job_service.request_fingerprint(_request(body)),
        reuse=reuse_key(config.dataset, settings, feedback) if body.reuse else None, owner=principal.owner,
        max_queued=settings.max_queued_jobs_per_owner, feedback=feedback,
    )


def _request(body: JobCreate) -> dict:
    # without include_feedback the fingerprint stays what it was before the field existed (keys in flight)
    return body.model_dump(exclude=None if body.include_feedback else {"include_feedback"})
