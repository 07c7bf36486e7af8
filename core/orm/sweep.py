"""A hyperparameter sweep: the request, its expanded trial configs, and how far it got. Its trials are jobs."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.orm.base import Base, UTCDateTime, str_enum, utcnow


class SweepStatus(enum.StrEnum):
    """queued → running → succeeded | failed | cancelled (succeeded: at least one trial succeeded)."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (SweepStatus.succeeded, SweepStatus.failed, SweepStatus.cancelled)


_STATUS_VALUES = ", ".join(f"'{s}'" for s in SweepStatus)


class Sweep(Base):
    """One sweep. Trials wait here (`trials`) until a slot frees; then each becomes a job with this sweep_id."""

    __tablename__ = "sweeps"
    __table_args__ = (CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(64))
    status: Mapped[SweepStatus] = mapped_column(str_enum(SweepStatus, 16), index=True, default=SweepStatus.queued)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # as posted: search space, seed, options
    # the resolved config of every trial, in trial order; trial i becomes a job when `launched` passes i
    trials: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    searched: Mapped[list[str]] = mapped_column(JSON)  # the hyperparameters the search varies
    metric: Mapped[str] = mapped_column(String(32))  # val_accuracy (max) | val_loss (min) | ...
    mode: Mapped[str] = mapped_column(String(3))  # max | min
    max_parallel: Mapped[int] = mapped_column(Integer)
    # {"grace_epochs": g, "reduction_factor": r} or None
    asha: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # same-config reuse: {"dataset_checksum", "code_version"} trials must match, or None (train every trial)
    reuse: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    launched: Mapped[int] = mapped_column(Integer, default=0)  # trials turned into jobs so far
    best_job_id: Mapped[str | None] = mapped_column(String(36))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the owner of the API key that created it; its trials are that owner's jobs (None: admin only)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
