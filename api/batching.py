"""Concurrent forward passes of one model gathered into one: a lone call runs at once, never waits.

The first call runs its forward immediately. Calls that arrive while a forward is running queue;
when it ends, the queued calls (up to `max_batch` images) run as one forward, led by the first
of them, so no caller ever runs another's work after its own answer is ready. A queued call that
has waited `max_wait_s` without being picked up runs alone beside the running forward instead,
so a slow batch bounds everyone's wait. Runs in request threads (the threadpool), never on the
event loop.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from prometheus_client import Histogram

BATCH_SIZES = Histogram("trainserve_predict_batch_images", "Images per forward pass of a served model",
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
CALLS_PER_BATCH = Histogram("trainserve_predict_batch_requests", "Requests gathered into one forward pass",
                            buckets=(1, 2, 4, 8, 16, 32, 64))


@dataclass(eq=False)
class _Call:
    batch: torch.Tensor
    done: threading.Event = field(default_factory=threading.Event)
    group: list["_Call"] | None = None  # set when this call is handed a gathered group to lead
    result: torch.Tensor | None = None
    error: BaseException | None = None


class BatchedForward:
    """Wraps `forward` (batch -> rows) so concurrent callers share one forward pass."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], *, max_batch: int, max_wait_s: float):
        self._forward = forward
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max_wait_s
        self._lock = threading.Lock()
        self._running = False
        self._queue: list[_Call] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Rows of `forward(batch)`, computed alone or together with concurrent callers'."""
        call = _Call(batch)
        with self._lock:
            lead = not self._running
            if lead:
                self._running = True
            else:
                self._queue.append(call)
        if lead:
            self._run([call], hand_over=True)
        else:
            if not call.done.wait(self.max_wait_s):
                with self._lock:
                    alone = call in self._queue
                    if alone:
                        self._queue.remove(call)
                if alone:  # the running forward is slow: run beside it rather than wait longer
                    self._run([call], hand_over=False)
                call.done.wait()
            if call.group is not None and call.result is None and call.error is None:
                self._run(call.group, hand_over=True)  # this call was handed its group to lead
        if call.error is not None:
            raise call.error
        return call.result

    def _run(self, group: list[_Call], *, hand_over: bool) -> None:
        try:
            rows = self._forward(torch.cat([c.batch for c in group]) if len(group) > 1 else group[0].batch)
            BATCH_SIZES.observe(len(rows))
            CALLS_PER_BATCH.observe(len(group))
            start = 0
            for c in group:
                c.result, start = rows[start:start + len(c.batch)], start + len(c.batch)
        except BaseException as exc:  # every caller of the group gets the failure, not a hang
            for c in group:
                c.error = exc
        finally:
            if hand_over:
                self._hand_over()
            for c in group:
                c.done.set()

    def _hand_over(self) -> None:
        """Give the queued calls (up to max_batch images) to the first of them to run, or go idle."""
        with self._lock:
            if not self._queue:
                self._running = False
                return
            group, images = [], 0
            while self._queue and (not group or images + len(self._queue[0].batch) <= self.max_batch):
                images += len(self._queue[0].batch)
                group.append(self._queue.pop(0))
            group[0].group = group
        group[0].done.set()
