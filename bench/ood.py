"""Out-of-distribution flags: the share flagged of real inputs (false flags) and of inputs unlike the training data.

Trains small default models (the course defaults, cut by --max-train-samples and --epochs); the engine
calibrates each on its validation split (ml/ood.py, `ood_quantile` 0.95). Then every set goes through
the serving pipeline (decode_upload → the dataset's framing → the model), except the held-out test
split, which is also scored as the tensors the engine tested. In-distribution: that test split (never
calibrated on) and, for mnist, drawn digits (tests/ml/inference/drawn_digits.py). Out: cats-dogs
photos, the other grey set's test images, noise and blank images. A set's "caught" share counts the
uploads that abstained (nothing to read) or were flagged. Columns: energy (the served score, with the
checkpoint's threshold), max-logit and top-1 confidence (each thresholded at the same validation
quantile, for comparison) and the existing low_confidence flag.

    nice .venv/bin/python bench/ood.py [--models cnn:mnist,mlp:mnist,cnn:fashion_mnist] [--max-train-samples 20000 --epochs 3]
"""
from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ml" / "inference"))

from drawn_digits import drawn_digit_set  # noqa: E402

from core.settings import Settings  # noqa: E402
from ml.config import resolve_config  # noqa: E402
from ml.data import load_dataset  # noqa: E402
from ml.data.splits import TEST_SPLIT_SEED  # noqa: E402
from ml.inference import Predictor, decode_upload  # noqa: E402
from ml.loop import predict_outputs  # noqa: E402
from ml.ood import SCORES, calibrate, class_logits  # noqa: E402
from ml.train import load_run_data, train  # noqa: E402

COMPARED = ("energy", "max_logit", "confidence")
GREY = {"mnist": "fashion_mnist", "fashion_mnist": "mnist"}


def png(pixels: torch.Tensor) -> bytes:
    """uint8 (C, H, W) -> PNG bytes, as a user would upload a test image."""
    array = pixels.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(buf, format="PNG")
    return buf.getvalue()


