"""Multi-layer perceptron with a chosen activation and dropout."""
from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field

from ml.models.linear import CLASSIFIER_LOSSES, CLASSIFIER_LRS
from ml.models.spec import Hyperparameters, ModelSpec, register_model_spec

LayerSize = Annotated[int, Field(ge=1, le=4096)]


class MlpHyperparameters(Hyperparameters):
    hidden_sizes: list[LayerSize] = Field(default_factory=lambda: [128, 64], min_length=1, max_length=8,
                                          description="a list of 1 to 8 layer sizes, each ≥ 1 and ≤ 4096")
    activation: Literal["relu", "sigmoid", "tanh", "leaky_relu"] = "relu"
    dropout: float = Field(0.0, ge=0, le=0.9)


def build_mlp(hp, input_shape, num_outputs):
    from torch import nn

    activations = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for size in hp.hidden_sizes:
        layers += [nn.Linear(width, size), activations[hp.activation]()]
        if hp.dropout > 0:
            layers.append(nn.Dropout(hp.dropout))
        width = size
    layers.append(nn.Linear(width, num_outputs))
    return nn.Sequential(*layers)


register_model_spec(ModelSpec(
    name="mlp",
    description="Multi-layer perceptron: hidden_sizes fully connected layers with an activation and dropout.",
    losses={**CLASSIFIER_LOSSES, "regression": ("mse",)},
    hyperparameters=MlpHyperparameters,
    build=build_mlp,
    lrs={**CLASSIFIER_LRS, ("adam", "mse"): 1e-2, ("sgd", "mse"): 0.01},
    defaults={
        "mnist": dict(optimizer="adam", lr=1e-3, batch_size=64, dropout=0.2, epochs=15, lr_schedule="cosine"),
        "fashion_mnist": dict(optimizer="adam", lr=1e-3, batch_size=64, dropout=0.2, epochs=15,
                              lr_schedule="cosine"),
        "cats_dogs": dict(optimizer="adam", lr=1e-4, batch_size=32, dropout=0.5, epochs=20, image_size=64,
                          hidden_sizes=[256, 64], early_stopping_patience=5),
        "synthetic_linear": dict(optimizer="adam", lr=1e-2, batch_size=32, epochs=30, hidden_sizes=[32]),
        "synthetic_line": dict(optimizer="adam", lr=1e-2, batch_size=10, epochs=30, hidden_sizes=[32]),
        "synthetic_sine": dict(optimizer="adam", lr=1e-2, batch_size=32, epochs=100, hidden_sizes=[64, 64],
                               activation="tanh"),
        "photos": dict(optimizer="adam", lr=1e-4, batch_size=32, dropout=0.5, epochs=20, hidden_sizes=[256, 64]),
        "tabular": dict(optimizer="adam", lr=1e-2, batch_size=32, epochs=30, hidden_sizes=[32]),
    },
))
