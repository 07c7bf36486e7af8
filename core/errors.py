"""Errors the service functions raise; the API maps each to one HTTP status."""
from __future__ import annotations

from datetime import datetime


class ServiceError(Exception):
    """Base class; `str(error)` is a sentence for the user."""


class JobNotFound(ServiceError, LookupError):
    """No job has this id."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        super().__init__(f"job {job_id!r} not found (a job id, or at least its first 8 characters)")


class CheckpointNotFound(ServiceError, LookupError):
    """The job has no checkpoint for this epoch, or its file is gone."""

    def __init__(self, job_id: str, epoch: int, why: str = "has no checkpoint for that epoch"):
        self.job_id, self.epoch = job_id, epoch
        super().__init__(f"job {job_id!r} {why} (epoch {epoch})")


class JobNotCancellable(ServiceError):
    """The job already finished; there is nothing to cancel."""

    def __init__(self, job_id: str, status: str):
        self.job_id, self.status = job_id, status
        super().__init__(f"job {job_id!r} already {status}; only queued or running jobs can be cancelled")


class IdempotencyConflict(ServiceError):
    """An Idempotency-Key was reused with a different request."""

    def __init__(self, key: str, job_id: str | None):
        self.key, self.job_id = key, job_id
        used = f"for job {job_id!r} with a different request" if job_id else "by someone else"  # None: not theirs
        super().__init__(f"Idempotency-Key {key!r} was already used {used}; use a new key for a new job")


class JobNotDeletable(ServiceError):
    """The job cannot be deleted now; says why and what to do."""

    def __init__(self, job_id: str, why: str):
        self.job_id = job_id
        super().__init__(f"job {job_id!r} cannot be deleted: {why}")


class BrokerUnavailable(ServiceError):
    """The broker did not take a job id; the job was failed so no one waits on it."""

    def __init__(self, job_id: str, cause: Exception):
        self.job_id = job_id
        super().__init__(f"job {job_id!r} could not be queued: the broker is unreachable "
                         f"({type(cause).__name__}); try again shortly")


class TooManyQueued(ServiceError):
    """The owner already has as many queued jobs as MAX_QUEUED_JOBS_PER_OWNER allows."""

    def __init__(self, waiting: int):
        self.waiting = waiting
        super().__init__(f"you already have {waiting} queued jobs (MAX_QUEUED_JOBS_PER_OWNER); wait for some "
                         "to start or cancel some, then submit again")


class NothingServed(ServiceError, LookupError):
    """No version served the dataset at the time asked about."""

    def __init__(self, dataset: str, at: datetime):
        self.dataset, self.at = dataset, at
        super().__init__(f"no model served {dataset!r} at {at.isoformat()}")


class ModelNotFound(ServiceError, LookupError):
    """No model version has this id."""

    def __init__(self, model_id: int):
        self.model_id = model_id
        super().__init__(f"model {model_id} not found")


class ServingNotYours(ServiceError):
    """Only an admin changes what serves a built-in dataset; a private upload's serving is its owner's."""

    def __init__(self, dataset: str):
        self.dataset = dataset
        super().__init__(f"only an admin key may change which model serves {dataset!r} (a built-in dataset, "
                         "shared by everyone); promote and roll back models of your own uploads")


class DatasetNotFound(ServiceError, LookupError):
    """No uploaded dataset has this name."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"dataset {name!r} not found; GET /v1/datasets lists the uploaded ones")


class DatasetConflict(ServiceError):
    """The name is taken, or the dataset is in use."""


class SweepNotFound(ServiceError, LookupError):
    """No sweep has this id."""

    def __init__(self, sweep_id: str):
        self.sweep_id = sweep_id
        super().__init__(f"sweep {sweep_id!r} not found (a sweep id, or at least its first 8 characters)")


class AmbiguousId(ServiceError, LookupError):
    """An id prefix that starts more than one of the caller's jobs (or sweeps)."""

    def __init__(self, kind: str, prefix: str, ids: list[str], *, more: bool):
        listed = ", ".join(ids) + (", …" if more else "")
        super().__init__(f"{kind} id prefix {prefix!r} matches {'more than ' if more else ''}{len(ids)} {kind}s "
                         f"({listed}); give more characters")


