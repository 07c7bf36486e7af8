"""The FastAPI app: `uvicorn api.main:app` (or `create_app()` in tests)."""
from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import redis
import redis.asyncio as redis_async
from anyio import to_thread
from fastapi import Depends, FastAPI

from api import catalog, health
from api.auth import KeyLookups, current_principal
from api.body_limit import BodyCap, BodySizeLimit
from api.dashboard import install_dashboard
from api.datasets import router as datasets
from api.errors import STATUS, install_error_handlers
from api.in_flight import InFlightLimit, ServerBusy
from api.jobs import checkpoints
from api.jobs import events as job_events
from api.jobs import router as jobs
from api.jobs.live import JobEvents
from api.keys import router as keys
from api.memory import HeapTrim
from api.metrics import RequestTimer
from api.metrics import router as metrics_router
from api.plots import router as plots
from api.predict import router as predict
from api.predict import rows
from api.predict.rate_limit import SharedBuckets
from api.predictions import router as predictions
from api.registry import router as registry
from api.sweeps import events as sweep_events
from api.sweeps import router as sweeps
from core.artifacts import open_store
from core.datasets import find_uploaded, uploaded_names
from core.keys import KeyCache
from core.bus import RedisPublisher
from core.logs import configure_logging
from core.maintenance import pass_if_due
from core.queue import CeleryDispatcher, make_celery
from core.settings import Settings, get_settings
from ml.data.registry import use_uploaded_datasets
from ml.data.uploads import UploadedLookup

log = logging.getLogger("trainserve.api")

# Open to anyone: liveness and readiness probes (the dashboard's page and assets are open too).
PUBLIC_ROUTERS = [health.router]
KEYED_RESPONSES: dict[int | str, dict] = {
    400: {"description": "the body is not valid JSON"},
    401: {"description": "no API key, or an unknown or revoked one"},
}
# Every other router of the service needs an API key; add a resource by adding its router here.
# Routes are matched in this order, each miss costing a regex or two: predict, the hot path, goes first.
ROUTERS = [
    predict.router,
    metrics_router,
    keys.router,
    catalog.router,
    jobs.router,
    job_events.router,
    checkpoints.router,
    registry.router,
    plots.router,
    datasets.router,
    predictions.router,
    rows.router,
    sweeps.router,
    sweep_events.router,
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # sync routes and SQL reads share these threads; the database pool is sized to cover them (core.settings)
    to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
    app.state.celery = make_celery(settings) if settings.redis_url else None
    app.state.redis = redis_async.Redis.from_url(settings.redis_url) if settings.redis_url else None
    app.state.redis_sync = (redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
                            if settings.redis_url else None)
    app.state.dispatcher = CeleryDispatcher(app.state.celery) if app.state.celery is not None else None
    app.state.publisher = RedisPublisher(app.state.redis_sync)
    # every job event stream of this process listens through this one subscriber (api/jobs/live.py)
    app.state.job_events = JobEvents(app.state.redis) if app.state.redis is not None else None
    # its own client with short timeouts: a hung Redis costs a predict request half a second, then the local bucket
    limiter = (redis_async.Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
               if settings.redis_url else None)
    app.state.predict_buckets = SharedBuckets(settings.predict_rate_per_s, settings.predict_burst, limiter)
    maintenance = asyncio.create_task(_maintain(app)) if app.state.dispatcher is not None else None
    # The ~450k objects alive now (torch, FastAPI, pydantic, our modules) live as long as the process:
    # frozen, the collector's full passes skip them. Unfrozen, each full pass walked them all (~250 ms
    # on 2 busy cores, holding the GIL, every few thousand predict requests): a p99 spike for every
    # request in flight and ~0.1 ms per request on average (docs/INFERENCE.md).
    gc.freeze()
    try:
        yield
    finally:
        if maintenance is not None:
            maintenance.cancel()
        if app.state.job_events is not None:
            await app.state.job_events.close()
        for client in (app.state.redis, limiter):
            if client is not None:
                await client.aclose()
        if app.state.redis_sync is not None:
            app.state.redis_sync.close()
        prediction_log = getattr(app.state, "prediction_log", None)
        if prediction_log is not None:  # the rows still queued are written before the process goes
            await to_thread.run_sync(prediction_log.close)


async def _maintain(app: FastAPI) -> None:
    """Twice a period, offer to run the maintenance pass (once per MAINTENANCE_INTERVAL_S across all processes)."""
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(settings.maintenance_interval_s / 2)
        try:
            await to_thread.run_sync(partial(pass_if_due, settings, broker=app.state.redis_sync,
                                             dispatcher=app.state.dispatcher, publisher=app.state.publisher))
        except Exception as exc:  # Redis or the DB down for a moment: the next pass tries again
            log.warning("maintenance pass failed: %s", exc)


def body_caps(settings: Settings) -> list[BodyCap]:
    """Each path's body cap: uploads get theirs (+ 64 KiB of multipart framing per file), the rest MAX_REQUEST_BYTES."""
    framing = 64 * 1024
    predict = settings.max_upload_files * (settings.max_upload_bytes + framing)
    return [BodyCap("/v1/datasets", settings.max_dataset_upload_bytes + framing, "MAX_DATASET_UPLOAD_BYTES"),
            BodyCap("/v1/predict", predict, "MAX_UPLOAD_FILES x MAX_UPLOAD_BYTES"),
            BodyCap("/", settings.max_request_bytes, "MAX_REQUEST_BYTES")]


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
    app.state.store = open_store(app.state.settings.artifact_store_url, app.state.settings)
    configure_logging(app.state.settings.log_level)
    install_error_handlers(app)
    app.state.key_cache = KeyCache(app.state.settings.auth_cache_ttl_s, app.state.settings.auth_cache_max_keys)
    app.state.key_lookups = KeyLookups()
    # in this process until the lifespan connects Redis (tests may build the app without running it)
    app.state.predict_buckets = SharedBuckets(app.state.settings.predict_rate_per_s, app.state.settings.predict_burst)
    # bodies bigger than their cap are refused while they stream, before anything is spooled to disk
    app.add_middleware(BodySizeLimit, caps=body_caps(app.state.settings),
                       max_header_bytes=app.state.settings.max_header_bytes)
    # inside the timer (a wait at the door is part of a request's time), outside everything that does work
    app.add_middleware(InFlightLimit, limit=app.state.settings.max_requests_in_flight,
                       wait_s=app.state.settings.request_queue_timeout_s, status=STATUS[ServerBusy])
    # large uploads and predictions: their freed memory goes back to the OS once they are over
    app.add_middleware(HeapTrim, prefixes=("/v1/predict", "/v1/datasets"))
    app.add_middleware(RequestTimer)  # outermost: refusals by the size limits are timed too
    use_uploaded_datasets(UploadedLookup(find_uploaded, uploaded_names))  # uploads by name, through the DB
    for router in PUBLIC_ROUTERS:
        app.include_router(router)
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(current_principal)], responses=KEYED_RESPONSES)
    install_dashboard(app)
    return app


app = create_app()
