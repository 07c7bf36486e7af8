"""The FastAPI app: `uvicorn api.main:app` (or `create_app()` in tests)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import redis
import redis.asyncio as redis_async
from anyio import to_thread
from fastapi import FastAPI
from prometheus_client import make_asgi_app

from api.errors import install_error_handlers
from api.body_limit import BodySizeLimit
from api.routes import catalog, checkpoints, datasets, events, health, jobs, models, plots, predict, rows, sweeps
from api.routes.dashboard import install_dashboard
from core.datasets import find_uploaded, uploaded_names
from core.bus import RedisPublisher
from core.maintenance import maintenance_pass
from core.queue import CeleryDispatcher, make_celery
from core.settings import Settings, get_settings
from ml.data.registry import use_uploaded_datasets
from ml.data.uploads import UploadedLookup

log = logging.getLogger("trainserve.api")

# Every router of the service; add a resource by adding its router here.
ROUTERS = [
    health.router,
    catalog.router,
    jobs.router,
    events.router,
    checkpoints.router,
    models.router,
    predict.router,
    plots.router,
    datasets.router,
    rows.router,
    sweeps.router,
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.celery = make_celery(settings) if settings.redis_url else None
    app.state.redis = redis_async.Redis.from_url(settings.redis_url) if settings.redis_url else None
    app.state.redis_sync = (redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
                            if settings.redis_url else None)
    app.state.dispatcher = CeleryDispatcher(app.state.celery) if app.state.celery is not None else None
    app.state.publisher = RedisPublisher(app.state.redis_sync)
    maintenance = asyncio.create_task(_maintain(app)) if app.state.dispatcher is not None else None
    try:
        yield
    finally:
        if maintenance is not None:
            maintenance.cancel()
        if app.state.redis is not None:
            await app.state.redis.aclose()
        if app.state.redis_sync is not None:
            app.state.redis_sync.close()


async def _maintain(app: FastAPI) -> None:
    """Every MAINTENANCE_INTERVAL_S: requeue jobs of vanished workers, re-send jobs the broker lost."""
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(settings.maintenance_interval_s)
        try:
            await to_thread.run_sync(partial(maintenance_pass, settings, broker=app.state.redis_sync,
                                             dispatcher=app.state.dispatcher, publisher=app.state.publisher))
        except Exception as exc:  # Redis or the DB down for a moment: the next pass tries again
            log.warning("maintenance pass failed: %s", exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app: routers, error handlers, and the clients it keeps for its lifetime."""
    app = FastAPI(
        title="trainserve",
        version="0.1.0",
        summary="Train the classic deep-learning course models over HTTP; every epoch and checkpoint in SQL.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served offline by install_dashboard
    )
    app.state.settings = settings or get_settings()
    install_error_handlers(app)
    # uploads bigger than the cap are refused while they stream, before anything is spooled to disk
    app.add_middleware(BodySizeLimit, prefix="/v1/datasets",
                       max_bytes=app.state.settings.max_dataset_upload_bytes + 64 * 1024)  # + multipart framing
    use_uploaded_datasets(UploadedLookup(find_uploaded, uploaded_names))  # uploads by name, through the DB
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/metrics", make_asgi_app())  # Prometheus text format: batch sizes of batched serving
    install_dashboard(app)
    return app


app = create_app()
