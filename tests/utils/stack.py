"""A private service stack for crash tests: its own redis-server, database, API and workers, all real
processes that a test may kill, restart or wipe without disturbing the session's shared fixtures."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core.db import session_scope
from core.embedded_redis import free_port, start_redis
from core.keys import create_key
from core.orm import Role
from core.migrate import upgrade
from core.settings import PROJECT_ROOT, Settings
from tests.utils.clients import api_client

# short clocks so a vanished worker is noticed in seconds (the defaults are minutes)
FAST_LIFECYCLE = {"HEARTBEAT_INTERVAL_S": "0.3", "HEARTBEAT_TIMEOUT_S": "3", "MAINTENANCE_INTERVAL_S": "0.5",
                  "MAX_ATTEMPTS": "2", "PROGRESS_WRITE_INTERVAL_S": "0.1", "EVENTS_DB_POLL_S": "0.5"}


def pool_children(pid: int) -> list[int]:
    """Pids of a process's children (a Celery parent's pool processes)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
    """Signal a process group, then SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=timeout_s)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def child(self, timeout_s: float = 10.0) -> int:
        """The pid of its (single) pool process."""
        deadline = time.monotonic() + timeout_s
        while not (children := pool_children(self.process.pid)):
            assert time.monotonic() < deadline, "the worker has no pool process"
            time.sleep(0.05)
        return children[0]


@dataclass
class Stack:
    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    redis: subprocess.Popen | None = None
    api: subprocess.Popen | None = None  # the API started last (`url` is its address)
    apis: list[subprocess.Popen] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    # None: a SQLite file of its own; a URL: a database already at head (tests/utils/databases.py's fresh_database)
    database_url: str | None = None

    def __post_init__(self) -> None:
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.root / 'stack.db'}"
            upgrade(self.database_url)
        with session_scope(self.database_url) as session:
            self.key = create_key(session, owner="stack-admin", role=Role.admin)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "ARTIFACT_"))}
        env.update(DATABASE_URL=self.database_url, REDIS_URL=self.redis_url, VAR_DIR=str(self.root / "var"),
                   DATA_DIR=str(Settings().data_dir), PYTHONUNBUFFERED="1",
                   OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"), **FAST_LIFECYCLE)
        env.update(self.extra_env)
        self.env = env

    # ---- redis
    def start_redis(self, *, wipe: bool = False) -> None:
        data = self.root / "redis"
        if wipe:
            shutil.rmtree(data, ignore_errors=True)  # a new container: the broker's data is gone
        self.redis, _ = start_redis(data, self.redis_port, persist=True, log_file=self.root / "redis.log")

    def stop_redis(self, sig: int = signal.SIGTERM) -> None:
        stop_group(self.redis, sig)

    # ---- api
    def start_api(self) -> str:
        """Start one more API process on a free port; returns its URL (also `self.url`)."""
        port = free_port()
        with (self.root / "api.log").open("a") as out:
            self.api = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
                 "--log-level", "warning"],
                cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.apis.append(self.api)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            assert self.api.poll() is None and time.monotonic() < deadline, (self.root / "api.log").read_text()
            time.sleep(0.1)

    def client(self) -> httpx.Client:
        """A client with the stack's admin key (recording JSON bodies for the session-end path check)."""
        return api_client(self.url, self.key, timeout=30)

    # ---- workers
    def start_worker(self, name: str, env: dict[str, str] | None = None) -> Worker:
        """A worker process; `env` adds to the stack's environment (e.g. a VAR_DIR of its own: another host)."""
        log = self.root / f"worker-{name.replace('@', '_')}-{len(self.workers)}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "--loglevel=INFO", "-n", name,
                 "--pool=prefork", "--concurrency=1", "-Q", "training", "--without-gossip", "--without-mingle"],
                cwd=PROJECT_ROOT, env={**self.env, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        worker = Worker(name, process, log)
        self.workers.append(worker)
        deadline = time.monotonic() + 120
        while "ready." not in worker.log_text():
            assert process.poll() is None and time.monotonic() < deadline, worker.log_text()[-4000:]
            time.sleep(0.1)
        return worker

    def kill_tree(self, worker: Worker) -> None:
        """SIGKILL the worker and its pool at once: the machine is gone."""
        stop_group(worker.process, signal.SIGKILL)

    def close(self) -> None:
        for worker in self.workers:
            stop_group(worker.process, signal.SIGKILL)
        for process in (*self.apis, self.redis):
            if process is not None:
                stop_group(process, signal.SIGKILL)


def serve_api(env: dict[str, str], log: Path, timeout_s: float = 60.0) -> tuple[subprocess.Popen, str]:
    """An API process (uvicorn) with `env` on a free port, once /healthz answers; returns it and its URL."""
    port = free_port()
    with log.open("a") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_group(process)
            raise AssertionError(f"the API did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)