class SweepNotCancellable(ServiceError):
    """The sweep already finished."""

    def __init__(self, sweep_id: str, status: str):
        super().__init__(f"sweep {sweep_id!r} already {status}; only a queued or running sweep can be cancelled")


class KeyNotFound(ServiceError, LookupError):
    """No key has this id."""

    def __init__(self, key_id: int):
        super().__init__(f"API key {key_id} not found; GET /v1/keys lists them")


class PredictionNotFound(ServiceError, LookupError):
    """No prediction has this id (or it is someone else's: their ids do not leak)."""

    def __init__(self, prediction_id: str):
        self.prediction_id = prediction_id
        super().__init__(f"prediction {prediction_id!r} not found; GET /v1/predictions lists yours")


class InputNotKept(ServiceError, LookupError):
    """The prediction's input bytes were not kept (no keep=true, over the size cap, or removed)."""

    def __init__(self, prediction_id: str):
        super().__init__(f"prediction {prediction_id!r} has no kept input; send keep=true with the predict "
                         "request to keep an upload (PREDICTION_INPUT_MAX_BYTES caps its size)")


class InvalidCursor(ServiceError, ValueError):
    """A page cursor that no page gave."""

    def __init__(self) -> None:
        super().__init__("cursor: not a cursor this list gave; pass a page's next_cursor as it is")


class FeedbackLabelInvalid(ServiceError, ValueError):
    """The feedback label is not one of the model version's classes."""

    def __init__(self, label: str, classes: list[str]):
        shown = ", ".join(repr(c) for c in classes[:50]) + (" ..." if len(classes) > 50 else "")
        super().__init__(f"label {label[:100]!r} is not one of the model's classes: {shown}")


class DatabaseUnavailable(ServiceError):
    """The database did not answer in time: every connection busy, a lock held too long, or the server gone."""

    headers = {"Retry-After": "1"}

    def __init__(self, why: str):
        super().__init__(f"the database is busy or unreachable ({why}); nothing was changed, retry shortly "
                         "(a POST /v1/jobs retried with the same Idempotency-Key never makes two jobs)")


class DatabaseFull(ServiceError):
    """The database's disk is full: reads work, writes are refused until an operator frees space."""

    headers = {"Retry-After": "60"}

    def __init__(self) -> None:
        super().__init__("the database's disk is full, so nothing can be saved; reads still work. "
                         "Retry later: an operator must free space")


class ArtifactStorageError(ServiceError):
    """The artifact store could not do what was asked."""


class ArtifactMissing(ArtifactStorageError, LookupError):
    """No object has this key (deleted, or never uploaded)."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"artifact {key!r} is not in the artifact store")


class ArtifactCorrupt(ArtifactStorageError):
    """A downloaded object's sha256 is not the one recorded when it was stored."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"artifact {key!r} changed since it was stored (sha256 mismatch)")


class ArtifactStorageFull(ArtifactStorageError):
    """The artifact storage (or the local cache in front of it) has no space left."""

    def __init__(self) -> None:
        super().__init__("artifact storage is full")


class ArtifactStorageReadOnly(ArtifactStorageError):
    """The artifact storage refuses writes."""

    def __init__(self) -> None:
        super().__init__("artifact storage is read-only")


class ArtifactsNotRemoved(ArtifactStorageError):
    """Some objects of a job or dataset could not be removed; its rows stay, so a retry finds them."""

    def __init__(self, what: str, keys: list[str], why: str | None = None):
        self.keys = keys
        names = ", ".join(k.rsplit("/", 1)[-1] for k in keys[:5]) + (" ..." if len(keys) > 5 else "")
        because = f" ({why})" if why else ""
        super().__init__(f"{len(keys)} file(s) of {what} could not be removed{because}: {names}; "
                         "nothing else was deleted, try again later")


class FeedbackSnapshotChanged(ServiceError):
    """A job's feedback snapshot no longer matches the log: a row was deleted, relabelled or lost its input."""

    def __init__(self, job_id: str, why: str):
        self.job_id = job_id
        super().__init__(f"job {job_id!r} cannot train on the feedback it was submitted with: {why}; "
                         "submit the job again to train on the current feedback set")
