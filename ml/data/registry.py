"""Name-keyed dataset registry: configs name a dataset, never a path or an import path."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ml.data import mnist, photos, synthetic
from ml.data.base import InputKind, RawDataset, Task
from ml.errors import InvalidConfig


@dataclass(frozen=True)
class Located:
    """Where a dataset's source lives and which of its files exist (found without decoding)."""

    location: str
    files: list[str | Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DatasetSpec:
    """What the catalog and the loader know about a dataset before touching its files."""

    name: str
    task: Task
    input_kind: InputKind
    classes: tuple[str, ...]
    description: str
    has_test_split: bool
    channels: int | None  # None for tabular sets
    default_image_size: int | None  # None when the size is fixed by the source
    # (data_dir) -> Located; must be fast: stat calls only
    locate: Callable[[Path], Located]
    # (data_dir, image_size, cache_dir) -> RawDataset; raises DatasetNotFound
    load: Callable[[Path, int | None, Path | None], RawDataset]
    # (data_dir) -> {"train": n, "test": n, "total": n} or {} when unknown; headers / file counts only
    sizes: Callable[[Path], dict[str, int]]
    fixed_image_size: int | None = None  # 28 for the IDX sets


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset; registering a name twice is a programming error."""
    if spec.name in _REGISTRY:
        raise ValueError(f"dataset {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def dataset_names() -> list[str]:
    """Every registered dataset name, sorted."""
    return sorted(_REGISTRY)


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec of `name`, or InvalidConfig naming the known datasets."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise InvalidConfig(
            [{"field": "dataset", "message": f"unknown dataset {name!r}; known: {', '.join(dataset_names())}"}]
        ) from None


def describe_dataset(name: str, data_dir: str | Path) -> dict:
    """Catalog entry for `name`: presence, location, missing files, sizes; never decodes data."""
    spec = get_dataset_spec(name)
    where = spec.locate(Path(data_dir))
    present = not where.missing
    return {
        "name": spec.name,
        "task": spec.task,
        "input_kind": spec.input_kind,
        "classes": list(spec.classes),
        "description": spec.description,
        "has_test_split": spec.has_test_split,
        "image_size": spec.fixed_image_size or spec.default_image_size,
        "present": present,
        "location": where.location,
        "missing": list(where.missing),
        "sizes": spec.sizes(Path(data_dir)) if present else {},
    }


# --- the built-in datasets -------------------------------------------------------------------

def _idx_spec(name: str, classes: list[str], description: str) -> DatasetSpec:
    def locate(data_dir: Path) -> Located:
        found, missing = mnist.find_idx_files(name, data_dir)
        return Located(str(mnist.idx_dir(name, data_dir)), list(found.values()), missing)

    return DatasetSpec(
        name=name,
        task="classification",
        input_kind="digits",  # serving centres uploads MNIST-style for both IDX sets
        classes=tuple(classes),
        description=description,
        has_test_split=True,
        channels=1,
        default_image_size=None,
        fixed_image_size=28,
        locate=locate,
        load=lambda data_dir, image_size, cache_dir: mnist.load_idx_dataset(name, data_dir),
        sizes=lambda data_dir: mnist.idx_sizes(name, data_dir),
    )


def _photo_spec(name: str, folder: str, classes: list[str], description: str) -> DatasetSpec:
    def locate(data_dir: Path) -> Located:
        files, missing = photos.list_photos(data_dir / folder, classes)
        return Located(str(data_dir / folder), [os.path.join(data_dir, folder, rel) for rel, _ in files], missing)

    def sizes(data_dir: Path) -> dict[str, int]:
        files, _ = photos.list_photos(data_dir / folder, classes)
        return {"total": len(files)}

    return DatasetSpec(
        name=name,
        task="binary" if len(classes) == 2 else "classification",
        input_kind="photos",
        classes=tuple(classes),
        description=description,
        has_test_split=False,
        channels=3,
        default_image_size=64,
        locate=locate,
        load=lambda data_dir, image_size, cache_dir: photos.load_photo_folder(
            name, data_dir / folder, classes, image_size, cache_dir),
        sizes=sizes,
    )


def _synthetic_spec(name: str, make: Callable[[], RawDataset], n: int, description: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        task="regression",
        input_kind="tabular",
        classes=(),
        description=description,
        has_test_split=False,
        channels=None,
        default_image_size=None,
        locate=lambda data_dir: Located("generated in memory"),
        load=lambda data_dir, image_size, cache_dir: make(),
        sizes=lambda data_dir: {"total": n},
    )


register_dataset(_idx_spec(
    "mnist", mnist.DIGIT_CLASSES, "Handwritten digits 0-9, 28x28 grey, 60,000 train / 10,000 test."
))
register_dataset(_idx_spec(
    "fashion_mnist", mnist.FASHION_CLASSES, "Zalando clothing in 10 classes, 28x28 grey, 60,000 train / 10,000 test."
))
register_dataset(_photo_spec(
    "cats_dogs", "cats-dogs", ["cat", "dog"],
    "Photos of cats and dogs (Kaggle Dogs vs. Cats subset), RGB resized to image_size; 80/10/10 split.",
))
register_dataset(_synthetic_spec(
    "synthetic_linear", synthetic.synthetic_linear, synthetic.LINEAR["n"],
    "y = Xw + b + noise with w = [2, -3.4], b = 4.2, noise std 0.01; 1,000 samples, 80/10/10.",
))
register_dataset(_synthetic_spec(
    "synthetic_sine", synthetic.synthetic_sine, synthetic.SINE["n"],
    "y = sin(x) + noise (std 0.1), x uniform in [-3, 3]; 125 samples (100 train), for polynomial fitting.",
))
