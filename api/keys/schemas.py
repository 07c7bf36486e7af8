"""Request and response schemas of /v1/keys (the key itself appears only in KeyCreated, once)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.orm import Role


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$",
                       description="who holds the key; their jobs and datasets belong to this name")
    role: Role = Role.user


class KeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    owner: str
    role: Role
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="the key itself: shown this once, only its hash is stored")


class KeysPublic(BaseModel):
    data: list[KeyPublic]
    count: int


class WhoAmI(BaseModel):
    owner: str
    role: Role
