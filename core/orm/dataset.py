"""Datasets users uploaded: name, what was found (the manifest), and the content hash naming its folder."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.orm.base import Base, UTCDateTime, utcnow


class UploadedDataset(Base):
    """One upload; its files live in the artifact store under datasets/<sha256>/, never under its name."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # the owner of the API key that created it (core.auth); None: created before keys existed (admin only)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # image_folder | csv
    task: Mapped[str] = mapped_column(String(16))  # classification | binary | regression
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # what ingestion found: classes with counts or columns, refused files or lines, sample count
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
