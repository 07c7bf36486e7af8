"""Training throughput on full MNIST: the engine vs the tutorial DataLoader loop vs a bare tensor loop.

    DATA_DIR=../shared/data .venv/bin/python bench/train_throughput.py [--steps 600] [--threads 1]

Same model, optimizer and batch size in all three (784-128-64-10 MLP, Adam 1e-3, batch 64; then the
small CNN). Each variant runs `--steps` batches after a warm-up, `--rounds` times interleaved, best kept.
Targets (issue 2): engine >= 5x DataLoader and >= 0.9x bare for the MLP; CNN engine >= 1.5x DataLoader.
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
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402
from torchvision import transforms  # noqa: E402

from ml.cli import default_data_dir  # noqa: E402
from ml.config import resolve_config  # noqa: E402
from ml.data.mnist import require_idx_files  # noqa: E402
from ml.data.idx import read_idx  # noqa: E402
from ml.models import build_model  # noqa: E402
from ml.callbacks import NoCallbacks  # noqa: E402
from ml.data import load_dataset  # noqa: E402
from ml.loop import make_loss, train_one_epoch, use_channels_last  # noqa: E402


class TutorialMNIST(Dataset):
    """What torchvision.datasets.MNIST does per item: uint8 array -> PIL image -> transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        img = Image.fromarray(self.images[i].numpy(), mode="L")
        return self.transform(img), int(self.labels[i])


def fresh(config):
    torch.manual_seed(0)
    model = build_model(config, (1, 28, 28), 10)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def step(model, opt, x, y) -> None:
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def dataloader_loop(config, ds: Dataset, steps: int, warmup: int) -> float:
    model, opt = fresh(config)
    model.train()
    loader = DataLoader(ds, batch_size=64, shuffle=True)
    it = iter(loader)
    for _ in range(warmup):
        step(model, opt, *next(it))
    start, seen = time.perf_counter(), 0
    for _ in range(steps):
        x, y = next(it)
        step(model, opt, x, y)
        seen += len(y)
    return seen / (time.perf_counter() - start)


def bare_loop(config, x_all: torch.Tensor, y_all: torch.Tensor, steps: int, warmup: int) -> float:
    model, opt = fresh(config)
    model.train()
    perm = torch.randperm(len(y_all))
    for b in range(warmup):
        idx = perm[b * 64:(b + 1) * 64]
        step(model, opt, x_all[idx], y_all[idx])
    start, seen = time.perf_counter(), 0
    for b in range(warmup, warmup + steps):
        idx = perm[b * 64:(b + 1) * 64]
        step(model, opt, x_all[idx], y_all[idx])
        seen += len(idx)
    return seen / (time.perf_counter() - start)


def engine(config, bundle, steps: int, warmup: int) -> float:
    """The engine's batch loop (ml.loop.train_one_epoch: device-resident data, per-epoch randperm,
    accuracy accounting, divergence and should_stop checks) on the tensors ml.data.load_dataset made.
    train() adds only per-epoch work around it (evaluation, checkpoint)."""
    model, opt = fresh(config)
    [train] = use_channels_last(model, bundle.train)  # as train() does for conv nets
    kw = dict(loss_fn=make_loss("cross_entropy", "softmax"), kind="softmax", batch_size=64,
              shuffle=torch.Generator().manual_seed(0), epoch=1, epochs=1, callbacks=NoCallbacks())
    train_one_epoch(model, opt, train, max_steps=warmup, **kw)
    stats = train_one_epoch(model, opt, train, max_steps=steps, **kw)
    return stats["samples"] / stats["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600, help="timed batches per MLP variant")
    parser.add_argument("--cnn-steps", type=int, default=150, help="timed batches per CNN variant")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: steadier on a shared 2-core box)")
    parser.add_argument("--skip-cnn", action="store_true")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["ML_NUM_THREADS"] = str(args.threads)

    files = require_idx_files("mnist", args.data_dir)
    images, labels = read_idx(files["train_x"]), read_idx(files["train_y"]).long()
    tutorial = TutorialMNIST(images, labels)
    x_all = ((images.float() / 255 - 0.1307) / 0.3081).unsqueeze(1).contiguous()
    bundle = load_dataset("mnist", args.data_dir, val_fraction=0.01)  # the engine's own tensors

    rows = []
    for model_name, steps in (("mlp", args.steps), ("cnn", args.cnn_steps)):
        if model_name == "cnn" and args.skip_cnn:
            continue
        config = resolve_config(model_name, "mnist", {"dropout": 0.2 if model_name == "mlp" else 0.5})
        best = {"engine": 0.0, "dataloader": 0.0, "bare": 0.0}
        for r in range(args.rounds):
            for name, fn in (("bare", lambda: bare_loop(config, x_all, labels, steps, args.warmup)),
                             ("engine", lambda: engine(config, bundle, steps, args.warmup)),
                             ("dataloader", lambda: dataloader_loop(config, tutorial, steps, args.warmup))):
                value = fn()
                best[name] = max(best[name], value)
                print(f"{model_name:4} round {r + 1} {name:10} {value:10,.0f} samples/s", flush=True)
        rows.append({"model": model_name, "steps": steps, "threads": args.threads, **{k: round(v) for k, v in best.items()},
                     "engine_vs_dataloader": round(best["engine"] / best["dataloader"], 2),
                     "engine_vs_bare": round(best["engine"] / best["bare"], 3)})

    lines = ["| model | engine | tutorial DataLoader | bare tensors | engine / DataLoader | engine / bare |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['engine']:,} | {r['dataloader']:,} | {r['bare']:,} | "
                     f"{r['engine_vs_dataloader']}x | {r['engine_vs_bare']}x |")
    table = "\n".join(lines)
    print(f"\nsamples/s, best of {args.rounds} interleaved rounds, {args.threads} thread(s):\n{table}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(rows, indent=2))
    (args.out / "throughput.md").write_text(table + "\n")
    ok = all(r["engine_vs_dataloader"] >= (5 if r["model"] == "mlp" else 1.5) for r in rows) and \
        all(r["engine_vs_bare"] >= 0.9 for r in rows if r["model"] == "mlp")
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
