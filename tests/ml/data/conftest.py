"""Fixtures for the dataset tests: hand-made IDX files, photo folders, the real DATA_DIR."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.data import clear_memo

# ../shared/data beside the repository, wherever this clone lives
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data"
IDX_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B, np.dtype("i4"): 0x0C,
             np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}


def _idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of `array`: magic, big-endian dims, big-endian data."""
    array = np.asarray(array)
    header = struct.pack(">BBBB", 0, 0, IDX_CODES[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def idx_bytes():
    """idx_bytes(array) -> the bytes of an IDX file holding it."""
    return _idx_bytes


@pytest.fixture
def write_idx():
    """write_idx(path, array): an IDX file, gzipped when the name ends in .gz."""

    def write(path: Path, array: np.ndarray) -> Path:
        data = _idx_bytes(array)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
        return path

    return write


@pytest.fixture
def tiny_mnist(tmp_path, write_idx):
    """A DATA_DIR with a 200/50-sample mnist tree: 20 train and 5 test images per digit, mixed .gz and raw."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "data" / "mnist" / "raw"
    train_y = np.repeat(np.arange(10, dtype=np.uint8), 20)
    test_y = np.repeat(np.arange(10, dtype=np.uint8), 5)
    write_idx(raw / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (200, 28, 28), dtype=np.uint8))
    write_idx(raw / "train-labels-idx1-ubyte", train_y)
    write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (50, 28, 28), dtype=np.uint8))
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", test_y)
    return tmp_path / "data"


def _make_photo(path: Path, seed: int, size=(40, 30)) -> Path:
    """A small random-noise JPEG (noise, so every file's bytes differ)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)
    return path


@pytest.fixture
def make_photo():
    """make_photo(path, seed): write a small random-noise JPEG."""
    return _make_photo


@pytest.fixture
def photo_tree(tmp_path):
    """A DATA_DIR with cats-dogs/{cat,dog}: 10 small JPEGs each."""
    root = tmp_path / "data" / "cats-dogs"
    for label, cls in enumerate(["cat", "dog"]):
        for i in range(10):
            _make_photo(root / cls / f"{cls}.{i}.jpg", seed=100 * label + i)
    return tmp_path / "data"


@pytest.fixture
def real_data_dir() -> Path:
    """The shared DATA_DIR; skips the test when its files are not on this machine."""
    data_dir = Path(os.environ.get("DATA_DIR", DEFAULT_DATA_DIR))
    if not (data_dir / "mnist" / "raw").is_dir():
        pytest.skip(f"real datasets not found under {data_dir} (set DATA_DIR)")
    return data_dir


@pytest.fixture(autouse=True)
def _fresh_memo():
    """Each test decodes from scratch: the in-process memo must not hide a file change."""
    clear_memo()
    yield
    clear_memo()
