"""Config validation: every refusal names the field and what is allowed; pair defaults resolve."""
from __future__ import annotations

import subprocess
import sys

import pytest

from ml.config import Hyperparameters, TrainConfig, config_from_dict, resolve_config
from ml.defaults import DATASET_TASKS, PAIR_DEFAULTS, VALID_PAIRS
from ml.errors import InvalidConfig


def refusal(model="mlp", dataset="mnist", **overrides) -> list[dict]:
    with pytest.raises(InvalidConfig) as info:
        resolve_config(model, dataset, overrides)
    return info.value.errors


def test_bad_lr_names_field_and_range():
    errors = refusal(lr=-1)
    assert errors == [{"field": "hyperparameters.lr", "message": "must be a number > 0 and ≤ 10 (got -1)"}]


@pytest.mark.parametrize("field, value, words", [
    ("epochs", 0, "≥ 1 and ≤ 500"),
    ("epochs", 2.5, "an integer"),
    ("batch_size", -3, "≥ 1"),
    ("dropout", 0.95, "≥ 0 and ≤ 0.9"),
    ("momentum", 1.0, "< 1"),
    ("optimizer", "rmsprop", "one of 'sgd', 'momentum', 'adam'"),
    ("activation", "gelu", "'leaky_relu'"),
    ("hidden_sizes", [128, 0], "each ≥ 1 and ≤ 4096"),
    ("hidden_sizes", [], "1 to 8 layer sizes"),
    ("image_size", 8, "≥ 16 and ≤ 256, or null"),
    ("seed", -1, "≥ 0"),
    ("device", "tpu", "'auto', 'cpu', 'cuda'"),
])
def test_each_bad_value_states_the_allowed_range(field, value, words):
    (error,) = refusal(**{field: value})
    assert error["field"].startswith(f"hyperparameters.{field}")
    assert words in error["message"] and "(got " in error["message"]


def test_several_bad_fields_are_all_reported():
    fields = {e["field"] for e in refusal(lr=0, epochs=0)}
    assert fields == {"hyperparameters.lr", "hyperparameters.epochs"}


def test_unknown_field_is_named():
    (error,) = refusal(learning_rate=0.1)
    assert error["field"] == "hyperparameters.learning_rate"
    assert "unknown hyperparameter 'learning_rate'" in error["message"] and "lr" in error["message"]


@pytest.mark.parametrize("model, dataset", [
    ("linear_regression", "mnist"), ("logistic_regression", "fashion_mnist"), ("cnn", "synthetic_sine"),
])
def test_invalid_pair_lists_the_valid_pairs(model, dataset):
    (error,) = refusal(model, dataset)
    assert error["field"] == "dataset"
    assert f"{model} cannot be trained on {dataset}" in error["message"]
    assert "logistic_regression: cats_dogs" in error["message"]
    assert "linear_regression: synthetic_linear, synthetic_sine" in error["message"]


def test_unknown_model_and_dataset_are_named():
    assert "unknown model 'resnet'" in refusal("resnet", "mnist")[0]["message"]
    assert "unknown dataset 'cifar'" in refusal("mlp", "cifar")[0]["message"]


def test_loss_must_fit_the_task():
    (error,) = refusal("mlp", "mnist", loss="mse")
    assert error["field"] == "hyperparameters.loss" and "'cross_entropy', 'mse_onehot'" in error["message"]
    (error,) = refusal("logistic_regression", "cats_dogs", loss="cross_entropy")
    assert "'bce'" in error["message"]


def test_course_defaults_of_named_pairs():
    hp = resolve_config("mlp", "mnist", {}).hp
    assert (hp.optimizer, hp.lr, hp.batch_size, hp.dropout, hp.loss) == ("adam", 1e-3, 64, 0.2, "cross_entropy")
    hp = resolve_config("softmax_regression", "fashion_mnist", {}).hp
    assert (hp.optimizer, hp.lr, hp.batch_size) == ("sgd", 0.1, 256)
    hp = resolve_config("logistic_regression", "cats_dogs", {}).hp
    assert (hp.optimizer, hp.lr, hp.batch_size, hp.image_size, hp.loss) == ("sgd", 1e-3, 32, 128, "bce")


def test_overrides_win_over_defaults_and_strings_are_coerced():
    hp = resolve_config("mlp", "mnist", {"lr": "0.01", "hidden_sizes": [256, 64]}).hp
    assert hp.lr == 0.01 and hp.hidden_sizes == [256, 64] and hp.optimizer == "adam"


def test_every_valid_pair_resolves_and_round_trips():
    for model, datasets in VALID_PAIRS.items():
        for dataset in datasets:
            config = resolve_config(model, dataset, {})
            assert config_from_dict(config.model_dump()) == config
            assert (model, dataset) in PAIR_DEFAULTS


def test_dataset_table_matches_the_data_registry():
    from ml.data import dataset_names, get_dataset_spec

    assert set(dataset_names()) == set(DATASET_TASKS)
    assert {n: get_dataset_spec(n).task for n in dataset_names()} == DATASET_TASKS


def test_hyperparameters_have_bounds_on_every_number():
    for name, info in Hyperparameters.model_fields.items():
        if info.annotation in (int, float, int | None, float | None):
            assert info.metadata, f"{name} has no bounds"


def test_config_module_imports_without_torch():
    code = "import sys, ml.config, ml.defaults; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_train_config_is_frozen():
    config = resolve_config("mlp", "mnist", {})
    assert isinstance(config, TrainConfig)
    with pytest.raises(Exception):
        config.model = "cnn"


def test_catalog_lists_models_with_schema_defaults_and_datasets(data_dir):
    from ml.catalog import catalog

    cat = catalog(data_dir)
    models = {m["name"]: m for m in cat["models"]}
    assert set(models) == set(VALID_PAIRS)
    mlp = models["mlp"]
    assert "mnist" in mlp["datasets"] and mlp["defaults"]["mnist"]["optimizer"] == "adam"
    assert mlp["hyperparameters_schema"]["properties"]["lr"]["maximum"] == 10
    assert "polynomial_degree" not in mlp["hyperparameters_schema"]["properties"]
    assert "polynomial_degree" in models["linear_regression"]["hyperparameters_schema"]["properties"]
    datasets = {d["name"]: d for d in cat["datasets"]}
    assert set(datasets) == set(DATASET_TASKS) and datasets["mnist"]["present"]
