"""Why a training process died, in words: out of memory (the kernel's count says so), a signal, or an exit code."""
from __future__ import annotations

import re
from pathlib import Path

from core.jobs import OUT_OF_MEMORY

# the kernel counts the processes its OOM killer ended in this container: cgroup v2, then v1
OOM_COUNTERS = (Path("/sys/fs/cgroup/memory.events"), Path("/sys/fs/cgroup/memory/memory.oom_control"))
_seen: dict[str, int | None] = {"oom_kills": None}


def oom_kills() -> int | None:
    """How many processes the OOM killer has ended in this cgroup; None where the kernel does not say."""
    for path in OOM_COUNTERS:
        try:
            found = re.search(r"^oom_kill (\d+)$", path.read_text(), re.MULTILINE)
        except OSError:
            continue
        if found:
            return int(found.group(1))
    return None


def remember_oom_kills() -> None:
    """Note the OOM count now, so the next death can tell whether the kernel killed for memory."""
    _seen["oom_kills"] = oom_kills()


def describe_death(exception: BaseException) -> str:
    """What ended a pool child, from billiard's WorkerLostError ('... signal 9 (SIGKILL) ...') and the OOM count."""
    text = str(exception)
    before, now = _seen["oom_kills"], oom_kills()
    _seen["oom_kills"] = now
    if before is not None and now is not None and now > before:
        return f"{OUT_OF_MEMORY}: the kernel's OOM killer ended the training process ({text})"
    signal = re.search(r"signal \d+ \((SIG\w+)\)", text)
    if signal and signal.group(1) == "SIGKILL":
        # the cgroup's count did not move (or cannot be read): a kill -9, or an OOM kill outside it
        return f"the training process was killed by SIGKILL ({text})"
    if signal:
        return f"the training process was killed by {signal.group(1)} ({text})"
    return f"the training process exited unexpectedly ({text})"
