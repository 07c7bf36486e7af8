"""The perceptron, added as one file: it converges on a linearly separable set, and only binary sets take it."""
from __future__ import annotations

import pytest
import torch

from ml.config import resolve_config
from ml.errors import InvalidConfig
from ml.models.perceptron import perceptron_loss
from ml.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_loss_gradient_is_the_perceptron_rule():
    w = torch.zeros(1, 2, requires_grad=True)
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    y = torch.tensor([1, 0])
    out = x @ w.T + torch.tensor([[0.5]])  # scores 0.5 (right for y=1), 0.5 (wrong for y=0)
    perceptron_loss()(out, y).backward()
    # only the misclassified sample (x2, target -1) contributes: grad = -(t·x)/n = x2/2
    assert torch.allclose(w.grad, torch.tensor([[1.5, -0.5]]))


def test_converges_on_a_linearly_separable_set(tmp_path, data_dir):
    result = train(resolve_config("perceptron", "synthetic_separable", {"epochs": 30}),
                   data_dir=data_dir, out_dir=tmp_path)
    converged = [m.epoch for m in result.epochs if m.train_accuracy == 1.0]
    assert converged, [m.train_accuracy for m in result.epochs]  # an epoch with no update at all
    assert result.test.accuracy == 1.0 and result.config["hyperparameters"]["loss"] == "perceptron"


def test_regression_and_ten_class_sets_are_refused():
    for dataset in ("synthetic_linear", "mnist"):
        with pytest.raises(InvalidConfig, match="perceptron cannot be trained on"):
            resolve_config("perceptron", dataset, {})
