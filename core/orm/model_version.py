"""The model registry: every servable model a job produced, and which one served each dataset when."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.orm.base import Base, UTCDateTime, str_enum, utcnow


class ModelVersion(Base):
    """A trained classifier registered when its job succeeded: its best checkpoint and its figures."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.id", ondelete="CASCADE"),
                                        unique=True)
    dataset: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(64))  # the model type: cnn, mlp, ...
    epoch: Mapped[int] = mapped_column(Integer)  # of the checkpoint served
    val_accuracy: Mapped[float] = mapped_column(Float)
    test_accuracy: Mapped[float | None] = mapped_column(Float)
    test_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # loss, accuracy (no matrices)
    # the checkpoint's key in the artifact store, copied from the job's checkpoint row; never from a request
    checkpoint_path: Mapped[str] = mapped_column(Text)
    checkpoint_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # which validation samples scored val_accuracy (recorded by the engine): only versions scored on
    # the whole reference split of their dataset can become auto-best, and only against each other
    val_split: Mapped[str | None] = mapped_column(String(64))
    val_samples: Mapped[int | None] = mapped_column(Integer)
    val_split_size: Mapped[int | None] = mapped_column(Integer)
    auto_promotable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # trained on a private upload: only the upload's owner (and admins) see, predict with or promote it;
    # a built-in dataset's versions are shared (owner None)
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    # {class: count} of the samples it trained on: live predictions' label mix is compared against it
    train_label_counts: Mapped[dict[str, int] | None] = mapped_column(JSON)


class ServingReason(enum.StrEnum):
    """Why a version started serving: best by validation accuracy, or pinned by an operator."""

    auto_best = "auto-best"
    promoted = "promoted"


_REASONS = ", ".join(f"'{r}'" for r in ServingReason)


class ServingEvent(Base):
    """From `at` on, `model_version` served `dataset`, for `reason` (the latest event is what serves)."""

    __tablename__ = "serving_events"
    __table_args__ = (CheckConstraint(f"reason IN ({_REASONS})", name="reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(String(64), index=True)
    model_version_id: Mapped[int] = mapped_column(Integer, ForeignKey("model_versions.id", ondelete="CASCADE"))
    previous_model_version_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("model_versions.id", ondelete="SET NULL"))
    reason: Mapped[ServingReason] = mapped_column(str_enum(ServingReason, 16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    model_version: Mapped[ModelVersion] = relationship(foreign_keys=[model_version_id], lazy="joined")
