"""One GPU per training process: each pool child takes WORKER_GPUS[its pool index] as its only visible device.

Billiard gives a replaced child the index of the one it replaces (the lowest free index), so a child that
dies is replaced on the same GPU. Only an environment variable is set, in the child, before anything
touches CUDA; the parent never initialises CUDA, so forking stays safe (celery/celery#3402).
"""
from __future__ import annotations

import logging
import os

from billiard.process import current_process

log = logging.getLogger("trainserve.worker")

_assigned: dict[str, str] = {}  # this pool child's GPU, once it has one


def parse_gpus(text: str | None) -> list[str]:
    """WORKER_GPUS ("0,1,2"; any CUDA_VISIBLE_DEVICES entry, e.g. a GPU UUID) as a list; [] when unset."""
    return [gpu.strip() for gpu in (text or "").split(",") if gpu.strip()]


def take_gpu(gpus: list[str]) -> str | None:
    """In a fresh pool child: make gpus[index % len(gpus)] its only visible GPU and return it (None: no list)."""
    index = getattr(current_process(), "index", None)
    if not gpus or index is None:
        return None
    gpu = gpus[index % len(gpus)]
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    _assigned["gpu"] = gpu
    log.info("pool process %d (index %d) trains on GPU %s", os.getpid(), index, gpu)
    return gpu


def assigned_gpu() -> str | None:
    """The GPU this pool child took from WORKER_GPUS, if any."""
    return _assigned.get("gpu")


def physical_device(device_type: str) -> str:
    """The job's device as recorded: `cuda:<WORKER_GPUS entry>` when this child took a GPU, else the type."""
    gpu = assigned_gpu()
    return f"cuda:{gpu}" if device_type == "cuda" and gpu is not None else device_type
