"""Request and response schemas: JobCreate / JobPublic / JobsPublic and friends. ORM rows never leak."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.orm import JobStatus
from ml.data.registry import builtin_dataset_names
from ml.models.spec import model_specs

# in the schema, so clients and fuzzers know the names (validation stays in ml.config: its sentence names them too)
MODEL_NAMES = list(model_specs())
DATASET_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"  # built-in names and every upload's name match it


class JobCreate(BaseModel):
    """A training request: names only (a model and a dataset) plus hyperparameter overrides."""

    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={"examples": [{
            "model": "mlp", "dataset": "mnist", "name": "first try",
            "hyperparameters": {"epochs": 3, "lr": 0.001, "hidden_sizes": [256, 64]},
        }]},
    )

    model: str | None = Field(None, min_length=1, max_length=64, json_schema_extra={"enum": [*MODEL_NAMES, None]},
                              description="a model name from GET /v1/catalog (default: the preset's)")
    dataset: str | None = Field(None, min_length=1, max_length=64, pattern=DATASET_PATTERN,
                                description="a dataset name from GET /v1/catalog: built-in "
                                            f"({', '.join(builtin_dataset_names())}) or uploaded (default: the preset's)")
    preset: str | None = Field(None, min_length=1, max_length=64,
                               description="a preset name from GET /v1/catalog; hyperparameters override it")
    hyperparameters: dict[str, Any] = Field(default_factory=dict,
                                            description="overrides; the rest are the pair's course defaults")
    name: str | None = Field(default=None, max_length=200, description="a label for people")
    reuse: bool = Field(False, description="when a succeeded job had the same resolved config, dataset checksum, "
                                           "code version, seed and feedback snapshot, take its result instead of training")
    include_feedback: bool = Field(False, description="image classification datasets: also train on the dataset's "
                                   "feedback set (kept inputs people labelled; GET /v1/datasets/{name}/feedback), "
                                   "as snapshotted at submit")


class FeedbackSnapshotPublic(BaseModel):
    """The feedback rows a job trains on besides its dataset, fixed at submit."""

    prediction_ids: list[str]
    count: int
    sha256: str = Field(description="sha256 over each row's id, label and input sha256, in id order")


class ProgressPublic(BaseModel):
    """Where a run is: 1-based epoch and batch, the share done and the seconds left (estimated)."""

    epoch: int | None = None
    epochs: int | None = None
    batch: int | None = None
    batches: int | None = None
    fraction: float = 0.0
    eta_seconds: float | None = None
    samples_per_second: float | None = None
    note: str | None = Field(None, description="set while the run is in a step before its first epoch, e.g. "
                             "'extracting features 812/2002' (epoch 0): batch, batches, fraction and eta_seconds "
                             "are then that step's")
    updated_at: datetime | None = None


class EpochMetricsPublic(BaseModel):
    """One finished epoch's figures."""

    model_config = ConfigDict(from_attributes=True)

    epoch: int
    train_loss: float
    val_loss: float | None = None
    train_accuracy: float | None = None
    val_accuracy: float | None = None
    train_mse: float | None = None
    val_mse: float | None = None
    val_r2: float | None = None
    lr: float
    seconds: float
    samples_per_second: float
    created_at: datetime


class EpochMetricsList(BaseModel):
    """Every finished epoch of a job, in order."""

    job_id: str
    data: list[EpochMetricsPublic]
    count: int


class BestPublic(BaseModel):
    """The best epoch so far by validation metric, with that epoch's figures."""

    epoch: int
    metric: dict[str, Any] | None = None  # {"name": "val_accuracy", "value": 0.97} once the run is done
    metrics: EpochMetricsPublic | None = None


class JobLinks(BaseModel):
    """Where to look next."""

    self: str
    metrics: str
    events: str
    checkpoints: str
    cancel: str


class AttemptPublic(BaseModel):
    """One attempt at running a job."""

    model_config = ConfigDict(from_attributes=True)

    number: int
    worker: str
    started_at: datetime
    ended_at: datetime | None = None
    ended: str | None = Field(None, description="succeeded, failed, cancelled, stopped, process_died, worker_lost, "
                                                "worker_restarted or worker_stopped; null while it runs")
    detail: str | None = None
    # one convention with the stop's sentence in the previous attempt's `detail`: counts of work done
    resumed_from_epoch: int | None = Field(None, description="epochs fully done in the checkpoint it continued "
                                                            "from (it starts epoch resumed_from_epoch + 1); null: "
                                                            "from scratch")
    resumed_from_batch: int | None = Field(None, description="batches of epoch resumed_from_epoch + 1 already done, "
                                                            "when it continued from the mid-epoch checkpoint of a "
                                                            "graceful stop; the stopped attempt's detail says the "
                                                            "same counts ('stopped after 2 epochs and 460 "
                                                            "batches of epoch 3')")


class JobPublic(BaseModel):
    """A job as clients see it."""

    id: str
    name: str | None
    model: str
    dataset: str
    status: JobStatus
    hyperparameters: dict[str, Any] = Field(description="resolved: the request's overrides and every default")
    preset: str | None = Field(None, description="the preset the job started from, if any")
    notes: list[str] = Field(default_factory=list, description="what resolution chose for you, e.g. an lr that "
                             "fits a changed optimizer or loss")
    seed: int
    progress: ProgressPublic
    latest_metrics: EpochMetricsPublic | None = None
    best: BestPublic | None = None
    test_metrics: dict[str, Any] | None = None
    error: str | None = Field(None, description="why it failed or stopped, in a sentence a user can act on")
    error_type: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    worker: str | None = None
    device: str | None = None
    code_version: str | None = None
    torch_version: str | None = None
    dataset_checksum: str | None = None
    result: dict[str, Any] | None = None
    attempts: list[AttemptPublic] = Field(default_factory=list)
    sweep_id: str | None = Field(None, description="the sweep this job is a trial of")
    reused_from: str | None = Field(None, description="the succeeded job whose result this job reused")
    feedback: FeedbackSnapshotPublic | None = Field(None, description="include_feedback: the snapshot it trains on "
                                                    "(result.extra.feedback_rows: how many it trained on)")
    disk_bytes: int | None = Field(None, description="bytes its checkpoints and files take (GET /v1/jobs/{id} only)")
    links: JobLinks


class JobsPublic(BaseModel):
    """A page of jobs and how many match in all."""

    data: list[JobPublic]
    count: int
    offset: int
    limit: int


class CheckpointPublic(BaseModel):
    """A checkpoint file of a job."""

    epoch: int
    sha256: str
    size_bytes: int
    is_best: bool
    metrics: dict[str, Any]
    created_at: datetime
    download_url: str


class CheckpointsPublic(BaseModel):
    """A job's checkpoints, by epoch."""

    job_id: str
    data: list[CheckpointPublic]
    count: int
