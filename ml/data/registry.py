"""Name-keyed dataset registry: configs name a dataset, never a path or an import path.

Each built-in dataset registers one DatasetSpec beside its loader (mnist.py, cats_dogs.py,
synthetic.py); they are found by listing this package, so adding a dataset is adding a file.
Uploaded datasets come from a lookup the service installs (`use_uploaded_datasets`): the
service finds the upload's folder by name in its database, never from the name itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from ml.data.base import InputKind, RawDataset, Task
from ml.discover import import_modules
from ml.errors import InvalidConfig


@dataclass(frozen=True)
class Located:
    """Where a dataset's source lives and which of its files exist (found without decoding)."""

    location: str
    files: list[str | Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DatasetSpec:
    """What the catalog, validation, the loader and serving know about a dataset before touching its files."""

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
    # (data_dir, image_size, cache_dir) -> RawDataset; raises DatasetFilesMissing
    load: Callable[[Path, int | None, Path | None], RawDataset]
    # (data_dir) -> {"train": n, "test": n, "total": n} or {} when unknown; headers / file counts only
    sizes: Callable[[Path], dict[str, int]]
    fixed_image_size: int | None = None  # 28 for the IDX sets
    # how an upload to POST /v1/predict is framed like a training sample: "digit" (MNIST: box 20,
    # centre of mass), "garment" (Fashion-MNIST: box 28, centred), "photo" (resize), "rows" (JSON features)
    upload_framing: str | None = None
    servable: bool = False  # POST /v1/predict/{name} serves its best model
    example_model: str | None = None  # what the docs and error messages suggest training
    uploaded: bool = False
    columns: tuple[str, ...] = ()  # tabular: the feature names, in order
    checksum: str | None = None  # known before loading (uploads: the sha256 of the uploaded file)

    @property
    def is_image(self) -> bool:
        return self.input_kind in ("grayscale", "photos")


class UploadedDatasets(Protocol):
    """How the registry finds datasets users uploaded (the service implements it over its database)."""

    def get(self, name: str) -> DatasetSpec | None: ...

    def names(self) -> list[str]: ...


_REGISTRY: dict[str, DatasetSpec] = {}
_uploaded: UploadedDatasets | None = None
# modules of this package that hold no dataset
_NOT_DATASETS = frozenset({"registry", "base", "load", "splits", "checksum", "transforms", "augment", "idx",
                           "uploads", "zipsafe"})


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset; registering a name twice is a programming error."""
    if spec.name in _REGISTRY:
        raise ValueError(f"dataset {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def use_uploaded_datasets(source: UploadedDatasets | None) -> None:
    """Install (or remove, with None) where uploaded datasets are looked up by name."""
    global _uploaded
    _uploaded = source


def _load_builtin() -> None:
    """Each dataset module of ml/data registers its spec on import, so a new file is a new dataset."""
    import_modules("ml.data", _NOT_DATASETS)


def builtin_dataset_names() -> list[str]:
    """The datasets that ship with the service, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def is_builtin(name: str) -> bool:
    """Whether `name` is a built-in dataset's name."""
    return name in builtin_dataset_names()


def dataset_names() -> list[str]:
    """Every dataset name: built-in, then uploaded."""
    return builtin_dataset_names() + (sorted(_uploaded.names()) if _uploaded is not None else [])


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec of `name`, or InvalidConfig naming the known datasets."""
    _load_builtin()
    spec = _REGISTRY.get(name) if isinstance(name, str) else None
    if spec is None and _uploaded is not None and isinstance(name, str):
        spec = _uploaded.get(name)
    if spec is None:
        raise InvalidConfig(
            [{"field": "dataset", "message": f"unknown dataset {name!r}; known: {', '.join(dataset_names())}"}]
        )
    return spec


def _under_data_dir(location: str, data_dir: Path) -> str:
    """`location` as DATA_DIR/<relative path> (its last folder name when it is elsewhere)."""
    path = Path(location)
    try:
        return str(Path("DATA_DIR") / path.relative_to(data_dir))
    except ValueError:
        return path.name


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
        "columns": list(spec.columns),
        "description": spec.description,
        "has_test_split": spec.has_test_split,
        "image_size": spec.fixed_image_size or spec.default_image_size,
        "servable": spec.servable,
        "upload_framing": spec.upload_framing,
        "example_model": spec.example_model,
        "uploaded": spec.uploaded,
        "present": present,
        # never show a server path: uploads live under the artifact dir, built-ins under DATA_DIR
        "location": "uploaded" if spec.uploaded else _under_data_dir(where.location, Path(data_dir)),
        "missing": list(where.missing),
        "sizes": spec.sizes(Path(data_dir)) if present else {},
    }
