"""Process helpers shared by the benchmarks that start servers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def start_as_run(env: dict, port: int, tmp_path: Path) -> tuple[subprocess.Popen, int, str]:
    """scripts/serve.py, as `make run` runs it: (the launcher, its API process's pid, the admin key it made).

    The launcher keeps the key where the CLI finds it; TRAINSERVE_CONFIG points that at tmp_path, not ~/.config.
    """
    import tomllib

    config = tmp_path / "config.toml"
    env = {**env, "PORT": str(port), "HOST": "127.0.0.1", "TRAINSERVE_CONFIG": str(config)}
    log = tmp_path / "trainserve.log"
    with log.open("w") as out:
        launcher = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "serve.py")], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while "trainserve is up" not in log.read_text():  # the welcome box: the API and a worker answer
        if launcher.poll() is not None or time.monotonic() > deadline:
            stop(launcher)
            raise RuntimeError(f"make run's launcher did not start: {log.read_text()[-3000:]}")
        time.sleep(0.2)
    api = next(pid for pid in children(launcher.pid) if b"uvicorn" in Path(f"/proc/{pid}/cmdline").read_bytes())
    return launcher, api, tomllib.loads(config.read_text())["api_key"]


def children(pid: int) -> list[int]:
    """The direct children of `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants so far (Linux /proc): the server's own
    cost, whatever the load (uvicorn's API processes are children of its supervisor)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # a descendant that exited while we looked
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in children(pid))
