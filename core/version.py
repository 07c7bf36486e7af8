"""The code version a job records: `git describe` of the checkout, else the package version."""
from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from core.settings import PROJECT_ROOT


@lru_cache
def code_version() -> str:
    """e.g. 'efa4b21-dirty' or 'trainserve 0.1.0'; computed once per process."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True,
        )
        if out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass  # no git or no checkout (a container image): fall back to the installed package
    try:
        return f"trainserve {version('trainserve')}"
    except PackageNotFoundError:
        return "unknown"
