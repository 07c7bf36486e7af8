"""Dependencies every domain uses, as Annotated aliases: the app's settings and a database session."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.artifacts import ArtifactStore
from core.db import get_sessionmaker
from core.settings import Settings


async def app_settings(request: Request) -> Settings:
    """The settings the app was built with (validated at start-up): the one source of settings in api/."""
    # async: a sync dependency costs every request a threadpool hop; this is an attribute read
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


async def app_store(request: Request) -> ArtifactStore:
    """The artifact store the app opened at start-up (ARTIFACT_STORE_URL): every file a route reads or removes."""
    return request.app.state.store


StoreDep = Annotated[ArtifactStore, Depends(app_store)]


# Closing a session hands its connection back to the pool (a rollback of what it read). Closes get threads
# of their own: behind the requests queued for the API's threads, a finished request would hold its
# connection until one came free, and under load the pool ran dry (tests/api/test_load.py).
_CLOSERS = anyio.CapacityLimiter(8)


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    """One session per request; the services it calls commit their own changes, never the route.

    Async: making the session does no I/O (it connects at its first query, in the route's thread), and
    its close runs at once on a closer thread, so a request holds a connection only while it works.
    """
    session = get_sessionmaker(settings.database_url)()
    try:
        yield session
    finally:
        await anyio.to_thread.run_sync(session.close, limiter=_CLOSERS)


SessionDep = Annotated[Session, Depends(get_session)]
