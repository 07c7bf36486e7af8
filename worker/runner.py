"""What one delivery of a job does: start it through the jobs service, train (resuming), record the end."""
from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core import jobs, sweeps
from core.artifacts import get_store, storage_error
from core.db import session_scope
from core.errors import FeedbackSnapshotChanged
from core.model_registry import register_model_version
from core.orm import AttemptEnd, Job, JobStatus
from core.settings import get_settings
from core.version import code_version
from ml.catalog import dataset_is_servable, known_checksum
from ml.config import TrainConfig, config_from_dict
from ml.errors import MLError, TrainingCancelled
from ml.results import TrainResult
from worker.callbacks import SqlCallbacks, checkpoint_key, shutdown_requested
from worker.clients import dispatcher, publisher, redis_client
from worker.feedback import feedback_folder
from worker.gpus import physical_device
from worker.heartbeat import Heartbeat

log = logging.getLogger("trainserve.worker")


def run_job(job_id: str, *, worker: str) -> dict[str, Any]:
    """Train job `job_id` if it is queued, resuming from its last checkpoint; any other state: do nothing."""
    with session_scope() as session:
        run = jobs.start(session, job_id=job_id, worker=worker, code_version=code_version(), publisher=publisher())
        if run is None:
            status = _status_or_none(session, job_id)
            log.info("job %s not started by %s: it is %s", job_id, worker, status or "unknown")
            return {"job_id": job_id, "outcome": "skipped", "status": status}
    log.info("job %s attempt %d on %s%s", job_id, run.attempt, worker,
             f", resuming after epoch {run.resume_epoch}" if run.resume_epoch else "")
    try:
        with _sigterm_stops_the_job(), Heartbeat(job_id, worker, get_settings().heartbeat_interval_s) as beat:
            outcome = _train_and_record(job_id, worker, run, beat)
    finally:  # what this host wrote is in the store now; the next attempt may run anywhere
        get_store().release_staging(f"jobs/{job_id}")
    return {"job_id": job_id, "outcome": outcome, "attempt": run.attempt}


