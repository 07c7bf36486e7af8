"""An API key: who holds it (owner), what it may do (role); only the key's SHA-256 is stored."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.orm.base import Base, UTCDateTime, str_enum, utcnow


class Role(enum.StrEnum):
    """admin: everything; user: their own jobs and datasets, plus predict, catalog and registry reads."""

    admin = "admin"
    user = "user"


class ApiKey(Base):
    """One key. `owner` names the person or service; jobs and datasets belong to the owner, not the key,
    so a rotated key keeps its owner's things."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("role IN ('admin', 'user')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, 16))
    # sha256 of the whole key: keys are 32 random bytes, so a fast hash cannot be brute-forced
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to tell keys apart in listings
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
