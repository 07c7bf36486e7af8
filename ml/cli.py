"""Command line: `python -m ml train ...` and `python -m ml grid ...`; the last line printed is JSON."""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ml.errors import DatasetFilesMissing, InvalidConfig, MLError, TrainingCancelled

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    """DATA_DIR from the environment, else ../shared/data beside the repository."""
    return Path(os.environ.get("DATA_DIR") or REPO.parent / "shared" / "data")


def parse_value(text: str) -> Any:
    """A --set value: JSON when it parses (numbers, lists, null), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return key.strip(), value.strip()


def split_choices(text: str) -> list[Any]:
    """'0.1,0.01' -> [0.1, 0.01]; '[64],[128,64]' -> [[64], [128, 64]] (commas inside brackets stay)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [parse_value(p.strip()) for p in parts if p.strip()]


def jsonable(value: Any) -> Any:
    """Replace NaN/inf (not JSON) with null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class PrintingCallbacks:
    """Prints one line per epoch; Ctrl-C asks the engine to stop between batches."""

    def __init__(self, prefix: str = ""):
        self.prefix, self.stop = prefix, False

    def on_progress(self, progress) -> None:
        if progress.note:  # work before the epochs, e.g. "extracting features 812/2002"
            print(f"{self.prefix}{progress.note}  {progress.samples_per_second:,.1f} samples/s", flush=True)

    def on_epoch_end(self, m) -> None:
        metric = (f"train_acc {m.train_accuracy:.4f}  val_acc {m.val_accuracy:.4f}"
                  if m.val_accuracy is not None else f"train_mse {m.train_mse:.5f}  val_mse {m.val_mse:.5f}  val_r2 {m.val_r2:.4f}")
        print(f"{self.prefix}epoch {m.epoch:3d}  train_loss {m.train_loss:.4f}  val_loss {m.val_loss:.4f}  "
              f"{metric}  lr {m.lr:.3g}  {m.seconds:.1f}s  {m.samples_per_second:,.0f} samples/s", flush=True)

    def on_checkpoint(self, checkpoint) -> None:
        pass

    def should_stop(self) -> bool:
        return self.stop


def _overrides(args) -> dict[str, Any]:
    overrides = {k: parse_value(v) for k, v in (args.set or [])}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    return overrides


def _train_one(model, dataset, overrides, args, out_dir, callbacks, resume=None):
    from ml.config import resolve_config

    config = resolve_config(model, dataset, overrides)  # refuse a bad config before importing torch
    from ml.train import train

    return train(config, data_dir=args.data_dir, out_dir=out_dir, callbacks=callbacks,
                 resume_from=resume, cache_dir=args.cache_dir)


def cmd_train(args) -> int:
    callbacks = PrintingCallbacks()
    signal.signal(signal.SIGINT, lambda *_: setattr(callbacks, "stop", True))
    result = _train_one(args.model, args.dataset, _overrides(args), args, args.out, callbacks, args.resume)
    if result.test is not None:
        figure = (f"test accuracy {result.test.accuracy:.4f}" if result.test.accuracy is not None
                  else f"test mse {result.test.mse:.5f}  r2 {result.test.r2:.4f}")
        print(f"best epoch {result.best_epoch}  {figure}  ({result.seconds:.1f}s on {result.device})", flush=True)
    print(json.dumps(jsonable(result.as_dict()), default=str))
    return 0


def cmd_grid(args) -> int:
    """Train every combination of the --grid values; the best by validation metric wins."""
    from ml.search import expand_grid, resolve_trials

    base = _overrides(args)
    choices = expand_grid({key: split_choices(values) for key, values in args.grid})
    resolve_trials(args.model, args.dataset, base, choices, searched="--grid")  # every trial valid before any trains
    runs = []
    for i, choice in enumerate(choices, start=1):
        label = " ".join(f"{k}={json.dumps(v)}" for k, v in choice.items())
        print(f"[{i}] {label}", flush=True)
        result = _train_one(args.model, args.dataset, {**base, **choice}, args, Path(args.out) / f"run-{i:03d}",
                            PrintingCallbacks(prefix="    "))
        test = result.test
        runs.append({"run": i, "overrides": choice, "best_epoch": result.best_epoch,
                     "best_metric": result.best_metric,
                     "test_accuracy": test.accuracy if test else None, "test_mse": test.mse if test else None,
                     "best_checkpoint": str(result.best_checkpoint)})
    lower_is_better = runs[0]["best_metric"]["name"] == "val_mse"
    best = sorted(runs, key=lambda r: r["best_metric"]["value"], reverse=not lower_is_better)[0]
    name = runs[0]["best_metric"]["name"]
    print(f"\n{'run':>4}  {'overrides':40}  {name:>12}  {'test':>8}")
    for r in runs:
        test = r["test_accuracy"] if r["test_accuracy"] is not None else r["test_mse"]
        mark = " *" if r is best else ""
        print(f"{r['run']:>4}  {json.dumps(r['overrides']):40}  {r['best_metric']['value']:>12.4f}  "
              f"{test if test is not None else float('nan'):>8.4f}{mark}")
    print(json.dumps(jsonable({"model": args.model, "dataset": args.dataset, "best": best, "runs": runs})))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml", description="Train the course models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("train", "train one configuration"), ("grid", "grid search over hyperparameters")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--model", required=True)
        p.add_argument("--dataset", required=True)
        p.add_argument("--epochs", type=int)
        p.add_argument("--set", action="append", type=parse_assignment, metavar="NAME=VALUE",
                       help="override a hyperparameter (JSON values: lr=0.01, hidden_sizes=[256,64])")
        p.add_argument("--out", type=Path, required=True, help="folder for checkpoints and plots")
        p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="default: $DATA_DIR")
        p.add_argument("--cache-dir", type=Path, default=None, help="decoded-image cache")
        if name == "train":
            p.add_argument("--resume", type=Path, help="continue from an epoch-NNN.pt checkpoint")
        else:
            p.add_argument("--grid", action="append", type=parse_assignment, required=True,
                           metavar="NAME=V1,V2", help="values to try, e.g. lr=0.1,0.01 or hidden_sizes=[64],[128]")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return cmd_train(args) if args.command == "train" else cmd_grid(args)
    except InvalidConfig as exc:
        print(f"invalid config: {exc}", file=sys.stderr)
        return 2
    except DatasetFilesMissing as exc:
        print(str(exc), file=sys.stderr)
        return 3
    except TrainingCancelled as exc:
        print(f"{exc}; last checkpoint: {exc.last_checkpoint}", file=sys.stderr)
        return 130
    except MLError as exc:
        print(str(exc), file=sys.stderr)
        return 1
