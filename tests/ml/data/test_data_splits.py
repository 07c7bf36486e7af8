"""Splits: stratified, seeded, disjoint; validation carved from train; max_train_samples."""
from __future__ import annotations

import torch

from ml.data import load_dataset
from ml.data.splits import carve, sample_indices, seeded, split_indices

# an unbalanced label vector: 500 / 300 / 200
LABELS = torch.cat([torch.full((500,), 0), torch.full((300,), 1), torch.full((200,), 2)])[torch.randperm(1000)]


def test_carve_is_stratified_and_disjoint():
    kept, carved = carve(LABELS, 0.1, seeded(0))
    assert len(carved) == 100 and len(kept) == 900
    assert torch.bincount(LABELS[carved]).tolist() == [50, 30, 20]
    assert set(kept.tolist()).isdisjoint(carved.tolist())
    assert sorted(kept.tolist() + carved.tolist()) == list(range(1000))


def test_validation_is_the_same_for_every_seed_the_train_subset_is_not():
    a = split_indices(LABELS, has_test=True, val_fraction=0.2, seed=7, max_train_samples=300)
    b = split_indices(LABELS, has_test=True, val_fraction=0.2, seed=7, max_train_samples=300)
    c = split_indices(LABELS, has_test=True, val_fraction=0.2, seed=8, max_train_samples=300)
    assert torch.equal(a["val"], b["val"]) and torch.equal(a["train"], b["train"])
    assert torch.equal(a["val"], c["val"])  # jobs stay comparable on validation (auto-best)
    assert not torch.equal(a["train"], c["train"])
    assert torch.bincount(LABELS[c["val"]]).tolist() == [100, 60, 40]


def test_folder_without_test_gets_80_10_10_with_a_fixed_test_set():
    a = split_indices(LABELS, has_test=False, val_fraction=0.1, seed=0)
    b = split_indices(LABELS, has_test=False, val_fraction=0.1, seed=1)
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (800, 100, 100)
    assert torch.bincount(LABELS[a["test"]]).tolist() == [50, 30, 20]
    assert torch.equal(a["test"], b["test"])  # every run is tested on the same samples
    assert torch.equal(a["val"], b["val"])  # and validated on the same samples
    together = torch.cat([a["train"], a["val"], a["test"]]).sort().values
    assert torch.equal(together, torch.arange(1000))


def test_another_test_split_seed_holds_out_other_photos_still_disjoint_and_stratified():
    fixed = split_indices(LABELS, has_test=False, val_fraction=0.1, seed=0)
    other = split_indices(LABELS, has_test=False, val_fraction=0.1, seed=0, test_split_seed=1235)
    assert torch.equal(fixed["test"], split_indices(LABELS, has_test=False, val_fraction=0.1, seed=5)["test"])
    assert len(set(fixed["test"].tolist()) & set(other["test"].tolist())) < 30  # ~10 of 100 by chance
    assert torch.bincount(LABELS[other["test"]]).tolist() == [50, 30, 20]
    parts = [set(other[k].tolist()) for k in ("train", "val", "test")]
    assert sum(map(len, parts)) == 1000 and len(set().union(*parts)) == 1000


def test_zero_val_fraction_gives_an_empty_validation_set():
    split = split_indices(LABELS, has_test=True, val_fraction=0.0, seed=0)
    assert len(split["val"]) == 0 and len(split["train"]) == 1000


def test_max_train_samples_takes_a_stratified_subset_after_val():
    split = split_indices(LABELS, has_test=True, val_fraction=0.1, seed=3, max_train_samples=90)
    assert len(split["train"]) == 90 and len(split["val"]) == 100
    assert torch.bincount(LABELS[split["train"]]).tolist() == [45, 27, 18]
    assert set(split["train"].tolist()) <= set(split["train_pool"].tolist())
    assert set(split["train"].tolist()).isdisjoint(split["val"].tolist())


def test_quotas_sum_exactly_even_with_remainders():
    y = torch.tensor([0] * 7 + [1] * 7 + [2] * 7)
    picked = sample_indices(y, 10, seeded(0))
    assert len(picked) == 10 and len(set(picked.tolist())) == 10
    assert sorted(torch.bincount(y[picked], minlength=3).tolist()) == [3, 3, 4]


def test_regression_targets_split_at_random():
    y = torch.randn(100, 1)
    split = split_indices(y, has_test=False, val_fraction=0.1, seed=0)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (80, 10, 10)


def test_load_dataset_max_train_samples(tiny_mnist):
    full = load_dataset("mnist", tiny_mnist, seed=5)
    small = load_dataset("mnist", tiny_mnist, seed=5, max_train_samples=50)
    assert len(small.train) == 50 and torch.bincount(small.train.y).tolist() == [5] * 10
    assert torch.equal(small.val.y, full.val.y) and torch.equal(small.val.x, full.val.x)
    assert small.mean == full.mean  # statistics of the whole training split, not the subset
