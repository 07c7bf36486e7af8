"""Generated regression sets with a known answer: a noisy line and a noisy sine."""
from __future__ import annotations

import torch

from ml.data.base import RawDataset
from ml.data.checksum import params_checksum

# fixed, so every run (and every checksum) sees the same data; the run's seed only picks splits
LINEAR = {"generator": "synthetic_linear", "n": 1000, "w": [2.0, -3.4], "b": 4.2, "noise_std": 0.01, "seed": 0}
SINE = {"generator": "synthetic_sine", "n": 125, "low": -3.0, "high": 3.0, "noise_std": 0.1, "seed": 0}


def synthetic_linear(params: dict = LINEAR) -> RawDataset:
    """y = Xw + b + noise, X standard normal (n, len(w)), y float32 (n, 1)."""
    g = torch.Generator().manual_seed(params["seed"])
    w = torch.tensor(params["w"], dtype=torch.float32)
    x = torch.randn(params["n"], len(w), generator=g)
    noise = torch.randn(params["n"], generator=g) * params["noise_std"]
    y = (x @ w + params["b"] + noise).unsqueeze(1)
    extra = {"true_w": list(params["w"]), "true_b": params["b"], "noise_std": params["noise_std"]}
    return RawDataset(x=x, y=y, checksum=params_checksum(params), extra=extra)


def synthetic_sine(params: dict = SINE) -> RawDataset:
    """y = sin(x) + noise, x uniform in [low, high], shapes (n, 1): the polynomial under/over-fitting set."""
    g = torch.Generator().manual_seed(params["seed"])
    x = torch.rand(params["n"], 1, generator=g) * (params["high"] - params["low"]) + params["low"]
    y = torch.sin(x) + torch.randn(params["n"], 1, generator=g) * params["noise_std"]
    extra = {"function": "sin", "noise_std": params["noise_std"], "x_range": [params["low"], params["high"]]}
    return RawDataset(x=x, y=y, checksum=params_checksum(params), extra=extra)
