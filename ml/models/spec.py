"""What a model is: its spec (description, losses per task, hyperparameters, defaults), registered by name.

Each model module registers one ModelSpec beside its builder; validation, the catalog, training
and serving read the specs, so adding a model is adding one file under ml/models/.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from ml.discover import import_modules

Optimizer = Literal["sgd", "momentum", "adam"]


class Hyperparameters(BaseModel):
    """The knobs every model takes, each with its allowed range; a model's own class adds its knobs."""

    # strict: `"epochs": true` or `"lr": "0.1"` is refused, not coerced (JSON numbers still fill float fields)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    epochs: int = Field(10, ge=1, le=500, description="passes over the training set")
    batch_size: int = Field(64, ge=1, le=1_000_000,
                            description="samples per step; >= the training set size means full-batch GD")
    lr: float = Field(0.01, gt=0, le=10, description="learning rate")
    lr_schedule: Literal["none", "cosine"] = Field("none", description="cosine: decay lr to 0 over the epochs")
    optimizer: Optimizer = "sgd"
    momentum: float = Field(0.9, ge=0, lt=1, description="used by optimizer=momentum")
    weight_decay: float = Field(0.0, ge=0, le=1, description="L2 penalty")
    l1: float = Field(0.0, ge=0, le=1, description="L1 penalty on weights")
    loss: str | None = Field(None, max_length=32, description="null: the model's default for the dataset")
    early_stopping_patience: int = Field(0, ge=0, le=100, description="epochs without improvement; 0 = off")
    select: Literal["best", "last"] = Field(
        "best", description="the epoch whose weights are tested, registered and served: best: the best "
        "validation score; last: the final epoch (for a schedule that anneals the lr to zero, where a small "
        "validation split cannot tell its last epochs apart and its maximum over many epochs is noise)")
    val_fraction: float = Field(0.1, ge=0.01, le=0.5)
    max_train_samples: int | None = Field(None, ge=1, le=10_000_000, description="smoke mode: train on a subset")
    max_eval_samples: int | None = Field(None, ge=1, le=10_000_000,
                                         description="smoke mode: evaluate on the first N val/test samples")
    max_steps: int | None = Field(None, ge=1, le=100_000_000, description="smoke mode: stop after this many steps")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # the class default is what every run did before the knob existed, so old runs resume as they trained
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="bf16: mixed precision for the training step (weights, optimizer, evaluation and "
        "serving stay fp32); auto: bf16 where the device computes it natively (CUDA, or a CPU with "
        "AVX512-BF16/AMX), else fp32")
    checkpoint_every: int = Field(1, ge=1, le=500, description="write a checkpoint every N epochs (and the last)")
    ood_quantile: float = Field(
        0.95, ge=0.5, le=0.999, description="classifiers: predictions whose out-of-distribution score (energy) "
        "is above this quantile of the validation split's are flagged out_of_distribution; 0.95 flags about 5% "
        "of inputs like the training data (docs/INFERENCE.md)")


class ImageOptions(BaseModel):
    """Knobs that only image datasets take."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    image_size: int | None = Field(None, ge=16, le=256, description="photos: side in pixels (null: dataset default)")
    augment: Literal["none", "basic", "strong"] = Field(
        "none", description="basic: flips and mild crops; strong (photos): crops of 30-100% of the area, "
        "tilt, brightness, contrast and saturation")
    tta: Literal["none", "flip", "zoom_flip"] = Field(
        "none", description="test-time augmentation (photos), in validation, test and serving alike: flip "
        "averages each image's outputs with its mirror's; zoom_flip also with its centre 80% resized back "
        "and that one's mirror (strong augmentation shows subjects larger than a full frame does)")


# (hyperparameters, input_shape, num_outputs) -> torch.nn.Module
Builder = Callable[[Any, tuple[int, ...], int], Any]


@dataclass(frozen=True)
class ModelSpec:
    """Everything the service knows about one model type."""

    name: str
    description: str
    # task -> losses it serves for that task; the first is the default
    losses: dict[str, tuple[str, ...]]
    hyperparameters: type[Hyperparameters]
    build: Builder
    # dataset name (or input kind, for uploaded sets) -> course defaults differing from the class's
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    # default lr of an (optimizer, loss) pair, or of an optimizer ("adam", None); used when the user
    # changes the optimizer or loss but not lr, so the default lr fits what is actually trained
    lrs: dict[tuple[str, str | None], float] = field(default_factory=dict)
    input_kinds: tuple[str, ...] = ("grayscale", "photos", "tabular")
    # losses trained on one output unit (a logit or score: class 1 when > 0)
    single_output_losses: tuple[str, ...] = ("bce",)
    # loss name -> () -> loss_fn(outputs, y); for losses the engine does not know
    custom_losses: dict[str, Callable[[], Callable]] = field(default_factory=dict)
    # (model, bundle) -> None: fit data-dependent parts before training (e.g. feature scaling)
    prepare: Callable[[Any, Any], None] | None = None
    # (model, bundle) -> dict: extra results after training (e.g. learned vs closed-form weights)
    report: Callable[[Any, Any], dict[str, Any]] | None = None
    # (model, hp) -> optimizer param groups, each with an "lr_scale" (its share of the epoch's lr);
    # None: one group of every parameter
    param_groups: Callable[[Any, Any], list[dict[str, Any]]] | None = None
    # (model, hp, bundle, (train, val, test), *, cache_dir, callbacks) -> the splits the loop trains on,
    # e.g. a frozen backbone's cached features instead of the images; None: the images
    cached_inputs: Callable[..., tuple[Any, Any, Any]] | None = None

    def serves(self, task: str, input_kind: str) -> bool:
        """Whether this model trains on a dataset of this task and input kind."""
        return task in self.losses and input_kind in self.input_kinds

    def defaults_for(self, dataset: str, input_kind: str) -> dict[str, Any]:
        """Course defaults for a dataset: its own entry, else its input kind's (uploads), else "*"."""
        for key in (dataset, input_kind, "*"):
            if key in self.defaults:
                return dict(self.defaults[key])
        return {}

    def lr_for(self, optimizer: str, loss: str | None) -> float | None:
        """The default lr of an optimizer and loss, None when the spec names none."""
        return self.lrs.get((optimizer, loss), self.lrs.get((optimizer, None)))


_SPECS: dict[str, ModelSpec] = {}


def register_model_spec(spec: ModelSpec) -> ModelSpec:
    """Register `spec`; a second registration of the same name is a bug."""
    if spec.name in _SPECS:
        raise ValueError(f"model {spec.name!r} is already registered")
    _SPECS[spec.name] = spec
    return spec


def model_specs() -> dict[str, ModelSpec]:
    """Every registered model spec by name."""
    _load_builtin()
    return dict(_SPECS)


def get_model_spec(name: str) -> ModelSpec:
    """The spec registered under `name` (KeyError names the known ones)."""
    specs = model_specs()
    try:
        return specs[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown model {name!r}; known: {', '.join(specs)}") from None


def _load_builtin() -> None:
    """Each module of ml/models registers its spec on import, so a new file is a new model."""
    import_modules("ml.models", _NOT_MODELS)


_NOT_MODELS = frozenset({"spec", "layers", "outputs"})
