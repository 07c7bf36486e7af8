"""MNIST and Fashion-MNIST: four IDX files each, decoded once into uint8 tensors."""
from __future__ import annotations

from pathlib import Path

import torch

from ml.data.base import RawDataset
from ml.data.checksum import files_checksum
from ml.data.idx import read_idx, read_idx_shape
from ml.errors import DatasetFilesMissing

DIGIT_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = [
    "t-shirt/top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
]
# subfolder of DATA_DIR per dataset name (the layout of ../shared/data)
FOLDERS = {"mnist": "mnist/raw", "fashion_mnist": "fashion-mnist/raw"}
FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def idx_dir(name: str, data_dir: str | Path) -> Path:
    """Where the IDX files of `name` live under DATA_DIR."""
    return Path(data_dir) / FOLDERS[name]


def find_idx_files(name: str, data_dir: str | Path) -> tuple[dict[str, Path], list[str]]:
    """(role -> existing path, preferring raw over .gz) and the names of the files not found."""
    directory = idx_dir(name, data_dir)
    found, missing = {}, []
    for role, base in FILES.items():
        for candidate in (directory / base, directory / f"{base}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            missing.append(f"{base}[.gz]")
    return found, missing


def require_idx_files(name: str, data_dir: str | Path) -> dict[str, Path]:
    """The four files' paths, or DatasetFilesMissing naming the missing ones and the directory."""
    found, missing = find_idx_files(name, data_dir)
    if missing:
        raise DatasetFilesMissing(name, idx_dir(name, data_dir), missing)
    return found


def idx_sizes(name: str, data_dir: str | Path) -> dict[str, int]:
    """Sample counts from the label files' headers only; {} when files are missing or unreadable."""
    found, missing = find_idx_files(name, data_dir)
    if missing:
        return {}
    try:
        train, test = read_idx_shape(found["train_y"])[0], read_idx_shape(found["test_y"])[0]
    except (OSError, ValueError):
        return {}
    return {"train": train, "test": test, "total": train + test}


def _images(path: Path) -> torch.Tensor:
    x = read_idx(path)
    if x.dtype != torch.uint8 or x.dim() != 3 or tuple(x.shape[1:]) != (28, 28):
        raise ValueError(f"{path}: expected uint8 images of shape (n, 28, 28), got {x.dtype} {tuple(x.shape)}")
    return x.unsqueeze(1)  # (n, 1, 28, 28): one grey channel


def _labels(path: Path, n: int) -> torch.Tensor:
    y = read_idx(path)
    if y.dtype != torch.uint8 or y.dim() != 1:
        raise ValueError(f"{path}: expected uint8 labels of shape (n,), got {y.dtype} {tuple(y.shape)}")
    if len(y) != n:
        raise ValueError(f"{path}: {len(y)} labels for {n} images")
    if len(y) and int(y.max()) > 9:
        raise ValueError(f"{path}: label {int(y.max())} out of range 0..9")
    return y.long()


def load_idx_dataset(name: str, data_dir: str | Path) -> RawDataset:
    """Decode the four IDX files of mnist / fashion_mnist: uint8 (n, 1, 28, 28) images, int64 labels."""
    files = require_idx_files(name, data_dir)
    train_x, test_x = _images(files["train_x"]), _images(files["test_x"])
    return RawDataset(
        x=train_x,
        y=_labels(files["train_y"], len(train_x)),
        test_x=test_x,
        test_y=_labels(files["test_y"], len(test_x)),
        checksum=files_checksum(idx_dir(name, data_dir), [p.name for p in files.values()]),
    )


# --- the specs: what each IDX dataset is --------------------------------------------------------

def _idx_spec(name: str, classes: list[str], description: str, framing: str):
    from ml.data.registry import DatasetSpec, Located

    def locate(data_dir: Path) -> Located:
        found, missing = find_idx_files(name, data_dir)
        return Located(str(idx_dir(name, data_dir)), list(found.values()), missing)

    return DatasetSpec(
        name=name, task="classification", input_kind="grayscale", classes=tuple(classes),
        description=description, has_test_split=True, channels=1, default_image_size=None,
        fixed_image_size=28, locate=locate,
        load=lambda data_dir, image_size, cache_dir: load_idx_dataset(name, data_dir),
        sizes=lambda data_dir: idx_sizes(name, data_dir),
        upload_framing=framing, servable=True, example_model="cnn",
    )


def _register() -> None:
    from ml.data.registry import register_dataset

    register_dataset(_idx_spec("mnist", DIGIT_CLASSES,
                               "Handwritten digits 0-9, 28x28 grey, 60,000 train / 10,000 test.", "digit"))
    register_dataset(_idx_spec("fashion_mnist", FASHION_CLASSES,
                               "Zalando clothing in 10 classes, 28x28 grey, 60,000 train / 10,000 test.", "garment"))


_register()
