"""Who is calling: `Authorization: Bearer <key>` → a Principal, or 401; admin-only routes → 403.

Ownership is applied in one place per resource: its lookup dependency passes
`owner=principal.owner_filter` to the service (None for admins), which answers NotFound for
someone else's row — 404, not 403, so ids don't leak. docs/ARCHITECTURE.md "Keys and ownership".
"""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from core.db import session_scope
from core.keys import Principal, authenticate
from core.orm import Role

# AUTH=off: every caller is this admin (allowed only on a loopback address, see core.settings)
LOCAL_ADMIN = Principal(owner="local", role=Role.admin)


class NotAuthenticated(HTTPException):
    """401 with the challenge the HTTP spec asks for."""

    def __init__(self, detail: str):
        super().__init__(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


class ApiKeyAuth(HTTPBearer):
    """The caller's Principal from `Authorization: Bearer <key>`; 401 without a live key."""

    # One dependency that is also the OpenAPI security scheme: FastAPI solves it in one step, where a
    # function depending on HTTPBearer took two (every request pays the solver per dependency).
    async def __call__(self, request: Request) -> Principal:
        # async: a sync dependency costs every request a threadpool hop; only the key lookup (SQL) needs one
        if request.app.state.settings.auth == "off":
            principal = LOCAL_ADMIN
        else:
            credentials = await super().__call__(request)
            if credentials is None:
                raise NotAuthenticated("send an API key as `Authorization: Bearer <key>` (the first `make run` "
                                       "printed an admin key; `trainserve keys create` makes more)")
            principal = await run_in_threadpool(_look_up_key, credentials.credentials)
            if principal is None:
                raise NotAuthenticated("this API key is unknown or revoked")
        request.state.principal = principal
        return principal


current_principal = ApiKeyAuth(auto_error=False, scheme_name="HTTPBearer",
                                description="an API key: `python -m core.keys create NAME` or `trainserve keys create`")


def _look_up_key(key: str) -> Principal | None:
    with session_scope() as session:  # a short session of its own: nothing held while the route waits
        return authenticate(session, key)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    """403 unless the key is an admin's."""
    if not principal.is_admin:
        raise HTTPException(403, detail="only an admin key may do this")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
# for a route decorator: `dependencies=[ADMIN_ONLY]`
ADMIN_ONLY = Depends(require_admin)
