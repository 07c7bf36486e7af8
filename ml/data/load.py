"""load_dataset: decode once (memoised per process), split, normalise, hand back a DatasetBundle."""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import torch

from ml.data.base import DatasetBundle, RawDataset, TensorSplit
from ml.data.checksum import file_identity
from ml.data.registry import DatasetSpec, get_dataset_spec
from ml.data.splits import TEST_FRACTION, TEST_SPLIT_SEED, split_indices
from ml.data.transforms import normalize
from ml.errors import DatasetFilesMissing, InvalidConfig

# a worker runs many jobs: keep the last few decoded sources (MNIST uint8 is ~55 MB)
MEMO_SIZE = 4
_memo: OrderedDict[tuple, RawDataset] = OrderedDict()
_memo_lock = threading.Lock()


def clear_memo() -> None:
    """Forget every decoded dataset held by this process."""
    with _memo_lock:
        _memo.clear()


def _raw(spec: DatasetSpec, data_dir: Path, image_size: int | None, cache_dir: Path | None) -> RawDataset:
    where = spec.locate(data_dir)
    if where.missing:
        raise DatasetFilesMissing(spec.name, Path(where.location), where.missing)
    # the files' identity (path, size, mtime) stands for their content here; a rewrite re-decodes
    key = (spec.name, image_size, tuple(file_identity(p) for p in where.files))
    with _memo_lock:
        raw = _memo.get(key)
        if raw is not None:
            _memo.move_to_end(key)
            return raw
    raw = spec.load(data_dir, image_size, cache_dir)
    with _memo_lock:
        _memo[key] = raw
        while len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)
    return raw


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (n, C, H, W) on the [0, 1] scale, exact via histograms."""
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        hist = torch.bincount(x[:, c].reshape(-1), minlength=256).double()
        total = max(float(hist.sum()), 1.0)
        mean = float((hist * levels).sum() / total)
        var = float((hist * (levels - mean) ** 2).sum() / total)
        means.append(mean)
        stds.append(var**0.5 if var > 0 else 1.0)  # a constant channel would divide by zero
    return means, stds


def _check_image_size(spec: DatasetSpec, image_size: int | None) -> int | None:
    if spec.fixed_image_size is not None:
        if image_size not in (None, spec.fixed_image_size):
            raise InvalidConfig([{
                "field": "hyperparameters.image_size",
                "message": f"{spec.name} images are {spec.fixed_image_size} px; leave image_size unset "
                f"or set it to {spec.fixed_image_size}, got {image_size}",
            }])
        return None
    if spec.default_image_size is None:
        return None  # tabular: no images to size
    if image_size is None:
        return spec.default_image_size
    if not isinstance(image_size, int) or not 16 <= image_size <= 256:
        raise InvalidConfig([{
            "field": "hyperparameters.image_size",
            "message": f"must be an integer from 16 to 256, got {image_size!r}",
        }])
    return image_size


def load_dataset(
    name: str,
    data_dir: str | Path,
    *,
    image_size: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_train_samples: int | None = None,
    cache_dir: str | Path | None = None,
    test_split_seed: int = TEST_SPLIT_SEED,
) -> DatasetBundle:
    """Dataset `name` from DATA_DIR, split train/val/test, images normalised with the train split's stats."""
    spec = get_dataset_spec(name)
    _check_split_options(spec, val_fraction, max_train_samples)
    size = _check_image_size(spec, image_size)
    raw = _raw(spec, Path(data_dir), size, Path(cache_dir) if cache_dir is not None else None)
    idx = split_indices(
        raw.y, has_test=spec.has_test_split, val_fraction=val_fraction, seed=seed,
        max_train_samples=max_train_samples, test_split_seed=test_split_seed,
    )
    splits, mean, std = _normalised_splits(raw, spec, idx)
    extra = _bundle_extra(raw, spec, idx)
    extra.update({"seed": seed, "val_fraction": val_fraction, "max_train_samples": max_train_samples,
                  "sizes": {k: len(s) for k, s in splits.items()}})
    return DatasetBundle(
        name=spec.name, task=spec.task, input_kind=spec.input_kind, classes=list(spec.classes),
        input_shape=tuple(raw.x.shape[1:]), train=splits["train"], val=splits["val"], test=splits["test"],
        mean=mean, std=std, image_size=int(raw.x.shape[-1]) if raw.x.dtype == torch.uint8 else None,
        checksum=raw.checksum, extra=extra,
    )


def _check_split_options(spec: DatasetSpec, val_fraction: float, max_train_samples: int | None) -> None:
    limit = 1.0 if spec.has_test_split else round(1.0 - TEST_FRACTION, 6)  # folders also lose a test share
    if not 0.0 <= val_fraction < limit:
        raise InvalidConfig([{
            "field": "hyperparameters.val_fraction", "message": f"must be >= 0 and < {limit}, got {val_fraction}",
        }])
    if max_train_samples is not None and max_train_samples < 1:
        raise InvalidConfig([{
            "field": "hyperparameters.max_train_samples", "message": f"must be >= 1, got {max_train_samples}",
        }])


def _normalised_splits(raw: RawDataset, spec: DatasetSpec,
                       idx: dict[str, torch.Tensor]) -> tuple[dict[str, TensorSplit], list[float], list[float]]:
    """train/val/test as float tensors; uint8 images normalised with the training images' channel stats."""
    test_x, test_y = (raw.test_x, raw.test_y) if spec.has_test_split else (raw.x[idx["test"]], raw.y[idx["test"]])
    parts = {"train": (raw.x[idx["train"]], raw.y[idx["train"]]), "val": (raw.x[idx["val"]], raw.y[idx["val"]]),
             "test": (test_x, test_y)}
    if raw.x.dtype != torch.uint8:
        return {k: TensorSplit(x.float().contiguous(), y.clone()) for k, (x, y) in parts.items()}, [], []
    # statistics of the training images only (val and test excluded), before subsetting
    pool = idx["train_pool"]
    mean, std = channel_stats(parts["train"][0] if len(pool) == len(idx["train"]) else raw.x[pool])
    return {k: TensorSplit(normalize(x, mean, std).contiguous(), y.clone()) for k, (x, y) in parts.items()}, mean, std


def _bundle_extra(raw: RawDataset, spec: DatasetSpec, idx: dict[str, torch.Tensor]) -> dict:
    """The loader's extra facts, the test photos' files, and how uploads are framed."""
    extra = dict(raw.extra)
    files = extra.pop("files", None)
    if files is not None and not spec.has_test_split:  # lets a report name the photo behind a mistake
        extra["test_files"] = [files[i] for i in idx["test"].tolist()]
    extra.update({"upload_framing": spec.upload_framing, "columns": list(spec.columns)})
    return extra