@contextmanager
def _sigterm_stops_the_job() -> Iterator[None]:
    """While a job trains, SIGTERM asks it to stop at the next batch boundary instead of killing the process.

    Installed per job: billiard resets a pool child's signal handlers after Celery's init hooks run.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    shutdown_requested.clear()
    previous = signal.signal(signal.SIGTERM, lambda *_: shutdown_requested.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _train_and_record(job_id: str, worker: str, run: jobs.StartedRun, beat: Heartbeat) -> str:
    settings = get_settings()
    callbacks: SqlCallbacks | None = None
    try:
        config = config_from_dict(run.config)
        _record_facts_before_training(job_id, config)
        callbacks = SqlCallbacks(
            job_id, epochs=config.hyperparameters.epochs, publisher=publisher(), redis_client=redis_client(),
            progress_interval_s=settings.progress_write_interval_s,
            cancel_poll_interval_s=settings.cancel_poll_interval_s, lost=beat.lost, resumed_epoch=run.resume_epoch,
            early_stop=partial(_early_stop_reason, job_id) if run.sweep_id else None,
        )
        result = _train(config, job_id, callbacks, run)
    except TrainingCancelled as exc:
        return _stopped(job_id, worker, exc, beat, callbacks)
    except Exception as exc:
        fault = storage_error(exc)  # disk full or read-only: said plainly, never a path or torch's words
        if callbacks is not None and not beat.lost.is_set() and fault is None:
            callbacks.flush_epochs()  # the run ends here: its finished epochs stay on record
        if fault is not None:  # an epoch whose checkpoint could not be stored is not on record
            return _finish(job_id, worker, beat, JobStatus.failed, error_type=type(fault).__name__, error=str(fault))
        if isinstance(exc, (MLError, FeedbackSnapshotChanged)):
            return _finish(job_id, worker, beat, JobStatus.failed, error_type=type(exc).__name__, error=str(exc))
        log.exception("job %s failed unexpectedly", job_id)  # a bug or a crash in the engine
        return _finish(job_id, worker, beat, JobStatus.failed, error_type=type(exc).__name__,
                       error=f"internal error while training ({type(exc).__name__}: {exc}); "
                             "the worker log has the details — please report it")
    try:
        return _finish_succeeded(job_id, worker, beat, result)
    except Exception as exc:  # the outcome's transaction rolled back: never leave the job 'running'
        log.exception("job %s trained but its outcome could not be recorded", job_id)
        return _finish(job_id, worker, beat, JobStatus.failed, error_type=type(exc).__name__,
                       error=f"training finished but recording its result failed ({type(exc).__name__}: {exc}); "
                             "the checkpoints are kept — please report it")


def _train(config: TrainConfig, job_id: str, callbacks: SqlCallbacks, run: jobs.StartedRun) -> TrainResult:
    from ml.train import train  # the engine; imported by the pool child, never touching CUDA in the parent

    settings, store = get_settings(), get_store()
    # the engine writes into a local folder (for a local store: the store's own); checkpoints are put in
    # the store as they are made (SqlCallbacks), the rest when the run ends
    out_dir = store.staging_dir(f"jobs/{job_id}")
    # resumes from the store, so any worker can continue a job (a remote one through this host's cache)
    resume_from = store.get(run.resume_from, run.resume_sha256) if run.resume_from else None
    # include_feedback: the snapshot's kept inputs, as a local folder the engine appends to the training split
    with feedback_folder(job_id, Path(settings.cache_dir) / "feedback") as extra:
        if extra is not None:
            config = config.model_copy(update={"extra_train_dir": str(extra)})
        result = train(config, data_dir=settings.data_dir, out_dir=out_dir, callbacks=callbacks,
                       cache_dir=settings.cache_dir, resume_from=resume_from)
    for path in sorted(out_dir.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.suffix != ".pt":
            store.put(f"jobs/{job_id}/{path.name}", path)  # plots and other outputs
    return result


def _record_facts_before_training(job_id: str, config: TrainConfig) -> None:
    import torch

    from ml.train import resolve_device

    # runs in the pool child only: CUDA may be initialised here, never in the forking parent
    device = physical_device(resolve_device(config.hyperparameters.device).type)
    with session_scope() as session:
        jobs.report_facts(session, job_id=job_id, device=device, torch_version=torch.__version__,
                          dataset_checksum=known_checksum(config.dataset))


def _stopped(job_id: str, worker: str, exc: TrainingCancelled, beat: Heartbeat,
             callbacks: SqlCallbacks | None) -> str:
    """The engine stopped between batches: the worker is stopping, the job was taken away, or a cancel."""
    if beat.lost.is_set():
        return "lost"  # requeued by the reaper: another attempt owns it; write nothing
    if shutdown_requested.is_set():
        return _requeue_stopped(job_id, worker, beat, exc, callbacks)
    if callbacks is not None:
        callbacks.flush_epochs()  # cancelled for good: its finished epochs stay on record
    if exc.stop_checkpoint is not None:
        Path(exc.stop_checkpoint).unlink(missing_ok=True)  # only a requeued job resumes mid-epoch
    if callbacks is not None and callbacks.stop_reason:  # a sweep's early stopping; its checkpoints stay
        return _finish(job_id, worker, beat, JobStatus.stopped, error_type="EarlyStopped", error=callbacks.stop_reason)
    kept = f"; the last checkpoint ({Path(exc.last_checkpoint).name}) is kept" if exc.last_checkpoint else ""
    return _finish(job_id, worker, beat, JobStatus.cancelled, error_type="TrainingCancelled",
                   error=f"cancelled on request {exc.where}{kept}")


def _requeue_stopped(job_id: str, worker: str, beat: Heartbeat, exc: TrainingCancelled,
                     callbacks: SqlCallbacks | None) -> str:
    """The worker is stopping: the job checkpointed at a batch boundary; put it back in the queue."""
    stopped_at = None
    if exc.stop_checkpoint is not None:
        key = checkpoint_key(job_id, exc.stop_checkpoint)
        get_store().put(key, Path(exc.stop_checkpoint))  # the next attempt may run on another host
        stopped_at = jobs.StoppedAt(key, exc.epoch, exc.batches_done)
        if callbacks is not None:
            callbacks.flush_epochs()  # epochs the stop checkpoint holds are done for good
    settings = get_settings()
    beat.stop()
    with session_scope() as session:
        status = jobs.requeue(
            session, job_id=job_id, worker=worker, ended=AttemptEnd.worker_stopped, stopped_at=stopped_at,
            detail=f"the worker stopped {exc.where}; "
                   + ("checkpointed there" if stopped_at else "resumes from the last epoch checkpoint"),
            max_attempts=settings.max_attempts, dispatcher=dispatcher(), publisher=publisher())
    log.info("job %s stopped for the worker's shutdown: now %s", job_id, status or "?")
    return status or "lost"


def _finish_succeeded(job_id: str, worker: str, beat: Heartbeat, result: TrainResult) -> str:
    """Record a finished run in one transaction: status, test metrics, best checkpoint, model version."""
    best_checkpoint = checkpoint_key(job_id, result.best_checkpoint) if result.best_checkpoint else None
    outcome = jobs.Outcome(
        best_epoch=result.best_epoch, best_metric=_plain(result.best_metric),
        test_metrics=_plain(dataclasses.asdict(result.test)) if result.test is not None else None,
        result=_plain({
            "stopped_early": result.stopped_early, "seconds": result.seconds, "best_checkpoint": best_checkpoint,
            "last_checkpoint": checkpoint_key(job_id, result.last_checkpoint) if result.last_checkpoint else None,
            "extra": result.extra, "notes": result.notes,  # e.g. a generator re-seeded on another device kind
            "train_label_counts": result.train_label_counts,  # the registry keeps it on the model version
            "ood": result.ood,  # the served version's out-of-distribution threshold and its test_flagged share
        }),
        device=physical_device(result.device), torch_version=result.torch_version, dataset_checksum=result.dataset_checksum,
    )
    return _finish(job_id, worker, beat, JobStatus.succeeded, best_checkpoint=best_checkpoint, outcome=outcome,
                   on_succeeded=lambda session, job: register_model_version(
                       session, job=job, servable=dataset_is_servable(job.dataset),
                       auth_off=get_settings().auth == "off"))


def _finish(
    job_id: str, worker: str, beat: Heartbeat, status: JobStatus, *, error: str | None = None,
    error_type: str | None = None, best_checkpoint: str | None = None, outcome: jobs.Outcome | None = None,
    on_succeeded: Callable[[Session, Job], object] | None = None,
) -> str:
    beat.stop()  # the final write ends the job: a beat after it would call the job lost
    with session_scope() as session:
        done = jobs.finish(session, job_id=job_id, worker=worker, status=status, error=error, error_type=error_type,
                           best_checkpoint=best_checkpoint, outcome=outcome, on_succeeded=on_succeeded,
                           publisher=publisher(), retention=get_settings().checkpoint_retention)
    if done:
        _advance_sweep(job_id)
    return status if done else "lost"


def _advance_sweep(job_id: str) -> None:
    """A trial's slot is free: launch its sweep's next trial now (the maintenance pass would, later)."""
    try:
        with session_scope() as session:
            sweeps.after_trial(session, job_id=job_id, dispatcher=dispatcher())
    except Exception:
        log.exception("job %s: could not advance its sweep; the maintenance pass will", job_id)


def _early_stop_reason(job_id: str, epoch: int, decided_until: int | None) -> str | None:
    with session_scope() as session:
        return sweeps.early_stop_reason(session, job_id=job_id, epoch=epoch, after=decided_until)


def _status_or_none(session, job_id: str) -> str | None:
    try:
        return jobs.get_job(session, job_id=job_id).status
    except LookupError:
        return None


def _plain(value: Any) -> Any:
    """JSON-safe copy (paths, numpy or tensor scalars become plain values)."""
    return json.loads(json.dumps(value, default=_to_plain))


def _to_plain(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
