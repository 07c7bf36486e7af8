"""One GPU per training process, and `python -m worker`: a real worker with three pool children shares out
WORKER_GPUS by pool index (a killed child's replacement lands on the same GPU), and forking after the
worker's init hooks leaves CUDA usable in the child."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from core.settings import PROJECT_ROOT, Settings
from tests.utils.stack import Stack, Worker, stop_group
from worker.__main__ import worker_argv

TAKES = re.compile(r"pool process (\d+) \(index (\d+)\) trains on GPU (\w+)")


def _assignments(worker: Worker) -> dict[int, str]:
    """pid -> GPU of every pool child the worker has started, in order."""
    return {int(pid): gpu for pid, _index, gpu in TAKES.findall(worker.log_text())}


def _wait(condition, worker: Worker, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert worker.process.poll() is None and time.monotonic() < deadline, worker.log_text()[-4000:]
        time.sleep(0.1)


@pytest.mark.service
@pytest.mark.slow
def test_three_pool_children_take_a_gpu_each_and_a_replaced_child_takes_the_same(tmp_path):
    stack = Stack(tmp_path, extra_env={"WORKER_NAME": "gpus@test", "WORKER_CONCURRENCY": "3",
                                       "WORKER_GPUS": "a,b,c", "LOG_LEVEL": "info"})
    stack.start_redis()
    log = tmp_path / "worker.log"
    with log.open("w") as out:  # the command a second machine runs
        process = subprocess.Popen([sys.executable, "-m", "worker"], cwd=PROJECT_ROOT, env=stack.env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    worker = Worker("gpus@test", process, log)
    try:
        _wait(lambda: "gpus@test ready." in worker.log_text() and len(_assignments(worker)) == 3, worker)
        first = _assignments(worker)
        assert sorted(first.values()) == ["a", "b", "c"]
        on_b = next(pid for pid, gpu in first.items() if gpu == "b")
        os.kill(on_b, signal.SIGKILL)
        _wait(lambda: len(_assignments(worker)) == 4, worker)
        replacement = {pid: gpu for pid, gpu in _assignments(worker).items() if pid not in first}
        assert list(replacement.values()) == ["b"], worker.log_text()[-2000:]
    finally:
        stop_group(process, signal.SIGTERM)
        stack.close()


def test_the_worker_command_is_named_after_the_host_unless_worker_name_says_otherwise():
    argv = worker_argv(Settings(worker_concurrency=4), [])
    assert argv[argv.index("-n") + 1] == f"trainserve@{socket.gethostname()}"
    assert argv[argv.index("--concurrency") + 1] == "4" and argv[argv.index("-Q") + 1] == "training"
    named = worker_argv(Settings(worker_name="second@gpu-box"), ["--loglevel", "DEBUG"])
    assert named[named.index("-n") + 1] == "second@gpu-box" and named[-2:] == ["--loglevel", "DEBUG"]


# Runs the worker parent's init hooks as Celery does, then forks as the pool does.
FORK_AFTER_INIT = textwrap.dedent("""
    import os, sys
    from celery.signals import worker_init, worker_process_init
    import worker.app  # noqa: F401  (its modules connect the hooks)
    from worker.app import celery_app
    celery_app.loader.import_default_modules()
    worker_init.send(sender=None)
    import torch
    assert not torch.cuda.is_initialized(), "the parent initialised CUDA"
    pid = os.fork()
    if pid == 0:
        worker_process_init.send(sender=None)
        bad = torch.cuda._is_in_bad_fork()
        ok = not bad and (not torch.cuda.is_available() or torch.zeros(1, device="cuda").item() == 0)
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status), "cuda", torch.cuda.is_available())
    sys.exit(os.waitstatus_to_exitcode(status))
""")


def test_a_child_forked_after_the_worker_init_hooks_is_not_in_a_bad_fork(tmp_path):
    # On a CPU-only machine CUDA cannot be initialised, so this guards the imports; bench/gpu_smoke.sh runs
    # it where a GPU is lent, where the child's tensor on cuda proves the parent left CUDA alone.
    env = {**os.environ, "VAR_DIR": str(tmp_path), "PYTHONPATH": str(PROJECT_ROOT),
           "REDIS_URL": "redis://127.0.0.1:1/0"}  # named, never reached
    done = subprocess.run([sys.executable, "-c", FORK_AFTER_INIT], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_job_on_a_child_s_gpu_records_the_physical_gpu(monkeypatch):
    from billiard.process import current_process

    from worker import gpus

    monkeypatch.setattr(current_process(), "index", 4, raising=False)  # the fifth pool child
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(gpus, "_assigned", {})
    assert gpus.take_gpu(gpus.parse_gpus(" 0, 1 ,2,3 ")) == "0"  # 4 % 4: children past the list share GPUs
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert gpus.physical_device("cuda") == "cuda:0" and gpus.physical_device("cpu") == "cpu"
    monkeypatch.setattr(gpus, "_assigned", {})
    assert gpus.take_gpu([]) is None and gpus.physical_device("cuda") == "cuda"  # no WORKER_GPUS: as before
