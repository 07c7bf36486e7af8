"""Torch layers the linear models share: standardised polynomial features and linear regression on them."""
from __future__ import annotations

import torch
from torch import nn


class PolynomialFeatures(nn.Module):
    """x -> [x, x², …, x^degree] per input column, standardised with statistics fitted on train data."""

    def __init__(self, in_features: int, degree: int):
        super().__init__()
        self.degree = degree
        self.out_features = in_features * degree
        # buffers so the fitted statistics travel in the state_dict (and the checkpoint)
        self.register_buffer("mean", torch.zeros(self.out_features))
        self.register_buffer("std", torch.ones(self.out_features))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """The unscaled powers of x."""
        x = x.flatten(1)
        return torch.cat([x ** k for k in range(1, self.degree + 1)], dim=1)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Fit the standardisation on training inputs (powers of x differ wildly in scale)."""
        f = self.raw(x)
        self.mean.copy_(f.mean(0))
        self.std.copy_(f.std(0, unbiased=False).clamp_min(1e-8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.raw(x) - self.mean) / self.std


class LinearRegression(nn.Module):
    """y = φ(x)·w + b with φ the (standardised) polynomial features."""

    def __init__(self, in_features: int, degree: int):
        super().__init__()
        self.features = PolynomialFeatures(in_features, degree)
        self.linear = nn.Linear(self.features.out_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x))

    def raw_weights(self, w: torch.Tensor, b: torch.Tensor) -> tuple[list[float], float]:
        """Weights on standardised features -> weights on the raw powers of x, and the bias."""
        w = w.flatten()
        raw_w = w / self.features.std
        raw_b = b.flatten()[0] - (w * self.features.mean / self.features.std).sum()
        return raw_w.tolist(), float(raw_b)
