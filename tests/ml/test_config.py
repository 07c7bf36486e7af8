"""Config validation: every refusal names the field and what is allowed; pair defaults resolve."""
from __future__ import annotations


import pytest

from ml.config import TrainConfig, config_from_dict, hyperparameter_class, resolve_config
from ml.models import model_specs
from tests.utils.pairs import VALID_PAIRS
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


def test_a_knob_the_model_does_not_take_is_refused_naming_the_ones_it_takes():
    errors = refusal("cnn", "mnist", hidden_sizes=[5], activation="tanh", polynomial_degree=7)
    assert [e["field"] for e in errors] == ["hyperparameters.hidden_sizes", "hyperparameters.activation",
                                            "hyperparameters.polynomial_degree"]
    assert "cnn on mnist does not take it" in errors[0]["message"] and "dropout" in errors[0]["message"]
    assert "hidden_sizes" not in errors[0]["message"].split("takes")[-1]
    # image knobs only where there are images
    (error,) = refusal("mlp", "synthetic_linear", image_size=64)
    assert "unknown hyperparameter 'image_size'" in error["message"]


def test_a_changed_optimizer_or_loss_gets_its_own_default_lr_and_says_so():
    config = resolve_config("mlp", "mnist", {"optimizer": "momentum", "loss": "mse_onehot"})
    assert config.hp.lr == 0.1 and "lr 0.1" in config.notes[0] and "'momentum'" in config.notes[0]
    assert resolve_config("mlp", "mnist", {"optimizer": "momentum", "loss": "mse_onehot", "lr": 0.5}).hp.lr == 0.5
    assert resolve_config("mlp", "mnist", {}).notes == [] and resolve_config("mlp", "mnist", {}).hp.lr == 1e-3
    assert resolve_config("mlp", "mnist", {"optimizer": "sgd"}).hp.lr == 0.1


def test_presets_resolve_and_stay_overridable():
    from ml.presets import PRESETS

    for name, preset in PRESETS.items():
        config = resolve_config(None, None, {}, preset=name)
        assert (config.model, config.dataset, config.preset) == (preset.model, preset.dataset, name)
        assert all(config.hp.model_dump()[k] == v for k, v in preset.hyperparameters.items()), name
    assert resolve_config(None, None, {"epochs": 1}, preset="mlp_mnist").hp.epochs == 1
    with pytest.raises(InvalidConfig, match="unknown preset 'nope'"):
        resolve_config(None, None, {}, preset="nope")


@pytest.mark.parametrize("model, dataset", [
    ("linear_regression", "mnist"), ("logistic_regression", "fashion_mnist"), ("cnn", "synthetic_sine"),
])
def test_invalid_pair_lists_the_valid_pairs(model, dataset):
    (error,) = refusal(model, dataset)
    assert error["field"] == "dataset"
    assert f"{model} cannot be trained on {dataset}" in error["message"]
    assert "it trains on: " + ", ".join(VALID_PAIRS[model]) in error["message"]


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


def test_the_resolved_config_says_the_image_size_used():
    assert resolve_config("cnn", "mnist", {}).hp.image_size == 28  # fixed: never null in a stored config
    assert resolve_config("mlp", "cats_dogs", {}).hp.image_size == 64
    assert resolve_config("mlp", "cats_dogs", {"image_size": 32}).hp.image_size == 32


def test_overrides_win_over_defaults_and_strings_or_booleans_are_not_numbers():
    hp = resolve_config("mlp", "mnist", {"lr": 0.01, "hidden_sizes": [256, 64]}).hp
    assert hp.lr == 0.01 and hp.hidden_sizes == [256, 64] and hp.optimizer == "adam"
    assert resolve_config("mlp", "mnist", {"lr": 1}).hp.lr == 1.0  # a JSON integer is a number
    for bad in ({"lr": "0.01"}, {"epochs": True}, {"epochs": 2.0}, {"hidden_sizes": ["32"]}):
        with pytest.raises(InvalidConfig):
            resolve_config("mlp", "mnist", bad)


