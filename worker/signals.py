"""The worker's Celery signal handlers: logging, the warm parent, fresh children, and jobs a process left behind."""
from __future__ import annotations

import logging
import os
import signal
import threading

from billiard.exceptions import WorkerLostError
from billiard.process import active_children
from celery.signals import setup_logging, task_failure, worker_init, worker_process_init, worker_ready, worker_shutting_down

from core import jobs
from core.db import dispose_engines, session_scope
from core.logs import configure_logging
from core.maintenance import offer_passes
from core.orm import AttemptEnd
from core.settings import get_settings
from worker.clients import dispatcher, publisher, redis_client, reset_clients
from worker.deaths import describe_death, remember_oom_kills
from worker.gpus import parse_gpus, take_gpu

log = logging.getLogger("trainserve.worker")

_node: dict[str, str] = {}  # this worker's node name, once it is ready
_stop_maintenance = threading.Event()


@setup_logging.connect
def _structured_logs(loglevel=None, **_kwargs) -> None:
    # connecting here stops Celery from configuring logging itself: our lines, JSON when not on a terminal
    configure_logging(loglevel or get_settings().log_level)


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
def _fresh_child(**_kwargs) -> None:
    # a forked pool child must not share the parent's DB or Redis sockets
    dispose_engines()
    reset_clients()
    take_gpu(parse_gpus(get_settings().worker_gpus))  # before anything in this child touches CUDA


@worker_shutting_down.connect
def _tell_children_to_stop(**_kwargs) -> None:
    _stop_maintenance.set()
    # `docker stop` signals only this parent; warm shutdown would wait for the whole job. The
    # children stop their job at a batch boundary, requeue it and return, so the parent can exit.
    for pid in [p.pid for p in active_children() if p.pid]:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


@worker_ready.connect
def _requeue_jobs_this_worker_abandoned(sender=None, **_kwargs) -> None:
    # jobs still 'running' under this node's name were cut off when it last stopped: run them again
    hostname = getattr(sender, "hostname", None)
    if not hostname:
        return
    _node["name"] = hostname
    remember_oom_kills()
    with session_scope() as session:
        ids = jobs.requeue_worker_jobs(session, worker=hostname, max_attempts=get_settings().max_attempts,
                                       dispatcher=dispatcher(), publisher=publisher())
    if ids:
        log.warning("requeued %d job(s) %s was running when it last stopped: %s", len(ids), hostname, ", ".join(ids))


@worker_ready.connect
def _offer_maintenance(**_kwargs) -> None:
    # a thread of the parent (torch-free work, no CUDA): with workers alone, abandoned jobs are still requeued
    broker = redis_client()
    if broker is None:
        return
    threading.Thread(target=offer_passes, name="maintenance", daemon=True, args=(get_settings(),), kwargs=dict(
        broker=broker, dispatcher=dispatcher(), publisher=publisher(), stop=_stop_maintenance)).start()


@task_failure.connect
def _requeue_job_whose_process_died(sender=None, exception=None, args=None, **_kwargs) -> None:
    # the pool child died mid-training (killed, out of memory): it cannot record that, so the parent does
    if not isinstance(exception, WorkerLostError) or not args:
        return
    job_id = str(args[0])
    hostname = _node.get("name")  # only this worker's run of the job: it may have moved on meanwhile
    with session_scope() as session:
        status = jobs.requeue(
            session, job_id=job_id, worker=hostname, ended=AttemptEnd.process_died,
            detail=describe_death(exception), max_attempts=get_settings().max_attempts,
            dispatcher=dispatcher(), publisher=publisher())
    if status is not None:
        log.error("job %s: its training process died (%s); now %s", job_id, exception, status)
