"""mnist / fashion_mnist: hand-made IDX trees, missing files, and the real DATA_DIR."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from ml.data import describe_dataset, load_dataset
from ml.data.load import _memo
from ml.errors import DatasetFilesMissing


def test_tiny_tree_loads_normalised_splits(tiny_mnist):
    b = load_dataset("mnist", tiny_mnist, val_fraction=0.1, seed=0)
    assert (b.task, b.input_kind, b.input_shape, b.classes) == (
        "classification", "grayscale", (1, 28, 28), [str(d) for d in range(10)])
    assert (len(b.train), len(b.val), len(b.test)) == (180, 20, 50)
    for split in (b.train, b.val, b.test):
        assert split.x.dtype == torch.float32 and split.x.is_contiguous()
        assert split.x.shape[1:] == (1, 28, 28) and split.y.dtype == torch.int64
    # statistics come from the training split, which is therefore standardised
    assert abs(float(b.train.x.mean())) < 1e-3 and abs(float(b.train.x.std()) - 1) < 1e-2
    assert len(b.mean) == len(b.std) == 1 and 0.4 < b.mean[0] < 0.6
    assert torch.bincount(b.val.y).tolist() == [2] * 10  # stratified
    assert len(b.checksum) == 64


def test_missing_files_are_named_with_the_directory(tiny_mnist):
    (tiny_mnist / "mnist" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    (tiny_mnist / "mnist" / "raw" / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DatasetFilesMissing) as err:
        load_dataset("mnist", tiny_mnist)
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte" in message and "train-images-idx3-ubyte" in message
    assert "train-labels" not in message
    assert "mnist/raw" in message and str(tiny_mnist) not in message  # the folder, never the server path
    info = describe_dataset("mnist", tiny_mnist)
    assert info["present"] is False and len(info["missing"]) == 2 and info["sizes"] == {}


def test_fashion_mnist_looks_in_its_own_folder(tiny_mnist):
    with pytest.raises(DatasetFilesMissing, match="fashion-mnist"):
        load_dataset("fashion_mnist", tiny_mnist)


def test_labels_not_matching_images_are_refused(tiny_mnist, write_idx):
    write_idx(tiny_mnist / "mnist" / "raw" / "train-labels-idx1-ubyte", np.zeros(7, dtype=np.uint8))
    with pytest.raises(ValueError, match="7 labels for 200 images"):
        load_dataset("mnist", tiny_mnist)


def test_a_rewritten_file_changes_data_and_checksum(tiny_mnist, write_idx):
    first = load_dataset("mnist", tiny_mnist)
    write_idx(tiny_mnist / "mnist" / "raw" / "t10k-images-idx3-ubyte", np.zeros((50, 28, 28), dtype=np.uint8))
    second = load_dataset("mnist", tiny_mnist)  # same process: the memo must notice the change
    assert second.checksum != first.checksum
    assert not torch.equal(first.test.x, second.test.x)


def test_describe_reads_headers_only(tiny_mnist):
    info = describe_dataset("mnist", tiny_mnist)
    assert info["present"] is True and info["missing"] == []
    assert info["sizes"] == {"train": 200, "test": 50, "total": 250}
    assert info["location"] == "DATA_DIR/mnist/raw"  # never a server path


@pytest.mark.parametrize("name, classes", [("mnist", "0"), ("fashion_mnist", "t-shirt/top")])
def test_real_data(real_data_dir, name, classes):
    info = describe_dataset(name, real_data_dir)
    assert info["present"] and info["sizes"] == {"train": 60000, "test": 10000, "total": 70000}
    cold = load_dataset(name, real_data_dir, seed=0)
    decoded = next(reversed(_memo.values()))  # the raw arrays this load decoded, most recent in the memo
    warm = load_dataset(name, real_data_dir, seed=0)
    assert (len(cold.train), len(cold.val), len(cold.test)) == (54000, 6000, 10000)
    assert cold.classes[0] == classes and cold.train.x.shape == (54000, 1, 28, 28)
    assert warm.checksum == cold.checksum and torch.equal(warm.val.y, cold.val.y)
    # the second load took the decoded arrays from the memo instead of decoding again (not timed: on a
    # loaded CI box a memoised load was once slower than the cold one, allocating its ~200 MB split)
    assert next(reversed(_memo.values())) is decoded
    # every class is present in each split in about its natural share
    assert torch.bincount(cold.val.y).min() > 500
