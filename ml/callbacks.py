"""What the engine calls while it trains. Protocols, so a caller (the worker) supplies its own."""
from __future__ import annotations

from typing import Protocol

from ml.results import CheckpointInfo, EpochMetrics, Progress


class TrainCallbacks(Protocol):
    """Hooks the train loop calls. Implementations must be cheap: some run between batches."""

    def on_progress(self, progress: Progress) -> None:
        """Called during an epoch, at most a few times per second (the engine throttles)."""

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        """Called once per finished epoch, before that epoch's checkpoint."""

    def on_checkpoint(self, checkpoint: CheckpointInfo) -> None:
        """Called after a checkpoint file is completely written."""

    def should_stop(self) -> bool:
        """Checked between batches; True stops the run with TrainingCancelled."""
        return False


class NoCallbacks:
    """Callbacks that do nothing: for notebooks, the CLI and benchmarks."""

    def on_progress(self, progress: Progress) -> None:
        pass

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        pass

    def on_checkpoint(self, checkpoint: CheckpointInfo) -> None:
        pass

    def should_stop(self) -> bool:
        return False
