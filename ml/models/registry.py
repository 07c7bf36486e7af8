"""Name-keyed model registry: configs name a model, never an import path."""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

# builder(hyperparameters, input_shape, num_outputs) -> nn.Module
Builder = Callable[[Any, tuple[int, ...], int], nn.Module]
_MODELS: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Register a builder under `name`; a second registration of the same name is a bug."""
    def deco(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = builder
        return builder
    return deco


def model_names() -> list[str]:
    """Registered model names."""
    return list(_MODELS)


def get_builder(name: str) -> Builder:
    """The builder registered under `name` (KeyError names the known ones)."""
    try:
        return _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(_MODELS)}") from None
