"""Liveness, readiness and the OpenAPI document."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.service


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "broker": "ok"}


def test_openapi_lists_the_job_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/metrics", "/v1/jobs/{job_id}/events",
                 "/v1/jobs/{job_id}/cancel", "/v1/jobs/{job_id}/checkpoints",
                 "/v1/jobs/{job_id}/checkpoints/{epoch}/file", "/v1/catalog", "/healthz", "/readyz"):
        assert path in paths, path
    assert client.get("/docs").status_code == 200


def test_the_docs_pages_fetch_nothing_from_another_host(client):
    redoc = client.get("/redoc")
    assert redoc.status_code == 200 and "/static/redoc.standalone.js" in redoc.text and "https://" not in redoc.text
    script = client.get("/static/redoc.standalone.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert b"cdn.redoc.ly" not in script.content and b"API docs by Redocly" in script.content
    assert '"validatorUrl": null' in client.get("/docs").text  # no badge from validator.swagger.io
