"""`train(config, ...)`: load data once, fit, checkpoint every epoch, test with the best (or last) weights.

A run is five steps: `setup` (device, data, model, optimizer, generators: a `Run`), `restore` (a fresh
`RunState` or a checkpoint's), `fit` (epoch by epoch, keeping the `Best` one; each validation pass also
calibrates the out-of-distribution flag stored in that epoch's checkpoint, ml/ood.py), `select` (load its
weights) and `final_test` (test metrics, the model's report, plots: the `TrainResult`).
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ml.callbacks import NoCallbacks, TrainCallbacks
from ml.checkpoint import capture_rng, checkpoint_name, load_checkpoint, restore_rng, save_checkpoint
from ml.config import Hyperparameters, TrainConfig, config_from_dict
from ml.data import load_dataset
from ml.data.base import DatasetBundle, TensorSplit
from ml.data.splits import TEST_SPLIT_SEED, VAL_SPLIT_SEED
from ml.errors import InvalidConfig, TrainingCancelled
from ml.loop import LossFn, evaluate, make_loss, predict_outputs, train_one_epoch, use_channels_last
from ml.metrics import confusion_matrix, mse, per_class_accuracy, predict, r2_score, top_mistakes
from ml.models import ModelSpec, OutputKind, build_model, get_model_spec, output_kind
from ml.ood import OodCalibration, calibrate
from ml.results import CheckpointInfo, EpochMetrics, TestMetrics, TrainResult

log = logging.getLogger("trainserve.ml")

def resolve_device(requested: str) -> torch.device:
    """auto -> cuda when present, else cpu; cuda without a GPU is a config error."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise InvalidConfig([{"field": "hyperparameters.device",
                              "message": "cuda was requested but no CUDA device is available; use 'auto' or 'cpu'"}])
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def resolve_precision(requested: str, device: torch.device) -> str:
    """auto -> bf16 where the device computes it natively (CUDA compute capability 8.0+, a CPU with
    AVX512-BF16 or AMX, where it trains a photo cnn ~1.8x faster), else fp32: emulated bf16 would be slower."""
    if requested != "auto":
        return requested
    if device.type == "cuda":
        # plain is_bf16_supported() also says yes to emulation (T4, V100), which runs slower than fp32
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def tune_cuda(device: torch.device, precision: str) -> None:
    """On CUDA: let cuDNN pick the fastest kernels (shapes repeat every batch) and fp32 use TF32 tensor cores."""
    if device.type != "cuda":
        return  # the CPU path stays bit-for-bit what it was
    torch.backends.cudnn.benchmark = True
    if precision == "fp32":
        # ~10 bits of mantissa in matmuls and convolutions: what PyTorch's Ampere+ speed figures assume
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def on_cpu(value: Any) -> Any:
    """`value` with every tensor in it (nested dicts, lists) moved to the CPU: checkpoints load on any host."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()  # the same tensor when it already is on the CPU: no copy
    if isinstance(value, dict):
        return {k: on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_cpu(v) for v in value)
    return value


def _apply_thread_setting() -> None:
    # On a shared CPU, fewer intra-op threads than cores avoids OpenMP threads spinning while
    # preempted (measured here: 1 thread ran 5-20x faster than 2 while other jobs used the cores).
    threads = os.environ.get("ML_NUM_THREADS")
    if threads and threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))


def make_optimizer(model: nn.Module, hp, groups: list[dict[str, Any]] | None = None) -> torch.optim.Optimizer:
    """SGD, SGD with momentum, or Adam; weight_decay is the L2 penalty; `groups`: a spec's param groups."""
    params = groups or model.parameters()
    if hp.optimizer == "adam":
        return torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
    momentum = hp.momentum if hp.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=hp.lr, momentum=momentum, weight_decay=hp.weight_decay)


def epoch_lr(hp, epoch: int) -> float:
    """Learning rate of an epoch (1-based): constant, or cosine-decayed over the run."""
    if hp.lr_schedule == "cosine":
        return hp.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / hp.epochs))
    return hp.lr


def dataset_record(bundle: DatasetBundle) -> dict[str, Any]:
    """What serving needs to rebuild the model and preprocess uploads exactly as in evaluation."""
    return {"name": bundle.name, "task": bundle.task, "classes": list(bundle.classes),
            "input_shape": list(bundle.input_shape), "input_kind": bundle.input_kind,
            "image_size": bundle.image_size, "mean": list(bundle.mean), "std": list(bundle.std),
            "upload_framing": bundle.extra.get("upload_framing"), "columns": list(bundle.extra.get("columns", []))}


