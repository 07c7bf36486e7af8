"""A training request turned into a queued job: the one place a submission is put together.

The route hands over the request; this checks it in the order that refuses cheapest first (the
config, the dataset's visibility, the per-job budgets) and asks core.jobs to queue it.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from api.datasets.deps import check_dataset_visible
from api.jobs.schemas import JobCreate
from core import jobs as job_service
from core.keys import Principal
from core.orm import Job
from core.settings import Settings
from core.version import code_version
from ml.budget import check_budget
from ml.catalog import dataset_checksum
from ml.config import resolve_config


def reuse_key(dataset: str, settings: Settings) -> job_service.Reuse:
    """What a job must match to reuse a succeeded one's result: the dataset's checksum and the code version."""
    return job_service.Reuse(dataset_checksum=dataset_checksum(dataset, settings.data_dir, settings.cache_dir),
                             code_version=code_version())


def submit_job(session: Session, body: JobCreate, *, principal: Principal, settings: Settings, dispatcher: job_service.Dispatcher | None,
               idempotency_key: str | None) -> tuple[Job, bool]:
    """The queued job (or the one this Idempotency-Key already made) and whether it is new; InvalidConfig → 422."""
    config = resolve_config(body.model, body.dataset, body.hyperparameters, preset=body.preset)
    check_dataset_visible(session, config.dataset, principal)
    # refused before anything is queued when it would not fit the per-job budgets
    check_budget(config, memory_bytes=settings.job_memory_budget_bytes, disk_bytes=settings.job_disk_budget_bytes,
                 retention=settings.checkpoint_retention, data_dir=settings.data_dir)
    return job_service.submit(
        session, config=config.model_dump(mode="json"), name=body.name, dispatcher=dispatcher,
        idempotency_key=idempotency_key, request_hash=job_service.request_fingerprint(body.model_dump()),
        reuse=reuse_key(config.dataset, settings) if body.reuse else None, owner=principal.owner,
        max_queued=settings.max_queued_jobs_per_owner,
    )
