"""The mistakes grid: inputs shown as people see them, only for image classifiers that made mistakes."""
from __future__ import annotations

import io

import torch
from PIL import Image

from ml.data.base import DatasetBundle, TensorSplit
from ml.mistakes import displayable, write_mistakes
from ml import results


def _bundle(kind: str = "digits") -> DatasetBundle:
    x = torch.full((4, 1, 28, 28), -0.4242)  # MNIST's normalised black
    x[:, :, 10:18, 10:18] = 2.8215  # normalised white
    split = TensorSplit(x, torch.tensor([0, 1, 2, 3]))
    return DatasetBundle(name="d", task="classification", input_kind=kind, classes=list("abcd"),
                         input_shape=(1, 28, 28), train=split, val=split, test=split,
                         mean=[0.1307], std=[0.3081])


def test_displayable_undoes_the_normalisation():
    image = displayable(_bundle().test.x[0], [0.1307], [0.3081])
    assert image.shape == (28, 28)
    assert abs(image[0, 0]) < 1e-3 and abs(image[12, 12] - 1.0) < 1e-3
    photo = displayable(torch.zeros(3, 8, 8), [0.5, 0.4, 0.3], [0.2, 0.2, 0.2])
    assert photo.shape == (8, 8, 3) and abs(photo[0, 0, 2] - 0.3) < 1e-6


def test_write_mistakes_draws_a_captioned_grid(tmp_path):
    test = results.TestMetrics(loss=1.0, top_mistakes=[{"index": 2, "true": "c", "predicted": "a", "confidence": 0.9},
                                               {"index": 0, "true": "a", "predicted": "b", "confidence": 0.6}])
    path = write_mistakes(test, _bundle(), tmp_path)
    assert path == tmp_path / "mistakes.png"
    assert Image.open(io.BytesIO(path.read_bytes())).format == "PNG"


def test_no_grid_without_mistakes_or_for_tabular_data(tmp_path):
    assert write_mistakes(results.TestMetrics(loss=0.0), _bundle(), tmp_path) is None
    test = results.TestMetrics(loss=1.0, top_mistakes=[{"index": 0, "true": "a", "predicted": "b", "confidence": 0.6}])
    assert write_mistakes(test, _bundle("tabular"), tmp_path) is None
    assert write_mistakes(None, _bundle(), tmp_path) is None
    assert not (tmp_path / "mistakes.png").exists()
