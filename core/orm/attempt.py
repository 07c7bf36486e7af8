"""One attempt at running a job: who ran it, when, how it ended, and where it resumed from."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.orm.base import Base, UTCDateTime, str_enum, utcnow


class AttemptEnd(enum.StrEnum):
    """Why an attempt ended. The crash reasons count towards `max_attempts`; a graceful stop does not."""

    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    stopped = "stopped"  # early stopping ended the trial
    process_died = "process_died"  # the training process was killed (SIGKILL, OOM)
    worker_lost = "worker_lost"  # no heartbeat within the timeout: machine lost, or back under another name
    worker_restarted = "worker_restarted"  # the worker came back under the same name: its old run is gone
    worker_stopped = "worker_stopped"  # SIGTERM: stopped at a batch boundary and requeued

    @property
    def is_crash(self) -> bool:
        return self in (AttemptEnd.process_died, AttemptEnd.worker_lost, AttemptEnd.worker_restarted)


_END_VALUES = ", ".join(f"'{e}'" for e in AttemptEnd)


class JobAttempt(Base):
    """Attempt `number` (1-based) of a job; at most one per job is open (ended_at NULL) at a time."""

    __tablename__ = "job_attempts"
    __table_args__ = (UniqueConstraint("job_id", "number"), CheckConstraint(f"ended IN ({_END_VALUES})", name="ended"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended: Mapped[AttemptEnd | None] = mapped_column(str_enum(AttemptEnd, 32))
    detail: Mapped[str | None] = mapped_column(Text)  # what happened, in a sentence
    resumed_from_epoch: Mapped[int | None] = mapped_column(Integer)  # epochs done in its checkpoint; None: from scratch
    resumed_from_batch: Mapped[int | None] = mapped_column(Integer)  # set when that was a mid-epoch (stop) checkpoint
    # a graceful stop checkpoints at a batch boundary: the next attempt continues from this file
    stop_checkpoint: Mapped[str | None] = mapped_column(Text)
    stop_epoch: Mapped[int | None] = mapped_column(Integer)  # the epoch in progress when it stopped
    stop_batch: Mapped[int | None] = mapped_column(Integer)  # batches of that epoch done

    job: Mapped["Job"] = relationship(back_populates="attempts")  # noqa: F821
