"""The IDX reader on hand-made files: shapes, dtypes, gzip, and clear errors for broken files."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from ml.data.idx import read_idx, read_idx_shape


@pytest.mark.parametrize("name", ["labels-idx1-ubyte", "labels-idx1-ubyte.gz"])
def test_reads_1d_labels(tmp_path, write_idx, name):
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint8)
    x = read_idx(write_idx(tmp_path / name, labels))
    assert x.dtype == torch.uint8
    assert x.tolist() == labels.tolist()


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_reads_3d_images(tmp_path, write_idx, name):
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28).astype(np.uint8)
    path = write_idx(tmp_path / name, images)
    x = read_idx(path)
    assert x.shape == (3, 28, 28) and x.dtype == torch.uint8
    assert torch.equal(x, torch.from_numpy(images))
    assert read_idx_shape(path) == (3, 28, 28)


def test_reads_big_endian_wider_types(tmp_path, write_idx):
    values = np.array([[1.5, -2.25], [1e6, 0.0]], dtype=np.float32)
    x = read_idx(write_idx(tmp_path / "f.idx", values))
    assert x.dtype == torch.float32 and x.tolist() == values.tolist()


def test_bad_magic_names_the_file(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match=r"not-idx.*bad magic number"):
        read_idx(path)


def test_unknown_type_code(tmp_path):
    path = tmp_path / "odd-type"
    path.write_bytes(bytes([0, 0, 0x42, 1]) + (4).to_bytes(4, "big") + bytes(4))
    with pytest.raises(ValueError, match=r"odd-type.*data type code 0x42"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data_is_refused(tmp_path, idx_bytes, gz):
    data = idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))[:-100]
    path = tmp_path / ("short.gz" if gz else "short")
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match=r"short.*truncated.*\(10, 28, 28\)"):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "stub"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + (10).to_bytes(4, "big"))
    with pytest.raises(ValueError, match=r"stub.*truncated IDX header"):
        read_idx(path)


def test_trailing_bytes_are_refused(tmp_path, idx_bytes):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8)) + b"junk")
    with pytest.raises(ValueError, match=r"long.*4 unexpected trailing bytes"):
        read_idx(path)


def test_corrupt_gzip_stream(tmp_path, idx_bytes):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(1000, dtype=np.uint8)))[:-20])
    with pytest.raises(ValueError, match=r"broken\.gz"):
        read_idx(path)
