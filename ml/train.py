"""`train(config, ...)`: load data once, fit, checkpoint every epoch, test with the best (or last) weights."""
from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ml.callbacks import NoCallbacks, TrainCallbacks
from ml.checkpoint import capture_rng, checkpoint_name, load_checkpoint, restore_rng, save_checkpoint
from ml.config import Hyperparameters, TrainConfig, config_from_dict
from ml.data import load_dataset
from ml.data.base import DatasetBundle, TensorSplit
from ml.data.splits import TEST_SPLIT_SEED, VAL_SPLIT_SEED
from ml.errors import InvalidConfig, TrainingCancelled
from ml.loop import evaluate, make_loss, predict_outputs, train_one_epoch, use_channels_last
from ml.metrics import confusion_matrix, per_class_accuracy, predict, r2_score, top_mistakes
from ml.models import build_model, get_model_spec, output_kind
from ml.results import CheckpointInfo, EpochMetrics, TestMetrics, TrainResult


def resolve_device(requested: str) -> torch.device:
    """auto -> cuda when present, else cpu; cuda without a GPU is a config error."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise InvalidConfig([{"field": "hyperparameters.device",
                              "message": "cuda was requested but no CUDA device is available; use 'auto' or 'cpu'"}])
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def resolve_precision(requested: str, device: torch.device) -> str:
    """auto -> bf16 where the device computes it natively (CUDA with bf16, a CPU with AVX512-BF16 or
    AMX, where it trains a photo cnn ~1.8x faster), else fp32: emulated bf16 would be slower."""
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


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


def _make_augmenter(bundle: DatasetBundle, kind: str):
    if kind == "none":
        return None
    from ml.data.augment import make_augmenter  # only runs that augment need it

    return make_augmenter(bundle.input_kind, kind, bundle.mean, bundle.std)


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
    hp, callbacks = config.hp, callbacks or NoCallbacks()
    out_dir = Path(out_dir)
    device = resolve_device(hp.device)
    precision = resolve_precision(hp.precision, device)
    autocast = torch.bfloat16 if precision == "bf16" else None
    resume = load_checkpoint(resume_from) if resume_from else None
    if resume is not None:
        _check_resumable(config, resume)

    spec = get_model_spec(config.model)
    bundle = load_dataset(config.dataset, Path(data_dir), image_size=getattr(hp, "image_size", None),
                          val_fraction=hp.val_fraction, seed=hp.seed,
                          max_train_samples=hp.max_train_samples,
                          cache_dir=Path(cache_dir) if cache_dir else None, test_split_seed=test_split_seed)
    validation = validation_split(bundle, hp)
    if hp.max_eval_samples is not None:  # smoke mode: evaluation would dominate a tiny run
        n = hp.max_eval_samples
        bundle.val = TensorSplit(bundle.val.x[:n], bundle.val.y[:n])
        bundle.test = TensorSplit(bundle.test.x[:n], bundle.test.y[:n])
    train_split, val_split, test_split = (_to(s, device) for s in (bundle.train, bundle.val, bundle.test))
    kind = output_kind(config)
    loss_fn = spec.custom_losses[hp.loss]() if hp.loss in spec.custom_losses else make_loss(hp.loss, kind)

    torch.manual_seed(hp.seed)  # weights and dropout
    model = build_model(config, bundle.input_shape, bundle.num_classes)
    if spec.prepare is not None:
        spec.prepare(model, bundle)
    model.to(device)
    if spec.cached_inputs is not None:  # e.g. a frozen backbone's features, computed once per dataset
        train_split, val_split, test_split = spec.cached_inputs(
            model, hp, bundle, (train_split, val_split, test_split), cache_dir=cache_dir, callbacks=callbacks)
    train_split, val_split, test_split = use_channels_last(model, train_split, val_split, test_split)
    optimizer = make_optimizer(model, hp, spec.param_groups(model, hp) if spec.param_groups else None)
    shuffle_gen = torch.Generator().manual_seed(hp.seed)
    augmenter = _make_augmenter(bundle, getattr(hp, "augment", "none"))
    augment_gen = torch.Generator(device=device).manual_seed(hp.seed + 1) if augmenter else None
    tta = getattr(hp, "tta", "none")  # validation, test and serving all see the same view of an image

    history: list[EpochMetrics] = []
    metric_name = "val_mse" if kind == "identity" else "val_accuracy"
    best: dict[str, Any] = {"epoch": None, "metric": metric_name, "value": None,
                            "epochs_without_improvement": 0, "checkpoint": None}
    best_state: dict[str, torch.Tensor] | None = None
    start_epoch, steps_done = 1, 0
    last_ckpt: Path | None = None
    if resume is not None:
        model.load_state_dict(resume["model_state"])
        optimizer.load_state_dict(resume["optimizer_state"])
        restore_rng(resume["rng"], shuffle_gen, augment_gen)
        history = [EpochMetrics(**m) for m in resume["metrics"]]
        best = dict(resume["best"])
        best_state = resume.get("best_model_state") or resume["model_state"]
        start_epoch, steps_done = resume["epoch"] + 1, resume.get("step", 0)
        last_ckpt = Path(resume_from)
    out_dir.mkdir(parents=True, exist_ok=True)

    def state_at(done_epoch: int) -> dict[str, Any]:
        """Everything a resumed run needs, as of the end of `done_epoch` (or a batch boundary after it)."""
        return {
            "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
            "epoch": done_epoch, "step": steps_done, "rng": capture_rng(shuffle_gen, augment_gen),
            "config": config.model_dump(), "metrics": [m.as_dict() for m in history],
            "best": dict(best), "dataset": dataset_record(bundle), "output": kind,
            "torch_version": str(torch.__version__),  # a plain str: weights_only loading refuses TorchVersion
        }

    partial = resume.get("partial") if resume is not None else None
    stopped_early = False
    for epoch in range(start_epoch, hp.epochs + 1):
        lr = epoch_lr(hp, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        steps_left = None if hp.max_steps is None else hp.max_steps - steps_done
        if partial is not None:  # the pass draws the same permutation again, then skips what was done
            shuffle_gen.set_state(partial["shuffle_before"])
        shuffle_before = shuffle_gen.get_state()
        try:
            stats = train_one_epoch(model, optimizer, train_split, loss_fn=loss_fn, kind=kind,
                                    batch_size=hp.batch_size, shuffle=shuffle_gen, epoch=epoch,
                                    epochs=hp.epochs, callbacks=callbacks, l1=hp.l1,
                                    augment=augmenter, augment_gen=augment_gen, max_steps=steps_left,
                                    partial=partial, autocast=autocast)
        except TrainingCancelled as exc:
            # a checkpoint at this batch boundary: stopping costs no work, and resuming is exact
            state = {**state_at(epoch - 1), "best_model_state": best_state,
                     "partial": {**exc.partial, "epoch": epoch, "shuffle_before": shuffle_before}}
            stop = out_dir / f"stopped-epoch-{epoch:03d}.pt"
            save_checkpoint(stop, state)
            raise TrainingCancelled(exc.epoch, exc.batch, last_ckpt, stop_checkpoint=stop) from None
        partial = None
        steps_done += stats["steps"]
        val = evaluate(model, val_split, loss_fn=loss_fn, kind=kind, tta=tta)
        metrics = _epoch_metrics(epoch, kind, stats, val, lr)
        history.append(metrics)
        callbacks.on_epoch_end(metrics)

        value = getattr(metrics, metric_name)
        # select "last": each epoch replaces the one before, so the final epoch is the one kept
        improved = hp.select == "last" or best["value"] is None or \
            (value < best["value"] if kind == "identity" else value > best["value"])
        if improved:
            best.update(epoch=epoch, value=value, epochs_without_improvement=0)
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            best["epochs_without_improvement"] += 1
        stopped_early = bool(hp.early_stopping_patience) and \
            best["epochs_without_improvement"] >= hp.early_stopping_patience
        out_of_steps = hp.max_steps is not None and steps_done >= hp.max_steps
        finishing = epoch == hp.epochs or stopped_early or out_of_steps
        # a new best is written at once; with select "last" every epoch is the new best, so only
        # checkpoint_every (and the final epoch) decide
        if (improved and hp.select == "best") or finishing or epoch % hp.checkpoint_every == 0:
            path = out_dir / checkpoint_name(epoch)
            if improved:
                best["checkpoint"] = path.name
            state = state_at(epoch)
            if not improved:  # keeps every checkpoint self-contained for resume and testing
                state["best_model_state"] = best_state
            sha, size = save_checkpoint(path, state)
            last_ckpt = path
            callbacks.on_checkpoint(CheckpointInfo(path=path, epoch=epoch, sha256=sha, size_bytes=size,
                                                   is_best=improved, metrics=metrics.as_dict()))
        if stopped_early or out_of_steps:
            break

    model.load_state_dict(best_state)  # test with the best epoch's weights
    test = _test_metrics(model, test_split, bundle, loss_fn, kind, tta)
    extra = spec.report(model, bundle) if spec.report is not None else {}
    result = TrainResult(
        config=config.model_dump(), epochs=history, best_epoch=best["epoch"],
        best_metric={"name": metric_name, "value": best["value"], "split": validation}, test=test,
        best_checkpoint=out_dir / best["checkpoint"] if best.get("checkpoint") else None,
        last_checkpoint=last_ckpt, stopped_early=stopped_early, device=device.type,
        dataset_checksum=bundle.checksum, torch_version=torch.__version__,
        seconds=round(time.perf_counter() - started, 3), extra=extra, precision=precision,
    )
    _write_plots(result, bundle, out_dir)
    return result


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


def _epoch_metrics(epoch: int, kind: str, stats: dict, val: dict, lr: float) -> EpochMetrics:
    common = dict(epoch=epoch, train_loss=stats["loss"], val_loss=val["loss"], lr=lr,
                  seconds=round(stats["seconds"], 4),
                  samples_per_second=round(stats["samples"] / max(stats["seconds"], 1e-9), 1))
    if kind == "identity":
        return EpochMetrics(**common, train_mse=stats["metric"], val_mse=val.get("mse"), val_r2=val.get("r2"))
    return EpochMetrics(**common, train_accuracy=stats["metric"], val_accuracy=val.get("accuracy"))


def _test_metrics(model: nn.Module, test: TensorSplit, bundle: DatasetBundle, loss_fn, kind: str,
                  tta: str) -> TestMetrics | None:
    if len(test) == 0:
        return None
    out = predict_outputs(model, test.x, tta)
    loss = float(loss_fn(out, test.y))
    if kind == "identity":
        return TestMetrics(loss=loss, mse=float(((out.reshape(-1) - test.y.reshape(-1)) ** 2).mean()),
                           r2=r2_score(out, test.y))
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
