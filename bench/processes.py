"""Process helpers shared by the benchmarks that start servers."""
from __future__ import annotations

import os
import signal
import subprocess


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