def _to(split: TensorSplit, device: torch.device) -> TensorSplit:
    return TensorSplit(split.x.to(device), split.y.to(device))


def _make_augmenter(bundle: DatasetBundle, augment: str):
    if augment == "none":
        return None
    from ml.data.augment import make_augmenter  # only runs that augment need it

    return make_augmenter(bundle.input_kind, augment, bundle.mean, bundle.std)


@dataclass
class Run:
    """What `setup` builds for one run and the later steps share: data on its device, model and tools."""

    config: TrainConfig
    out_dir: Path
    callbacks: TrainCallbacks
    device: torch.device
    precision: str  # what the step computes in: "fp32" or "bf16" (auto resolved)
    spec: ModelSpec
    bundle: DatasetBundle  # splits on the CPU, as loaded (reports and plots read them)
    validation: dict[str, Any]  # which samples scored validation (see validation_split)
    kind: OutputKind
    loss_fn: LossFn
    model: nn.Module
    optimizer: torch.optim.Optimizer
    train_split: TensorSplit  # the three splits on the device, in the model's memory layout
    val_split: TensorSplit
    test_split: TensorSplit
    shuffle_gen: torch.Generator
    augmenter: Callable | None
    augment_gen: torch.Generator | None
    tta: str  # validation, test and serving all see the same view of an image

    @property
    def hp(self) -> Hyperparameters:
        return self.config.hp

    @property
    def autocast(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None

    @property
    def metric_name(self) -> str:
        return "val_mse" if self.kind.is_regression else "val_accuracy"


@dataclass
class Best:
    """The epoch a run keeps: the best on validation so far, or the last one with select "last".

    Checkpoints store it as a plain dict (`as_dict`), under "best", as they always have.
    """

    metric: str  # the EpochMetrics field compared: val_accuracy (higher is better) or val_mse (lower)
    epoch: int | None = None
    value: float | None = None
    epochs_without_improvement: int = 0
    checkpoint: str | None = None  # file name of the newest checkpoint written for the kept epoch

    def observe(self, epoch: int, value: float | None, *, keep_last: bool, lower_is_better: bool) -> bool:
        """Record an epoch's validation value; True when that epoch becomes the kept one."""
        improved = keep_last or self.value is None or \
            (value < self.value if lower_is_better else value > self.value)
        if improved:
            self.epoch, self.value, self.epochs_without_improvement = epoch, value, 0
        else:
            self.epochs_without_improvement += 1
        return improved

    def as_dict(self) -> dict[str, Any]:
        """The checkpoint's "best" record (keys in the order checkpoints have always had)."""
        return {"epoch": self.epoch, "metric": self.metric, "value": self.value,
                "epochs_without_improvement": self.epochs_without_improvement, "checkpoint": self.checkpoint}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Best":
        """Back from a checkpoint's "best" record."""
        return cls(metric=record["metric"], epoch=record.get("epoch"), value=record.get("value"),
                   epochs_without_improvement=record.get("epochs_without_improvement", 0),
                   checkpoint=record.get("checkpoint"))


@dataclass
class RunState:
    """Where a run stands between epochs: fresh, or restored from a checkpoint, then moved on by `fit`."""

    best: Best
    history: list[EpochMetrics] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None  # the kept epoch's weights, on the CPU
    ood: OodCalibration | None = None  # the current weights' out-of-distribution threshold (classifiers)
    best_ood: OodCalibration | None = None  # the kept epoch's
    next_epoch: int = 1
    steps_done: int = 0
    last_checkpoint: Path | None = None
    partial: dict[str, Any] | None = None  # a cancelled epoch to continue at its batch
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)  # what the run could not keep as it was (said in its result)


def train(config: TrainConfig | dict[str, Any], *, data_dir: Path | str, out_dir: Path | str,
          callbacks: TrainCallbacks | None = None, resume_from: Path | str | None = None,
          cache_dir: Path | str | None = None, test_split_seed: int = TEST_SPLIT_SEED) -> TrainResult:
    """Train `config`, writing `epoch-NNN.pt` checkpoints to out_dir; returns the run's TrainResult.

    `test_split_seed` (folders without a test split): hold out another test share, for benches that
    report a spread over splits; jobs always use the fixed one.
    """
    started = time.perf_counter()
    _apply_thread_setting()
    config = config if isinstance(config, TrainConfig) else config_from_dict(config)
    device = resolve_device(config.hp.device)
    resume = open_resume(resume_from, config)  # a wrong checkpoint fails before any data is loaded
    run = setup(config, device, data_dir=Path(data_dir), out_dir=Path(out_dir), callbacks=callbacks or NoCallbacks(),
                cache_dir=Path(cache_dir) if cache_dir else None, test_split_seed=test_split_seed)
    state = restore(run, resume, resume_from)
    fit(run, state)
    select(run, state)
    return final_test(run, state, started)


