"""The one table from domain errors to HTTP statuses, and its handlers: bad input never turns into a 500."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sql_errors
from fastapi.routing import iter_route_contexts
from starlette.routing import Match

from api.auth import AdminOnly, NotAuthenticated
from api.deps import app_settings
from api.in_flight import ServerBusy
from api.plots.errors import NoSuchPlot
from api.predict.errors import (
    FileTooLarge, ModelUnavailable, NoModelYet, NotServed, OptionGivenTwice, RateLimited, TableModelMissing, TooManyFiles,
    UnknownModelId, UnreadableFile, UnreadableForm, WrongDataset,
)
from core.db import database_error
from core.errors import (
    ArtifactCorrupt, ArtifactMissing, ArtifactsNotRemoved, ArtifactStorageError, ArtifactStorageFull,
    ArtifactStorageReadOnly, BrokerUnavailable, CheckpointNotFound, DatabaseFull, DatabaseUnavailable, DatasetConflict,
    AmbiguousId, DatasetNotFound, FeedbackLabelInvalid, FeedbackSnapshotChanged, IdempotencyConflict, InputNotKept,
    InvalidCursor, JobNotCancellable, JobNotDeletable, JobNotFound, KeyNotFound, ModelNotFound, NothingServed,
    PredictionNotFound,
    ServingNotYours, SweepNotCancellable, SweepNotFound, TooManyQueued,
)
from ml.errors import BadUpload, InvalidConfig, UploadTooLarge

# The one table from a domain error to its HTTP status. The response is {"detail": str(error)}, plus the
# error's `headers` when it has some; InvalidConfig gets FastAPI's 422 list shape, naming each field.
STATUS: dict[type[Exception], int] = {
    # core: the service functions
    JobNotFound: 404, CheckpointNotFound: 404, ModelNotFound: 404, NothingServed: 404, DatasetNotFound: 404,
    SweepNotFound: 404, KeyNotFound: 404, PredictionNotFound: 404, InputNotKept: 404,
    FeedbackLabelInvalid: 422, InvalidCursor: 422,
    JobNotCancellable: 409, SweepNotCancellable: 409, IdempotencyConflict: 409, JobNotDeletable: 409,
    DatasetConflict: 409, FeedbackSnapshotChanged: 409, AmbiguousId: 409,
    ServingNotYours: 403,
    TooManyQueued: 429,
    BrokerUnavailable: 503, DatabaseUnavailable: 503, DatabaseFull: 503,
    # the artifact store: full, read-only, unreachable, a file gone or changed on the server, or some files
    # not removed — the server's trouble, not the request's: try again later
    ArtifactStorageError: 503, ArtifactStorageFull: 503, ArtifactStorageReadOnly: 503, ArtifactMissing: 503,
    ArtifactCorrupt: 503, ArtifactsNotRemoved: 503,
    # ml: the engine
    InvalidConfig: 422, BadUpload: 422, UploadTooLarge: 413,
    # api: who is calling
    NotAuthenticated: 401, AdminOnly: 403,
    # api: too many requests at once (answered by api/in_flight.py's middleware, with this status)
    ServerBusy: 503,
    # api: predictions
    UnreadableForm: 400, NotServed: 404, NoModelYet: 404, UnknownModelId: 404, TooManyFiles: 413,
    FileTooLarge: 413,
    OptionGivenTwice: 422, WrongDataset: 422, UnreadableFile: 422, RateLimited: 429, ModelUnavailable: 503,
    TableModelMissing: 503,
    # api: plots
    NoSuchPlot: 404,
}

# What to do next, for errors whose sentence (written where nothing knows the routes) does not say it
HINTS: dict[type[Exception], Callable[[Exception], str]] = {
    ModelNotFound: lambda _exc: "GET /v1/models lists the registered ones",
    NothingServed: lambda exc: f"GET /v1/models/history?dataset={exc.dataset} lists when each version started serving",
}

# Driver errors that say the database is busy, gone or full: core.db.database_error turns each into the
# service error above (DatabaseUnavailable, DatabaseFull), answered from STATUS like any other
DRIVER_ERRORS = (sql_errors.TimeoutError, sql_errors.OperationalError)

log = logging.getLogger("trainserve.api")

MAX_MESSAGE_CHARS = 1000  # an error's sentence; enough to list every knob a model takes


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit:,} more characters)"


def _capped(detail: list[dict], total: int) -> list[dict]:
    """`detail` (the first MAX_VALIDATION_ERRORS of `total` errors) and a line counting the rest."""
    if total <= len(detail):
        return detail
    return [*detail, {"loc": ["body"], "field": "body", "msg": f"and {total - len(detail):,} more errors not shown",
                      "type": "too_many_errors"}]


def invalid_config_detail(exc: InvalidConfig) -> list[dict]:
    """ml's [{field, message}] in FastAPI's 422 shape, keeping the dotted field name."""
    return [
        {"loc": ["body", *e["field"].split(".")], "field": e["field"], "msg": _clip(e["message"], MAX_MESSAGE_CHARS),
         "type": "invalid_config"}
        for e in exc.errors
    ]


async def _invalid_config(request: Request, exc: InvalidConfig) -> JSONResponse:
    limit = (await app_settings(request)).max_validation_errors
    return JSONResponse(status_code=STATUS[InvalidConfig],
                        content={"detail": _capped(invalid_config_detail(exc)[:limit], len(exc.errors))})


async def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    invalid_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if invalid_json is not None:
        where = (invalid_json.get("ctx") or {}).get("error", "")
        return JSONResponse(status_code=400, content={"detail": f"the request body is not valid JSON: {where}"})
    settings = await app_settings(request)
    echo = settings.max_echo_chars
    # add a dotted `field` beside pydantic's `loc`, so every 422 names its field the same way
    detail = []
    for err in errors[: settings.max_validation_errors]:
        err = dict(err)
        loc = [str(p) for p in err.get("loc", ())]
        inner = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
        err["field"] = ".".join(inner) or (loc[0] if loc else "body")  # the whole body, when it is not an object
        if "input" in err:  # echo the input only when it is short
            shown = jsonable_encoder(err["input"])
            err["input"] = shown if len(repr(shown)) <= echo else _clip(repr(shown), echo)
        err["msg"] = _clip(str(err.get("msg", "")), MAX_MESSAGE_CHARS)
        detail.append(err)
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(_capped(detail, len(errors)))})


def _status(code: int, hint: Callable[[Exception], str] | None):
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        detail = f"{exc}; {hint(exc)}" if hint is not None else str(exc)
        return JSONResponse(status_code=code, content={"detail": detail}, headers=getattr(exc, "headers", None))
    return handler


async def _driver_error(request: Request, exc: Exception) -> JSONResponse:
    error = database_error(exc)  # never None for DRIVER_ERRORS
    log.warning("%s %s: %s (%s)", request.method, request.url.path, type(error).__name__, exc.__class__.__name__)
    if isinstance(error, DatabaseFull):  # /readyz says not ready for a while (api/health.py)
        request.app.state.database_full_at = time.monotonic()
    return await _status(STATUS[type(error)], None)(request, error)
async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 with an Allow header that lists every method the path takes (RFC 9110 15.5.6).

    Starlette's own 405 lists the methods of the first route whose path matched, so OPTIONS /v1/jobs
    said `Allow: POST` though GET /v1/jobs exists too.
    """
    probe = {**request.scope, "method": ""}  # matches no route's method: every route on this path is partial
    allowed = sorted({m for route in iter_route_contexts(request.app.router.routes)
                      if route.matches(probe)[0] is Match.PARTIAL for m in route.methods or ()})
    return JSONResponse(status_code=405, content={"detail": getattr(exc, "detail", "Method Not Allowed")},
                        headers={"Allow": ", ".join(allowed)})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: still JSON, like every other error, and without its message (it may hold a server path).
    Starlette re-raises it after this response, so the server's log has the traceback."""
    return JSONResponse(status_code=500, content={
        "detail": f"internal error ({type(exc).__name__}); the server's log has the details"})


def install_error_handlers(app: FastAPI) -> None:
    """Register a handler for each error in STATUS (a subclass finds its own entry before its base's), one
    for the driver errors that mean the database is busy, gone or full (DRIVER_ERRORS), and a JSON 500 for
    anything else."""
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(RequestValidationError, _request_validation)
    for driver_error in DRIVER_ERRORS:
        app.add_exception_handler(driver_error, _driver_error)
    app.add_exception_handler(405, _method_not_allowed)
    for error, code in STATUS.items():
        special = _invalid_config if error is InvalidConfig else None
        app.add_exception_handler(error, special or _status(code, HINTS.get(error)))
