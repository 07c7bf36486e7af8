"""Dependencies every domain uses, as Annotated aliases: the app's settings and a database session."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

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


def get_session(settings: SettingsDep) -> Iterator[Session]:
    """One session per request; the services it calls commit their own changes, never the route."""
    session = get_sessionmaker(settings.database_url)()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]
