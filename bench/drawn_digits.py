"""How well the default mnist cnn reads digits drawn the way users draw them, with and without our preprocessing.

Trains the course defaults (resolve_config("cnn", "mnist", {})) on full MNIST unless given a checkpoint,
then classifies the drawn-digit set of tests/ml/inference/drawn_digits.py (8 canvases, strokes and
fonts, PNG and JPEG) through the serving pipeline (decode_upload → MNIST-style framing → model) and
through a naive grayscale-resize-to-28×28. Prints overall and per-canvas accuracy.

    .venv/bin/python bench/drawn_digits.py [--checkpoint PATH] [--per-digit 50] [--max-train-samples N]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ml" / "inference"))

from drawn_digits import drawn_digit_set  # noqa: E402

from core.settings import Settings  # noqa: E402
from ml.config import resolve_config  # noqa: E402
from ml.data.transforms import normalize  # noqa: E402
from ml.inference import Predictor, decode_upload  # noqa: E402
from ml.train import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--per-digit", type=int, default=50, help="drawings per digit and seed")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--max-train-samples", type=int)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            overrides = {"max_train_samples": args.max_train_samples} if args.max_train_samples else {}
            config = resolve_config("cnn", "mnist", overrides)
            started = time.perf_counter()
            result = train(config, data_dir=Settings().data_dir, out_dir=tmp)
            print(f"trained {config.model} on {config.dataset} with the course defaults {overrides or ''}: "
                  f"test accuracy {result.test.accuracy:.4f} in {time.perf_counter() - started:.0f} s")
            checkpoint = result.best_checkpoint
        predictor = Predictor.load(checkpoint)

    ok: dict[str, list[bool]] = defaultdict(list)
    naive_ok: dict[str, list[bool]] = defaultdict(list)
    for seed in range(args.seeds):
        samples = drawn_digit_set(n_per_digit=args.per_digit, seed=seed)
        images = [decode_upload(data, max_bytes=10**7, max_pixels=4 * 10**7) for _, _, data in samples]
        predicted = [p.class_index for p in predictor.predict(images, top_k=1)]
        naive = torch.stack([torch.from_numpy(np.array(img.convert("L").resize((28, 28))))[None] for img in images])
        naive_pred = predictor.probabilities(normalize(naive, predictor.dataset["mean"],
                                                       predictor.dataset["std"])).argmax(1).tolist()
        for (digit, description, _), p, q in zip(samples, predicted, naive_pred):
            kind = description.rsplit(" ", 1)[0]
            for key in ("all", kind, "typed" if "typed" in kind else "handwritten"):
                ok[key].append(p == digit)
                naive_ok[key].append(q == digit)

    print(f"{'drawn digits':<42} {'n':>5} {'pipeline':>9} {'naive':>7}")
    for key in sorted(ok, key=lambda k: (k != "all", k)):
        print(f"{key:<42} {len(ok[key]):>5} {np.mean(ok[key]):>9.1%} {np.mean(naive_ok[key]):>7.1%}")


if __name__ == "__main__":
    main()
