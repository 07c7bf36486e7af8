"""The database engine and sessions: SQLite (WAL, foreign keys on) by default, PostgreSQL by URL."""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, Select, create_engine, event, exc, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.errors import DatabaseFull, DatabaseUnavailable, ServiceError
from core.settings import get_settings

# the driver's words for a full disk: SQLite's SQLITE_FULL, PostgreSQL's SQLSTATE 53100 (disk_full)
_DISK_FULL_SQLITE = "database or disk is full"
_DISK_FULL_SQLSTATE = "53100"


def make_engine(url: str) -> Engine:
    """An engine for `url`, its pool sized by DB_POOL_SIZE / DB_MAX_OVERFLOW / DB_POOL_TIMEOUT_S (see
    .env.example: sized against API_THREADS); SQLite connections get WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    settings = get_settings()
    pool = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow,
            "pool_timeout": settings.db_pool_timeout_s}
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **pool)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        pool = {}  # an in-memory database lives in one connection: no queue pool to size
    # the API's threadpool and the worker share the file: waiting on a lock beats failing on it
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (API) and one writer (worker) proceed together
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def database_error(error: exc.SQLAlchemyError) -> ServiceError | None:
    """The service error a driver error means, when it is about the database's state rather than a bug:
    a full disk → DatabaseFull; no connection in time, a lock held too long, a lost server →
    DatabaseUnavailable. None for anything else (an integrity or programming error stays a bug)."""
    if isinstance(error, exc.TimeoutError):  # the pool had no free connection within DB_POOL_TIMEOUT_S
        return DatabaseUnavailable("no free database connection")
    if not isinstance(error, exc.OperationalError):
        return None
    original = getattr(error, "orig", None)
    if _DISK_FULL_SQLITE in str(original) or getattr(original, "sqlstate", None) == _DISK_FULL_SQLSTATE:
        return DatabaseFull()
    return DatabaseUnavailable(type(original).__name__ if original is not None else type(error).__name__)


def sqlite_free_bytes(url: str) -> int | None:
    """Bytes free on the filesystem of a SQLite database file; None for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    stats = os.statvfs(Path(parsed.database).parent)
    return stats.f_bavail * stats.f_frsize


_engines: dict[str, Engine] = {}
_sessionmakers: dict[str, sessionmaker[Session]] = {}


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for `url` (default: settings.database_url), created once."""
    url = url or get_settings().database_url
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def get_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    """A session factory bound to `get_engine(url)`; objects stay readable after commit."""
    url = url or get_settings().database_url
    if url not in _sessionmakers:
        _sessionmakers[url] = sessionmaker(bind=get_engine(url), expire_on_commit=False)
    return _sessionmakers[url]


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A short-lived session for a task, a thread or a stream; closes it, rolling back what was not committed.

    It never commits: the services called inside commit each transition themselves (docs/ARCHITECTURE.md).
    """
    session = get_sessionmaker(url)()
    try:
        yield session
    finally:
        session.close()  # closing ends the transaction: anything uncommitted is rolled back


def dispose_engines() -> None:
    """Drop pooled connections inherited across fork: a forked child must open its own."""
    for engine in _engines.values():
        # close=False: the parent still owns those connections; the child only forgets them
        engine.dispose(close=False)
    _engines.clear()
    _sessionmakers.clear()


def newest_page(session: Session, query: Select, entity, *, offset: int, limit: int) -> tuple[Sequence, int]:
    """One page of `query`'s rows, newest first (created_at, then id), and how many match in all."""
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(entity.created_at.desc(), entity.id).offset(offset).limit(limit)).all()
    return rows, count
