"""Course defaults per (model, dataset) pair, and which pairs and losses make sense. Torch-free."""
from __future__ import annotations

from typing import Any

# Task of each dataset; mirrors ml.data's registry (a test keeps the two in step) without importing torch.
DATASET_TASKS: dict[str, str] = {
    "mnist": "classification",
    "fashion_mnist": "classification",
    "cats_dogs": "binary",
    "synthetic_linear": "regression",
    "synthetic_sine": "regression",
}
IMAGE_DATASETS = ("mnist", "fashion_mnist", "cats_dogs")

MODEL_DESCRIPTIONS: dict[str, str] = {
    "linear_regression": "y = Xw + b fitted by gradient descent (MSE); optional polynomial feature "
    "expansion; the closed-form least-squares solution is reported beside it.",
    "logistic_regression": "Flatten -> one linear unit -> sigmoid, binary cross-entropy (two-class datasets).",
    "softmax_regression": "Flatten -> one linear layer with a unit per class -> softmax, cross-entropy.",
    "mlp": "Multi-layer perceptron: hidden_sizes fully connected layers with an activation and dropout.",
    "cnn": "Small conv net: conv32-pool-conv64-pool-fc128-dropout-fc for 28x28 digits; "
    "a batch-norm variant with global average pooling for RGB photos.",
}

VALID_PAIRS: dict[str, tuple[str, ...]] = {
    "linear_regression": ("synthetic_linear", "synthetic_sine"),
    "logistic_regression": ("cats_dogs",),
    "softmax_regression": ("mnist", "fashion_mnist", "cats_dogs"),
    "mlp": ("mnist", "fashion_mnist", "cats_dogs", "synthetic_linear", "synthetic_sine"),
    "cnn": ("mnist", "fashion_mnist", "cats_dogs"),
}

# Losses each model accepts for each task; the first one is the default.
_CLASSIFIER_LOSSES = {
    "classification": ("cross_entropy", "mse_onehot"),
    "binary": ("cross_entropy", "bce", "mse_onehot"),
}
VALID_LOSSES: dict[str, dict[str, tuple[str, ...]]] = {
    "linear_regression": {"regression": ("mse",)},
    "logistic_regression": {"binary": ("bce",)},
    "softmax_regression": _CLASSIFIER_LOSSES,
    "mlp": {**_CLASSIFIER_LOSSES, "regression": ("mse",)},
    "cnn": _CLASSIFIER_LOSSES,
}

# Hyperparameters each model actually uses (the rest are accepted and ignored): lets a client build a form.
_COMMON = ("epochs", "batch_size", "lr", "lr_schedule", "optimizer", "momentum", "weight_decay", "l1",
           "loss", "early_stopping_patience", "val_fraction", "max_train_samples", "max_eval_samples", "max_steps",
           "seed", "device", "checkpoint_every")
MODEL_HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "linear_regression": _COMMON + ("polynomial_degree",),
    "logistic_regression": _COMMON + ("image_size", "augment"),
    "softmax_regression": _COMMON + ("image_size", "augment"),
    "mlp": _COMMON + ("hidden_sizes", "activation", "dropout", "image_size", "augment"),
    "cnn": _COMMON + ("dropout", "image_size", "augment"),
}

# Course defaults, tuned so bench/accuracy.py reaches the targets on CPU.
PAIR_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("linear_regression", "synthetic_linear"): dict(optimizer="sgd", lr=0.05, batch_size=32, epochs=20),
    ("linear_regression", "synthetic_sine"): dict(optimizer="sgd", lr=0.1, batch_size=32, epochs=100,
                                                  polynomial_degree=5),
    # lr 0.01 overshoots on 49,152 raw pixels (test ~53%); 1e-3 with mild L2 reached 63% here
    ("logistic_regression", "cats_dogs"): dict(optimizer="sgd", lr=1e-3, batch_size=32, epochs=30,
                                               image_size=128, weight_decay=1e-2,
                                               early_stopping_patience=8),
    # standardised pixels make lr 0.1 bounce between epochs; the cosine decay lets it settle
    ("softmax_regression", "mnist"): dict(optimizer="sgd", lr=0.1, batch_size=256, epochs=10,
                                          lr_schedule="cosine"),
    ("softmax_regression", "fashion_mnist"): dict(optimizer="sgd", lr=0.1, batch_size=256, epochs=15,
                                                  lr_schedule="cosine"),
    ("softmax_regression", "cats_dogs"): dict(optimizer="sgd", lr=1e-3, batch_size=32, epochs=20,
                                              image_size=64, weight_decay=1e-3, early_stopping_patience=5),
    ("mlp", "mnist"): dict(optimizer="adam", lr=1e-3, batch_size=64, dropout=0.2, epochs=15,
                           lr_schedule="cosine"),
    ("mlp", "fashion_mnist"): dict(optimizer="adam", lr=1e-3, batch_size=64, dropout=0.2, epochs=15,
                                   lr_schedule="cosine"),
    ("mlp", "cats_dogs"): dict(optimizer="adam", lr=1e-4, batch_size=32, dropout=0.5, epochs=20,
                               image_size=64, hidden_sizes=[256, 64], early_stopping_patience=5),
    ("mlp", "synthetic_linear"): dict(optimizer="adam", lr=1e-2, batch_size=32, epochs=30,
                                      hidden_sizes=[32]),
    ("mlp", "synthetic_sine"): dict(optimizer="adam", lr=1e-2, batch_size=32, epochs=100,
                                    hidden_sizes=[64, 64], activation="tanh"),
    ("cnn", "mnist"): dict(optimizer="adam", lr=1e-3, batch_size=64, dropout=0.5, epochs=8,
                           lr_schedule="cosine"),
    ("cnn", "fashion_mnist"): dict(optimizer="adam", lr=1e-3, batch_size=64, dropout=0.5, epochs=12,
                                   lr_schedule="cosine"),
    # with the 32-64-128-256 photo net, 40 cosine epochs reached test 0.80 / 0.805 (seeds 0 / 1), ~4 min on 2 cores
    ("cnn", "cats_dogs"): dict(optimizer="adam", lr=2e-3, batch_size=32, dropout=0.3, epochs=40,
                               image_size=64, augment="basic", weight_decay=5e-4,
                               lr_schedule="cosine"),
}


def valid_pairs_text() -> str:
    """The valid (model, dataset) pairs as one readable line."""
    return "; ".join(f"{m}: {', '.join(ds)}" for m, ds in VALID_PAIRS.items())


def default_loss(model: str, dataset: str) -> str:
    """The loss a model uses on a dataset unless told otherwise."""
    return VALID_LOSSES[model][DATASET_TASKS[dataset]][0]
