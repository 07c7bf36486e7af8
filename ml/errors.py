"""Errors the engine raises; each carries a sentence a user can act on."""
from __future__ import annotations

from pathlib import Path


class MLError(Exception):
    """Base class for every error the engine raises on purpose."""


class InvalidConfig(MLError, ValueError):
    """A training config was refused; `errors` names each bad field and what is allowed."""

    def __init__(self, errors: list[dict[str, str]]):
        # each item: {"field": "hyperparameters.lr", "message": "must be > 0 and <= 10, got -1"}
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


class DatasetFilesMissing(MLError, FileNotFoundError):
    """The files of a dataset are missing; names what is missing and where it looked."""

    def __init__(self, dataset: str, directory: Path, missing: list[str]):
        self.dataset, self.directory, self.missing = dataset, Path(directory), list(missing)
        super().__init__(
            # the folder's last two parts only: this sentence reaches API responses, which show no server paths
            f"dataset {dataset!r} not found: missing {', '.join(missing)} in .../{Path(*Path(directory).parts[-2:])} "
            "(set DATA_DIR to the folder that holds it; nothing is downloaded)"
        )


class TrainingDiverged(MLError):
    """The loss became NaN or infinite."""

    def __init__(self, epoch: int, batch: int, loss: float, hint: str):
        self.epoch, self.batch, self.loss, self.hint = epoch, batch, loss, hint
        super().__init__(f"loss became {loss} at epoch {epoch}, batch {batch}: {hint}")


class TrainingCancelled(MLError):
    """`should_stop()` returned True; training stopped between two batches.

    `stop_checkpoint` is the mid-epoch checkpoint written at that batch boundary (resume from it
    continues exactly there); `partial` is the loop's running state the engine saves in it.
    """

    def __init__(self, epoch: int, batch: int, last_checkpoint: Path | None, *,
                 stop_checkpoint: Path | None = None, partial: dict | None = None):
        self.epoch, self.batch, self.last_checkpoint = epoch, batch, last_checkpoint  # batch: the next one, from 1
        self.stop_checkpoint, self.partial = stop_checkpoint, partial
        super().__init__(f"cancelled {self.where}")

    @property
    def batches_done(self) -> int:
        """Batches of epoch `epoch` finished before the stop (what a mid-epoch checkpoint holds)."""
        return max(0, self.batch - 1)

    @property
    def where(self) -> str:
        """The stop in the words an attempt's resumed_from_epoch / resumed_from_batch use: work done."""
        epochs, batches = self.epoch - 1, self.batches_done
        return (f"after {epochs} epoch{'' if epochs == 1 else 's'} and {batches} batch{'' if batches == 1 else 'es'} "
                f"of epoch {self.epoch}")


class BadImage(MLError, ValueError):
    """An uploaded image cannot be used; `reason` says why."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class BadUpload(MLError, ValueError):
    """An uploaded dataset (or a row sent to a table model) cannot be used; `reason` says why."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class UploadTooLarge(BadUpload):
    """An upload is over one of its size caps (bytes, entries, rows, columns); `reason` names the cap."""
