"""Seeded, stratified index splits: validation carved from train, test from folders, train subsets."""
from __future__ import annotations

import torch

# folders with no test split of their own: this share is held out as test, always with this seed,
# so every run (whatever its seed) is tested on the same images and runs stay comparable
TEST_FRACTION = 0.1
TEST_SPLIT_SEED = 1234
# validation is carved with a fixed seed too: every job of a dataset (whatever its seed) is scored on
# the same samples, so the registry can compare their validation accuracies (auto-best). It is the
# default job seed, so runs with seed 0 (every published figure) split exactly as before.
VAL_SPLIT_SEED = 0


def _quotas(counts: torch.Tensor, k: int) -> torch.Tensor:
    """Per-class sample counts summing to k, proportional to `counts` (largest remainder)."""
    exact = counts.double() * k / max(int(counts.sum()), 1)
    take = exact.floor().long()
    short = k - int(take.sum())
    if short > 0:
        # ties broken by class index, so the result is deterministic
        take[torch.argsort(take.double() - exact, stable=True)[:short]] += 1
    return torch.minimum(take, counts)


def sample_indices(y: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k distinct indices drawn at random, sorted; class proportions kept when y holds class labels."""
    n = len(y)
    k = max(0, min(k, n))
    perm = torch.randperm(n, generator=generator)
    if y.dtype != torch.int64 or y.dim() != 1 or n == 0:  # regression targets: plain random draw
        return perm[:k].sort().values
    counts = torch.bincount(y)
    grouped = perm[torch.argsort(y[perm], stable=True)]  # grouped by class, random order inside
    starts = torch.cumsum(counts, 0) - counts
    take = _quotas(counts, k)
    parts = [grouped[s : s + t] for s, t in zip(starts.tolist(), take.tolist()) if t]
    return torch.cat(parts).sort().values if parts else torch.empty(0, dtype=torch.long)


def carve(y: torch.Tensor, fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, carved) sorted index tensors; `carved` is round(fraction * n) samples, stratified."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    carved = sample_indices(y, round(fraction * len(y)), generator)
    mask = torch.ones(len(y), dtype=torch.bool)
    mask[carved] = False
    return mask.nonzero().squeeze(1), carved


def seeded(seed: int) -> torch.Generator:
    """A CPU generator for split decisions, independent of the global RNG."""
    return torch.Generator().manual_seed(int(seed))


def split_indices(
    y: torch.Tensor,
    *,
    has_test: bool,
    val_fraction: float,
    seed: int,
    max_train_samples: int | None = None,
    test_split_seed: int = TEST_SPLIT_SEED,
) -> dict[str, torch.Tensor]:
    """Indices into y for "train", "val", "train_pool" and, when the source has no test split, "test".

    With its own test split, validation is `val_fraction` of train. Without one, TEST_FRACTION
    is held out first (fixed seed) and validation is `val_fraction` of the whole set,
    so the default 0.1 gives 80/10/10. Both carves use fixed seeds; `seed` only draws the
    `max_train_samples` subset of train (stratified). `test_split_seed` holds out another test
    share, for repeated-split estimates (bench/accuracy.py --spread); the service never changes it.
    """
    out: dict[str, torch.Tensor] = {}
    pool = torch.arange(len(y))
    if not has_test:
        keep, test = carve(y, TEST_FRACTION, seeded(test_split_seed))
        out["test"], pool = test, keep
        val_fraction = val_fraction / (1.0 - TEST_FRACTION)
        if val_fraction >= 1.0:
            raise ValueError(f"val_fraction must be < {1 - TEST_FRACTION} when the test split is carved too")
    g = seeded(VAL_SPLIT_SEED)
    keep, val = carve(y[pool], val_fraction, g)
    if seed != VAL_SPLIT_SEED:  # seed 0 goes on with the same generator, as before validation was fixed
        g = seeded(seed)
    train, out["val"] = pool[keep], pool[val]
    out["train_pool"] = train  # train before subsetting: what normalisation statistics come from
    if max_train_samples is not None and max_train_samples < len(train):
        train = train[sample_indices(y[train], max_train_samples, g)]
    out["train"] = train
    return out
