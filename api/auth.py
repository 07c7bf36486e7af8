"""Who is calling: `Authorization: Bearer <key>` → a Principal, or 401; admin-only routes → 403.

Ownership is applied in one place per resource: its lookup dependency passes
`owner=principal.owner_filter` to the service (None for admins), which answers NotFound for
someone else's row — 404, not 403, so ids don't leak. docs/ARCHITECTURE.md "Keys and ownership".
"""
from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool

from api.deps import app_settings
from core.db import session_scope
from core.keys import KeyCache, Principal, authenticate, hash_key
from core.orm import Role

# AUTH=off: every caller is this admin (allowed only on a loopback address, see core.settings)
LOCAL_ADMIN = Principal(owner="local", role=Role.admin)


class NotAuthenticated(Exception):
    """No API key, or an unknown or revoked one; `headers` carry the challenge the HTTP spec asks for."""

    headers = {"WWW-Authenticate": "Bearer"}


class AdminOnly(Exception):
    """The route is an admin's and the key is not."""

    def __init__(self) -> None:
        super().__init__("only an admin key may do this")


class ApiKeyAuth(HTTPBearer):
    """The caller's Principal from `Authorization: Bearer <key>`; 401 without a live key."""

    # One dependency that is also the OpenAPI security scheme: FastAPI solves it in one step, where a
    # function depending on HTTPBearer took two (every request pays the solver per dependency).
    async def __call__(self, request: Request) -> Principal:
        # async: a sync dependency costs every request a threadpool hop; only the key lookup (SQL) needs one
        settings = await app_settings(request)
        if settings.auth == "off":
            principal = LOCAL_ADMIN
        else:
            # HTTPBearer's own parsing, without the credentials model it builds (auto_error is off anyway)
            scheme, key = get_authorization_scheme_param(request.headers.get("Authorization"))
            if scheme.lower() != "bearer" or not key:
                raise NotAuthenticated("send an API key as `Authorization: Bearer <key>` (the first `make run` "
                                       "printed an admin key; `trainserve keys create` makes more)")
            principal = await _verified(request, key, settings.database_url)
        request.state.principal = principal
        return principal


current_principal = ApiKeyAuth(auto_error=False, scheme_name="HTTPBearer",
                                description="an API key: `python -m core.keys create NAME` or `trainserve keys create`")


async def _verified(request: Request, key: str, database_url: str) -> Principal:
    """The key's principal: from this process's KeyCache when verified within AUTH_CACHE_TTL_S (no SQL, no
    thread hop), else from the database; NotAuthenticated for an unknown or revoked key."""
    cache: KeyCache = request.app.state.key_cache
    principal = cache.get(key)
    if principal is None:
        principal = await request.app.state.key_lookups.look_up(key, database_url)
        if principal is None:
            raise NotAuthenticated("this API key is unknown or revoked")
        cache.put(key, principal)
    return principal


class KeyLookups:
    """One SQL lookup per key at a time in this process: requests that miss the cache together share it.

    When a key's cache entry expires under load, every request in flight misses at once; each looked
    the key up in SQL (32 lookups in the threadpool every AUTH_CACHE_TTL_S at 32 clients). Now the first
    one looks it up and the others wait for its answer.
    """

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task] = {}  # by the key's hash: no key is kept

    async def look_up(self, key: str, database_url: str) -> Principal | None:
        """The live key's principal from the database (None: unknown or revoked), shared with concurrent askers."""
        digest = hash_key(key)
        lookup = self._running.get(digest)
        if lookup is None:
            lookup = asyncio.ensure_future(run_in_threadpool(_look_up_key, key, database_url))
            self._running[digest] = lookup
            lookup.add_done_callback(lambda _: self._running.pop(digest, None))
        return await asyncio.shield(lookup)  # one asker cancelled (its client left) must not cancel the others'


def _look_up_key(key: str, database_url: str) -> Principal | None:
    with session_scope(database_url) as session:  # a short session of its own: nothing held while the route waits
        return authenticate(session, key)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    """The caller, when the key is an admin's; AdminOnly (→ 403) otherwise."""
    if not principal.is_admin:
        raise AdminOnly()
    return principal


# for a route decorator: `dependencies=[ADMIN_ONLY]`
ADMIN_ONLY = Depends(require_admin)
