"""Plots as PNG: a job's curves and confusion matrix drawn from SQL rows, the mistakes grid the engine drew;
a sweep's leaderboard; a model version's live quality.

Routes are `def`, so drawing runs in the threadpool, never on the event loop; each answer carries an
ETag of what it was drawn from, so a browser polling a running job redraws nothing until an epoch ends.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.orm import Session

from api.auth import PrincipalDep
from api.deps import SessionDep, SettingsDep, StoreDep
from api.jobs.deps import JOB_ID_RESPONSES, JobDep
from api.jobs.schemas import EpochMetricsPublic
from api.plots.errors import NoSuchPlot
from api.registry.deps import ModelDep
from api.registry.schemas import WindowQuery, WindowsQuery
from api.sweeps.deps import SWEEP_ID_RESPONSES, SweepDep
from core import jobs as job_service
from core import quality as live
from core import sweeps as sweep_service
from core.artifacts import ArtifactMissing, ArtifactStore
from core.orm import Job, JobStatus, SweepStatus
from ml import plots
from ml.mistakes import FILE_NAME as MISTAKES_FILE

router = APIRouter(prefix="/v1", tags=["plots"])

PLOTS = ("loss", "metric", "confusion_matrix", "mistakes")
PNG_RESPONSES = {200: {"content": {"image/png": {}}, "description": "a PNG image"},
                 304: {"description": "unchanged since the ETag sent in If-None-Match"},
                 404: {"description": "unknown job or plot, or the plot does not exist yet (the detail says why)"}}
CompareMetric = Literal["train_loss", "val_loss", "train_accuracy", "val_accuracy", "train_mse", "val_mse", "val_r2"]
MAX_COMPARED = 12


def _rows(session: Session, job_id: str) -> list[EpochMetricsPublic]:
    return [EpochMetricsPublic.model_validate(r) for r in job_service.list_epoch_metrics(session, job_id=job_id)]


def _cache_control(statuses: list[str]) -> str:
    # a finished job's plots never change again; a running one's change at every epoch (the ETag says when)
    done = all(JobStatus(s).is_terminal for s in statuses)
    return "private, max-age=86400" if done else "no-cache"


def _png(request: Request, version: str, cache_control: str, draw: Callable[[], bytes]) -> Response:
    """200 with the drawing, or 304 without drawing when the client already has this version."""
    etag = '"' + hashlib.sha256(version.encode()).hexdigest()[:20] + '"'
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(draw(), media_type="image/png", headers=headers)


def _not_yet(job: Job, what: str, when: str) -> NoSuchPlot:
    return NoSuchPlot(f"job {job.id!r} has no {what} yet ({job.status}): {when}")


@router.get("/jobs/{job_id}/plots/{plot}.png", response_class=Response,
            responses={**PNG_RESPONSES, 409: JOB_ID_RESPONSES[409]})
def job_plot(job: JobDep, session: SessionDep, store: StoreDep, request: Request,
             plot: Annotated[str, Path(max_length=40, description=", ".join(PLOTS))]) -> Response:
    """`loss`, `metric` (accuracy or MSE), `confusion_matrix` (test set) or `mistakes` (most confident, test set)."""
    if plot not in PLOTS:
        raise NoSuchPlot(f"no plot named {plot!r}; the plots are {', '.join(PLOTS)}")
    cache_control = _cache_control([job.status])
    if plot == "mistakes":
        return _mistakes(job, store, request, cache_control)
    if plot == "confusion_matrix":
        return _confusion_matrix(job, request, cache_control)
    rows = _rows(session, job.id)
    session.close()  # give the connection back before the CPU work

    def draw() -> bytes:
        if plot == "loss":
            return plots.loss_png(rows, f"Loss — {job.model} on {job.dataset}")
        return plots.metric_png(rows)

    version = f"{plot}:{job.id}:{job.status}:{[(r.epoch, r.created_at.isoformat()) for r in rows]}"
    return _png(request, version, cache_control, draw)


def _confusion_matrix(job: Job, request: Request, cache_control: str) -> Response:
    test = job.test_metrics or {}
    cm = test.get("confusion_matrix")
    if not cm:
        if job.status == JobStatus.succeeded:
            raise NoSuchPlot(f"job {job.id!r} has no confusion matrix: it is not a classifier")
        raise _not_yet(job, "confusion matrix", "it is computed on the test set when training succeeds")
    classes = list(test.get("per_class_accuracy") or {})
    if len(classes) != len(cm):
        classes = [str(i) for i in range(len(cm))]
    return _png(request, f"cm:{job.id}:{cm}", cache_control,
                lambda: plots.confusion_matrix_png(cm, classes, f"Confusion matrix (test) — {job.model}"))


def _mistakes(job: Job, store: ArtifactStore, request: Request, cache_control: str) -> Response:
    # the key is built from the id of a job row that exists, never from the request
    try:
        with store.open(f"jobs/{job.id}/{MISTAKES_FILE}") as stream:
            data = stream.read()  # one small PNG
    except ArtifactMissing:
        if job.status == JobStatus.succeeded:
            raise NoSuchPlot(f"job {job.id!r} has no mistakes image: it made no mistakes on the "
                             "test set, or it is not an image classifier")
        raise _not_yet(job, "mistakes image", "the test set's most confident mistakes are drawn when training succeeds")
    return _png(request, f"mistakes:{job.id}:{hashlib.sha256(data).hexdigest()}", cache_control, lambda: data)


@router.get("/plots/compare.png", response_class=Response, responses=PNG_RESPONSES)
def compare_plot(session: SessionDep, request: Request, principal: PrincipalDep,
                 jobs: Annotated[list[str], Query(min_length=1, max_length=MAX_COMPARED,
                                                  description="job ids (repeat the parameter)")],
                 metric: CompareMetric = "val_accuracy") -> Response:
    """One metric of several jobs on shared axes, to compare runs."""
    found = [job_service.get_job(session, job_id=job_id, owner=principal.owner_filter)  # JobNotFound → 404
             for job_id in dict.fromkeys(jobs)]
    runs = [(f"{j.name or j.model} ({j.id[:8]})", _rows(session, j.id)) for j in found]
    statuses = [j.status for j in found]
    session.close()  # give the connection back before the CPU work
    version = f"compare:{metric}:{statuses}:{[(label, [r.epoch for r in rows]) for label, rows in runs]}"
    return _png(request, version, _cache_control(statuses), lambda: plots.compare_png(runs, metric))


@router.get("/sweeps/{sweep_id}/plots/leaderboard.png", response_class=Response,
            responses={**PNG_RESPONSES, 409: SWEEP_ID_RESPONSES[409]})
def sweep_leaderboard_plot(sweep: SweepDep, session: SessionDep, request: Request) -> Response:
    """The sweep's trials that have a metric yet, best first, as bars coloured by status."""
    trials = sweep_service.leaderboard(session, sweep)
    board = [t for t in trials if t.metric is not None]
    statuses = [t.status for t in trials if t.job_id is not None]
    session.close()  # give the connection back before the CPU work
    if not board:
        raise NoSuchPlot(f"sweep {sweep.id!r} has no leaderboard yet ({sweep.status}): "
                         "a trial appears once it has finished an epoch")
    bars = [(f"#{t.trial} " + ", ".join(f"{k}={v}" for k, v in t.hyperparameters.items()), t.metric, t.status)
            for t in board]
    version = f"leaderboard:{sweep.id}:{sweep.status}:{[(t.trial, t.metric, t.status) for t in board]}"
    done = SweepStatus(sweep.status).is_terminal and all(JobStatus(s).is_terminal for s in statuses)
    return _png(request, version, "private, max-age=86400" if done else "no-cache",
                lambda: plots.leaderboard_png(bars, sweep.metric, f"Sweep {sweep.name or sweep.id[:8]} — {sweep.metric}"))


@router.get("/models/{model_id:int}/quality.png", response_class=Response, responses=PNG_RESPONSES)
def model_quality_plot(version: ModelDep, session: SessionDep, settings: SettingsDep, request: Request,
                       window: WindowQuery = "1h", windows: WindowsQuery = 24) -> Response:
    """A model version's live quality over windows (GET /v1/models/{id}/quality drawn): requests, label-mix
    divergence against its threshold, abstain and low-confidence rates, confidence, feedback accuracy; drift shaded."""
    thresholds = live.DriftThresholds.from_settings(settings)
    quality = live.model_quality(session, version=version, window_s=live.window_seconds(window), windows=windows,
                                 thresholds=thresholds)
    title = f"{version.model} #{version.id} ({version.dataset}) — {window} windows" + (" — DRIFT" if quality.drift else "")
    session.close()  # give the connection back before the CPU work
    figures = [(w.start.isoformat(), w.requests, w.label_js, w.abstain_rate, w.low_confidence_rate,
                w.confidence.mean, w.feedback_accuracy, w.drift) for w in quality.windows]
    return _png(request, f"quality:{version.id}:{title}:{figures}", "no-cache",
                lambda: plots.quality_png(quality.windows, thresholds.label_js, title))
