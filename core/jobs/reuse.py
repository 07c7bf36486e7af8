"""Same-config reuse: a succeeded job with the same inputs gives its result instead of a new training."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.jobs.reads import list_epoch_metrics
from core.orm import EpochMetric, Job, JobStatus

# what a copy takes from its source besides the status
_COPIED = ("best_epoch", "best_metric", "test_metrics", "result", "device", "torch_version", "dataset_checksum",
           "code_version", "worker")


@dataclass(frozen=True)
class Reuse:
    """What must equal a succeeded job's, besides the resolved config, for its result to be reused."""

    dataset_checksum: str
    code_version: str
    # include_feedback: the snapshot's sha256 (None: trained on the dataset alone); part of the data
    feedback_sha256: str | None = None


def find_reusable(session: Session, *, config: dict[str, Any], reuse: Reuse) -> Job | None:
    """The newest succeeded job (not itself a copy) with this resolved config, dataset checksum, code, seed and
    feedback snapshot (the same rows, or none on both sides)."""
    candidates = session.scalars(
        select(Job).where(Job.status == JobStatus.succeeded, Job.model == config["model"],
                          Job.dataset == config["dataset"], Job.reused_from.is_(None),
                          Job.seed == config_seed(config),
                          Job.dataset_checksum == reuse.dataset_checksum, Job.code_version == reuse.code_version)
        .order_by(Job.finished_at.desc())
    ).all()
    key = _config_key(config)
    return next((job for job in candidates if _config_key(job.config) == key
                 and (job.feedback or {}).get("sha256") == reuse.feedback_sha256), None)


def config_seed(config: dict[str, Any]) -> int:
    """The seed a resolved config trains with."""
    return int(config.get("hyperparameters", {}).get("seed", 0))


def _config_key(config: dict[str, Any]) -> str:
    # what was trained: notes and the preset's name only describe how the config was reached
    return json.dumps({k: config.get(k) for k in ("model", "dataset", "hyperparameters")}, sort_keys=True)


def copy_result(job: Job, source: Job, now: datetime) -> None:
    """Make the new, not yet added `job` a succeeded copy of `source`'s result (`reused_from`)."""
    job.status, job.reused_from, job.finished_at, job.queued_at = JobStatus.succeeded, source.id, now, None
    for field in _COPIED:
        setattr(job, field, getattr(source, field))


def copy_epochs(session: Session, job: Job, source: Job, now: datetime) -> None:
    """Give the copy `job` the epoch rows of `source`. Flushes only."""
    for row in list_epoch_metrics(session, job_id=source.id):
        session.add(EpochMetric(job_id=job.id, epoch=row.epoch, created_at=now,
                                **{f: getattr(row, f) for f in EpochMetric.METRIC_FIELDS}))
    session.flush()
