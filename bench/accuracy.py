"""Train the course defaults (or the presets) on FULL data and compare with the issue's targets.

    DATA_DIR=../shared/data .venv/bin/python bench/accuracy.py [--only mnist:cnn ...] [--set epochs=5]
    DATA_DIR=../shared/data .venv/bin/python bench/accuracy.py --preset mlp_mnist [--preset ...] | --presets
    DATA_DIR=../shared/data .venv/bin/python bench/accuracy.py --spread [--seed 0 --seed 1 ...] [--before] [--set ...]

Results accumulate in var/bench/accuracy.json and var/bench/accuracy.md (one row per pair, latest run).
`--spread` trains the default cats_dogs cnn once per seed (0, 1, 2), each on its own split (seed s holds out
the test share drawn with TEST_SPLIT_SEED + s), serves the best checkpoint and scores the held-out
photos as they are and under the shifts of bench/shifts.py; `--before` does the same with the
defaults the cats_dogs cnn had before issue 13. Rows go to var/bench/spread.json and spread.md.
`--spread --model efficientnet_lite0 [--set train=fine_tune] [--label few-shot --set max_train_samples=40
--no-shifts]` does the same for the pretrained model (max_train_samples draws a stratified subset per seed).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from ml.cli import PrintingCallbacks, default_data_dir, jsonable, parse_assignment, parse_value  # noqa: E402
from ml.config import resolve_config  # noqa: E402
from ml.presets import PRESETS, measure, reached  # noqa: E402
from ml.train import train  # noqa: E402

# (dataset, model) -> minimum test accuracy; synthetic_linear: w and b within 0.05 of the truth
TARGETS = {
    ("mnist", "mlp"): 0.980,
    ("mnist", "cnn"): 0.990,
    ("fashion_mnist", "softmax_regression"): 0.83,
    ("fashion_mnist", "mlp"): 0.88,
    ("fashion_mnist", "cnn"): 0.91,
    ("cats_dogs", "logistic_regression"): 0.58,
    ("cats_dogs", "cnn"): 0.78,
    ("cats_dogs", "efficientnet_lite0"): 0.97,  # head mode (issue 21)
    ("synthetic_linear", "linear_regression"): 0.05,
}


def run_pair(dataset: str, model: str, overrides: dict, args) -> dict:
    config = resolve_config(model, dataset, overrides)
    print(f"== {dataset}:{model}  {json.dumps(config.hp.model_dump(exclude_defaults=True))}", flush=True)
    result = train(config, data_dir=args.data_dir, out_dir=args.out / "runs" / f"{dataset}-{model}",
                   callbacks=PrintingCallbacks(prefix="   "), cache_dir=args.out / "cache")
    target = TARGETS[(dataset, model)]
    row = {"dataset": dataset, "model": model, "target": target, "epochs_run": len(result.epochs),
           "best_epoch": result.best_epoch, "seconds": round(result.seconds, 1),
           "threads": torch.get_num_threads(), "device": result.device,
           "mean_samples_per_second": round(sum(e.samples_per_second for e in result.epochs) / len(result.epochs)),
           "overrides": overrides, "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    if dataset == "synthetic_linear":
        true, learned = result.extra["true"], result.extra["learned"]
        err = max([abs(a - b) for a, b in zip(learned["weights"], true["true_w"])] +
                  [abs(learned["bias"] - true["true_b"])])
        row.update(value=round(err, 5), metric="max error of w, b", passed=err <= target,
                   learned=learned, closed_form=result.extra["closed_form"])
    else:
        row.update(value=round(result.test.accuracy, 4), metric="test accuracy",
                   passed=result.test.accuracy >= target)
    print(f"-> {dataset}:{model} {row['metric']} {row['value']} (target {target}) "
          f"{'PASS' if row['passed'] else 'MISS'} in {row['seconds']}s", flush=True)
    return row


def run_preset(name: str, args) -> dict:
    preset = PRESETS[name]
    config = resolve_config(None, None, {}, preset=name)
    print(f"== preset {name}: {preset.description}", flush=True)
    result = train(config, data_dir=args.data_dir, out_dir=args.out / "runs" / f"preset-{name}",
                   callbacks=PrintingCallbacks(prefix="   "), cache_dir=args.out / "cache")
    metric, target = preset.figure
    value = measure(preset, result)
    row = {"dataset": preset.dataset, "model": f"preset {name}", "target": target, "metric": metric,
           "value": round(value, 5), "passed": reached(preset, value), "epochs_run": len(result.epochs),
           "best_epoch": result.best_epoch, "seconds": round(result.seconds, 1), "threads": torch.get_num_threads(),
           "device": result.device, "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    print(f"-> preset {name} {metric} {row['value']} (documented {target}) "
          f"{'PASS' if row['passed'] else 'MISS'} in {row['seconds']}s", flush=True)
    return row


def write_tables(rows: dict, out: Path) -> None:
    (out / "accuracy.json").write_text(json.dumps(jsonable(rows), indent=2))
    lines = ["| dataset | model | metric | result | target | pass | epochs (best) | time s | threads |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(rows):
        r = rows[key]
        cmp = "≤" if r["metric"] in ("max error of w, b", "weight_error") else "≥"
        lines.append(f"| {r['dataset']} | {r['model']} | {r['metric']} | {r['value']} | {cmp} {r['target']} | "
                     f"{'yes' if r['passed'] else 'NO'} | {r['epochs_run']} ({r['best_epoch']}) | {r['seconds']} | "
                     f"{r['threads']} |")
    (out / "accuracy.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], help="dataset:model (repeatable)")
    parser.add_argument("--set", action="append", type=parse_assignment, default=[], metavar="NAME=VALUE",
                        help="override the defaults (for tuning)")
    parser.add_argument("--preset", action="append", default=[], choices=sorted(PRESETS),
                        help="run a preset instead of the default pairs (repeatable)")
    parser.add_argument("--presets", action="store_true", help="run every preset")
    parser.add_argument("--spread", action="store_true",
                        help="the cats_dogs cnn over several seeds and splits, with shifted inputs")
    parser.add_argument("--seed", type=int, action="append", default=[],
                        help="--spread: a seed (and split) to run, repeatable; default 0 1 2 (several "
                        "processes with one --seed each share the table)")
    parser.add_argument("--before", action="store_true", help="--spread: the defaults before issue 13")
    parser.add_argument("--model", default="cnn", help="--spread: the model to train (default cnn)")
    parser.add_argument("--label", help="--spread: the table column (default: after, or the model's name)")
    parser.add_argument("--no-shifts", action="store_true", help="--spread: score the held-out photos only")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("ML_NUM_THREADS", "0")) or None)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench")
    args = parser.parse_args()
    if args.threads:
        os.environ["ML_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.spread:
        return _run_spread(args)
    presets = sorted(PRESETS) if args.presets else args.preset
    if presets:
        return _run_presets(presets, args)
    pairs = [tuple(p.split(":")) for p in args.only] or list(TARGETS)
    unknown = [p for p in pairs if p not in TARGETS]
    if unknown:
        parser.error(f"unknown pairs {unknown}; choose from {[':'.join(k) for k in TARGETS]}")
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "accuracy.json"
    overrides = {k: parse_value(v) for k, v in args.set}
    for dataset, model in pairs:
        row = run_pair(dataset, model, overrides, args)
        # re-read: another bench process may have added rows meanwhile
        rows = json.loads(results_path.read_text()) if results_path.exists() else {}
        rows[f"{dataset}:{model}"] = row
        write_tables(rows, args.out)
    print((args.out / "accuracy.md").read_text())
    return 0 if all(rows.get(f"{d}:{m}", {}).get("passed") for d, m in pairs) else 1


def _run_presets(names: list[str], args) -> int:
    results_path = args.out / "accuracy.json"
    passed = True
    for name in names:
        row = run_preset(name, args)
        rows = json.loads(results_path.read_text()) if results_path.exists() else {}
        rows[f"preset:{name}"] = row
        write_tables(rows, args.out)
        passed = passed and row["passed"]
    print((args.out / "accuracy.md").read_text())
    return 0 if passed else 1


def _run_spread(args) -> int:
    from spread import BEFORE, run_seed, write_spread_tables

    label = args.label or ("before" if args.before else "after" if args.model == "cnn" else args.model)
    overrides = {**(BEFORE if args.before else {}), **{k: parse_value(v) for k, v in args.set}}
    path = args.out / "spread.json"
    for seed in args.seed or [0, 1, 2]:
        row = run_seed(label, overrides, seed, args.data_dir, args.out, model=args.model, shifts=not args.no_shifts)
        rows = json.loads(path.read_text()) if path.exists() else []
        rows = [r for r in rows if (r["label"], r["seed"]) != (label, seed)] + [row]
        write_spread_tables(rows, args.out)
    print((args.out / "spread.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