def open_resume(resume_from: Path | str | None, config: TrainConfig) -> dict[str, Any] | None:
    """The checkpoint to resume from (None for a fresh run), checked against `config`."""
    if not resume_from:
        return None
    resume = load_checkpoint(resume_from)
    _check_resumable(config, resume)
    return resume


def setup(config: TrainConfig, device: torch.device, *, data_dir: Path, out_dir: Path, callbacks: TrainCallbacks,
          cache_dir: Path | None, test_split_seed: int) -> Run:
    """Load the data and build the model, loss, optimizer and generators of a run, on `device`."""
    hp = config.hp
    precision = resolve_precision(hp.precision, device)
    tune_cuda(device, precision)
    spec = get_model_spec(config.model)
    bundle = load_run_data(config, data_dir, cache_dir=cache_dir, test_split_seed=test_split_seed)
    # a step that changes the inputs belongs here: below, the model is built from bundle.input_shape
    validation = validation_split(bundle, hp)
    limit_evaluation(bundle, hp)
    splits = [_to(s, device) for s in (bundle.train, bundle.val, bundle.test)]
    kind = output_kind(config)
    loss_fn = spec.custom_losses[hp.loss]() if hp.loss in spec.custom_losses else make_loss(hp.loss, kind)
    model = make_model(config, spec, bundle, device)
    if spec.cached_inputs is not None:  # e.g. a frozen backbone's features, computed once per dataset
        splits = spec.cached_inputs(model, hp, bundle, tuple(splits), cache_dir=cache_dir, callbacks=callbacks)
    train_split, val_split, test_split = use_channels_last(model, *splits)
    optimizer = make_optimizer(model, hp, spec.param_groups(model, hp) if spec.param_groups else None)
    shuffle_gen = torch.Generator().manual_seed(hp.seed)
    augmenter = _make_augmenter(bundle, getattr(hp, "augment", "none"))
    augment_gen = torch.Generator(device=device).manual_seed(hp.seed + 1) if augmenter else None
    return Run(config=config, out_dir=out_dir, callbacks=callbacks, device=device, precision=precision, spec=spec,
               bundle=bundle, validation=validation, kind=kind, loss_fn=loss_fn, model=model, optimizer=optimizer,
               train_split=train_split, val_split=val_split, test_split=test_split, shuffle_gen=shuffle_gen,
               augmenter=augmenter, augment_gen=augment_gen, tta=getattr(hp, "tta", "none"))


def load_run_data(config: TrainConfig, data_dir: Path, *, cache_dir: Path | None, test_split_seed: int) -> DatasetBundle:
    """The run's dataset, split and normalised as its hyperparameters say (on the CPU)."""
    hp = config.hp
    bundle = load_dataset(config.dataset, data_dir, image_size=getattr(hp, "image_size", None),
                          val_fraction=hp.val_fraction, seed=hp.seed, max_train_samples=hp.max_train_samples,
                          cache_dir=cache_dir, test_split_seed=test_split_seed)
    if config.extra_train_dir:  # the training split only: validation and test stay the dataset's own
        from ml.extra_train import append_extra_rows

        append_extra_rows(bundle, Path(config.extra_train_dir))
    return bundle


def limit_evaluation(bundle: DatasetBundle, hp: Hyperparameters) -> None:
    """Smoke mode (max_eval_samples): cut validation and test, which would dominate a tiny run."""
    if hp.max_eval_samples is not None:
        n = hp.max_eval_samples
        bundle.val = TensorSplit(bundle.val.x[:n], bundle.val.y[:n])
        bundle.test = TensorSplit(bundle.test.x[:n], bundle.test.y[:n])


def make_model(config: TrainConfig, spec: ModelSpec, bundle: DatasetBundle, device: torch.device) -> nn.Module:
    """A fresh model from the run's seed (weights and dropout), prepared by its spec, on `device`."""
    torch.manual_seed(config.hp.seed)
    model = build_model(config, bundle.input_shape, bundle.num_classes)
    if spec.prepare is not None:
        spec.prepare(model, bundle)
    return model.to(device)


