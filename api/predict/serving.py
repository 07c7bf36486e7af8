"""The serving models the API process keeps in memory, one per dataset, swapped without a restart.

Each request asks `ServingModels.current(dataset)`. At most every `ttl_s` seconds that costs one
indexed query for the serving version id; when the id changed, the new Predictor is loaded by the
one request thread that noticed, while the others keep answering with the old one, and then the
reference is swapped in a single assignment. In-flight requests hold their own reference, so a
swap never fails them. Each loaded version has a PredictBatcher (api/predict/batching.py): its worker thread
serves concurrent requests in batches. Loading and registry queries run in the threadpool; the event
loop only takes the fast path (`fresh`, `loaded`): a dict lookup.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePath
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from api.deps import app_settings
from api.predict.batching import ImageLimits, PredictBatcher
from api.predict.errors import ModelUnavailable
from core import model_registry as registry
from core.artifacts import ArtifactCorrupt, ArtifactMissing, ArtifactStore, open_store
from core.datasets import upload_visible
from core.db import get_sessionmaker
from core.orm import ModelVersion
from core.settings import Settings
from ml.inference import Predictor, set_inference_threads

DEFAULT_TTL_S = 1.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What a response says about the model that answered (a plain copy of the registry row)."""

    id: int
    dataset: str
    model: str
    job_id: str
    val_accuracy: float
    checkpoint_sha256: str
    private: bool = False  # trained on a private upload: only `owner` (and admins) may use it
    owner: str | None = None

    @classmethod
    def of(cls, version: ModelVersion) -> "ModelInfo":
        return cls(id=version.id, dataset=version.dataset, model=version.model, job_id=version.job_id,
                   val_accuracy=version.val_accuracy, checkpoint_sha256=version.checkpoint_sha256,
                   private=bool(version.private), owner=version.owner)

    def visible_to(self, owner: str | None) -> bool:
        """Whether `owner` (None: an admin) may use this version: shared, or of their own upload."""
        return owner is None or not self.private or self.owner == owner


@dataclass(frozen=True)
class Served:
    """A model version, its loaded predictor, and the worker that serves its requests in batches."""

    info: ModelInfo
    predictor: Predictor
    batcher: PredictBatcher


@dataclass(frozen=True)
class _Entry:
    served: Served | None  # None: nothing trained for the dataset yet
    checked_at: float


