"""BatchedForward with real threads: each caller its own rows, a lone call never waits, groups bounded."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from api.batching import BatchedForward


def _slow_double(sizes: list[int], seconds: float = 0.01):
    def forward(x: torch.Tensor) -> torch.Tensor:
        sizes.append(len(x))
        time.sleep(seconds)
        return x * 2
    return forward


def test_concurrent_callers_share_forwards_and_get_their_own_rows():
    sizes: list[int] = []
    batched = BatchedForward(_slow_double(sizes), max_batch=8, max_wait_s=5.0)
    out: dict[int, torch.Tensor] = {}

    def call(i: int) -> None:
        out[i] = batched(torch.full((1 + i % 3, 2), float(i)))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(30):
        assert torch.equal(out[i], torch.full((1 + i % 3, 2), 2.0 * i))
    assert sum(sizes) == sum(1 + i % 3 for i in range(30))
    assert len(sizes) < 30 and max(sizes) <= 8  # gathered, never past max_batch


def test_a_lone_call_runs_at_once():
    batched = BatchedForward(lambda x: x + 1, max_batch=8, max_wait_s=5.0)
    started = time.perf_counter()
    assert torch.equal(batched(torch.zeros(1, 2)), torch.ones(1, 2))
    assert time.perf_counter() - started < 0.5  # no gathering wait (the bound is 5 s)


def test_a_queued_call_waits_at_most_max_wait_then_runs_alone():
    sizes: list[int] = []
    batched = BatchedForward(_slow_double(sizes, seconds=1.0), max_batch=8, max_wait_s=0.05)
    slow = threading.Thread(target=batched, args=(torch.zeros(1, 1),))
    slow.start()
    time.sleep(0.1)
    started = time.perf_counter()
    batched(torch.ones(1, 1))
    assert time.perf_counter() - started < 1.05 + 0.5  # ran beside the 1 s forward, not after it
    slow.join()
    assert sizes == [1, 1]


def test_a_failing_forward_fails_every_caller_of_its_group_and_the_next_still_run():
    def forward(x: torch.Tensor) -> torch.Tensor:
        if (x < 0).any():
            raise ValueError("bad batch")
        return x
    batched = BatchedForward(forward, max_batch=8, max_wait_s=5.0)
    with pytest.raises(ValueError, match="bad batch"):
        batched(-torch.ones(1, 1))
    assert torch.equal(batched(torch.ones(1, 1)), torch.ones(1, 1))
