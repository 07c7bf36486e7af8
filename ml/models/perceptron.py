"""The course's perceptron: sign(w·x + b), trained with the perceptron rule on misclassified samples.

The whole model is this file: its spec, builder and loss are registered here and nowhere else.
"""
from __future__ import annotations

from ml.models.spec import Hyperparameters, ModelSpec, register_model_spec


def build_perceptron(hp, input_shape, num_outputs):
    import math

    from torch import nn

    # one score w·x + b; the predicted class is 1 when it is positive (sign), as a 'sigmoid' output reads it
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 1))


def perceptron_loss():
    """mean(max(0, -t·(w·x + b))) with t = ±1: its gradient is the perceptron rule (w += lr·t·x when wrong)."""
    import torch

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        signed = y.reshape(-1).to(out.dtype) * 2 - 1
        return torch.relu(-signed * out.reshape(-1)).mean()

    return loss


register_model_spec(ModelSpec(
    name="perceptron",
    description="sign(w·x + b), updated by the perceptron rule on misclassified samples (two-class datasets); "
    "converges when the classes are linearly separable.",
    losses={"binary": ("perceptron",)},
    hyperparameters=Hyperparameters,
    build=build_perceptron,
    single_output_losses=("perceptron",),
    custom_losses={"perceptron": perceptron_loss},
    # batch 1 and lr 1: Rosenblatt's rule exactly, one sample at a time
    lrs={("sgd", None): 1.0, ("momentum", None): 0.1, ("adam", None): 1e-2},
    defaults={"*": dict(optimizer="sgd", lr=1.0, batch_size=1, epochs=20)},
))
