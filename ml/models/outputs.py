"""How a model's outputs are read: the output kind, stored by its string value in checkpoints."""
from __future__ import annotations

from enum import StrEnum


class OutputKind(StrEnum):
    """A StrEnum: equal to (and stored as) "identity", "sigmoid" or "softmax", as checkpoints always held."""

    IDENTITY = "identity"  # regression: the output is the predicted value
    SIGMOID = "sigmoid"  # one logit or score: class 1 when > 0
    SOFTMAX = "softmax"  # a logit per class

    @property
    def is_regression(self) -> bool:
        """True for regression outputs, which have no classes (and a lower validation MSE is better)."""
        return self is OutputKind.IDENTITY

    @property
    def units(self) -> int | None:
        """Output units: one for identity and sigmoid; None for softmax, which has one per class."""
        return None if self is OutputKind.SOFTMAX else 1