def restore(run: Run, resume: dict[str, Any] | None, resume_from: Path | str | None) -> RunState:
    """A fresh RunState, or the checkpoint's: weights, optimizer, random states, history and best epoch."""
    if resume is None:
        return RunState(best=Best(metric=run.metric_name))
    run.model.load_state_dict(resume["model_state"])
    run.optimizer.load_state_dict(resume["optimizer_state"])
    step = resume.get("step", 0)
    # a generator saved on another device kind (a job moved between a GPU and a CPU host) restarts
    # from the run's seed and its position, the same way on every resume from this checkpoint
    note = restore_rng(resume["rng"], run.shuffle_gen, run.augment_gen, reseed=(run.hp.seed + 1) * 1_000_003 + step)
    if note:
        log.warning("resuming at step %d: %s", step, note)
    # a checkpoint without best_model_state is the kept epoch's own: its threshold is the kept one's
    best_ood = None if resume.get("best_model_state") else OodCalibration.from_dict(resume.get("ood"))
    return RunState(best=Best.from_dict(resume["best"]), history=[EpochMetrics(**m) for m in resume["metrics"]],
                    best_state=resume.get("best_model_state") or resume["model_state"], best_ood=best_ood,
                    next_epoch=resume["epoch"] + 1, steps_done=step, notes=[note] if note else [],
                    last_checkpoint=Path(resume_from), partial=resume.get("partial"))


# multiply-adds per batch of what learns below which epochs run on one CPU thread (a linear head on
# cached features: 64 x 2,562); OpenMP threads that wait on each other cost more than such steps
TINY_STEP = 1_000_000


def fit(run: Run, state: RunState) -> None:
    """Train epoch by epoch until the last one, early stopping or max_steps; checkpoints as `select` says."""
    run.out_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    if _tiny_steps(run):
        # measured: a head epoch took 3.5 s with 2 threads on a busy 2-core box, 0.05 s with one
        torch.set_num_threads(1)
    try:
        for epoch in range(state.next_epoch, run.hp.epochs + 1):
            if not fit_epoch(run, state, epoch):
                break
    finally:
        torch.set_num_threads(threads)


def _tiny_steps(run: Run) -> bool:
    """On the CPU, a model trained on inputs its spec computed once (a frozen backbone's features) whose
    learning part is too small to share between threads."""
    learning = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    return run.device.type == "cpu" and run.spec.cached_inputs is not None and \
        learning * run.hp.batch_size < TINY_STEP


def fit_epoch(run: Run, state: RunState, epoch: int) -> bool:
    """Train and validate one epoch, keep it if it is the best, checkpoint; False when the run should stop."""
    hp = run.hp
    lr = epoch_lr(hp, epoch)
    for group in run.optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)  # a spec's param groups may learn slower (a backbone)
    stats = _train_pass(run, state, epoch)
    state.steps_done += stats["steps"]
    val_out = predict_outputs(run.model, run.val_split.x, run.tta) if len(run.val_split) else None
    val = evaluate(run.model, run.val_split, loss_fn=run.loss_fn, kind=run.kind, outputs=val_out)
    # calibrated on each epoch's own validation pass: the checkpoint that gets served was written (and
    # its sha256 recorded) when its epoch became the best, so its threshold has to be in it from then
    state.ood = calibrate(val_out, run.kind, hp.ood_quantile) if val_out is not None else None
    metrics = _epoch_metrics(epoch, run.kind, stats, val, lr)
    state.history.append(metrics)
    run.callbacks.on_epoch_end(metrics)

    # select "last": each epoch replaces the one before, so the final epoch is the one kept
    improved = state.best.observe(epoch, getattr(metrics, run.metric_name), keep_last=hp.select == "last",
                                  lower_is_better=run.kind.is_regression)
    if improved:
        state.best_state = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
        state.best_ood = state.ood
    state.stopped_early = bool(hp.early_stopping_patience) and \
        state.best.epochs_without_improvement >= hp.early_stopping_patience
    out_of_steps = hp.max_steps is not None and state.steps_done >= hp.max_steps
    finishing = epoch == hp.epochs or state.stopped_early or out_of_steps
    # a new best is written at once; with select "last" every epoch is the new best, so only
    # checkpoint_every (and the final epoch) decide
    if (improved and hp.select == "best") or finishing or epoch % hp.checkpoint_every == 0:
        _save_epoch_checkpoint(run, state, epoch, improved, metrics)
    return not (state.stopped_early or out_of_steps)