class ServingModels:
    """Per-dataset serving predictors, refreshed from the registry at most every `ttl_s` seconds."""

    def __init__(self, sessions: sessionmaker[Session], *, settings: Settings, ttl_s: float = DEFAULT_TTL_S,
                 cache_size: int = 6, store: ArtifactStore | None = None):
        self._sessions = sessions
        self.settings = settings  # the upload caps
        self.store = store or open_store(settings.artifact_store_url, settings)  # where checkpoints are read
        self._ttl_s = ttl_s
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._loaded: OrderedDict[int, Served] = OrderedDict()  # by version id, most recent last
        self._loaded_guard = threading.Lock()
        self._cache_size = cache_size
        # Requests already run in parallel in the threadpool; intra-op threads on top only fight over
        # the same cores (measured on 2 busy cores: one 28×28 forward 0.6 ms with 1 thread, worse with 2).
        set_inference_threads(int(os.environ.get("ML_NUM_THREADS") or 1))

    def fresh(self, dataset: str) -> Served | None:
        """The serving predictor if it was checked within `ttl_s` (no I/O: safe on the event loop)."""
        entry = self._entries.get(dataset)
        if entry is not None and entry.served is not None and time.monotonic() - entry.checked_at < self._ttl_s:
            return entry.served
        return None

    def loaded(self, model_id: int) -> Served | None:
        """Version `model_id` if it is loaded already (no I/O: safe on the event loop)."""
        with self._loaded_guard:
            return self._loaded.get(model_id)

    def current(self, dataset: str) -> Served | None:
        """The predictor serving `dataset` now; None when no model was trained for it yet."""
        entry = self._entries.get(dataset)
        if entry is not None and time.monotonic() - entry.checked_at < self._ttl_s:
            return entry.served
        lock = self._lock(dataset)
        # While one thread refreshes, the others answer with what is loaded instead of queueing.
        if not lock.acquire(blocking=entry is None):
            return entry.served
        try:
            entry = self._entries.get(dataset)
            if entry is not None and time.monotonic() - entry.checked_at < self._ttl_s:
                return entry.served
            try:
                served = self._serving_now(dataset, entry)
            except Exception:
                if entry is None or entry.served is None:
                    raise
                # the registry or the new checkpoint is unreachable: keep answering with the loaded model
                log.exception("could not refresh the serving model of %s; still serving model %s",
                              dataset, entry.served.info.id)
                served = entry.served
            self._entries[dataset] = _Entry(served, time.monotonic())  # the swap: one assignment
            return served
        finally:
            lock.release()

    def _serving_now(self, dataset: str, entry: _Entry | None) -> Served | None:
        with self._sessions() as session:
            version_id = registry.serving_version_id(session, dataset=dataset)
            if version_id is None:
                return None
            if entry is not None and entry.served is not None and entry.served.info.id == version_id:
                return entry.served
            return self._load(registry.get_model_version(session, model_id=version_id))

    def upload_visible(self, dataset: str, owner: str | None) -> bool:
        """Whether `owner` (None: an admin) may see the uploaded dataset `dataset` (a database read)."""
        if owner is None:
            return True
        with self._sessions() as session:
            return upload_visible(session, dataset, owner)

    def version(self, model_id: int) -> Served:
        """A specific registered version (ModelNotFound if there is none), loaded once and cached."""
        with self._loaded_guard:
            served = self._loaded.get(model_id)
        if served is not None:
            return served
        with self._sessions() as session:
            return self._load(registry.get_model_version(session, model_id=model_id))

    def _lock(self, dataset: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(dataset, threading.Lock())

    def _load(self, version: ModelVersion) -> Served:
        with self._loaded_guard:
            served = self._loaded.get(version.id)
            if served is not None:
                self._loaded.move_to_end(version.id)
                return served
        try:  # from the store (a remote one through this host's cache), sha256 checked
            path = self.store.get(version.checkpoint_path, version.checkpoint_sha256)
        except ArtifactMissing:
            raise ModelUnavailable(f"model {version.id}'s checkpoint file is missing from the artifact store "
                                   f"({PurePath(version.checkpoint_path).name}); promote another model") from None
        except ArtifactCorrupt:
            raise ModelUnavailable(f"model {version.id}'s checkpoint file changed since it was registered "
                                   "(sha256 mismatch); promote another model") from None
        predictor = Predictor.load(path)
        settings = self.settings
        batcher = PredictBatcher(predictor, limits=ImageLimits(settings.max_upload_bytes, settings.max_upload_pixels),
                                 max_images=settings.predict_batch_max_images,
                                 max_wait_s=settings.predict_batch_max_wait_ms / 1000.0)
        with self._loaded_guard:
            served = self._loaded.get(version.id)  # another thread loaded it meanwhile: keep one worker
            if served is not None:
                batcher.close()
                return served
            served = self._loaded[version.id] = Served(ModelInfo.of(version), predictor, batcher)
            while len(self._loaded) > self._cache_size:
                # its worker serves what is queued, then stops; a request holding it still gets answered
                self._loaded.popitem(last=False)[1].batcher.close()
        return served


_create_guard = threading.Lock()


async def serving_models(request: Request) -> ServingModels:
    """The app's ServingModels, created on first use (bound to the app's database and settings)."""
    # async and non-blocking on purpose: a sync dependency would cost each request a threadpool hop
    state = request.app.state
    serving = getattr(state, "serving_models", None)
    if serving is None:
        settings = await app_settings(request)
        with _create_guard:
            serving = getattr(state, "serving_models", None)
            if serving is None:
                serving = ServingModels(get_sessionmaker(settings.database_url), settings=settings,
                                        store=state.store)
                state.serving_models = serving
    return serving


ServingDep = Annotated[ServingModels, Depends(serving_models)]
