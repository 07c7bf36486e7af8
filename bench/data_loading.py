"""Dataset timings: MNIST cold/warm load, cats_dogs first decode vs cached load, augmentation per batch.

Run: DATA_DIR=../shared/data .venv/bin/python bench/data_loading.py
Each figure is measured in a fresh subprocess where "cold" matters, so no in-process memo helps.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = os.environ.get("DATA_DIR", str(ROOT.parent / "shared" / "data"))

_CHILD = """
import json, sys, time
from ml.data import load_dataset, photos
name, data_dir, cache_dir, size = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
size = None if size == "none" else int(size)
times = []
for _ in range(2):
    started = time.perf_counter()
    load_dataset(name, data_dir, image_size=size, cache_dir=cache_dir)
    times.append(time.perf_counter() - started)
print(json.dumps({"first": times[0], "memoised": times[1], "decoded": photos.decode_count}))
"""


def _load_in_fresh_process(name: str, cache_dir: str, size: int | None) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, name, DATA_DIR, cache_dir, str(size or "none")],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _augment_ms(kind: str, shape: tuple[int, ...]) -> float:
    import torch

    from ml.data.augment import make_augmenter

    augment, x, g = make_augmenter(kind, "basic"), torch.randn(shape), torch.Generator().manual_seed(0)
    augment(x, g)
    times = []
    for _ in range(50):
        started = time.perf_counter()
        augment(x, g)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2] * 1000


def _decode_seconds(workers: int, count: int = 400) -> float:
    from ml.data.photos import decode_all, list_photos

    files, _ = list_photos(Path(DATA_DIR) / "cats-dogs", ["cat", "dog"])
    paths = [os.path.join(DATA_DIR, "cats-dogs", rel) for rel, _ in files[::max(1, len(files) // count)]]
    started = time.perf_counter()
    decode_all(paths, 64, workers=workers)
    return (time.perf_counter() - started) / len(paths) * len(files)


def main() -> None:
    print(f"DATA_DIR={DATA_DIR}  (2 shared cores: figures are noisy when others run)")
    for name in ("mnist", "fashion_mnist"):
        r = _load_in_fresh_process(name, tempfile.mkdtemp(), None)
        print(f"{name:14s} cold load {r['first']:.2f}s   memoised {r['memoised']:.2f}s")
    for size in (64, 128):
        cache = tempfile.mkdtemp()
        first = _load_in_fresh_process("cats_dogs", cache, size)
        cached = _load_in_fresh_process("cats_dogs", cache, size)
        print(f"cats_dogs {size:3d}px first decode {first['first']:.2f}s ({first['decoded']} JPEGs)   "
              f"cached, new process {cached['first']:.2f}s ({cached['decoded']} decoded)   "
              f"memoised {cached['memoised']:.2f}s")
    one, two = _decode_seconds(1), _decode_seconds(2)
    print(f"cats_dogs decode, extrapolated to all files: 1 thread {one:.2f}s, 2 threads {two:.2f}s ({one / two:.2f}x)")
    for kind, shape in (("grayscale", (64, 1, 28, 28)), ("photos", (32, 3, 64, 64)), ("photos", (32, 3, 128, 128))):
        print(f"augment {kind:6s} {str(shape):18s} {_augment_ms(kind, shape):.2f} ms/batch (median)")


if __name__ == "__main__":
    main()
