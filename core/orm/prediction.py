"""The prediction log: every answered file, what the served model said, and what a person said it was."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.orm.base import Base, UTCDateTime, utcnow


class Prediction(Base):
    """One file's answer from one model version; `feedback_label` once someone corrects or confirms it."""

    __tablename__ = "predictions"
    __table_args__ = (
        # quality windows per version and the dataset's feedback set both read by time
        Index("ix_predictions_model_version_id_created_at", "model_version_id", "created_at"),
        Index("ix_predictions_dataset_created_at", "dataset", "created_at"),
    )

    # a uuid4 made when the answer is, so the response carries it before the row is written
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model_version_id: Mapped[int] = mapped_column(Integer, ForeignKey("model_versions.id", ondelete="CASCADE"))
    dataset: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(64), index=True)  # the key's owner; None with auth off
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # what the model said
    label: Mapped[str] = mapped_column(String(128))
    confidence: Mapped[float] = mapped_column(Float)
    top_k: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"label", "confidence"}, ...]
    abstained: Mapped[bool] = mapped_column(Boolean, default=False)
    low_confidence: Mapped[bool] = mapped_column(Boolean, default=False)
    out_of_distribution: Mapped[bool | None] = mapped_column(Boolean)  # None: the version has no calibration
    # the input: always its digest and size; its bytes only when kept (an artifact-store key, never a path)
    input_sha256: Mapped[str] = mapped_column(String(64))
    input_size: Mapped[int] = mapped_column(Integer)
    input_key: Mapped[str | None] = mapped_column(Text)
    input_media_type: Mapped[str | None] = mapped_column(String(64))
    # what a person said it is (one of the version's classes)
    feedback_label: Mapped[str | None] = mapped_column(String(128), index=True)
    feedback_by: Mapped[str | None] = mapped_column(String(64))
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