def test_every_valid_pair_resolves_and_round_trips():
    for model, datasets in VALID_PAIRS.items():
        for dataset in datasets:
            config = resolve_config(model, dataset, {})
            assert config_from_dict(config.model_dump()) == config


def test_hyperparameters_have_bounds_on_every_number():
    for model in model_specs():
        for images in (False, True):
            for name, info in hyperparameter_class(model, images).model_fields.items():
                if info.annotation in (int, float, int | None, float | None):
                    assert info.metadata, f"{model}.{name} has no bounds"


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
    assert "polynomial_degree" not in mlp["hyperparameters"] and "image_size" in mlp["hyperparameters"]
    assert "polynomial_degree" in models["linear_regression"]["hyperparameters_schema"]["properties"]
    assert "hidden_sizes" not in models["cnn"]["hyperparameters"]
    datasets = {d["name"]: d for d in cat["datasets"]}
    assert datasets["mnist"]["present"] and datasets["fashion_mnist"]["input_kind"] == "grayscale"
    assert datasets["fashion_mnist"]["upload_framing"] == "garment" and datasets["mnist"]["servable"]
    assert {p["name"] for p in cat["presets"]} >= {"mlp_mnist", "softmax_fashion_mnist"}


@pytest.mark.parametrize("tta", ["flip", "zoom_flip"])
def test_mirror_tta_is_refused_where_a_mirror_changes_the_class(tta):
    (error,) = refusal("cnn", "mnist", tta=tta)
    assert error["field"] == "hyperparameters.tta" and "photos" in error["message"]
    assert resolve_config("cnn", "cats_dogs", {"tta": tta}).hp.tta == tta


def test_a_stored_config_from_before_a_knob_rebuilds_what_it_trained():
    # cats_dogs now defaults to mirror TTA; a config stored before the knob existed was validated and
    # tested without it, and a net stored before `blocks` existed is the plain one its weights fit
    # (and one stored before `precision` trained in fp32, which its resume must repeat)
    # (and one stored before `precision` / `select` trained in fp32 and kept its best epoch)
    old = {"blocks": "plain", "tta": "none", "precision": "fp32", "select": "best"}
    stored = resolve_config("cnn", "cats_dogs", old).model_dump()
    for knob in old:
        del stored["hyperparameters"][knob]
    defaults = resolve_config("cnn", "cats_dogs", {}).hp
    assert (defaults.tta, defaults.precision, defaults.select) == ("zoom_flip", "auto", "last")
    hp = config_from_dict(stored).hp
    assert {k: getattr(hp, k) for k in old} == old
    assert config_from_dict({**stored, "hyperparameters": {**stored["hyperparameters"], "tta": "flip"}}).hp.tta == "flip"


def test_select_last_refuses_early_stopping():
    (error,) = refusal("mlp", "mnist", select="last", early_stopping_patience=3)
    assert error["field"] == "hyperparameters.early_stopping_patience" and "'last'" in error["message"]
    assert resolve_config("mlp", "mnist", {"select": "last"}).hp.select == "last"


@pytest.mark.parametrize("model", ["mlp", "cnn", "softmax_regression"])
@pytest.mark.parametrize("size", [16, 64, 256])
def test_a_size_a_fixed_size_dataset_does_not_have_is_refused_at_resolution(model, size):
    # it used to pass here and fail in the worker when mnist loaded (every sweep trial too)
    (error,) = refusal(model, "mnist", image_size=size)
    assert error["field"] == "hyperparameters.image_size" and "28 px" in error["message"]
    assert resolve_config(model, "mnist", {"image_size": 28}).hp.image_size == 28
    assert resolve_config(model, "cats_dogs", {"image_size": size}).hp.image_size == size


def test_every_pair_problem_is_reported_at_once():
    errors = refusal("cnn", "mnist", image_size=64, tta="flip")
    assert [e["field"] for e in errors] == ["hyperparameters.image_size", "hyperparameters.tta"]
