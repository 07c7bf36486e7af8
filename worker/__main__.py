"""`python -m worker`: a training worker with the configured settings (what each GPU machine runs).

Named WORKER_NAME (default trainserve@<hostname>), WORKER_CONCURRENCY pool children (one per GPU of
WORKER_GPUS), consuming the training queue. Extra arguments go to `celery worker` (e.g. --loglevel DEBUG).
"""
from __future__ import annotations

import socket
import sys

from core.settings import Settings, get_settings


def worker_argv(settings: Settings, extra: list[str]) -> list[str]:
    """The `celery worker` arguments these settings mean."""
    name = settings.worker_name or f"trainserve@{socket.gethostname()}"
    return ["worker", "-Q", "training", "-n", name, "--pool", "prefork",
            "--concurrency", str(settings.worker_concurrency), "--loglevel", settings.log_level.upper(),
            # gossip and mingle: chatter between workers this service never uses, and a slower start
            "--without-gossip", "--without-mingle", *extra]


def main() -> None:
    """Run the worker until it is stopped (SIGTERM: the running jobs checkpoint and go back to the queue)."""
    from worker.app import celery_app  # made from the settings, so only when a worker starts

    celery_app.worker_main(worker_argv(get_settings(), sys.argv[1:]))


if __name__ == "__main__":
    main()
