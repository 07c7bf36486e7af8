"""Training configs: a model's own hyperparameters, validated, with the course defaults of its dataset.

What each model takes (and its defaults) lives in its spec (ml/models/*); what each dataset is in
its spec (ml/data/*). This module merges them with the user's overrides and a preset, if named.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, create_model

from ml.errors import InvalidConfig
from ml.models.spec import Hyperparameters, ImageOptions, ModelSpec, get_model_spec, model_specs


class TrainConfig(BaseModel):
    """What to train: a model name, a dataset name and resolved hyperparameters."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str
    dataset: str
    hyperparameters: SerializeAsAny[Hyperparameters] = Field(default_factory=Hyperparameters)
    preset: str | None = None
    # what the resolution decided on the user's behalf, e.g. an lr that fits a changed optimizer
    notes: list[str] = Field(default_factory=list)
    # a local folder of `<label>/<image>` rows added to the training split (a job's feedback set, written
    # by the worker); never from a request, never stored: the job's feedback snapshot says what it holds
    extra_train_dir: str | None = Field(default=None, exclude=True)

    @property
    def hp(self) -> Any:
        return self.hyperparameters

    @property
    def task(self) -> str:
        from ml.data import get_dataset_spec

        return get_dataset_spec(self.dataset).task


# knobs added after configs were first stored; a stored config without one predates it
LATER_KNOBS = frozenset({"blocks", "tta", "precision", "select"})


@lru_cache(maxsize=None)
def hyperparameter_class(model: str, images: bool) -> type[Hyperparameters]:
    """The model's own hyperparameter class, plus image_size, augment and tta when the dataset is images."""
    base = get_model_spec(model).hyperparameters
    if not images:
        return base
    return create_model(f"{base.__name__}OnImages", __base__=(base, ImageOptions))


def _bounds_text(cls: type[BaseModel], name: str) -> str:
    """The allowed values of a field in words, e.g. '> 0 and ≤ 10' or "one of 'sgd', 'adam'"."""
    info = cls.model_fields[name]
    if info.description and info.description.startswith("a list of"):
        return info.description
    literals = [a for a in get_args(info.annotation) if a is not type(None)]
    if get_origin(info.annotation) is Literal:
        literals = list(get_args(info.annotation))
    if literals and all(isinstance(a, str) for a in literals):
        return "one of " + ", ".join(repr(a) for a in literals)
    parts = []
    for m in info.metadata:
        for attr, sym in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            if isinstance(m, getattr(at, attr.capitalize())):
                parts.append(f"{sym} {getattr(m, attr)}")
    kind = "an integer" if info.annotation in (int, int | None) else "a number"
    text = f"{kind} " + " and ".join(parts) if parts else kind
    return text + (", or null" if info.default is None else "")


def _errors_from(exc: ValidationError, cls: type[BaseModel], model: str, dataset: str) -> list[dict[str, str]]:
    """pydantic errors -> [{field, message}] that always state the allowed range or the known fields."""
    out: list[dict[str, str]] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if not loc:
            out.append({"field": "hyperparameters", "message": err["msg"]})
            continue
        name, field = loc[0], "hyperparameters." + ".".join(loc)
        if err["type"] == "extra_forbidden":
            out.append({"field": field, "message": f"unknown hyperparameter {name!r}: {model} on {dataset} "
                        f"does not take it; it takes {', '.join(cls.model_fields)}"})
        elif name in cls.model_fields:
            out.append({"field": field, "message": f"must be {_bounds_text(cls, name)} (got {err.get('input')!r})"})
        else:
            out.append({"field": field, "message": err["msg"]})
    return out


def datasets_for(spec: ModelSpec) -> list[str]:
    """Names of the datasets (built-in and uploaded) a model trains on."""
    from ml.data import dataset_names, get_dataset_spec

    out = []
    for name in dataset_names():
        ds = get_dataset_spec(name)
        if spec.serves(ds.task, ds.input_kind):
            out.append(name)
    return out


def _specs(model: str, dataset: str):
    from ml.data import get_dataset_spec

    try:
        spec = get_model_spec(model)
    except KeyError:
        raise InvalidConfig([{"field": "model", "message":
                              f"unknown model {model!r}; known: {', '.join(model_specs())}"}]) from None
    ds = get_dataset_spec(dataset)  # InvalidConfig naming the known ones
    if not spec.serves(ds.task, ds.input_kind):
        raise InvalidConfig([{"field": "dataset", "message":
                              f"{model} cannot be trained on {dataset} ({ds.task}, {ds.input_kind}); "
                              f"it trains on: {', '.join(datasets_for(spec)) or 'no dataset present'}"}])
    return spec, ds


def _apply_preset(preset: str | None, model: str | None, dataset: str | None, overrides: dict[str, Any]):
    if preset is None:
        if not model or not dataset:
            missing = "model" if not model else "dataset"
            raise InvalidConfig([{"field": missing, "message": "required unless a preset is named"}])
        return model, dataset, overrides
    from ml.presets import PRESETS

    if preset not in PRESETS:
        raise InvalidConfig([{"field": "preset", "message":
                              f"unknown preset {preset!r}; known: {', '.join(PRESETS)}"}])
    p = PRESETS[preset]
    return model or p.model, dataset or p.dataset, {**p.hyperparameters, **overrides}


