"""Multi-layer perceptron with a chosen activation and dropout."""
from __future__ import annotations

import math

from torch import nn

from ml.models.registry import register_model

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}


@register_model("mlp")
def build_mlp(hp, input_shape, num_outputs):
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for size in hp.hidden_sizes:
        layers += [nn.Linear(width, size), ACTIVATIONS[hp.activation]()]
        if hp.dropout > 0:
            layers.append(nn.Dropout(hp.dropout))
        width = size
    layers.append(nn.Linear(width, num_outputs))
    return nn.Sequential(*layers)