def as_uint8(split_x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """A normalised split back to uint8 pixels."""
    m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    return (split_x * s + m).mul(255).round().clamp(0, 255).to(torch.uint8)


def test_uploads(name: str, data_dir: Path, cache_dir: Path, n: int, image_size: int | None = None) -> list[bytes]:
    """The first `n` images of a dataset's test split as PNG uploads (photos: at the model's size)."""
    bundle = load_dataset(name, data_dir, cache_dir=cache_dir, image_size=image_size)
    return [png(p) for p in as_uint8(bundle.test.x[:n], bundle.mean, bundle.std)]


def photos(data_dir: Path, n: int, seed: int = 0) -> list[bytes]:
    """`n` cats-dogs JPEGs, drawn at random (seeded)."""
    files = sorted((data_dir / "cats-dogs").glob("*/*.jpg"))
    return [f.read_bytes() for f in random.Random(seed).sample(files, n)]


def noise(n: int, seed: int = 0) -> dict[str, list[bytes]]:
    """Uniform grey noise at 28 px, RGB noise at 256 px, and blank white and black canvases."""
    rng = np.random.default_rng(seed)
    grey = [png(torch.from_numpy(rng.integers(0, 256, (1, 28, 28), dtype=np.uint8))) for _ in range(n)]
    rgb = [png(torch.from_numpy(rng.integers(0, 256, (3, 256, 256), dtype=np.uint8))) for _ in range(n // 4)]
    blank = [png(torch.full((1, 64, 64), v, dtype=torch.uint8)) for v in (0, 255)]
    return {"noise, grey 28 px": grey, "noise, RGB 256 px": rgb, "blank (white, black)": blank}


def logits_of(predictor: Predictor, uploads: list[bytes]) -> tuple[torch.Tensor, int]:
    """Class logits of the readable uploads through the serving pipeline, and how many abstained."""
    images = [decode_upload(b, max_bytes=10**8, max_pixels=10**8) for b in uploads]
    prepared = [predictor.prepare(img) for img in images]
    readable = [p.pixels for p in prepared if p.abstain is None]
    if not readable:
        return torch.zeros(0, len(predictor.classes)), len(uploads)
    batch = predictor.normalise(torch.stack(readable))
    return tensor_logits(predictor, batch), len(uploads) - len(readable)


def tensor_logits(predictor: Predictor, batch: torch.Tensor) -> torch.Tensor:
    """Class logits of a normalised batch, as serving computes them (its layout and test-time augmentation)."""
    with torch.inference_mode():
        out = predict_outputs(predictor.model, batch.contiguous(memory_format=predictor._layout), predictor.tta)
    return class_logits(out, predictor.output)


def flagged(logits: torch.Tensor, thresholds: dict[str, float], low_below: float) -> dict[str, int]:
    """How many rows each score flags, and how many the low_confidence flag does."""
    out = {s: int((SCORES[s](logits) > thresholds[s]).sum()) for s in COMPARED}
    out["low_confidence"] = int((torch.softmax(logits, 1).max(1).values < low_below).sum())
    return out


def train_small(model: str, dataset: str, args, data_dir: Path, cache_dir: Path, out: Path):
    """A course-default run cut to the bench's size; the config and its result."""
    overrides = {"max_train_samples": args.max_train_samples} if args.max_train_samples else {}
    if args.epochs:
        overrides["epochs"] = args.epochs
    config = resolve_config(model, dataset, overrides)
    result = train(config, data_dir=data_dir, out_dir=out, cache_dir=cache_dir)
    print(f"# {model} on {dataset} {overrides}: test accuracy {result.test.accuracy:.4f}; "
          f"calibration {result.ood}", flush=True)
    return config, result


def sets_for(dataset: str, data_dir: Path, cache_dir: Path, n: int,
             image_size: int | None) -> dict[str, tuple[bool, list[bytes]]]:
    """name -> (in distribution?, uploads) for a model trained on `dataset`."""
    sets: dict[str, tuple[bool, list[bytes]]] = {
        f"{dataset} test split as PNG uploads": (True, test_uploads(dataset, data_dir, cache_dir, n, image_size))}
    if dataset == "mnist":
        sets["drawn digits (8 canvases, PNG/JPEG)"] = (True, [b for _, _, b in drawn_digit_set(20, seed=0)])
    if dataset in GREY:
        other = GREY[dataset]
        sets[f"{other} test images"] = (False, test_uploads(other, data_dir, cache_dir, n))
        sets["cats-dogs photos (JPEG)"] = (False, photos(data_dir, n // 2))
    else:
        sets["mnist test digits"] = (False, test_uploads("mnist", data_dir, cache_dir, n))
        sets["fashion_mnist test images"] = (False, test_uploads("fashion_mnist", data_dir, cache_dir, n))
        sets["drawn digits"] = (False, [b for _, _, b in drawn_digit_set(10, seed=0)])
    sets.update({k: (False, v) for k, v in noise(n // 4).items()})
    return sets


def measure(model: str, dataset: str, args, data_dir: Path, cache_dir: Path) -> list[tuple]:
    """Train one model and score every set; rows of the table."""
    with tempfile.TemporaryDirectory() as tmp:
        config, result = train_small(model, dataset, args, data_dir, cache_dir, Path(tmp))
        predictor = Predictor.load(result.best_checkpoint)
    bundle = load_run_data(config, data_dir, cache_dir=cache_dir, test_split_seed=TEST_SPLIT_SEED)
    val = tensor_logits(predictor, bundle.val.x)
    thresholds = {s: calibrate(val, "softmax", config.hp.ood_quantile, score=s).threshold for s in COMPARED}
    assert abs(thresholds["energy"] - predictor.ood.threshold) < 1e-3, (thresholds, predictor.ood)
    low = predictor.low_confidence_below
    name = f"{model}/{dataset}"
    test = tensor_logits(predictor, bundle.test.x)
    rows = [(name, f"{dataset} test split (tensors)", True, len(test), 0, flagged(test, thresholds, low))]
    for set_name, (inside, uploads) in sets_for(dataset, data_dir, cache_dir, args.n,
                                                getattr(config.hp, "image_size", None)).items():
        if args.only and args.only not in set_name:
            continue
        logits, abstained = logits_of(predictor, uploads)
        rows.append((name, set_name, inside, len(uploads), abstained, flagged(logits, thresholds, low)))
    return rows


def print_table(rows: list[tuple]) -> None:
    """Markdown: per set, the share flagged (in distribution) or caught, abstentions included (out)."""
    print("| model | set | n | kind | abstained | energy (served) | max-logit | top-1 conf. | low_confidence |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for name, set_name, inside, n, abstained, counts in rows:
        cells = [f"{(counts[k] + (0 if inside else abstained)) / n:.1%}"
                 for k in (*COMPARED, "low_confidence")]
        print(f"| {name} | {set_name} | {n} | {'false flags' if inside else 'caught'} | {abstained} | "
              + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn:mnist,mlp:mnist,cnn:fashion_mnist")
    parser.add_argument("--max-train-samples", type=int, help="default: the whole training split")
    parser.add_argument("--epochs", type=int, help="default: the course default")
    parser.add_argument("-n", type=int, default=1000, help="uploads per set (photos: half, noise: a quarter)")
    parser.add_argument("--only", help="score only the sets whose name contains this")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "trainserve-bench-cache")
    args = parser.parse_args()
    rows = []
    for pair in args.models.split(","):
        model, dataset = pair.split(":")
        rows += measure(model, dataset, args, Settings().data_dir, args.cache_dir)
        print_table(rows)


if __name__ == "__main__":
    main()
