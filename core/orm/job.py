"""A training job: what was asked, how it is going, what it produced, and what reproduces it."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.orm.base import Base, UTCDateTime, str_enum, utcnow


class JobStatus(enum.StrEnum):
    """A job's life: queued → running → succeeded | failed | cancelled | stopped (queued → cancelled too).

    `stopped`: a sweep's early stopping ended the trial (its metric lagged at a rung); not a failure.
    """

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    stopped = "stopped"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.stopped})
_STATUS_VALUES = ", ".join(f"'{s}'" for s in JobStatus)


class Job(Base):
    """One training run requested over the API; the source of truth for its state."""

    __tablename__ = "jobs"
    __table_args__ = (CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status"),
                      UniqueConstraint("sweep_id", "trial"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(64), index=True)
    dataset: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus, 16), index=True, default=JobStatus.queued)
    # the resolved TrainConfig (model, dataset, every hyperparameter including defaults)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)  # a sentence the user can act on
    error_type: Mapped[str | None] = mapped_column(String(64))

    # a sweep's trial: the sweep and the trial's index in it (unique: a trial becomes one job)
    sweep_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    trial: Mapped[int | None] = mapped_column(Integer)
    # same-config reuse: the succeeded job whose result this job took instead of training
    reused_from: Mapped[str | None] = mapped_column(String(36))

    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # the owner of the API key that created it (core.auth); None: created before keys existed (admin only)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))  # a retry must repeat the same request

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # reproducibility: who ran it, on what, with which code
    worker: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(32))
    code_version: Mapped[str | None] = mapped_column(String(100))
    torch_version: Mapped[str | None] = mapped_column(String(64))
    dataset_checksum: Mapped[str | None] = mapped_column(String(128))

    # in-epoch progress, written (throttled) by the worker
    progress_epoch: Mapped[int | None] = mapped_column(Integer)
    progress_epochs: Mapped[int | None] = mapped_column(Integer)
    progress_batch: Mapped[int | None] = mapped_column(Integer)
    progress_batches: Mapped[int | None] = mapped_column(Integer)
    samples_per_second: Mapped[float | None] = mapped_column(Float)
    progress_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # liveness: the training process's heartbeat thread writes this; the reaper requeues stale ones
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # when it (re-)entered the queue: the broker reconciliation leaves fresh ones alone
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # results
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    best_metric: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {"name": ..., "value": ...}
    test_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # stopped_early, seconds, extra
    # include_feedback: the snapshot of the dataset's feedback set it trained on (prediction ids, count,
    # sha256 over ids and labels), fixed at submit so a rerun of the job sees the same rows
    feedback: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    epoch_metrics: Mapped[list["EpochMetric"]] = relationship(  # noqa: F821
        back_populates="job", order_by="EpochMetric.epoch", cascade="all, delete-orphan", passive_deletes=True
    )
    checkpoints: Mapped[list["Checkpoint"]] = relationship(  # noqa: F821
        back_populates="job", order_by="Checkpoint.epoch", cascade="all, delete-orphan", passive_deletes=True
    )
    attempts: Mapped[list["JobAttempt"]] = relationship(  # noqa: F821
        back_populates="job", order_by="JobAttempt.number", cascade="all, delete-orphan", passive_deletes=True
    )
