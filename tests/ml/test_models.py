"""Model registry and builders: names, duplicate guard, output shapes, the two CNN variants."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ml.config import resolve_config
from tests.utils.pairs import VALID_PAIRS
from ml.checkpoint import save_checkpoint
from ml.models import (
    OutputKind, build_model, get_model_spec, model_names, output_kind, probabilities, register_model_spec,
)
from ml.models.layers import PolynomialFeatures

SHAPES = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cats_dogs": (3, 64, 64),
          "synthetic_linear": (2,), "synthetic_sine": (1,), "synthetic_line": (1,), "synthetic_separable": (2,)}
CLASSES = {"mnist": 10, "fashion_mnist": 10, "cats_dogs": 2, "synthetic_linear": 0, "synthetic_sine": 0,
           "synthetic_line": 0, "synthetic_separable": 2}


def test_registry_holds_every_model_of_the_course():
    assert set(model_names()) == set(VALID_PAIRS)


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_model_spec(get_model_spec("mlp"))


@pytest.mark.parametrize("model, dataset", [(m, d) for m, ds in VALID_PAIRS.items() for d in ds])
def test_every_pair_builds_with_the_right_output_width(model, dataset):
    config = resolve_config(model, dataset, {})
    net = build_model(config, SHAPES[dataset], CLASSES[dataset])
    out = net.eval()(torch.randn(4, *SHAPES[dataset]))
    expected = 1 if output_kind(config) in (OutputKind.IDENTITY, OutputKind.SIGMOID) else CLASSES[dataset]
    assert out.shape == (4, expected)


def test_build_model_accepts_a_checkpoint_config_dict():
    config = resolve_config("mlp", "mnist", {"hidden_sizes": [32]}).model_dump()
    net = build_model(config, [1, 28, 28], 10)
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [32, 10]


def test_mlp_layers_follow_hidden_sizes_activation_and_dropout():
    config = resolve_config("mlp", "mnist", {"hidden_sizes": [64, 32, 16], "activation": "tanh", "dropout": 0.3})
    net = build_model(config, (1, 28, 28), 10)
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [64, 32, 16, 10]
    assert sum(isinstance(m, nn.Tanh) for m in net) == 3
    assert all(m.p == 0.3 for m in net if isinstance(m, nn.Dropout))


def test_cnn_variant_follows_the_input():
    digits = build_model(resolve_config("cnn", "mnist", {}), (1, 28, 28), 10)
    photos = build_model(resolve_config("cnn", "cats_dogs", {}), (3, 96, 96), 2)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in digits.modules())
    assert [m.out_channels for m in digits if isinstance(m, nn.Conv2d)] == [32, 64]
    assert any(isinstance(m, nn.BatchNorm2d) for m in photos.modules())
    assert photos.eval()(torch.randn(2, 3, 128, 128)).shape == (2, 2)  # any size: global pooling


def test_logistic_regression_has_one_logit_and_sigmoid_probabilities():
    config = resolve_config("logistic_regression", "cats_dogs", {})
    assert output_kind(config) is OutputKind.SIGMOID
    p = probabilities(torch.tensor([[0.0], [100.0]]), OutputKind.SIGMOID)
    assert torch.allclose(p, torch.tensor([[0.5, 0.5], [0.0, 1.0]]))


def test_output_kinds_keep_the_strings_stored_configs_and_checkpoints_hold(tmp_path):
    assert [k.value for k in OutputKind] == ["identity", "sigmoid", "softmax"]
    assert OutputKind("softmax") is OutputKind.SOFTMAX and f"{OutputKind.IDENTITY}" == "identity"
    save_checkpoint(tmp_path / "c.pt", {"output": output_kind(resolve_config("mlp", "mnist", {}))})
    stored = torch.load(tmp_path / "c.pt", weights_only=True)["output"]  # an enum object would be refused here
    assert type(stored) is str and stored == "softmax"


def test_polynomial_features_are_standardised_on_fit():
    feats = PolynomialFeatures(1, 3)
    x = torch.linspace(-3, 3, 101).unsqueeze(1)
    feats.fit(x)
    out = feats(x)
    assert out.shape == (101, 3)
    assert torch.allclose(out.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.std(0, unbiased=False), torch.ones(3), atol=1e-4)
    assert "mean" in dict(feats.named_buffers())  # travels in the state_dict


@pytest.mark.parametrize("shape", [(3, 64, 64), (3, 96, 96), (1, 28, 28)])
def test_residual_cnn_adds_its_input_back_and_pools_any_size(shape):
    config = resolve_config("cnn", "cats_dogs" if shape[0] == 3 else "mnist", {"blocks": "residual"})
    net = build_model(config, shape, 2)
    blocks = [m for m in net.modules() if hasattr(m, "shortcut")]
    assert len(blocks) == 8  # two per stage, four stages
    # the first block keeps its shape (identity shortcut); each stage's first block halves it (1x1 projection)
    assert [isinstance(b.shortcut, nn.Identity) for b in blocks] == [True, True, False, True, False, True, False, True]
    assert net.eval()(torch.randn(2, *shape)).shape == (2, 2)


def test_centre_zoom_drops_the_margins_and_commutes_with_the_mirror():
    from ml.models import centre_zoom

    framed = torch.zeros(1, 3, 64, 64)
    framed[..., 6:58, 6:58] = 1.0  # a 6 px frame around the centre 52 px
    zoomed = centre_zoom(framed)
    assert zoomed.shape == framed.shape and torch.equal(zoomed, torch.ones_like(zoomed))
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(centre_zoom(x.flip(3)), centre_zoom(x).flip(3), atol=1e-6)
    assert not torch.allclose(centre_zoom(x), x, atol=0.1)
