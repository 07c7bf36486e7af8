"""The Celery configuration shared by the worker and by the API that sends it job ids."""
from __future__ import annotations

import json
from collections.abc import Sequence

import redis
from celery import Celery

from core.settings import Settings, get_settings

TRAIN_TASK = "trainserve.train_job"


def make_celery(settings: Settings | None = None, *, include: Sequence[str] = ()) -> Celery:
    """A Celery app on settings.redis_url with the delivery guarantees long trainings need.

    `include`: the modules a worker imports at start (its tasks and signal handlers)."""
    settings = settings or get_settings()
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set: start Redis (`make run` does) and point REDIS_URL at it")
    app = Celery("trainserve", broker=settings.redis_url, backend=settings.redis_url, include=list(include))
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_expires=24 * 3600,
        # ack after the task ran, so a worker that dies mid-job does not silently lose it
        task_acks_late=True,
        # a busy worker must not hold the next job hostage (celery/celery#4537)
        worker_prefetch_multiplier=1,
        worker_disable_prefetch=True,
        worker_concurrency=settings.worker_concurrency,
        # Redis re-delivers unacked messages after this long: longer than any job (celery/celery#5935)
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_s},
        result_backend_transport_options={"visibility_timeout": settings.broker_visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_default_queue="training",
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


# kombu's Redis transport keeps a list per priority step (0, 3, 6, 9) and its BRPOP names them in
# that order, so a message at 0 is taken before any at 3 (lower is sooner on Redis, the reverse of
# AMQP). A job that was already queued once (requeued after its attempt ended, or re-sent after the
# broker lost it) goes ahead of jobs submitted since, instead of behind them: it keeps its place.
AHEAD_PRIORITY = 0
FRESH_PRIORITY = 3


class CeleryDispatcher:
    """The jobs service's Dispatcher: sends job ids to the training queue."""

    def __init__(self, app: Celery):
        self.app = app

    def enqueue(self, job_id: str, *, ahead: bool = False) -> None:
        # task id = job id: duplicates of one job are recognisable in Celery's own logs too
        self.app.send_task(TRAIN_TASK, args=[job_id], task_id=job_id,
                           priority=AHEAD_PRIORITY if ahead else FRESH_PRIORITY)


def broker_job_ids(client: redis.Redis, queue: str = "training") -> set[str]:
    """Job ids waiting in the broker's queue (kombu's Redis lists `<queue>` and `<queue>\x06\x16<priority>`).

    Messages a worker took but has not acknowledged (kombu's `unacked` hash) do not count: a worker
    that took one claims it at once (prefetch is off), and one whose worker died would otherwise
    hide its job until the visibility timeout (days). The task id is the job id.
    """
    ids: set[str] = set()
    for key in client.scan_iter(match=f"{queue}*", count=1000):
        if client.type(key) != b"list":
            continue
        for message in client.lrange(key, 0, -1):
            try:
                ids.add(str(json.loads(message)["headers"]["id"]))
            except (ValueError, KeyError, TypeError):
                continue
    return ids
