"""A typed Python client for the trainserve API (httpx), for scripts and notebooks.

    from client import Client
    with Client("http://127.0.0.1:8000") as ts:
        job = ts.submit("mlp", "mnist", {"epochs": 3})
        job = ts.wait(job["id"])
        print(job["test_metrics"]["accuracy"])

Responses are plain dicts typed as TypedDicts: fields the server adds later pass through untouched.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypedDict

import httpx

from client.config import ClientConfig, load_config

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "stopped"})  # stopped: a sweep's early stopping


class ApiError(Exception):
    """The API said no (4xx/5xx); `str(error)` is its sentence, `status` the HTTP status (0: unreachable)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Progress(TypedDict, total=False):
    epoch: int | None
    epochs: int | None
    batch: int | None
    batches: int | None
    fraction: float
    eta_seconds: float | None
    samples_per_second: float | None
    note: str | None  # a step before epoch 1, e.g. "extracting features 812/2002"


class EpochMetrics(TypedDict, total=False):
    epoch: int
    train_loss: float
    val_loss: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    train_mse: float | None
    val_mse: float | None
    lr: float
    seconds: float


class Job(TypedDict, total=False):
    id: str
    name: str | None
    model: str
    dataset: str
    status: str
    hyperparameters: dict[str, Any]
    progress: Progress
    latest_metrics: EpochMetrics | None
    best: dict[str, Any] | None
    test_metrics: dict[str, Any] | None
    error: str | None
    created_at: str


class ModelVersion(TypedDict, total=False):
    id: int
    dataset: str
    model: str
    job_id: str
    epoch: int
    val_accuracy: float
    test_accuracy: float | None
    serving: bool
    created_at: str


class Prediction(TypedDict, total=False):
    file: str | None
    label: str
    confidence: float
    top_k: list[dict[str, Any]]
    input_png: str  # base64 PNG of what the model saw, when asked with explain=True and the server offers it


def error_sentence(response: httpx.Response) -> str:
    """The API's own words: `detail` as a sentence, each 422 item as `field: message`."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        return "; ".join(f"{d.get('field') or '.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    if detail:
        return str(detail)
    return f"HTTP {response.status_code} {response.reason_phrase} from {response.request.url.path}"


class Client:
    """One connection pool to one server; every request carries the API key when there is one."""

    def __init__(self, url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 config: ClientConfig | None = None, transport: httpx.BaseTransport | None = None):
        config = config or load_config(url=url, api_key=api_key)
        self.url = config.url
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(base_url=config.url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach the trainserve API at {self.url} ({type(exc).__name__}); "
                              "is it running? (set --url or TRAINSERVE_URL)") from None
        if response.is_error:
            raise ApiError(response.status_code, error_sentence(response))
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # --- jobs

    def catalog(self) -> dict[str, Any]:
        """Models, datasets, hyperparameter schemas and defaults."""
        return self._json("GET", "/v1/catalog")

    def submit(self, model: str, dataset: str, hyperparameters: dict[str, Any] | None = None, *,
               name: str | None = None, idempotency_key: str | None = None, include_feedback: bool = False) -> Job:
        """Queue a training job (`include_feedback`: also on the dataset's feedback set); returns it resolved."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = {"model": model, "dataset": dataset, "hyperparameters": hyperparameters or {}, "name": name}
        if include_feedback:  # sent only when asked: a server before the field refuses unknown fields
            body["include_feedback"] = True
        return self._json("POST", "/v1/jobs", json=body, headers=headers)

    def job(self, job_id: str) -> Job:
        return self._json("GET", f"/v1/jobs/{job_id}")

    def jobs(self, *, status: str | None = None, dataset: str | None = None, model: str | None = None,
             limit: int = 50) -> list[Job]:
        """Jobs, newest first."""
        params = {k: v for k, v in {"status": status, "dataset": dataset, "model": model, "limit": limit}.items()
                  if v is not None}
        return self._json("GET", "/v1/jobs", params=params)["data"]

    def metrics(self, job_id: str) -> list[EpochMetrics]:
        return self._json("GET", f"/v1/jobs/{job_id}/metrics")["data"]

    def cancel(self, job_id: str) -> Job:
        return self._json("POST", f"/v1/jobs/{job_id}/cancel")

    def events(self, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The job's live events (status, progress, epoch, checkpoint) until its final status."""
        try:
            with self._http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=httpx.Timeout(30.0, read=None)) as r:
                if r.is_error:
                    r.read()
                    raise ApiError(r.status_code, error_sentence(r))
                kind = None
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and kind:
                        yield kind, json.loads(line.split(":", 1)[1])
                        kind = None
        except httpx.HTTPError as exc:
            raise ApiError(0, f"lost the event stream of job {job_id} ({type(exc).__name__})") from None

    def wait(self, job_id: str) -> Job:
        """Block until the job ends; returns it."""
        for kind, data in self.events(job_id):
            if kind == "status" and data.get("status") in TERMINAL:
                break
        return self.job(job_id)

    def plot(self, job_id: str, name: str) -> bytes:
        """A PNG: loss, metric, confusion_matrix or mistakes."""
        return self._request("GET", f"/v1/jobs/{job_id}/plots/{name}.png").content

    # --- sweeps

    def create_sweep(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start a sweep (the POST /v1/sweeps body: model, dataset, hyperparameters, search, metric, …)."""
        return self._json("POST", "/v1/sweeps", json=body)

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        """A sweep with its leaderboard, best first."""
        return self._json("GET", f"/v1/sweeps/{sweep_id}")

    def sweeps(self, *, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Sweeps, newest first, without their leaderboards."""
        params = {"limit": limit, **({"status": status} if status else {})}
        return self._json("GET", "/v1/sweeps", params=params)["data"]

    def cancel_sweep(self, sweep_id: str) -> dict[str, Any]:
        """Cancel every unfinished trial of a sweep."""
        return self._json("POST", f"/v1/sweeps/{sweep_id}/cancel")

    # --- models and predictions

    def models(self, dataset: str | None = None) -> list[ModelVersion]:
        return self._json("GET", "/v1/models", params={"dataset": dataset} if dataset else {})["data"]

    def promote(self, model_id: int) -> dict[str, Any]:
        """Make a model version serve its dataset (promoting an older one rolls back)."""
        return self._json("POST", f"/v1/models/{model_id}/promote")

    def create_key(self, owner: str, role: str = "user") -> dict[str, Any]:
        """A new API key (admin only); `key` in the answer is shown this once."""
        return self._json("POST", "/v1/keys", json={"owner": owner, "role": role})

    def keys(self) -> list[dict[str, Any]]:
        """Every API key, revoked ones too (admin only; never the key itself)."""
        return self._json("GET", "/v1/keys")["data"]

    def revoke_key(self, key_id: int) -> dict[str, Any]:
        """Revoke an API key at once (admin only)."""
        return self._json("DELETE", f"/v1/keys/{key_id}")

    def predict(self, dataset: str, files: Sequence[Path | str | tuple[str, bytes]], *, top_k: int = 3,
                model_id: int | None = None, explain: bool = False) -> list[Prediction]:
        """Label images (paths or (name, bytes)) with the model serving `dataset`, in order."""
        uploads = [("files", f if isinstance(f, tuple) else (Path(f).name, Path(f).read_bytes())) for f in files]
        form = {"top_k": str(top_k), **({"model_id": str(model_id)} if model_id else {})}
        params = {"explain": "true"} if explain else {}
        return self._json("POST", f"/v1/predict/{dataset}", files=uploads, data=form, params=params)["predictions"]
