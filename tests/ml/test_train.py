"""The engine end to end on real data subsets: every pair learns, runs are reproducible and resumable."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from ml.callbacks import NoCallbacks
from ml.checkpoint import REQUIRED_KEYS
from ml.config import resolve_config
from ml.data import get_dataset_spec
from ml.errors import InvalidConfig, TrainingCancelled, TrainingDiverged
from ml.train import train
from tests.utils.pairs import VALID_PAIRS

pytestmark = pytest.mark.usefixtures("one_thread")

# small, quick versions of each pair; thresholds are well above chance (0.1 for ten classes, 0.5 for two)
SMOKE = {
    "mnist": dict(epochs=2, max_train_samples=2000, val_fraction=0.02),
    "fashion_mnist": dict(epochs=2, max_train_samples=2000, val_fraction=0.02),
    "cats_dogs": dict(epochs=10, image_size=32, lr=1e-3),
    "synthetic_linear": {},
    "synthetic_sine": {},
    "synthetic_line": dict(epochs=20),
    "synthetic_separable": {},
}
SMOKE_CNN = {"mnist": dict(epochs=1, max_train_samples=1500, max_eval_samples=1000),
             "fashion_mnist": dict(epochs=1, max_train_samples=1500, max_eval_samples=1000),
             "cats_dogs": dict(epochs=3, image_size=32, augment="none")}
FLOOR = {"mnist": 0.6, "fashion_mnist": 0.6, "cats_dogs": 0.6}
# raw-pixel linear models barely beat chance on photos (the course's point); they must still learn
LINEAR_PHOTO_FLOOR = 0.55
LINEAR_PHOTO_SMOKE = dict(epochs=10, image_size=32, lr=1e-2, early_stopping_patience=0, batch_size=32)


def run(model, dataset, tmp_path, data_dir, cache_dir, callbacks=None, resume_from=None, out="run", **overrides):
    config = resolve_config(model, dataset, {**overrides})
    return train(config, data_dir=data_dir, out_dir=tmp_path / out, callbacks=callbacks,
                 resume_from=resume_from, cache_dir=cache_dir)


def comparable(result) -> list[dict]:
    """Per-epoch metrics without the wall-clock figures."""
    return [{k: v for k, v in m.as_dict().items() if k not in ("seconds", "samples_per_second")}
            for m in result.epochs]


@pytest.mark.parametrize("model, dataset", [(m, d) for m, ds in VALID_PAIRS.items() for d in ds])
def test_every_valid_pair_learns(model, dataset, tmp_path, data_dir, cache_dir):
    linear = model in ("logistic_regression", "softmax_regression", "perceptron") and dataset == "cats_dogs"
    overrides = LINEAR_PHOTO_SMOKE if linear else (SMOKE_CNN.get(dataset) if model == "cnn" else None) or SMOKE[dataset]
    result = run(model, dataset, tmp_path, data_dir, cache_dir, **overrides)
    assert result.config["model"] == model and result.dataset_checksum and result.device == "cpu"
    assert all(m.samples_per_second > 0 for m in result.epochs)
    if get_dataset_spec(dataset).task == "regression":
        assert result.test.r2 > 0.9, result.test
    elif dataset == "synthetic_separable":
        assert result.test.accuracy > 0.95, result.test
    else:
        assert result.test.accuracy > (LINEAR_PHOTO_FLOOR if linear else FLOOR[dataset]), result.test
        if linear and model != "perceptron":  # the perceptron rule does not fit noisy photos, by design
            assert max(m.train_accuracy for m in result.epochs) > 0.65
        assert len(result.test.confusion_matrix) == len(result.test.per_class_accuracy)


def test_linear_regression_recovers_w_and_b_with_every_batch_size(tmp_path, data_dir, cache_dir):
    for batch_size, epochs, lr in ((100_000, 150, 0.1), (1, 2, 0.01), (32, 20, 0.05)):  # full, single, mini
        result = run("linear_regression", "synthetic_linear", tmp_path, data_dir, cache_dir,
                     out=f"bs{batch_size}", batch_size=batch_size, epochs=epochs, lr=lr)
        true = result.extra["true"]
        for key in ("learned", "closed_form"):
            w, b = result.extra[key]["weights"], result.extra[key]["bias"]
            assert max(abs(a - t) for a, t in zip(w, true["true_w"])) < 0.05, (batch_size, key, w)
            assert abs(b - true["true_b"]) < 0.05, (batch_size, key, b)
        assert result.test.r2 > 0.999


def test_polynomial_regression_fits_the_sine_better_than_a_line(tmp_path, data_dir, cache_dir):
    line = run("linear_regression", "synthetic_sine", tmp_path, data_dir, cache_dir, out="d1", polynomial_degree=1)
    cubic = run("linear_regression", "synthetic_sine", tmp_path, data_dir, cache_dir, out="d3", polynomial_degree=3)
    assert cubic.test.r2 > 0.95 > line.test.r2
    assert len(cubic.extra["closed_form"]["weights"]) == 3


def test_same_seed_gives_identical_metrics_and_resume_continues_exactly(tmp_path, data_dir, cache_dir):
    kw = dict(epochs=3, max_train_samples=600, val_fraction=0.02, dropout=0.3)
    first = run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="a", **kw)
    again = run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="b", **kw)
    assert comparable(first) == comparable(again)
    resumed = run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="a-resumed",
                  resume_from=tmp_path / "a" / "epoch-001.pt", **kw)
    assert comparable(resumed) == comparable(first)
    assert resumed.test.accuracy == first.test.accuracy and resumed.best_epoch == first.best_epoch


def test_resume_restores_the_augmentation_generator(tmp_path, data_dir, cache_dir):
    kw = dict(epochs=2, max_train_samples=300, max_eval_samples=500, augment="basic", dropout=0.2)
    whole = run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="a", **kw)
    resumed = run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="b",
                  resume_from=tmp_path / "a" / "epoch-001.pt", **kw)
    assert comparable(resumed) == comparable(whole)


def test_resume_refuses_another_model(tmp_path, data_dir, cache_dir):
    run("softmax_regression", "mnist", tmp_path, data_dir, cache_dir, out="a", epochs=1, max_train_samples=200)
    with pytest.raises(InvalidConfig, match="checkpoint is softmax_regression on mnist"):
        run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="b", resume_from=tmp_path / "a" / "epoch-001.pt")


class Recorder(NoCallbacks):
    def __init__(self, stop_after_checks: int | None = None):
        self.events, self.checks, self.stop_after = [], 0, stop_after_checks

    def on_epoch_end(self, metrics):
        self.events.append(("epoch", metrics.epoch))

    def on_checkpoint(self, checkpoint):
        self.events.append(("checkpoint", checkpoint))

    def should_stop(self):
        self.checks += 1
        return self.stop_after is not None and self.checks > self.stop_after


def test_checkpoints_are_safe_complete_and_reported(tmp_path, data_dir, cache_dir):
    rec = Recorder()
    result = run("mlp", "mnist", tmp_path, data_dir, cache_dir, callbacks=rec,
                 epochs=2, max_train_samples=300, val_fraction=0.02)
    kinds = [e[0] for e in rec.events]
    assert kinds == ["epoch", "checkpoint", "epoch", "checkpoint"]  # metrics first, then the file
    info = rec.events[-1][1]
    assert info.path == tmp_path / "run" / "epoch-002.pt" == result.last_checkpoint
    assert info.sha256 == hashlib.sha256(info.path.read_bytes()).hexdigest()
    assert info.size_bytes == info.path.stat().st_size
    state = torch.load(info.path, weights_only=True)
    assert set(REQUIRED_KEYS) <= set(state)
    assert state["epoch"] == 2 and state["config"] == result.config
    assert set(state["rng"]) >= {"torch", "shuffle"}
    assert state["dataset"]["classes"] == [str(d) for d in range(10)]
    assert state["dataset"]["input_shape"] == [1, 28, 28] and len(state["dataset"]["mean"]) == 1
    assert {"name", "task", "input_kind", "image_size", "std"} <= set(state["dataset"])
    assert not list((tmp_path / "run").glob(".*tmp*"))  # no temporary file left behind
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0


def test_test_metrics_come_from_the_best_epoch(tmp_path, data_dir, cache_dir):
    result = run("mlp", "mnist", tmp_path, data_dir, cache_dir, epochs=3, max_train_samples=500, val_fraction=0.02)
    best = max(result.epochs, key=lambda m: m.val_accuracy)
    assert result.best_epoch == best.epoch and result.best_metric["value"] == best.val_accuracy
    # scored on the whole split, but not the reference one (val_fraction 0.02): the registry knows which
    split = result.best_metric["split"]
    assert split["samples"] == split["size"] == 1_200 and split["reference"] is False and len(split["id"]) == 16
    assert result.best_checkpoint == tmp_path / "run" / f"epoch-{best.epoch:03d}.pt"
    assert sum(map(sum, result.test.confusion_matrix)) == 10_000
    mistake = result.test.top_mistakes[0]
    assert mistake["true"] != mistake["predicted"] and 0 < mistake["confidence"] <= 1


def test_nan_loss_stops_with_a_clear_error(tmp_path, data_dir, cache_dir):
    with pytest.raises(TrainingDiverged) as info:
        run("linear_regression", "synthetic_linear", tmp_path, data_dir, cache_dir, lr=10, optimizer="sgd")
    err = info.value
    assert err.epoch >= 1 and err.batch >= 1
    assert "lower the learning rate" in str(err) and "lr=10" in str(err)


def test_should_stop_cancels_within_one_batch_with_the_last_checkpoint(tmp_path, data_dir, cache_dir):
    batches_per_epoch = 300 // 32 + 1
    rec = Recorder(stop_after_checks=batches_per_epoch + 3)  # three batches into epoch 2
    with pytest.raises(TrainingCancelled) as info:
        run("mlp", "mnist", tmp_path, data_dir, cache_dir, callbacks=rec,
            epochs=5, batch_size=32, max_train_samples=300, val_fraction=0.02)
    assert (info.value.epoch, info.value.batch) == (2, 4)
    assert info.value.last_checkpoint == tmp_path / "run" / "epoch-001.pt"
    # said as work done: 1 epoch and 3 batches (resume continues with batch 4 of epoch 2)
    assert (info.value.batches_done, str(info.value)) == (3, "cancelled after 1 epoch and 3 batches of epoch 2")
    assert rec.checks == batches_per_epoch + 4


def test_early_stopping_keeps_the_best_epoch(tmp_path, data_dir, cache_dir):
    result = run("softmax_regression", "mnist", tmp_path, data_dir, cache_dir,
                 epochs=60, lr=0.5, max_train_samples=300, val_fraction=0.02, early_stopping_patience=2)
    assert result.stopped_early and len(result.epochs) < 60
    assert result.best_epoch == result.epochs[-1].epoch - 2


def test_max_steps_is_a_smoke_mode(tmp_path, data_dir, cache_dir):
    result = run("mlp", "mnist", tmp_path, data_dir, cache_dir, epochs=5, max_steps=3, val_fraction=0.02)
    assert len(result.epochs) == 1 and result.epochs[0].samples_per_second > 0


def test_a_stop_mid_epoch_checkpoints_at_the_batch_boundary_and_resumes_exactly(tmp_path, data_dir, cache_dir):
    kw = dict(epochs=3, batch_size=32, max_train_samples=300, val_fraction=0.02, dropout=0.3, augment="basic")
    whole = run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="a", **kw)
    batches_per_epoch = 300 // 32 + 1
    with pytest.raises(TrainingCancelled) as info:
        run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="b", callbacks=Recorder(batches_per_epoch + 3), **kw)
    stop = info.value.stop_checkpoint
    assert stop == tmp_path / "b" / "stopped-epoch-002.pt" and (info.value.epoch, info.value.batch) == (2, 4)
    resumed = run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="b", resume_from=stop, **kw)
    assert comparable(resumed) == comparable(whole)  # epoch 2 continued at batch 4, same sums, same RNG
    assert resumed.test.accuracy == whole.test.accuracy


def test_resuming_from_the_final_checkpoint_only_tests(tmp_path, data_dir, cache_dir):
    kw = dict(epochs=2, max_train_samples=300, val_fraction=0.02)
    whole = run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="a", **kw)
    rec = Recorder()
    again = run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="b", callbacks=rec,
                resume_from=tmp_path / "a" / "epoch-002.pt", **kw)
    assert rec.events == [] and comparable(again) == comparable(whole)
    assert again.test.accuracy == whole.test.accuracy


@pytest.mark.slow
def test_bf16_trains_in_mixed_precision_keeps_fp32_weights_and_resumes_exactly(tmp_path, data_dir, cache_dir):
    kw = dict(epochs=2, image_size=32, augment="none", max_train_samples=300, max_eval_samples=100)
    fp32 = run("cnn", "cats_dogs", tmp_path, data_dir, cache_dir, out="fp32", precision="fp32", **kw)
    bf16 = run("cnn", "cats_dogs", tmp_path, data_dir, cache_dir, out="bf16", precision="bf16", **kw)
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert comparable(bf16) != comparable(fp32)  # the step really ran in bf16: its losses differ
    state = torch.load(bf16.best_checkpoint, weights_only=True)
    assert {v.dtype for v in state["model_state"].values() if v.is_floating_point()} == {torch.float32}
    resumed = run("cnn", "cats_dogs", tmp_path, data_dir, cache_dir, out="resumed", precision="bf16",
                  resume_from=tmp_path / "bf16" / "epoch-001.pt", **kw)
    assert comparable(resumed) == comparable(bf16)


def test_auto_precision_is_bf16_only_where_the_device_computes_it_natively():
    from ml.train import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")


def test_select_last_keeps_tests_and_serves_the_final_epoch(tmp_path, data_dir, cache_dir):
    kw = dict(epochs=4, max_train_samples=600, val_fraction=0.02, lr=0.5)  # a high lr: validation swings
    best = run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="best", **kw)
    last = run("mlp", "mnist", tmp_path, data_dir, cache_dir, out="last", select="last", checkpoint_every=2, **kw)
    assert comparable(last) == comparable(best)  # the same training; only what is kept differs
    assert last.best_epoch == 4 and last.best_checkpoint.name == "epoch-004.pt"
    # every epoch is the newest "best", yet only checkpoint_every writes one
    assert sorted(p.name for p in (tmp_path / "last").glob("epoch-*.pt")) == ["epoch-002.pt", "epoch-004.pt"]
    assert last.best_metric["value"] == last.epochs[-1].val_accuracy
    state = torch.load(last.best_checkpoint, weights_only=True)
    assert state["best"]["epoch"] == 4


def test_the_result_counts_the_training_split_per_class(tmp_path, data_dir, cache_dir):
    result = run("softmax_regression", "mnist", tmp_path, data_dir, cache_dir, epochs=1, max_steps=1,
                 max_train_samples=300, max_eval_samples=100)
    counts = result.train_label_counts
    assert list(counts) == [str(d) for d in range(10)] and sum(counts.values()) == 300
    assert min(counts.values()) > 0  # max_train_samples keeps a stratified subset
    regression = run("linear_regression", "synthetic_linear", tmp_path, data_dir, cache_dir, out="r", epochs=1)
    assert regression.train_label_counts is None
