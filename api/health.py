"""Liveness and readiness."""
from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.deps import SessionDep
from core.db import sqlite_free_bytes

# PostgreSQL's disk cannot be looked at from here: not ready this long after a write failed for a full
# disk (the 503's Retry-After)
DISK_FULL_HOLD_S = 60.0
# a SQLite database whose filesystem has less than this free is about to refuse writes
MIN_FREE_BYTES = 1024 * 1024

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, session: SessionDep) -> JSONResponse:
    """The database and the broker answer; 503 says which does not."""
    checks: dict[str, str] = {"database": _database(request, session)}
    broker = request.app.state.redis_sync
    if broker is None:
        checks["broker"] = "not configured: set REDIS_URL"
    else:
        try:
            broker.ping()
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(status_code=200 if ready else 503, content={"status": "ready" if ready else "not ready", **checks})


def _database(request: Request, session: Session) -> str:
    """Whether the database can serve ("ok"), or why not: unreachable, or its disk full (reads work, writes not)."""
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means not ready; say which
        return f"unreachable: {type(exc).__name__}"
    free = sqlite_free_bytes(request.app.state.settings.database_url)
    if free is not None:  # SQLite: its disk is ours to look at
        return "ok" if free >= MIN_FREE_BYTES else f"disk full: {free:,} bytes free where the database is"
    full_at = getattr(request.app.state, "database_full_at", None)
    if full_at is not None and time.monotonic() - full_at < DISK_FULL_HOLD_S:
        return "disk full: a write failed for lack of space"
    return "ok"
