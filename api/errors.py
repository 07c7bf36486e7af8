"""Exception handlers: each domain error becomes one clear 4xx; bad input never turns into a 500."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from core.errors import DatasetNotFound
from core.errors import KeyNotFound
from core.errors import (
    BrokerUnavailable, CheckpointNotFound, IdempotencyConflict, JobNotCancellable, JobNotDeletable, JobNotFound,
    TooManyQueued,
)
from core.errors import SweepNotCancellable, SweepNotFound
from ml.errors import InvalidConfig


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
    limit = request.app.state.settings.max_validation_errors
    return JSONResponse(status_code=422, content={"detail": _capped(invalid_config_detail(exc)[:limit], len(exc.errors))})


async def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    invalid_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if invalid_json is not None:
        where = (invalid_json.get("ctx") or {}).get("error", "")
        return JSONResponse(status_code=400, content={"detail": f"the request body is not valid JSON: {where}"})
    echo = request.app.state.settings.max_echo_chars
    # add a dotted `field` beside pydantic's `loc`, so every 422 names its field the same way
    detail = []
    for err in errors[: request.app.state.settings.max_validation_errors]:
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
    app.add_exception_handler(SweepNotFound, _status(404))
    app.add_exception_handler(KeyNotFound, _status(404))
    app.add_exception_handler(TooManyQueued, _status(429))
    app.add_exception_handler(JobNotCancellable, _status(409))
    app.add_exception_handler(SweepNotCancellable, _status(409))
    app.add_exception_handler(IdempotencyConflict, _status(409))
    app.add_exception_handler(JobNotDeletable, _status(409))
    app.add_exception_handler(BrokerUnavailable, _status(503))
