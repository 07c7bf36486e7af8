"""What can be trained: models, datasets and presets, read from their specs.

Enough for a client to build a form: per model and dataset the schema gives types, bounds and
choices of exactly the hyperparameters it takes, and `defaults` the resolved values to pre-fill.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.config import datasets_for, hyperparameter_class, resolve_config
from ml.models.spec import ImageOptions, ModelSpec, model_specs
from ml.presets import PRESETS


def hyperparameter_schema(model: str, images: bool) -> dict[str, Any]:
    """JSON schema of the hyperparameters `model` takes (on image datasets when `images`)."""
    schema = hyperparameter_class(model, images).model_json_schema()
    return {"type": "object", "additionalProperties": False, "properties": schema["properties"],
            **({"$defs": schema["$defs"]} if "$defs" in schema else {})}


def model_entry(spec: ModelSpec) -> dict[str, Any]:
    """One model's catalog entry."""
    from ml.data import get_dataset_spec

    datasets = datasets_for(spec)
    images = any(get_dataset_spec(d).is_image for d in datasets) or not datasets
    return {
        "name": spec.name,
        "description": spec.description,
        "datasets": datasets,
        "losses": {task: list(losses) for task, losses in spec.losses.items()},
        "input_kinds": list(spec.input_kinds),
        "hyperparameters": list(hyperparameter_class(spec.name, images).model_fields),
        # image_size, augment and tta apply to image datasets only; `defaults` shows each dataset's exact set
        "hyperparameters_schema": hyperparameter_schema(spec.name, images),
        "image_only_hyperparameters": list(ImageOptions.model_fields) if images else [],
        "defaults": {d: resolve_config(spec.name, d, {}).hp.model_dump() for d in datasets},
    }


def catalog(data_dir: Path | str) -> dict[str, Any]:
    """Models, datasets (present?, sizes, servable, example model) and presets."""
    from ml.data import dataset_names, describe_dataset  # torch: only when a catalog is asked for

    return {
        "models": [model_entry(spec) for spec in model_specs().values()],
        "datasets": [describe_dataset(n, Path(data_dir)) for n in dataset_names()],
        "presets": [{"name": name, "model": p.model, "dataset": p.dataset, "hyperparameters": p.hyperparameters,
                     "description": p.description} for name, p in PRESETS.items()],
    }


def servable_datasets() -> list[str]:
    """Datasets whose best model POST /v1/predict/{name} serves (built-in and uploaded)."""
    from ml.data import dataset_names, get_dataset_spec

    return [n for n in dataset_names() if get_dataset_spec(n).servable]


def dataset_is_servable(name: str) -> bool:
    """Whether `name` is a servable dataset (False for unknown names)."""
    from ml.data import get_dataset_spec
    from ml.errors import InvalidConfig

    try:
        return get_dataset_spec(name).servable
    except InvalidConfig:
        return False


def example_model(name: str) -> str:
    """The model the docs suggest training on a dataset."""
    from ml.data import get_dataset_spec

    return get_dataset_spec(name).example_model or "mlp"


def models_for(dataset: str) -> list[str]:
    """Models that train on `dataset`."""
    from ml.data import get_dataset_spec

    ds = get_dataset_spec(dataset)
    return [name for name, spec in model_specs().items() if spec.serves(ds.task, ds.input_kind)]


def known_checksum(name: str) -> str | None:
    """A dataset's checksum when it is known without reading its files (uploads), else None."""
    from ml.data import get_dataset_spec

    return get_dataset_spec(name).checksum


def dataset_checksum(name: str, data_dir: str | Path, cache_dir: str | Path | None = None) -> str:
    """The checksum training would record for this dataset now: an upload's is known; a built-in's is
    read from its files (hashes memoised per process; photos come from the decoded cache when it holds them)."""
    from ml.data import get_dataset_spec

    spec = get_dataset_spec(name)
    if spec.checksum is not None:
        return spec.checksum
    return spec.load(Path(data_dir), spec.default_image_size, Path(cache_dir) if cache_dir else None).checksum
