"""One finished epoch of a job: the figures the engine reported for it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.orm.base import Base, UTCDateTime, utcnow


class EpochMetric(Base):
    """Loss, accuracy or MSE/R², lr and speed of one epoch (one row per job and epoch)."""

    __tablename__ = "epoch_metrics"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    train_accuracy: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    train_mse: Mapped[float | None] = mapped_column(Float)
    val_mse: Mapped[float | None] = mapped_column(Float)
    val_r2: Mapped[float | None] = mapped_column(Float)
    lr: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    samples_per_second: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    job: Mapped["Job"] = relationship(back_populates="epoch_metrics")  # noqa: F821

    METRIC_FIELDS = (
        "train_loss", "val_loss", "train_accuracy", "val_accuracy", "train_mse", "val_mse", "val_r2",
        "lr", "seconds", "samples_per_second",
    )