def _train_pass(run: Run, state: RunState, epoch: int) -> dict[str, float]:
    """One training pass; a cancel writes a checkpoint at its batch boundary before it propagates."""
    hp = run.hp
    steps_left = None if hp.max_steps is None else hp.max_steps - state.steps_done
    if state.partial is not None:  # the pass draws the same permutation again, then skips what was done
        run.shuffle_gen.set_state(state.partial["shuffle_before"])
    shuffle_before = run.shuffle_gen.get_state()
    try:
        stats = train_one_epoch(run.model, run.optimizer, run.train_split, loss_fn=run.loss_fn, kind=run.kind,
                                batch_size=hp.batch_size, shuffle=run.shuffle_gen, epoch=epoch,
                                epochs=hp.epochs, callbacks=run.callbacks, l1=hp.l1,
                                augment=run.augmenter, augment_gen=run.augment_gen, max_steps=steps_left,
                                partial=state.partial, autocast=run.autocast)
    except TrainingCancelled as exc:
        # a checkpoint at this batch boundary: stopping costs no work, and resuming is exact
        checkpoint = {**checkpoint_state(run, state, epoch - 1), "best_model_state": state.best_state,
                      "partial": on_cpu({**exc.partial, "epoch": epoch, "shuffle_before": shuffle_before})}
        stop = run.out_dir / f"stopped-epoch-{epoch:03d}.pt"
        save_checkpoint(stop, checkpoint)
        raise TrainingCancelled(exc.epoch, exc.batch, state.last_checkpoint, stop_checkpoint=stop) from None
    state.partial = None
    return stats


def checkpoint_state(run: Run, state: RunState, done_epoch: int) -> dict[str, Any]:
    """Everything a resumed run needs, as of the end of `done_epoch` (or a batch boundary after it)."""
    return {
        # on the CPU: a checkpoint written on a GPU loads on a CPU-only host with no map_location
        "model_state": on_cpu(run.model.state_dict()), "optimizer_state": on_cpu(run.optimizer.state_dict()),
        "epoch": done_epoch, "step": state.steps_done, "rng": capture_rng(run.shuffle_gen, run.augment_gen),
        "config": run.config.model_dump(), "metrics": [m.as_dict() for m in state.history],
        "best": state.best.as_dict(), "dataset": dataset_record(run.bundle), "output": run.kind.value,
        "torch_version": str(torch.__version__),  # a plain str: weights_only loading refuses TorchVersion
    }


def _save_epoch_checkpoint(run: Run, state: RunState, epoch: int, improved: bool, metrics: EpochMetrics) -> None:
    path = run.out_dir / checkpoint_name(epoch)
    if improved:
        state.best.checkpoint = path.name
    checkpoint = checkpoint_state(run, state, epoch)
    # the threshold of this checkpoint's model_state (a stop checkpoint, mid-epoch, has none)
    checkpoint["ood"] = state.ood.as_dict() if state.ood is not None else None
    if not improved:  # keeps every checkpoint self-contained for resume and testing
        checkpoint["best_model_state"] = state.best_state
    sha, size = save_checkpoint(path, checkpoint)
    state.last_checkpoint = path
    run.callbacks.on_checkpoint(CheckpointInfo(path=path, epoch=epoch, sha256=sha, size_bytes=size,
                                               is_best=improved, metrics=metrics.as_dict()))


def select(run: Run, state: RunState) -> None:
    """Load the kept epoch's weights (the best on validation, or the last with select "last") to test them."""
    run.model.load_state_dict(state.best_state)


def final_test(run: Run, state: RunState, started: float) -> TrainResult:
    """Score the selected weights on the test split, collect the model's report and write the plots."""
    test_out = predict_outputs(run.model, run.test_split.x, run.tta) if len(run.test_split) else None
    test = _test_metrics(test_out, run.test_split, run.bundle, run.loss_fn, run.kind)
    extra = run.spec.report(run.model, run.bundle) if run.spec.report is not None else {}
    if "feedback_rows" in run.bundle.extra:  # what the job trained on besides the dataset
        extra = {**extra, "feedback_rows": run.bundle.extra["feedback_rows"],
                 "feedback_skipped": run.bundle.extra["feedback_skipped"]}
    best = state.best
    result = TrainResult(
        config=run.config.model_dump(), epochs=state.history, best_epoch=best.epoch,
        best_metric={"name": run.metric_name, "value": best.value, "split": run.validation}, test=test,
        best_checkpoint=run.out_dir / best.checkpoint if best.checkpoint else None,
        last_checkpoint=state.last_checkpoint, stopped_early=state.stopped_early, device=run.device.type,
        dataset_checksum=run.bundle.checksum, torch_version=torch.__version__,
        seconds=round(time.perf_counter() - started, 3), extra=extra, precision=run.precision, notes=state.notes,
        train_label_counts=None if run.kind.is_regression else train_label_counts(run.bundle),
        ood=_ood_report(state.best_ood, test_out, run.kind),
    )
    _write_plots(result, run.bundle, run.out_dir)
    return result


