"""The dataset registry: names, specs, the duplicate guard, unknown names, the catalog entry."""
from __future__ import annotations

import time

import pytest

from ml.data import dataset_names, describe_dataset, get_dataset_spec, load_dataset, register_dataset
from ml.errors import InvalidConfig


def test_every_dataset_of_the_course_is_registered():
    assert dataset_names() == ["cats_dogs", "fashion_mnist", "mnist", "synthetic_line", "synthetic_linear",
                               "synthetic_separable", "synthetic_sine"]
    assert get_dataset_spec("cats_dogs").task == "binary"
    assert get_dataset_spec("synthetic_sine").input_kind == "tabular"


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="'mnist' is already registered"):
        register_dataset(get_dataset_spec("mnist"))


def test_unknown_dataset_names_the_known_ones(tmp_path):
    with pytest.raises(InvalidConfig) as err:
        load_dataset("imagenet", tmp_path)
    assert err.value.errors[0]["field"] == "dataset"
    assert "unknown dataset 'imagenet'" in err.value.errors[0]["message"]
    assert "mnist" in err.value.errors[0]["message"]


@pytest.mark.parametrize("field, kwargs", [
    ("hyperparameters.val_fraction", {"val_fraction": 1.0}),
    ("hyperparameters.max_train_samples", {"max_train_samples": 0}),
    ("hyperparameters.image_size", {"image_size": 64}),
])
def test_bad_arguments_name_the_field(tiny_mnist, field, kwargs):
    with pytest.raises(InvalidConfig) as err:
        load_dataset("mnist", tiny_mnist, **kwargs)
    assert err.value.errors[0]["field"] == field


def test_describe_every_dataset_quickly_without_data(tmp_path):
    for name in dataset_names():
        started = time.perf_counter()
        info = describe_dataset(name, tmp_path)
        assert time.perf_counter() - started < 0.5
        assert info["name"] == name and isinstance(info["location"], str)
        assert info["present"] is name.startswith("synthetic")
        assert set(info) >= {"task", "input_kind", "classes", "present", "location", "missing", "sizes",
                             "description"}


def test_describe_real_data(real_data_dir):
    started = time.perf_counter()
    infos = {name: describe_dataset(name, real_data_dir) for name in dataset_names()}
    assert time.perf_counter() - started < 1.0, "describe_dataset must not decode anything"
    assert infos["cats_dogs"]["sizes"] == {"total": 2002}
    assert infos["fashion_mnist"]["classes"][-1] == "ankle boot"
