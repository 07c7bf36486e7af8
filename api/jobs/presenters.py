"""Jobs and their checkpoints as public schemas (the one place that knows both the rows and the responses)."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import PurePath

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api.jobs.schemas import (
    AttemptPublic, BestPublic, CheckpointPublic, EpochMetricsPublic, JobLinks, JobPublic, ProgressPublic,
)
from core.artifacts import ArtifactStore
from core.jobs import ShownEpochs, disk_bytes, shown_epochs
from core.orm import Checkpoint, Job, JobAttempt, JobStatus
from core.progress import PREPARING_EPOCH, preparing_note, progress_payload, resumed_fraction

log = logging.getLogger("trainserve.api")


def job_links(job_id: str) -> JobLinks:
    base = f"/v1/jobs/{job_id}"
    return JobLinks(self=base, metrics=f"{base}/metrics", events=f"{base}/events",
                    checkpoints=f"{base}/checkpoints", cancel=f"{base}/cancel")


def job_progress(job: Job, attempt: JobAttempt | None) -> ProgressPublic:
    """Progress from the job's throttled counters and its current `attempt`; a succeeded job is simply done."""
    elapsed, start_fraction = None, 0.0
    if attempt is not None and job.progress_at and job.status == JobStatus.running:
        elapsed = (job.progress_at - attempt.started_at).total_seconds()
        start_fraction = resumed_fraction(attempt.resumed_from_epoch, job.progress_epochs)
    preparing = job.progress_epoch == PREPARING_EPOCH and job.status == JobStatus.running
    payload = progress_payload(
        epoch=job.progress_epoch, epochs=job.progress_epochs, batch=job.progress_batch,
        batches=job.progress_batches, samples_per_second=job.samples_per_second, elapsed_s=elapsed,
        start_fraction=start_fraction,
        note=preparing_note(job.progress_batch, job.progress_batches) if preparing else None,
    )
    if job.status == JobStatus.succeeded:
        payload.update(fraction=1.0, eta_seconds=0.0)
    if payload["epochs"] is None:
        payload["epochs"] = (job.config.get("hyperparameters") or {}).get("epochs")
    return ProgressPublic(**payload, updated_at=job.progress_at)


def job_public(session: Session, job: Job, *, store: ArtifactStore | None = None) -> JobPublic:
    """The full public view of a job, with its latest and best epochs and its attempts.

    With `store`, also the bytes its files take (a listing of its objects: single-job views only).
    """
    shown = shown_epochs(session, [job]).get(job.id, ShownEpochs())
    disk = disk_bytes(store, job.id) if store is not None else None
    return _present(job, shown, list(job.attempts), disk)


def jobs_public(session: Session, jobs: Sequence[Job]) -> list[JobPublic]:
    """A page of jobs, presented with one query for all their epoch rows (their attempts come loaded
    by `core.jobs.list_jobs`): the page costs the same few queries whatever its size."""
    shown = shown_epochs(session, jobs)
    return [_present(job, shown.get(job.id, ShownEpochs()), list(job.attempts), None) for job in jobs]


def accepted_public(session: Session, job: Job, *, created: bool) -> JobPublic:
    """The answer to a submission. A job this request committed is presented from what was committed when
    a read after the commit fails (a fresh job has no attempt or epoch yet): the commit decided the answer
    (202), and a client told 503 would submit it again."""
    if created and job.status == JobStatus.queued:
        return _present(job, ShownEpochs(), [], None)  # nothing to read yet
    try:
        return job_public(session, job)
    except SQLAlchemyError:
        if not created:
            raise
        log.warning("job %s was committed, but reading it back failed; answered from the committed row", job.id)
        return _present(job, ShownEpochs(), [], None)


def _present(job: Job, shown: ShownEpochs, attempts: list[JobAttempt], disk: int | None) -> JobPublic:
    best = None
    if job.best_epoch is not None:
        best = BestPublic(epoch=job.best_epoch, metric=job.best_metric,
                          metrics=EpochMetricsPublic.model_validate(shown.best) if shown.best else None)
    return JobPublic(
        id=job.id, name=job.name, model=job.model, dataset=job.dataset, status=JobStatus(job.status),
        hyperparameters=dict(job.config.get("hyperparameters") or {}), seed=job.seed,
        preset=job.config.get("preset"), notes=list(job.config.get("notes") or []),
        progress=job_progress(job, attempts[-1] if attempts else None),
        latest_metrics=EpochMetricsPublic.model_validate(shown.latest) if shown.latest else None,
        best=best, test_metrics=job.test_metrics, error=job.error, error_type=job.error_type,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        cancel_requested_at=job.cancel_requested_at, worker=job.worker, device=job.device,
        code_version=job.code_version, torch_version=job.torch_version,
        dataset_checksum=job.dataset_checksum, result=public_result(job.result),
        attempts=[AttemptPublic.model_validate(a) for a in attempts],
        sweep_id=job.sweep_id, reused_from=job.reused_from, feedback=job.feedback, disk_bytes=disk,
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


def checkpoint_public(row: Checkpoint) -> CheckpointPublic:
    return CheckpointPublic(
        epoch=row.epoch, sha256=row.sha256, size_bytes=row.size_bytes, is_best=row.is_best,
        metrics=row.metrics or {}, created_at=row.created_at,
        download_url=f"/v1/jobs/{row.job_id}/checkpoints/{row.epoch}/file",
    )
