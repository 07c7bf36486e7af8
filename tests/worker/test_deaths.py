"""An attempt's detail says what ended its process: out of memory, which signal, or an exit code."""
from __future__ import annotations

from billiard.common import human_status
from billiard.exceptions import WorkerLostError

from worker import deaths


def _lost(exitcode: int) -> WorkerLostError:
    # the words billiard's pool uses when a child dies (billiard/pool.py mark_as_worker_lost)
    return WorkerLostError(f"Worker exited prematurely: {human_status(exitcode)} Job: 3.")


def test_an_oom_kill_the_kernel_counted_is_said_to_be_out_of_memory(tmp_path, monkeypatch):
    counter = tmp_path / "memory.events"
    monkeypatch.setattr(deaths, "OOM_COUNTERS", (counter,))
    counter.write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    deaths.remember_oom_kills()
    counter.write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n")
    said = deaths.describe_death(_lost(-9))
    assert said.startswith("out of memory") and "SIGKILL" in said
    # the next death without a new OOM kill is a plain kill again
    assert deaths.describe_death(_lost(-9)).startswith("the training process was killed by SIGKILL")


def test_a_kill_without_the_kernels_count_names_the_signal_or_exit_code(tmp_path, monkeypatch):
    monkeypatch.setattr(deaths, "OOM_COUNTERS", (tmp_path / "absent",))
    deaths.remember_oom_kills()
    assert deaths.describe_death(_lost(-9)).startswith("the training process was killed by SIGKILL")
    assert deaths.describe_death(_lost(-15)).startswith("the training process was killed by SIGTERM")
    assert deaths.describe_death(_lost(3)).startswith("the training process exited unexpectedly (")
    assert "exitcode 3" in deaths.describe_death(_lost(3))
