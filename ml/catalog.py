"""What can be trained: models, datasets, and per model a hyperparameter schema and per-dataset defaults.

Enough for a client to build a form: the schema gives types, bounds and choices; `defaults` gives
the resolved course defaults to pre-fill for the chosen dataset.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.config import Hyperparameters, resolve_config
from ml.defaults import MODEL_DESCRIPTIONS, MODEL_HYPERPARAMETERS, VALID_LOSSES, VALID_PAIRS


def hyperparameter_schema(model: str) -> dict[str, Any]:
    """JSON schema of the hyperparameters `model` uses (others are accepted but ignored)."""
    full = Hyperparameters.model_json_schema()
    used = MODEL_HYPERPARAMETERS[model]
    return {"type": "object", "additionalProperties": False,
            "properties": {k: v for k, v in full["properties"].items() if k in used}}


def catalog(data_dir: Path | str) -> dict[str, Any]:
    """Models (description, valid datasets, losses, schema, defaults per dataset) and datasets (present?, sizes)."""
    from ml.data import dataset_names, describe_dataset  # torch: only when a catalog is asked for

    models = []
    for name, datasets in VALID_PAIRS.items():
        models.append({
            "name": name,
            "description": MODEL_DESCRIPTIONS[name],
            "datasets": list(datasets),
            "losses": {task: list(losses) for task, losses in VALID_LOSSES[name].items()},
            "hyperparameters_schema": hyperparameter_schema(name),
            "defaults": {d: resolve_config(name, d, {}).hp.model_dump() for d in datasets},
        })
    return {"models": models, "datasets": [describe_dataset(n, Path(data_dir)) for n in dataset_names()]}
