"""Training configs: bounded hyperparameters and course defaults merged per (model, dataset) pair.

Torch-free and quick to import: the API validates requests with it.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import annotated_types as at
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ml.defaults import (
    DATASET_TASKS, PAIR_DEFAULTS, VALID_LOSSES, VALID_PAIRS, default_loss, valid_pairs_text,
)
from ml.errors import InvalidConfig

Optimizer = Literal["sgd", "momentum", "adam"]
Activation = Literal["relu", "sigmoid", "tanh", "leaky_relu"]
Loss = Literal["cross_entropy", "mse_onehot", "bce", "mse"]
LayerSize = Annotated[int, Field(ge=1, le=4096)]


class Hyperparameters(BaseModel):
    """Every knob of a run, each with its allowed range."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(10, ge=1, le=500, description="passes over the training set")
    batch_size: int = Field(64, ge=1, le=1_000_000,
                            description="samples per step; >= the training set size means full-batch GD")
    lr: float = Field(0.01, gt=0, le=10, description="learning rate")
    lr_schedule: Literal["none", "cosine"] = Field("none", description="cosine: decay lr to 0 over the epochs")
    optimizer: Optimizer = "sgd"
    momentum: float = Field(0.9, ge=0, lt=1, description="used by optimizer=momentum")
    weight_decay: float = Field(0.0, ge=0, le=1, description="L2 penalty")
    l1: float = Field(0.0, ge=0, le=1, description="L1 penalty on weights")
    dropout: float = Field(0.0, ge=0, le=0.9)
    hidden_sizes: list[LayerSize] = Field(default_factory=lambda: [128, 64], min_length=1, max_length=8)
    activation: Activation = "relu"
    loss: Loss | None = Field(None, description="null: the model's default for the dataset")
    polynomial_degree: int = Field(1, ge=1, le=20, description="linear_regression feature expansion")
    image_size: int | None = Field(None, ge=16, le=256, description="photos: side in pixels (null: dataset default)")
    augment: Literal["none", "basic"] = "none"
    early_stopping_patience: int = Field(0, ge=0, le=100, description="epochs without improvement; 0 = off")
    val_fraction: float = Field(0.1, ge=0.01, le=0.5)
    max_train_samples: int | None = Field(None, ge=1, le=10_000_000, description="smoke mode: train on a subset")
    max_eval_samples: int | None = Field(None, ge=1, le=10_000_000,
                                         description="smoke mode: evaluate on the first N val/test samples")
    max_steps: int | None = Field(None, ge=1, le=100_000_000, description="smoke mode: stop after this many steps")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    checkpoint_every: int = Field(1, ge=1, le=500, description="write a checkpoint every N epochs (and the last)")


class TrainConfig(BaseModel):
    """What to train: a model name, a dataset name and resolved hyperparameters."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str
    dataset: str
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)

    @property
    def hp(self) -> Hyperparameters:
        return self.hyperparameters

    @property
    def task(self) -> str:
        return DATASET_TASKS[self.dataset]


def _bounds_text(field_name: str) -> str:
    """The allowed values of a field in words, e.g. '> 0 and ≤ 10' or "one of 'sgd', 'adam'"."""
    if field_name == "hidden_sizes":
        return "a list of 1 to 8 layer sizes, each ≥ 1 and ≤ 4096"
    info = Hyperparameters.model_fields[field_name]
    literals = [a for a in get_args(info.annotation) if a is not type(None)] or []
    if info.annotation is not None and getattr(info.annotation, "__origin__", None) is Literal:
        literals = list(get_args(info.annotation))
    if literals and all(isinstance(a, str) for a in literals):
        return "one of " + ", ".join(repr(a) for a in literals) + (
            " or null" if field_name == "loss" else "")
    parts = []
    for m in info.metadata:
        for attr, sym in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            if isinstance(m, getattr(at, attr.capitalize())):
                parts.append(f"{sym} {getattr(m, attr)}")
    kind = "an integer" if info.annotation in (int, int | None) else "a number"
    text = f"{kind} " + " and ".join(parts) if parts else kind
    return text + (", or null" if info.default is None else "")


def _errors_from(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic errors -> [{field, message}] that always state the allowed range."""
    out: list[dict[str, str]] = []
    allowed = ", ".join(Hyperparameters.model_fields)
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if not loc:
            out.append({"field": "hyperparameters", "message": err["msg"]})
            continue
        name = loc[0]
        field = "hyperparameters." + ".".join(loc)
        if err["type"] == "extra_forbidden":
            out.append({"field": field, "message": f"unknown hyperparameter {name!r}; known: {allowed}"})
        elif name in Hyperparameters.model_fields:
            got = err.get("input")
            out.append({"field": field, "message": f"must be {_bounds_text(name)} (got {got!r})"})
        else:
            out.append({"field": field, "message": err["msg"]})
    return out


def _check_pair(model: str, dataset: str) -> None:
    if model not in VALID_PAIRS:
        raise InvalidConfig([{"field": "model", "message":
                              f"unknown model {model!r}; known: {', '.join(VALID_PAIRS)}"}])
    if dataset not in DATASET_TASKS:
        raise InvalidConfig([{"field": "dataset", "message":
                              f"unknown dataset {dataset!r}; known: {', '.join(DATASET_TASKS)}"}])
    if dataset not in VALID_PAIRS[model]:
        raise InvalidConfig([{"field": "dataset", "message":
                              f"{model} cannot be trained on {dataset}; valid pairs: {valid_pairs_text()}"}])


def pair_defaults(model: str, dataset: str) -> dict[str, Any]:
    """The course defaults of a pair (only the fields that differ from Hyperparameters' own)."""
    _check_pair(model, dataset)
    return {**PAIR_DEFAULTS.get((model, dataset), {}), "loss": default_loss(model, dataset)}


def resolve_config(model: str, dataset: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Merge a pair's course defaults with `overrides`; raises InvalidConfig naming every bad field."""
    _check_pair(model, dataset)
    merged = {**pair_defaults(model, dataset), **{k: v for k, v in (overrides or {}).items()}}
    if merged.get("loss") is None:
        merged["loss"] = default_loss(model, dataset)
    try:
        hp = Hyperparameters(**merged)
    except ValidationError as exc:
        raise InvalidConfig(_errors_from(exc)) from None
    allowed = VALID_LOSSES[model][DATASET_TASKS[dataset]]
    if hp.loss not in allowed:
        raise InvalidConfig([{"field": "hyperparameters.loss", "message":
                              f"{model} on {dataset} must use one of {', '.join(map(repr, allowed))} "
                              f"(got {hp.loss!r})"}])
    return TrainConfig(model=model, dataset=dataset, hyperparameters=hp)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild and re-validate a TrainConfig from its `model_dump()` (a job row, a checkpoint)."""
    if not isinstance(data, dict) or "model" not in data or "dataset" not in data:
        raise InvalidConfig([{"field": "config", "message": "must be an object with model, dataset, hyperparameters"}])
    return resolve_config(data["model"], data["dataset"], dict(data.get("hyperparameters") or {}))
