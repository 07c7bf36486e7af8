"""Jobs and their checkpoints as public schemas (the one place that knows both the rows and the responses)."""
from __future__ import annotations

from sqlalchemy.orm import Session

from pathlib import PurePath

from api.jobs.schemas import (
    AttemptPublic, BestPublic, CheckpointPublic, EpochMetricsPublic, JobLinks, JobPublic, ProgressPublic,
)
from core.jobs import disk_bytes, latest_epoch_metric, list_attempts, list_epoch_metrics
from core.artifacts import ArtifactStore
from core.orm import Checkpoint, EpochMetric, Job, JobStatus
from core.progress import progress_payload, resumed_fraction


def job_links(job_id: str) -> JobLinks:
    base = f"/v1/jobs/{job_id}"
    return JobLinks(self=base, metrics=f"{base}/metrics", events=f"{base}/events",
                    checkpoints=f"{base}/checkpoints", cancel=f"{base}/cancel")


def job_progress(job: Job) -> ProgressPublic:
    """Progress from the job's throttled counters; a succeeded job is simply done."""
    elapsed, start_fraction = None, 0.0
    attempt = job.attempts[-1] if job.attempts else None  # the current one, when running
    if attempt is not None and job.progress_at and job.status == JobStatus.running.value:
        elapsed = (job.progress_at - attempt.started_at).total_seconds()
        start_fraction = resumed_fraction(attempt.resumed_from_epoch, job.progress_epochs)
    payload = progress_payload(
        epoch=job.progress_epoch, epochs=job.progress_epochs, batch=job.progress_batch,
        batches=job.progress_batches, samples_per_second=job.samples_per_second, elapsed_s=elapsed,
        start_fraction=start_fraction,
    )
    if job.status == JobStatus.succeeded.value:
        payload.update(fraction=1.0, eta_seconds=0.0)
    if payload["epochs"] is None:
        payload["epochs"] = (job.config.get("hyperparameters") or {}).get("epochs")
    return ProgressPublic(**payload, updated_at=job.progress_at)


def job_public(session: Session, job: Job, *, store: ArtifactStore | None = None) -> JobPublic:
    """The full public view of a job, with its latest and best epochs and its attempts.

    With `store`, also the bytes its files take (a listing of its objects: single-job views only).
    """
    latest = latest_epoch_metric(session, job_id=job.id)
    best = None
    if job.best_epoch is not None:
        best_row = latest if latest is not None and latest.epoch == job.best_epoch else _epoch_row(
            session, job.id, job.best_epoch)
        best = BestPublic(epoch=job.best_epoch, metric=job.best_metric,
                          metrics=EpochMetricsPublic.model_validate(best_row) if best_row else None)
    return JobPublic(
        id=job.id, name=job.name, model=job.model, dataset=job.dataset, status=JobStatus(job.status),
        hyperparameters=dict(job.config.get("hyperparameters") or {}), seed=job.seed,
        preset=job.config.get("preset"), notes=list(job.config.get("notes") or []),
        progress=job_progress(job),
        latest_metrics=EpochMetricsPublic.model_validate(latest) if latest else None,
        best=best, test_metrics=job.test_metrics, error=job.error, error_type=job.error_type,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        cancel_requested_at=job.cancel_requested_at, worker=job.worker, device=job.device,
        code_version=job.code_version, torch_version=job.torch_version,
        dataset_checksum=job.dataset_checksum, result=public_result(job.result),
        attempts=[AttemptPublic.model_validate(a) for a in list_attempts(session, job_id=job.id)],
        sweep_id=job.sweep_id, reused_from=job.reused_from,
        disk_bytes=disk_bytes(store, job.id) if store is not None else None,
        links=job_links(job.id),
    )


def public_result(result: dict | None) -> dict | None:
    """The worker's result without server folders or store keys: a checkpoint becomes its file name
    (GET /v1/jobs/{id}/checkpoints has the download URLs)."""
    if result is None:
        return None
    return {k: PurePath(v).name if isinstance(v, str) and _is_file_ref(v) else v for k, v in result.items()}


def _is_file_ref(value: str) -> bool:
    # keys since the artifact store (jobs/<id>/...), absolute paths in results recorded before it
    return value.startswith("jobs/") or PurePath(value).is_absolute()


def _epoch_row(session: Session, job_id: str, epoch: int) -> EpochMetric | None:
    return next((r for r in list_epoch_metrics(session, job_id=job_id) if r.epoch == epoch), None)


def checkpoint_public(row: Checkpoint) -> CheckpointPublic:
    return CheckpointPublic(
        epoch=row.epoch, sha256=row.sha256, size_bytes=row.size_bytes, is_best=row.is_best,
        metrics=row.metrics or {}, created_at=row.created_at,
        download_url=f"/v1/jobs/{row.job_id}/checkpoints/{row.epoch}/file",
    )
