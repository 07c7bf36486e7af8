"""Concurrent predict requests for one model served together: one worker thread, one forward per batch.

Each loaded model version has a worker thread. A request puts its uploads on the worker's queue
and awaits a future; the worker takes everything already queued (up to `max_images` images),
reads, decodes and frames each upload, runs ONE forward pass for all of them, renders each
request's response body and resolves the futures. An idle worker starts on a lone request at once;
requests that arrive while it is busy wait at most one batch. Under load (the last batch had more
than one request) it can also wait up to `max_wait_s` for more before it starts: 0 by default,
because on a CPU the forward costs the same per image alone or batched, so waiting only adds
latency (a GPU is where it pays). The event loop only parses HTTP; the thread hops and GIL
hand-offs are paid per batch, not per request. One worker per model: its preprocessing, mostly
GIL-bound, uses about one core.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from prometheus_client import Histogram
from starlette.concurrency import run_in_threadpool

from api.predict.errors import UnreadableFile
from ml.errors import BadImage
from ml.inference import Predictor, decode_upload
from ml.inference.predictor import Prediction, Prepared

BATCH_IMAGES = Histogram("trainserve_predict_batch_images", "Images per forward pass of a served model",
                         buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
BATCH_REQUESTS = Histogram("trainserve_predict_batch_requests", "Requests served by one forward pass",
                           buckets=(1, 2, 4, 8, 16, 32, 64))
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageLimits:
    """What one uploaded image may be: its bytes and its decoded pixels (MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS)."""

    max_bytes: int
    max_pixels: int


@dataclass(frozen=True)
class ReadInput:
    """One upload as the worker read it: its sha256 and size, and its bytes when they are to be kept."""

    sha256: str
    size: int
    data: bytes | None


@dataclass(eq=False)
class ReadInputs:
    """Filled by the worker as it reads a request's uploads (in order, before `render`), for the prediction log."""

    keep_max_bytes: int | None  # keep the bytes of uploads up to this size; None: keep none
    read: list[ReadInput] = field(default_factory=list)

    def add(self, data: bytes) -> None:
        keep = self.keep_max_bytes is not None and len(data) <= self.keep_max_bytes
        self.read.append(ReadInput(hashlib.sha256(data).hexdigest(), len(data), data if keep else None))


@dataclass(eq=False)
class _Request:
    files: Sequence[tuple[str | None, BinaryIO]]
    top_k: int
    explain: bool
    render: Callable[[list[Prediction]], Any]  # predictions -> the response body (run in the worker)
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    inputs: ReadInputs | None = None


_STOP = object()


class PredictBatcher:
    """A model's worker thread: serves queued predict requests in batches, one forward pass each."""

    def __init__(self, predictor: Predictor, *, limits: ImageLimits, max_images: int, max_wait_s: float):
        self.predictor = predictor
        self.limits = limits
        self.max_images = max(1, max_images)
        self.max_wait_s = max(0.0, max_wait_s)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._stopped = False
        self._busy = 1  # requests in the last batch: >1 means load, worth a short wait for more
        self._thread = threading.Thread(target=self._work, name="predict-batcher", daemon=True)
        self._thread.start()

    async def predict(self, files: Sequence[tuple[str | None, BinaryIO]], *, top_k: int, explain: bool,
                      render: Callable[[list[Prediction]], Any], inputs: ReadInputs | None = None) -> Any:
        """`render(predictions)` for these files, computed in a batch with concurrent requests' files.

        `inputs`: filled with each upload's digest (and bytes) where the worker reads it, before `render` runs.
        """
        loop = asyncio.get_running_loop()
        request = _Request(files, top_k, explain, render, loop.create_future(), loop, inputs)
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._queue.put(request)
        if stopped:  # evicted from the cache while this request held it: serve it alone, off the loop
            await run_in_threadpool(self._serve_safely, [request])
        return await request.future

    def close(self) -> None:
        """Stop the worker once the queued requests are served."""
        self._queue.put(_STOP)

    def _work(self) -> None:
        while True:
            batch = self._gather(self._queue.get())  # an idle worker wakes at once for a lone request
            stop = any(r is _STOP for r in batch)
            batch = [r for r in batch if r is not _STOP]
            if stop:
                with self._lock:
                    self._stopped = True
                    batch += self._drain()
            self._busy = len(batch)
            if batch:
                self._serve_safely(batch)
            if stop:
                return

    def _gather(self, first: Any) -> list:
        batch = [first]
        if first is _STOP:
            return batch
        images = len(first.files)
        deadline = time.monotonic() + self.max_wait_s if self._busy > 1 else 0.0
        while images < self.max_images:
            timeout = deadline - time.monotonic()
            try:
                nxt = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            batch.append(nxt)
            if nxt is _STOP:
                break
            images += len(nxt.files)
        return batch

    def _drain(self) -> list[_Request]:
        rest = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return rest
            if item is not _STOP:
                rest.append(item)

    def _serve_safely(self, batch: list[_Request]) -> None:
        try:
            self._serve(batch)
        except Exception as exc:  # never leave a caller hanging
            log.exception("predict batch failed")
            _resolve([(r, exc) for r in batch])

    def _serve(self, batch: list[_Request]) -> None:
        predictor, outcomes = self.predictor, []
        prepared: dict[int, list[Prepared]] = {}
        for r in batch:
            try:
                prepared[id(r)] = [predictor.prepare(self._decode(number, name, f, r.inputs))
                                   for number, (name, f) in enumerate(r.files, start=1)]
            except UnreadableFile as exc:
                outcomes.append((r, exc))
        served = [r for r in batch if id(r) in prepared]
        probs = predictor.forward([p for r in served for p in prepared[id(r)]])  # the one forward pass
        start = 0
        for r in served:
            mine = prepared[id(r)]
            readable = sum(p.abstain is None for p in mine)
            rows = probs[start:start + readable] if readable else None
            start += readable
            try:
                outcomes.append((r, r.render(predictor.answer(mine, r.top_k, explain=r.explain, probs=rows))))
            except Exception as exc:  # a rendering bug fails its own request only
                outcomes.append((r, exc))
        BATCH_IMAGES.observe(start)
        BATCH_REQUESTS.observe(len(served))
        _resolve(outcomes)

    def _decode(self, number: int, name: str | None, file: BinaryIO, inputs: ReadInputs | None):
        data = file.read()
        if inputs is not None:  # digested here, where the bytes are read: no second read for the log
            inputs.add(data)
        try:
            return decode_upload(data, max_bytes=self.limits.max_bytes, max_pixels=self.limits.max_pixels)
        except BadImage as exc:
            raise UnreadableFile(number, name, exc.reason) from None


def _resolve(outcomes: list[tuple[_Request, Any]]) -> None:
    """Hand each request its outcome (a body or an exception) on its event loop, one hop per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Request, Any]]] = {}
    for request, outcome in outcomes:
        by_loop.setdefault(request.loop, []).append((request, outcome))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:  # the loop is closed: the server is shutting down, nobody is waiting
            pass


def _settle(settled: list[tuple[_Request, Any]]) -> None:
    for request, outcome in settled:
        if request.future.done():  # the client went away and the request was cancelled
            continue
        if isinstance(outcome, BaseException):
            request.future.set_exception(outcome)
        else:
            request.future.set_result(outcome)
