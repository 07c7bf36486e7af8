"""Every domain error that can reach the API has one HTTP status in api/errors.py, and routes raise no HTTPException."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from fastapi import FastAPI

import api
from api.body_limit import BodyTooLarge
from api.jobs.live import LiveChannelLost
from api.errors import STATUS, install_error_handlers
from core import errors as core_errors
from ml.errors import BadUpload, InvalidConfig, UploadTooLarge

API_DIR = Path(api.__file__).parent
ML_ERRORS_THAT_REACH_THE_API = [InvalidConfig, BadUpload, UploadTooLarge]
# raised inside the body-size middleware's `receive` and answered by that middleware itself: an HTTPException
# only so that FastAPI's body reader lets it through (any other error there becomes FastAPI's 400)
# and caught inside a job's event stream, which then reads SQL (the response is already streaming): never HTTP
MIDDLEWARE_SIGNALS = {BodyTooLarge, LiveChannelLost}


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


def _api_errors() -> list[type]:
    """Every exception class defined in a module of the api package."""
    found = []
    for info in pkgutil.walk_packages([str(API_DIR)], prefix="api."):
        if info.name == "api.main":  # building the app is not needed to read its classes
            continue
        module = importlib.import_module(info.name)
        found += [c for _, c in inspect.getmembers(module, inspect.isclass)
                  if issubclass(c, Exception) and c.__module__ == module.__name__]
    return [c for c in found if c not in MIDDLEWARE_SIGNALS]


@pytest.mark.parametrize("error", [c for c in _subclasses(core_errors.ServiceError)
                                   if c.__module__ == core_errors.__name__], ids=lambda c: c.__name__)
def test_every_service_error_has_a_status(error):
    assert error in STATUS, f"core.errors.{error.__name__} has no status in api/errors.py STATUS"


@pytest.mark.parametrize("error", ML_ERRORS_THAT_REACH_THE_API, ids=lambda c: c.__name__)
def test_every_ml_error_that_reaches_the_api_has_a_status(error):
    assert error in STATUS


def test_every_api_error_has_a_status():
    missing = [f"{c.__module__}.{c.__name__}" for c in _api_errors() if c not in STATUS]
    assert _api_errors() and not missing, f"no status in api/errors.py STATUS for {missing}"


def test_statuses_are_client_or_unavailable_errors():
    assert all(400 <= code < 500 or code == 503 for code in STATUS.values())


def test_the_app_has_a_handler_for_each_error():
    app = FastAPI()
    install_error_handlers(app)
    assert set(STATUS) <= set(app.exception_handlers)


def test_no_http_exception_is_raised_in_api_modules():
    offenders = [str(path.relative_to(API_DIR)) for path in API_DIR.rglob("*.py")
                 if path.name != "body_limit.py" and "HTTPException" in path.read_text()]
    assert not offenders, f"raise a domain error and map it in api/errors.py instead: {offenders}"


def _answer(error: Exception):
    """The response the app's handlers give when a route raises `error`."""
    from fastapi.testclient import TestClient

    from core.settings import Settings

    app = FastAPI()
    app.state.settings = Settings()
    install_error_handlers(app)

    @app.get("/raise")
    def _raise():
        raise error

    with TestClient(app, raise_server_exceptions=False) as client:
        return client.get("/raise")


def test_a_registry_lookup_says_where_the_versions_are_listed():
    from datetime import datetime, timezone

    response = _answer(core_errors.ModelNotFound(5))
    assert (response.status_code, response.json()) == (
        404, {"detail": "model 5 not found; GET /v1/models lists the registered ones"})
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    response = _answer(core_errors.NothingServed("mnist", at))
    assert (response.status_code, response.json()) == (404, {"detail": (
        "no model served 'mnist' at 2026-01-02T03:04:05+00:00; GET /v1/models/history?dataset=mnist lists when "
        "each version started serving")})


def test_errors_that_carry_headers_send_them():
    from api.auth import NotAuthenticated
    from api.predict.errors import RateLimited

    response = _answer(NotAuthenticated("this API key is unknown or revoked"))
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": "this API key is unknown or revoked"}
    response = _answer(RateLimited(0.25, retry_after_s=1))
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert response.json() == {"detail": "too many predict requests for this key (PREDICT_RATE_PER_S); retry in 0.250 s"}
    # a wait under a millisecond (a script at just over the rate) is said as one, never "0.0 s"; Retry-After ≥ 1
    response = _answer(RateLimited(0.00004, retry_after_s=1))
    assert response.headers["Retry-After"] == "1" and response.json()["detail"].endswith("retry in 0.001 s")


def test_an_upload_over_a_cap_is_413_and_a_bad_one_422():
    assert _answer(UploadTooLarge("the CSV has more than 10 rows")).status_code == 413
    response = _answer(BadUpload("the file is empty"))
    assert (response.status_code, response.json()) == (422, {"detail": "the file is empty"})


def test_an_unexpected_error_is_a_json_500_without_its_message():
    response = _answer(FileNotFoundError(2, "No such file or directory", "/srv/var/artifacts/jobs/x/.epoch-002.pt.tmp-1"))
    assert response.status_code == 500 and response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "internal error (FileNotFoundError); the server's log has the details"}
