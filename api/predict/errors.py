"""What can go wrong with a prediction request; api/errors.py gives each its HTTP status."""
from __future__ import annotations

import math

from ml.catalog import example_model, servable_datasets


class UnreadableForm(ValueError):
    """The multipart body cannot be parsed."""

    def __init__(self, why: str):
        super().__init__(f"the multipart body cannot be parsed: {why}")


class OptionGivenTwice(ValueError):
    """An option came as a query parameter and as a form field, with different values."""

    def __init__(self, name: str, query, form):
        super().__init__(f"{name} is given twice with different values ({query} in the query, {form} in the form); "
                         "send it once")


class TooManyFiles(ValueError):
    """More files than MAX_UPLOAD_FILES in one request."""

    def __init__(self, count: int, limit: int):
        super().__init__(f"too many files: {count}; send at most {limit} per request")


class FileTooLarge(ValueError):
    """One file of a request passed MAX_UPLOAD_BYTES (found while it streamed: the rest is never read)."""

    def __init__(self, number: int, name: str | None, limit: int):
        super().__init__(f"file {number} ({name!r}) is larger than {limit:,} bytes (MAX_UPLOAD_BYTES); "
                         "send a smaller image")


class UnreadableFile(ValueError):
    """File `number` of a request cannot be read as an image."""

    def __init__(self, number: int, name: str | None, reason: str):
        self.number, self.name, self.reason = number, name, reason
        super().__init__(f"file {number} ({name!r}): {reason}")


class RateLimited(Exception):
    """This key used up its PREDICT_RATE_PER_S; `headers` say when to retry."""

    def __init__(self, wait_s: float, retry_after_s: int):
        # Retry-After is whole seconds (RFC 9110), so at least 1; the sentence gives the wait to the ms,
        # rounded up, so it never says "retry in 0.0 s"
        self.headers = {"Retry-After": str(max(1, retry_after_s))}
        wait_ms = max(1, math.ceil(wait_s * 1000))
        super().__init__(f"too many predict requests for this key (PREDICT_RATE_PER_S); retry in {wait_ms / 1000:.3f} s")


class NotServed(LookupError):
    """Predictions of this kind are not served for the dataset (unknown, or images sent to a table)."""

    @classmethod
    def unknown(cls, dataset: str) -> "NotServed":
        return cls(f"unknown dataset {dataset!r}; models are served for {', '.join(servable_datasets())}")

    @classmethod
    def image_dataset(cls, dataset: str) -> "NotServed":
        return cls(f"{dataset!r} is an image dataset; send images to POST /v1/predict/{dataset}")


class NoModelYet(LookupError):
    """Nothing was trained for the dataset yet; says how to train one."""

    @classmethod
    def images(cls, dataset: str) -> "NoModelYet":
        return cls(f"no model has been trained for {dataset!r} yet; train one with POST /v1/jobs {_example(dataset)} "
                   "(GET /v1/catalog lists the models) and it serves here as soon as the job succeeds")

    @classmethod
    def rows(cls, dataset: str) -> "NoModelYet":
        return cls(f"no model has been trained on {dataset!r} yet; train one with POST /v1/jobs {_example(dataset)}")


class UnknownModelId(LookupError):
    """The model id asked for is not registered."""

    def __init__(self, model_id: int, dataset: str):
        super().__init__(f"model {model_id} not found; GET /v1/models?dataset={dataset} lists the ones you can use")


class WrongDataset(ValueError):
    """The model asked for was trained on another dataset."""

    def __init__(self, model_id: int, trained_on: str, asked: str):
        super().__init__(f"model {model_id} was trained on {trained_on!r}, not {asked!r}; "
                         f"use POST /v1/predict/{trained_on}")


class ModelUnavailable(Exception):
    """A registered model's checkpoint cannot be loaded (file gone or changed)."""


class TableModelMissing(Exception):
    """The checkpoint of the table model that should answer is gone from the server."""

    def __init__(self, job_id: str):
        super().__init__(f"the checkpoint of job {job_id} is missing on the server")


def _example(dataset: str) -> str:
    return f'{{"model": "{example_model(dataset)}", "dataset": "{dataset}"}}'
