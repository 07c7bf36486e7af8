"""Exception handlers: each domain error becomes one clear 4xx; bad input never turns into a 500."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from core.datasets import DatasetNotFound
from core.keys import KeyNotFound
from core.errors import (
    BrokerUnavailable, CheckpointNotFound, IdempotencyConflict, JobNotCancellable, JobNotDeletable, JobNotFound,
    TooManyQueued,
)
from ml.errors import InvalidConfig


def invalid_config_detail(exc: InvalidConfig) -> list[dict]:
    """ml's [{field, message}] in FastAPI's 422 shape, keeping the dotted field name."""
    return [
        {"loc": ["body", *e["field"].split(".")], "field": e["field"], "msg": e["message"],
         "type": "invalid_config"}
        for e in exc.errors
    ]


async def _invalid_config(_request: Request, exc: InvalidConfig) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": invalid_config_detail(exc)})


async def _request_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    # add a dotted `field` beside pydantic's `loc`, so every 422 names its field the same way
    detail = []
    for err in exc.errors():
        err = dict(err)
        loc = [str(p) for p in err.get("loc", ())]
        inner = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
        err["field"] = ".".join(inner) or (loc[0] if loc else "body")  # the whole body, when it is not an object
        detail.append(err)
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})


def _status(code: int):
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=code, content={"detail": str(exc)})
    return handler


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on `app`."""
    app.add_exception_handler(InvalidConfig, _invalid_config)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(JobNotFound, _status(404))
    app.add_exception_handler(CheckpointNotFound, _status(404))
    app.add_exception_handler(DatasetNotFound, _status(404))
    app.add_exception_handler(KeyNotFound, _status(404))
    app.add_exception_handler(TooManyQueued, _status(429))
    app.add_exception_handler(JobNotCancellable, _status(409))
    app.add_exception_handler(IdempotencyConflict, _status(409))
    app.add_exception_handler(JobNotDeletable, _status(409))
    app.add_exception_handler(BrokerUnavailable, _status(503))