def train_label_counts(bundle: DatasetBundle) -> dict[str, int]:
    """{class: samples} of the training split as trained on (after max_train_samples), zeros included."""
    counts = torch.bincount(bundle.train.y.reshape(-1).long(), minlength=bundle.num_classes).tolist()
    return {name: int(n) for name, n in zip(bundle.classes, counts)}


def validation_split(bundle: DatasetBundle, hp: Hyperparameters) -> dict[str, Any]:
    """Which samples scored validation: the registry auto-promotes only on a dataset's full reference split."""
    size = len(bundle.val)
    key = f"{bundle.checksum}:{hp.val_fraction}:{VAL_SPLIT_SEED}"
    return {"id": hashlib.sha256(key.encode()).hexdigest()[:16], "size": size,
            "samples": size if hp.max_eval_samples is None else min(size, hp.max_eval_samples),
            "reference": hp.val_fraction == Hyperparameters.model_fields["val_fraction"].default}


def _check_resumable(config: TrainConfig, resume: dict[str, Any]) -> None:
    saved = resume["config"]
    if (saved.get("model"), saved.get("dataset")) != (config.model, config.dataset):
        raise InvalidConfig([{"field": "resume_from", "message":
                              f"checkpoint is {saved.get('model')} on {saved.get('dataset')}, "
                              f"not {config.model} on {config.dataset}"}])
    # equal is fine: a run stopped after its last checkpoint (say, while testing) only tests again
    if resume["epoch"] > config.hp.epochs:
        raise InvalidConfig([{"field": "hyperparameters.epochs", "message":
                              f"must be >= {resume['epoch']} to resume from epoch {resume['epoch']} "
                              f"(got {config.hp.epochs})"}])


def _epoch_metrics(epoch: int, kind: OutputKind, stats: dict, val: dict, lr: float) -> EpochMetrics:
    common = dict(epoch=epoch, train_loss=stats["loss"], val_loss=val["loss"], lr=lr,
                  seconds=round(stats["seconds"], 4),
                  samples_per_second=round(stats["samples"] / max(stats["seconds"], 1e-9), 1))
    if kind.is_regression:
        return EpochMetrics(**common, train_mse=stats["metric"], val_mse=val.get("mse"), val_r2=val.get("r2"))
    return EpochMetrics(**common, train_accuracy=stats["metric"], val_accuracy=val.get("accuracy"))


def _ood_report(calibration: OodCalibration | None, test_out: torch.Tensor | None,
                kind: OutputKind) -> dict[str, Any] | None:
    """The kept weights' calibration and the share of the test split it flags (held out: never calibrated on)."""
    if calibration is None:
        return None
    flagged = None if test_out is None else \
        round(float((calibration.scores(test_out, kind) > calibration.threshold).float().mean()), 4)
    return {**calibration.as_dict(), "test_flagged": flagged}


def _test_metrics(out: torch.Tensor | None, test: TensorSplit, bundle: DatasetBundle, loss_fn,
                  kind: OutputKind) -> TestMetrics | None:
    if out is None:
        return None
    loss = float(loss_fn(out, test.y))
    if kind.is_regression:
        return TestMetrics(loss=loss, mse=mse(out, test.y), r2=r2_score(out, test.y))
    pred, conf = predict(out, kind)
    cm = confusion_matrix(test.y, pred, bundle.num_classes)
    return TestMetrics(loss=loss, accuracy=float((pred == test.y).float().mean()),
                       per_class_accuracy=per_class_accuracy(cm, bundle.classes),
                       confusion_matrix=cm.tolist(),
                       top_mistakes=top_mistakes(test.y, pred, conf, bundle.classes))


def _write_plots(result: TrainResult, bundle: DatasetBundle, out_dir: Path) -> None:
    try:
        from ml.mistakes import write_mistakes
        from ml.plots import write_plots
    except ImportError:
        return
    write_plots(result, bundle.classes, out_dir)
    write_mistakes(result.test, bundle, out_dir)  # the grid needs the test pixels, which only the engine has
