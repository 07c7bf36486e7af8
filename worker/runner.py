"""What one delivery of a job does: claim it, train it with SQL-writing callbacks, record the outcome."""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import redis

from core.bus import make_client, publish_event
from core.db import session_scope
from core.jobs import claim_job, finish_job, get_job, mark_best_checkpoint, record_run_facts
from core.models import JobStatus
from core.model_registry import register_model_version
from core.settings import get_settings
from core.version import code_version
from ml.catalog import dataset_is_servable, known_checksum
from ml.config import TrainConfig, config_from_dict
from ml.errors import DatasetNotFound, InvalidConfig, MLError, TrainingCancelled, TrainingDiverged
from ml.results import TrainResult
from worker.callbacks import SqlCallbacks

log = logging.getLogger("trainserve.worker")

_redis: redis.Redis | None = None


def reset_clients() -> None:
    """Forget the Redis client (after fork)."""
    global _redis
    _redis = None


def _redis_client() -> redis.Redis | None:
    global _redis
    url = get_settings().redis_url
    if _redis is None and url:
        _redis = make_client(url)
    return _redis


def run_job(job_id: str, *, worker: str) -> dict[str, Any]:
    """Train job `job_id` if it is queued; a delivery for any other state does nothing."""
    with session_scope() as session:
        claimed = claim_job(session, job_id=job_id, worker=worker, code_version=code_version())
        if not claimed:
            status = _status_or_none(session, job_id)
            log.info("job %s not started by %s: it is %s", job_id, worker, status or "unknown")
            return {"job_id": job_id, "outcome": "skipped", "status": status}
        config_dict = get_job(session, job_id=job_id).config
    _announce_status(job_id, JobStatus.running, worker=worker)
    log.info("job %s running on %s", job_id, worker)

    settings = get_settings()
    try:
        config = config_from_dict(config_dict)
        _record_facts_before_training(job_id, config)
        callbacks = SqlCallbacks(
            job_id, epochs=config.hyperparameters.epochs, redis_client=_redis_client(), progress_interval_s=settings.progress_write_interval_s,
            cancel_poll_interval_s=settings.cancel_poll_interval_s,
        )
        result = _train(config, job_id, callbacks)
    except TrainingCancelled as exc:
        _finish_cancelled(job_id, exc)
        return {"job_id": job_id, "outcome": JobStatus.cancelled.value}
    except (TrainingDiverged, DatasetNotFound, InvalidConfig, MLError) as exc:
        _finish_failed(job_id, type(exc).__name__, str(exc))
        return {"job_id": job_id, "outcome": JobStatus.failed.value}
    except Exception as exc:  # a bug or a crash in the engine: record it rather than leave 'running'
        log.exception("job %s failed unexpectedly", job_id)
        _finish_failed(job_id, type(exc).__name__,
                       f"internal error while training ({type(exc).__name__}: {exc}); "
                       "the worker log has the details — please report it")
        return {"job_id": job_id, "outcome": JobStatus.failed.value}
    try:
        _finish_succeeded(job_id, result)
    except Exception as exc:  # the outcome's transaction rolled back: never leave the job 'running'
        log.exception("job %s trained but its outcome could not be recorded", job_id)
        _finish_failed(job_id, type(exc).__name__,
                       f"training finished but recording its result failed ({type(exc).__name__}: {exc}); "
                       "the checkpoints are kept — please report it")
        return {"job_id": job_id, "outcome": JobStatus.failed.value}
    return {"job_id": job_id, "outcome": JobStatus.succeeded.value}


def _train(config: TrainConfig, job_id: str, callbacks: SqlCallbacks) -> TrainResult:
    from ml.train import train  # the engine; imported by the pool child, never touching CUDA in the parent

    settings = get_settings()
    out_dir = Path(settings.artifact_dir) / "jobs" / job_id
    out_dir.mkdir(parents=True, exist_ok=True)
    return train(config, data_dir=settings.data_dir, out_dir=out_dir, callbacks=callbacks,
                 cache_dir=settings.cache_dir)


def _record_facts_before_training(job_id: str, config: TrainConfig) -> None:
    import torch

    from ml.train import resolve_device

    # runs in the pool child only: CUDA may be initialised here, never in the forking parent
    device = resolve_device(config.hyperparameters.device).type
    with session_scope() as session:
        record_run_facts(session, job_id=job_id, device=device, torch_version=torch.__version__,
                         dataset_checksum=known_checksum(config.dataset))


def _finish_succeeded(job_id: str, result: TrainResult) -> None:
    """Record a finished run in one transaction: status, test metrics, best checkpoint, model version."""
    with session_scope() as session:
        finish_job(
            session, job_id=job_id, status=JobStatus.succeeded,
            best_epoch=result.best_epoch,
            best_metric=_plain(result.best_metric),
            test_metrics=_plain(dataclasses.asdict(result.test)) if result.test is not None else None,
            result=_plain({
                "stopped_early": result.stopped_early,
                "seconds": result.seconds,
                "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
                "last_checkpoint": str(result.last_checkpoint) if result.last_checkpoint else None,
                "extra": result.extra,
            }),
            device=result.device, torch_version=result.torch_version,
            dataset_checksum=result.dataset_checksum,
        )
        if result.best_checkpoint is not None:
            mark_best_checkpoint(session, job_id=job_id, path=str(result.best_checkpoint))
        job = get_job(session, job_id=job_id)
        register_model_version(session, job=job, servable=dataset_is_servable(job.dataset))
    _announce_status(job_id, JobStatus.succeeded)


def _finish_failed(job_id: str, error_type: str, message: str) -> None:
    """Record a failed run with a sentence the user can act on."""
    with session_scope() as session:
        finish_job(session, job_id=job_id, status=JobStatus.failed, error=message, error_type=error_type)
    _announce_status(job_id, JobStatus.failed, error=message)


def _finish_cancelled(job_id: str, exc: TrainingCancelled) -> None:
    """Record a run stopped on request; its checkpoints stay."""
    kept = f"; the last checkpoint ({Path(exc.last_checkpoint).name}) is kept" if exc.last_checkpoint else ""
    message = f"cancelled on request at epoch {exc.epoch}, batch {exc.batch}{kept}"
    with session_scope() as session:
        finish_job(session, job_id=job_id, status=JobStatus.cancelled, error=message,
                   error_type="TrainingCancelled")
    _announce_status(job_id, JobStatus.cancelled, error=message)


def _announce_status(job_id: str, status: JobStatus, **extra: Any) -> None:
    client = _redis_client()
    if client is not None:
        publish_event(client, job_id, "status", {"status": status.value, **extra})


def _status_or_none(session, job_id: str) -> str | None:
    try:
        return get_job(session, job_id=job_id).status
    except LookupError:
        return None


def _plain(value: Any) -> Any:
    """JSON-safe copy (paths, numpy or tensor scalars become plain values)."""
    return json.loads(json.dumps(value, default=_to_plain))


def _to_plain(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
