"""Generated sets with a known answer: noisy lines, a noisy sine, and two linearly separable clouds."""
from __future__ import annotations

import torch

from ml.data.base import RawDataset
from ml.data.checksum import params_checksum

# fixed, so every run (and every checksum) sees the same data; the run's seed only picks splits
LINEAR = {"generator": "synthetic_linear", "n": 1000, "w": [2.0, -3.4], "b": 4.2, "noise_std": 0.01, "seed": 0}
LINE = {"generator": "synthetic_line", "n": 1000, "w": [3.0], "b": 2.0, "noise_std": 0.1, "seed": 0}
SEPARABLE = {"generator": "synthetic_separable", "n": 400, "w": [1.5, -2.0], "b": 0.5, "margin": 0.5, "seed": 0}
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


def synthetic_separable(params: dict = SEPARABLE) -> RawDataset:
    """Two classes split by the line w·x + b = 0 with no point closer than `margin`: a perceptron converges."""
    g = torch.Generator().manual_seed(params["seed"])
    w = torch.tensor(params["w"], dtype=torch.float32)
    x = torch.randn(params["n"] * 3, len(w), generator=g) * 2
    score = (x @ w + params["b"]) / w.norm()
    keep = score.abs() >= params["margin"]
    x, score = x[keep][: params["n"]], score[keep][: params["n"]]
    return RawDataset(x=x, y=(score > 0).long(), checksum=params_checksum(params),
                      extra={"true_w": list(params["w"]), "true_b": params["b"], "margin": params["margin"]})


def _spec(name: str, make, n: int, description: str, *, task: str = "regression", classes=(),
          example_model: str = "linear_regression"):
    from ml.data.registry import DatasetSpec, Located

    return DatasetSpec(
        name=name, task=task, input_kind="tabular", classes=tuple(classes), description=description,
        has_test_split=False, channels=None, default_image_size=None,
        locate=lambda data_dir: Located("generated in memory"),
        load=lambda data_dir, image_size, cache_dir: make(), sizes=lambda data_dir: {"total": n},
        example_model=example_model,
    )


def _register() -> None:
    from ml.data.registry import register_dataset

    register_dataset(_spec("synthetic_linear", synthetic_linear, LINEAR["n"],
                           "y = Xw + b + noise with w = [2, -3.4], b = 4.2, noise std 0.01; 1,000 samples, 80/10/10."))
    register_dataset(_spec("synthetic_line", lambda: synthetic_linear(LINE), LINE["n"],
                           "y = 3x + 2 + noise (std 0.1), x standard normal; 1,000 samples, 80/10/10: "
                           "the course's full-batch / single-sample / mini-batch gradient descent set."))
    register_dataset(_spec("synthetic_sine", synthetic_sine, SINE["n"],
                           "y = sin(x) + noise (std 0.1), x uniform in [-3, 3]; 125 samples (100 train), "
                           "for polynomial fitting."))
    register_dataset(_spec("synthetic_separable", synthetic_separable, SEPARABLE["n"],
                           "Two classes on either side of 1.5·x1 - 2·x2 + 0.5 = 0, no point within 0.5 of it: "
                           "linearly separable, for the perceptron.", task="binary", classes=("negative", "positive"),
                           example_model="perceptron"))


_register()
