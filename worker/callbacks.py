"""TrainCallbacks that record a run through the jobs service, cheaply enough for every batch."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from core import jobs
from core.artifacts import ArtifactStore, get_store
from core.bus import Publisher, cancel_flag_raised
from core.db import session_scope
from core.progress import PREPARING_EPOCH, progress_payload, resumed_fraction
from ml.results import CheckpointInfo, EpochMetrics, Progress

def checkpoint_key(job_id: str, path: Path | str) -> str:
    """The store key of a job's file that the engine wrote in its staging folder."""
    return f"jobs/{job_id}/{Path(path).name}"


# set by the pool child's SIGTERM handler: the worker is stopping, so the job stops at a batch boundary
shutdown_requested = threading.Event()


class SqlCallbacks:
    """Writes progress (throttled), one row per epoch and per checkpoint; watches cancel and stop requests."""

    def __init__(
        self, job_id: str, *, epochs: int, publisher: Publisher, redis_client: redis.Redis | None,
        progress_interval_s: float, cancel_poll_interval_s: float, lost: threading.Event | None = None,
        resumed_epoch: int | None = None,
        early_stop: Callable[[int, int | None], str | None] | None = None, store: ArtifactStore | None = None,
    ):
        self.job_id = job_id
        self.store = store or get_store()
        self.epochs = epochs
        self._batches: int | None = None
        self.publisher = publisher
        self.redis = redis_client
        self.progress_interval_s = progress_interval_s
        self.cancel_poll_interval_s = cancel_poll_interval_s
        self.lost = lost or threading.Event()
        self.started = time.monotonic()
        self.start_fraction = resumed_fraction(resumed_epoch, epochs)
        self._last_progress_write = float("-inf")
        self._last_cancel_check = float("-inf")
        self._cancel_seen_in_sql = False
        self._stop = False
        self._pending_epochs: list[dict] = []
        # a sweep's early stopping: (epoch, last epoch decided or None) -> why the trial stops, or None
        self.early_stop = early_stop
        self._decided_until: int | None = None
        self.stop_reason: str | None = None

    def on_progress(self, progress: Progress) -> None:
        now = time.monotonic()
        # SQL gets at most one progress write per interval: the training loop must not wait on the DB
        write = now - self._last_progress_write >= self.progress_interval_s
        if progress.note is not None:  # a step before epoch 1 (extracting features): its own counters
            # the step's end is always written: SQL must not say "0/60" of a finished step
            self._report(PREPARING_EPOCH, progress.batch, progress.batches, progress.samples_per_second,
                         write=write or progress.batch == progress.batches, note=progress.note)
            return
        self._batches = progress.batches
        self._report(progress.epoch, progress.batch, progress.batches, progress.samples_per_second, write=write)

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        # recorded with the epoch's checkpoint (next), so a row always has a checkpoint to resume after
        self._pending_epochs.append(metrics.as_dict())
        # short epochs may end before the engine's first in-epoch report: the epoch's end is progress too
        self._report(metrics.epoch, self._batches, self._batches, metrics.samples_per_second, write=True)

    def _report(self, epoch: int, batch: int | None, batches: int | None, samples_per_second: float,
                *, write: bool, note: str | None = None) -> None:
        # live listeners get every report; only the throttled ones are state worth a transaction
        self.publisher.publish(self.job_id, "progress", progress_payload(
            epoch=epoch, epochs=self.epochs, batch=batch, batches=batches,
            samples_per_second=samples_per_second, elapsed_s=time.monotonic() - self.started,
            start_fraction=self.start_fraction, note=note,
        ))
        if write:
            self._last_progress_write = time.monotonic()
            with session_scope() as session:
                self._cancel_seen_in_sql = jobs.report_progress(
                    session, job_id=self.job_id, epoch=epoch, epochs=self.epochs, batch=batch,
                    batches=batches, samples_per_second=samples_per_second,
                )

    def on_checkpoint(self, checkpoint: CheckpointInfo) -> None:
        # stored first, recorded second: a crash between the two leaves an object no row names, never a
        # row naming nothing (the epoch's metrics row goes with its checkpoint's, so it waits too)
        key = checkpoint_key(self.job_id, checkpoint.path)
        self.store.put(key, Path(checkpoint.path))
        with session_scope() as session:
            jobs.report_checkpoint(
                session, job_id=self.job_id, epoch=checkpoint.epoch, path=key,
                sha256=checkpoint.sha256, size_bytes=checkpoint.size_bytes, is_best=checkpoint.is_best,
                metrics=dict(checkpoint.metrics), epochs=self._pending_epochs, publisher=self.publisher,
            )
        self._pending_epochs = []
        if self.early_stop is not None and self.stop_reason is None:
            # decided once the epoch's row is in SQL, so the decision can be made again from SQL alone
            self.stop_reason = self.early_stop(checkpoint.epoch, self._decided_until)
            self._decided_until = checkpoint.epoch

    def flush_epochs(self) -> None:
        """Record finished epochs no checkpoint followed (a run that ends failed or cancelled)."""
        if self._pending_epochs:
            with session_scope() as session:
                jobs.report_epochs(session, job_id=self.job_id, epochs=self._pending_epochs, publisher=self.publisher)
            self._pending_epochs = []

    def should_stop(self) -> bool:
        if self._stop or self.stop_reason or shutdown_requested.is_set() or self.lost.is_set():
            return True
        now = time.monotonic()
        # called between batches: look at Redis at most every cancel_poll_interval_s
        if now - self._last_cancel_check < self.cancel_poll_interval_s:
            return False
        self._last_cancel_check = now
        flagged = self._cancel_seen_in_sql
        if not flagged and self.redis is not None:
            try:
                flagged = cancel_flag_raised(self.redis, self.job_id)
            except redis.RedisError:
                pass  # the SQL flag, read with each progress write, still gets through
        self._stop = flagged
        return flagged
