"""The FastAPI app: `uvicorn api.main:app` (or `create_app()` in tests)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import redis.asyncio as redis_async
from fastapi import FastAPI
from prometheus_client import make_asgi_app

from api.errors import install_error_handlers
from api.routes import catalog, checkpoints, events, health, jobs, models, predict
from core.queue import make_celery
from core.settings import Settings, get_settings

# Every router of the service; add a resource by adding its router here.
ROUTERS = [
    health.router,
    catalog.router,
    jobs.router,
    events.router,
    checkpoints.router,
    models.router,
    predict.router,
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.celery = make_celery(settings) if settings.redis_url else None
    app.state.redis = redis_async.Redis.from_url(settings.redis_url) if settings.redis_url else None
    app.state.redis_sync = (redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
                            if settings.redis_url else None)
    try:
        yield
    finally:
        if app.state.redis is not None:
            await app.state.redis.aclose()
        if app.state.redis_sync is not None:
            app.state.redis_sync.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app: routers, error handlers, and the clients it keeps for its lifetime."""
    app = FastAPI(
        title="trainserve",
        version="0.1.0",
        summary="Train the classic deep-learning course models over HTTP; every epoch and checkpoint in SQL.",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/metrics", make_asgi_app())  # Prometheus text format: batch sizes of batched serving
    return app


app = create_app()
