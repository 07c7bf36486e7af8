"""The Celery app of the workers: `celery -A worker.app worker`."""
from __future__ import annotations

import logging

from billiard.exceptions import WorkerLostError
from celery.signals import task_failure, worker_init, worker_process_init, worker_ready

from core.db import dispose_engines, session_scope
from core.jobs import fail_abandoned_jobs, finish_job
from core.models import JobStatus
from core.queue import make_celery

log = logging.getLogger("trainserve.worker")

celery_app = make_celery()


@worker_init.connect
def _preload_engine(**_kwargs) -> None:
    # import torch and the engine once in the parent so each forked child starts warm;
    # importing is safe, only CUDA calls are not (and the engine makes none at import)
    import ml.train  # noqa: F401
    from core.datasets import find_uploaded, uploaded_names
    from ml.data import use_uploaded_datasets
    from ml.data.uploads import UploadedLookup

    use_uploaded_datasets(UploadedLookup(find_uploaded, uploaded_names))  # inherited by the forked children

@worker_process_init.connect
def _fresh_connections_in_child(**_kwargs) -> None:
    # a forked pool child must not share the parent's DB or Redis sockets
    dispose_engines()
    from worker import runner

    runner.reset_clients()


@worker_ready.connect
def _fail_jobs_this_worker_abandoned(sender=None, **_kwargs) -> None:
    # jobs still 'running' under this node's name were cut off when it last stopped; no one runs them now
    hostname = getattr(sender, "hostname", None)
    if not hostname:
        return
    with session_scope() as session:
        ids = fail_abandoned_jobs(session, worker=hostname)
    if ids:
        log.warning("marked %d job(s) abandoned by %s as failed: %s", len(ids), hostname, ", ".join(ids))


@task_failure.connect
def _fail_job_whose_process_died(sender=None, exception=None, args=None, **_kwargs) -> None:
    # the pool child died mid-training (killed, out of memory): it cannot record that, so the parent does
    if not isinstance(exception, WorkerLostError) or not args:
        return
    job_id = str(args[0])
    with session_scope() as session:
        failed = finish_job(
            session, job_id=job_id, status=JobStatus.failed, error_type="WorkerLost",
            error=f"the training process died ({exception}); this is often memory: try a smaller "
                  "batch_size or max_train_samples, then submit again")
    if failed:
        log.error("job %s failed: its training process died (%s)", job_id, exception)


# registers the task; imported last so the task module can import celery_app
from worker import tasks  # noqa: E402,F401
