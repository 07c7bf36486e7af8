"""API keys over HTTP (admin only): create, list, revoke; and GET /v1/me for any key."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from api.auth import ADMIN_ONLY, PrincipalDep
from api.deps import SessionDep
from api.keys.schemas import KeyCreate, KeyCreated, KeyPublic, KeysPublic, WhoAmI
from core import keys as key_service

router = APIRouter(prefix="/v1", tags=["keys"])
KeyId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a key id from GET /v1/keys")]


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated, dependencies=[ADMIN_ONLY],
             responses={403: {"description": "not an admin key"}})
def create_key(body: KeyCreate, session: SessionDep) -> KeyCreated:
    """A new key for `owner`; the response is the only time the key is shown."""
    row, key = key_service.create_key(session, owner=body.owner, role=body.role)
    return KeyCreated(**KeyPublic.model_validate(row).model_dump(), key=key)


@router.get("/keys", response_model=KeysPublic, dependencies=[ADMIN_ONLY],
            responses={403: {"description": "not an admin key"}})
def list_keys(session: SessionDep) -> KeysPublic:
    """Every key, revoked ones too (never the key itself)."""
    rows = key_service.list_keys(session)
    return KeysPublic(data=[KeyPublic.model_validate(r) for r in rows], count=len(rows))


@router.delete("/keys/{key_id}", response_model=KeyPublic, dependencies=[ADMIN_ONLY],
               responses={403: {"description": "not an admin key"}, 404: {"description": "unknown key id"}})
def revoke_key(key_id: KeyId, request: Request, session: SessionDep) -> KeyPublic:
    """Revoke a key: its next request to this process gets 401; other API processes refuse it within
    AUTH_CACHE_TTL_S (they remember verified keys that long)."""
    row = key_service.revoke_key(session, key_id=key_id)
    request.app.state.key_cache.forget(row.key_hash)
    return KeyPublic.model_validate(row)


@router.get("/me", response_model=WhoAmI)
def whoami(principal: PrincipalDep) -> WhoAmI:
    """The owner and role of the key you sent."""
    return WhoAmI(owner=principal.owner, role=principal.role)
