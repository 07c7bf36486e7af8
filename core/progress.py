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
    note: str | None = None,
) -> dict[str, Any]:
    """The progress object of the API and of `progress` events (`elapsed_s` and `start_fraction`: of
    the current attempt, so a resumed job's ETA counts neither the downtime nor the work before it).

    With a `note` the run is in a step before its first epoch (e.g. "extracting features 812/2002"):
    batch/batches, fraction and ETA are that step's, the ETA at the step's own rate.
    """
    if note is not None:
        return _step_payload(epoch, epochs, batch, batches, samples_per_second, note)
    fraction = progress_fraction(epoch, epochs, batch, batches)
    return {
        "epoch": epoch, "epochs": epochs, "batch": batch, "batches": batches,
        "fraction": round(fraction, 4),
        "eta_seconds": None if elapsed_s is None else _round(eta_seconds(elapsed_s, fraction, start_fraction)),
        "samples_per_second": _round(samples_per_second), "note": None,
    }


def _step_payload(epoch: int | None, epochs: int | None, done: int | None, total: int | None,
                  per_second: float | None, note: str) -> dict[str, Any]:
    fraction = max(0.0, min(1.0, (done or 0) / total)) if total else 0.0
    eta = (total - (done or 0)) / per_second if total and per_second else None
    return {"epoch": epoch, "epochs": epochs, "batch": done, "batches": total, "fraction": round(fraction, 4),
            "eta_seconds": _round(None if eta is None else max(0.0, eta)),
            "samples_per_second": _round(per_second), "note": note}


PREPARING_EPOCH = 0  # what SQL's progress_epoch holds while a run is in a step before its first epoch


def preparing_note(done: int | None, total: int | None) -> str:
    """The note of such a step as read back from SQL, which keeps its counters but not its words."""
    return f"preparing the data {done or 0}/{total or 0}"


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def resumed_fraction(epoch: int | None, epochs: int | None) -> float:
    """Share of the run an attempt inherited from the checkpoint it resumed after `epoch` epochs."""
    return max(0.0, min(1.0, epoch / epochs)) if epoch and epochs else 0.0
