"""A job's progress as a fraction and an ETA, the same for the worker's events and the API's answers."""
from __future__ import annotations

from typing import Any


def progress_fraction(epoch: int | None, epochs: int | None, batch: int | None, batches: int | None) -> float:
    """Share of the run done, from 1-based epoch/batch counters: 0.0 … 1.0.

    An epoch without batch counters is a finished epoch (the worker reports those at epoch end).
    """
    if not epoch or not epochs:
        return 0.0
    within = (batch or 0) / batches if batches else 1.0
    return max(0.0, min(1.0, ((epoch - 1) + within) / epochs))


def eta_seconds(elapsed_s: float, fraction: float, start_fraction: float = 0.0) -> float | None:
    """Seconds left if the rest goes as fast as what this attempt did (`elapsed_s` since it started at
    `start_fraction`); None before there is anything to go on."""
    done = fraction - start_fraction
    if done <= 0.0 or elapsed_s <= 0.0:
        return None
    return max(0.0, elapsed_s * (1.0 - fraction) / done)


def progress_payload(
    *, epoch: int | None, epochs: int | None, batch: int | None, batches: int | None,
    samples_per_second: float | None, elapsed_s: float | None, start_fraction: float = 0.0,
) -> dict[str, Any]:
    """The progress object of the API and of `progress` events (`elapsed_s` and `start_fraction`: of
    the current attempt, so a resumed job's ETA counts neither the downtime nor the work before it)."""
    fraction = progress_fraction(epoch, epochs, batch, batches)
    return {
        "epoch": epoch, "epochs": epochs, "batch": batch, "batches": batches,
        "fraction": round(fraction, 4),
        "eta_seconds": None if elapsed_s is None else _round(eta_seconds(elapsed_s, fraction, start_fraction)),
        "samples_per_second": _round(samples_per_second),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def resumed_fraction(epoch: int | None, epochs: int | None) -> float:
    """Share of the run an attempt inherited from the checkpoint it resumed after `epoch` epochs."""
    return max(0.0, min(1.0, epoch / epochs)) if epoch and epochs else 0.0