def resolve_config(model: str | None, dataset: str | None, overrides: dict[str, Any] | None = None, *,
                   preset: str | None = None) -> TrainConfig:
    """Merge a dataset's course defaults, a preset and `overrides`; raises InvalidConfig naming every bad field."""
    model, dataset, overrides = _apply_preset(preset, model, dataset, dict(overrides or {}))
    spec, ds = _specs(model, dataset)
    cls = hyperparameter_class(model, ds.is_image)
    default_loss = spec.losses[ds.task][0]
    defaults = {**spec.defaults_for(ds.name, ds.input_kind), "loss": default_loss}
    merged = {**defaults, **overrides}
    if merged.get("loss") is None:
        merged["loss"] = default_loss
    notes = _fit_lr(spec, cls, defaults, merged, overrides)
    try:
        hp = cls(**merged)
    except ValidationError as exc:
        raise InvalidConfig(_errors_from(exc, cls, model, dataset)) from None
    errors = _pair_errors(hp, spec, ds)
    if errors:
        raise InvalidConfig(errors)
    if "image_size" in cls.model_fields:  # the size the images are loaded at, so a stored config says it
        hp = hp.model_copy(update={"image_size": ds.fixed_image_size or hp.image_size or ds.default_image_size})
    return TrainConfig(model=model, dataset=dataset, hyperparameters=hp, preset=preset, notes=notes)


def _pair_errors(hp, spec: ModelSpec, ds) -> list[dict[str, str]]:
    """What this model on this dataset cannot take although each knob is in range on its own.

    Checked here, at submit, so a job (or every trial of a sweep) is refused with a 422 instead of
    failing in the worker when the dataset loads.
    """
    errors = []
    size = getattr(hp, "image_size", None)
    if ds.fixed_image_size is not None and size not in (None, ds.fixed_image_size):
        errors.append({"field": "hyperparameters.image_size", "message":
                       f"{ds.name} images are {ds.fixed_image_size} px; leave image_size unset or set it "
                       f"to {ds.fixed_image_size} (got {size})"})
    tta = getattr(hp, "tta", "none")
    if tta != "none" and ds.input_kind != "photos":
        errors.append({"field": "hyperparameters.tta", "message":
                       f"{tta!r} is for photos; {ds.name} is {ds.input_kind}, where a mirrored or "
                       "re-framed image can be another class (use 'none')"})
    if hp.select == "last" and hp.early_stopping_patience:
        errors.append({"field": "hyperparameters.early_stopping_patience", "message":
                       "must be 0 when select is 'last': early stopping keeps the best epoch "
                       f"(got {hp.early_stopping_patience})"})
    allowed = spec.losses[ds.task]
    if hp.loss not in allowed:
        errors.append({"field": "hyperparameters.loss", "message":
                       f"{spec.name} on {ds.name} must use one of {', '.join(map(repr, allowed))} "
                       f"(got {hp.loss!r})"})
    return errors


def _fit_lr(spec: ModelSpec, cls, defaults: dict, merged: dict, overrides: dict) -> list[str]:
    """A changed optimizer or loss without an lr gets that combination's default lr (and a note saying so)."""
    if "lr" in overrides:
        return []
    base_opt = defaults.get("optimizer", cls.model_fields["optimizer"].default)
    opt, loss = merged.get("optimizer", base_opt), merged.get("loss")
    if (opt, loss) == (base_opt, defaults["loss"]):
        return []
    lr = spec.lr_for(opt, loss)
    current = merged.get("lr", cls.model_fields["lr"].default)
    if lr is None or lr == current:
        return []
    merged["lr"] = lr
    return [f"lr {lr:g} is {spec.name}'s default for optimizer {opt!r} with loss {loss!r} "
            f"(the dataset's default lr {current:g} fits optimizer {base_opt!r} with loss {defaults['loss']!r}); "
            "set lr to choose another"]


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild and re-validate a TrainConfig from its `model_dump()` (a job row, a checkpoint).

    Stored configs from before per-model hyperparameters hold every model's knobs (they were
    accepted and ignored then); the ones this model does not take are dropped, not refused. A knob
    the stored config lacks did not exist when it was made: it gets the class default (what the
    engine did then), not a newer dataset default, so an old checkpoint rebuilds the net it trained.
    """
    if not isinstance(data, dict) or "model" not in data or "dataset" not in data:
        raise InvalidConfig([{"field": "config", "message": "must be an object with model, dataset, hyperparameters"}])
    _, ds = _specs(data["model"], data["dataset"])
    takes = hyperparameter_class(data["model"], ds.is_image).model_fields
    given = dict(data.get("hyperparameters") or {})
    stored = {k: given[k] if k in given else info.default for k, info in takes.items()
              if k in given or k in LATER_KNOBS}
    config = resolve_config(data["model"], data["dataset"], stored)
    return config.model_copy(update={"preset": data.get("preset"), "notes": list(data.get("notes") or [])})
