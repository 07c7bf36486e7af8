"""Search spaces: a grid or seeded random draws expand into trial overrides, each validated like any config.

Used by `python -m ml grid` and by the service's sweeps, so both expand a space the same way. A
random space is drawn from `random.Random(seed)` in the sorted order of its parameter names: the
same request and seed always give the same trials, on any machine.
"""
from __future__ import annotations

import itertools
import math
import random
from typing import Any

from ml.config import TrainConfig, resolve_config
from ml.errors import InvalidConfig

DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
MAX_REPORTED_ERRORS = 10


def search_field(search: dict[str, Any]) -> str:
    """Where a searched parameter lives in a request, for error messages: 'search.grid' or 'search.random'."""
    return "search.grid" if "grid" in search else "search.random"


def expand_search(search: dict[str, Any], *, shuffle_grid: bool = False) -> list[dict[str, Any]]:
    """{"grid": {name: [values]}} or {"random": {name: {dist: args}}, "trials": n, "seed": s} -> overrides per trial.

    `shuffle_grid` puts a grid in a fixed pseudo-random order (always the same): early stopping
    compares a trial with those that reached a rung before it, so a grid listed from worst to best
    (lrs often are) would let every trial through.
    """
    kinds = [k for k in ("grid", "random") if k in search]
    if len(kinds) != 1:
        raise _invalid("search", "must name exactly one of 'grid' or 'random'")
    extra = set(search) - {"grid"} if kinds == ["grid"] else set(search) - {"random", "trials", "seed"}
    if extra:
        raise _invalid(f"search.{sorted(extra)[0]}", f"unknown key; a {kinds[0]} search takes "
                       + ("'grid'" if kinds == ["grid"] else "'random', 'trials', 'seed'"))
    if kinds == ["random"]:
        return expand_random(search["random"], trials=search.get("trials"), seed=search.get("seed", 0))
    trials = expand_grid(search["grid"])
    if shuffle_grid:
        random.Random(0).shuffle(trials)
    return trials


def expand_grid(grid: Any) -> list[dict[str, Any]]:
    """Every combination of the values, the first parameter varying slowest."""
    if not isinstance(grid, dict) or not grid:
        raise _invalid("search.grid", "must be a non-empty object of parameter -> list of values")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise _invalid(f"search.grid.{name}", "must be a non-empty list of values to try")
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def expand_random(space: Any, *, trials: Any, seed: Any) -> list[dict[str, Any]]:
    """`trials` draws from the distributions, reproducible from `seed`."""
    if not isinstance(space, dict) or not space:
        raise _invalid("search.random", "must be a non-empty object of parameter -> {distribution: arguments}")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise _invalid("search.trials", f"must be an integer ≥ 1 (got {trials!r})")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise _invalid("search.seed", f"must be an integer ≥ 0 (got {seed!r})")
    samplers = {name: _sampler(name, spec) for name, spec in sorted(space.items())}
    rng = random.Random(seed)
    return [{name: sample(rng) for name, sample in samplers.items()} for _ in range(trials)]


def _sampler(name: str, spec: Any):
    field = f"search.random.{name}"
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise _invalid(field, "must be one distribution: {name: arguments}, name one of " + ", ".join(DISTRIBUTIONS))
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise _invalid(field, "choice takes a non-empty list of values")
        return lambda rng: args[rng.randrange(len(args))]
    numbers = isinstance(args, list) and len(args) == 2 and all(
        isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in args)
    if not numbers or args[0] > args[1]:
        raise _invalid(field, f"{kind} takes [low, high] with low ≤ high (got {args!r})")
    low, high = args
    if kind == "int":
        if not all(float(a).is_integer() for a in args):
            raise _invalid(field, f"int takes integer bounds (got {args!r})")
        return lambda rng: rng.randint(int(low), int(high))
    if kind == "loguniform":
        if low <= 0:
            raise _invalid(field, f"loguniform needs 0 < low ≤ high (got {args!r})")
        return lambda rng: math.exp(rng.uniform(math.log(low), math.log(high)))
    return lambda rng: rng.uniform(low, high)


def resolve_trials(model: str | None, dataset: str | None, base: dict[str, Any], trials: list[dict[str, Any]], *,
                   preset: str | None = None, searched: str = "search") -> list[TrainConfig]:
    """Resolve every trial's config; InvalidConfig names a searched parameter as `<searched>.<name>`.

    Only the first few distinct errors are reported: a 1000-trial sweep with one bad value says so once.
    """
    configs, errors = [], []
    for overrides in trials:
        try:
            configs.append(resolve_config(model, dataset, {**base, **overrides}, preset=preset))
        except InvalidConfig as exc:
            for err in exc.errors:
                name = err["field"].removeprefix("hyperparameters.").split(".")[0]
                err = {**err, "field": f"{searched}.{name}"} if name in overrides else err
                if err not in errors:
                    errors.append(err)
        if len(errors) >= MAX_REPORTED_ERRORS:
            break
    if errors:
        raise InvalidConfig(errors[:MAX_REPORTED_ERRORS])
    return configs


def _invalid(field: str, message: str) -> InvalidConfig:
    return InvalidConfig([{"field": field, "message": message}])
