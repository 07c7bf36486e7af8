"""The web dashboard at `/` and the API docs at `/docs` and `/redoc`, every asset served from this app.

The dashboard is one HTML page with plain JavaScript (api/static/dashboard, no build step); Swagger UI
and ReDoc come from the files the `fastapi-offline` package ships, so nothing loads from a CDN (ReDoc's
script is served with its one CDN address, the "API docs by Redocly" logo, replaced by an empty image;
Swagger UI's online validator badge is off).
"""
from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

import anyio
from fastapi import APIRouter, FastAPI, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

DASHBOARD_DIR = Path(__file__).resolve().parent / "static" / "dashboard"
DOCS_ASSETS = Path(str(files("fastapi_offline") / "static"))
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='0' height='0'/%3E"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard() -> FileResponse:
    """The dashboard's single page; it routes by URL fragment (#/jobs/ID, #/compare, ...)."""
    return FileResponse(DASHBOARD_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    """Swagger UI, from local files."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="trainserve — API docs",
                               swagger_js_url="/static/docs/swagger-ui-bundle.js",
                               swagger_css_url="/static/docs/swagger-ui.css",
                               swagger_favicon_url="/static/docs/favicon.png",
                               swagger_ui_parameters={"validatorUrl": None})  # its badge asks validator.swagger.io


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    """ReDoc, from local files."""
    return get_redoc_html(openapi_url="/openapi.json", title="trainserve — API reference",
                          redoc_js_url="/static/redoc.standalone.js",
                          redoc_favicon_url="/static/docs/favicon.png", with_google_fonts=False)


@router.get("/static/redoc.standalone.js")
async def redoc_js() -> Response:
    """ReDoc's script, its logo from the CDN replaced by an empty image (an offline page must fetch nothing)."""
    script = await anyio.to_thread.run_sync(_offline_redoc)  # read once per process, off the event loop
    return Response(script, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


@cache
def _offline_redoc() -> bytes:
    return (DOCS_ASSETS / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, EMPTY_IMAGE)


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard, the docs pages and their static files (create the app with docs_url=None)."""
    app.include_router(router)
    app.mount("/static/dashboard", StaticFiles(directory=DASHBOARD_DIR), name="dashboard-assets")
    app.mount("/static/docs", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
