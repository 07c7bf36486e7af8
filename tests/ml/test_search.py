"""Search spaces expand the same way every time, and a bad one is refused naming its parameter."""
from __future__ import annotations

import pytest

from ml.errors import InvalidConfig
from ml.search import expand_search, resolve_trials


def test_grid_is_every_combination_first_parameter_slowest():
    trials = expand_search({"grid": {"lr": [0.1, 0.01], "batch_size": [32, 64, 128]}})
    assert trials[:3] == [{"lr": 0.1, "batch_size": 32}, {"lr": 0.1, "batch_size": 64},
                          {"lr": 0.1, "batch_size": 128}]
    assert len(trials) == 6


def test_a_shuffled_grid_is_the_same_trials_in_a_fixed_order():
    grid = {"grid": {"lr": [0.1, 0.01, 0.001], "batch_size": [32, 64]}}
    shuffled = expand_search(grid, shuffle_grid=True)
    assert shuffled == expand_search(grid, shuffle_grid=True) != expand_search(grid)
    assert sorted(map(str, shuffled)) == sorted(map(str, expand_search(grid)))


def test_random_draws_are_reproducible_and_in_range():
    space = {"random": {"lr": {"loguniform": [1e-4, 1e-1]}, "dropout": {"uniform": [0, 0.5]},
                        "hidden_sizes": {"choice": [[128, 64], [256]]}, "batch_size": {"int": [16, 64]}},
             "trials": 20, "seed": 3}
    first, again = expand_search(space), expand_search(dict(space))
    assert first == again and len(first) == 20
    assert all(1e-4 <= t["lr"] <= 1e-1 and 0 <= t["dropout"] <= 0.5 and 16 <= t["batch_size"] <= 64
               and t["hidden_sizes"] in ([128, 64], [256]) for t in first)
    assert expand_search({**space, "seed": 4}) != first
    assert len({t["lr"] for t in first}) == 20


@pytest.mark.parametrize("search, field", [
    ({"grid": {"lr": []}}, "search.grid.lr"),
    ({"grid": {}}, "search.grid"),
    ({"random": {"lr": {"gaussian": [0, 1]}}, "trials": 2}, "search.random.lr"),
    ({"random": {"lr": {"loguniform": [0, 1]}}, "trials": 2}, "search.random.lr"),
    ({"random": {"lr": {"uniform": [1, 0]}}, "trials": 2}, "search.random.lr"),
    ({"random": {"lr": {"uniform": [0, 1]}}, "trials": 0}, "search.trials"),
    ({"grid": {"lr": [0.1]}, "random": {}}, "search"),
])
def test_a_bad_space_names_its_parameter(search, field):
    with pytest.raises(InvalidConfig) as info:
        expand_search(search)
    assert info.value.errors[0]["field"] == field


def test_trials_are_validated_like_any_config_naming_the_searched_parameter():
    with pytest.raises(InvalidConfig) as info:
        resolve_trials("mlp", "mnist", {}, [{"lr": 0.1, "nonsense": 1}, {"lr": 50.0}], searched="search.grid")
    fields = [e["field"] for e in info.value.errors]
    assert fields == ["search.grid.nonsense", "search.grid.lr"]
    assert "≤ 10" in info.value.errors[1]["message"]


def test_errors_reported_are_capped():
    with pytest.raises(InvalidConfig) as info:
        resolve_trials("mlp", "mnist", {}, [{"lr": 10.0 + i} for i in range(100)])
    assert len(info.value.errors) == 10
