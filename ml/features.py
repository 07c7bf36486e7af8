"""A frozen backbone's features, computed once per photo and cached beside the decoded images.

Keyed by (dataset checksum, weights sha256, image size, view): a second job on the same data reads
them instead of running the backbone. Each cached row is filed under its photo's content digest, so
any split, seed or subset of the dataset finds its rows, and extraction is written in chunks: a crash
during extraction resumes from the chunks already written.
"""
from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from ml.data.base import DatasetBundle, TensorSplit
from ml.data.photos import DEFAULT_CACHE_DIR, _write_atomic
from ml.errors import TrainingCancelled
from ml.models import memory_format
from ml.results import Progress

CHUNK = 64  # photos per cache file: what a crash can lose, and how often progress is reported
# photos per backbone forward: on 2 CPU cores 16 took ~15% less CPU per photo than 32 or 64 (the maps
# of a small batch stay in cache); a GPU is far from full either way at this size
FORWARD_BATCH = 16
FORMAT = 1
VIEW = "centre"  # the eval view: short side resized, centre crop, as served


def pixels_of(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """Normalised images back to their exact uint8 pixels (the error of the float round trip is < 1e-4)."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    # one temporary, then in place: a cache hit's cost was mostly these passes over every photo
    return torch.addcmul(m, x, s).mul_(255).round_().clamp_(0, 255).to(torch.uint8).cpu()


def digests(x: torch.Tensor, mean: list[float], std: list[float]) -> list[str]:
    """One content digest per image of a normalised batch."""
    out = []
    for start in range(0, len(x), CHUNK):  # bounded memory: a chunk of uint8 pixels at a time
        pixels = pixels_of(x[start:start + CHUNK], mean, std).contiguous().numpy()
        out += [hashlib.blake2b(p.tobytes(), digest_size=16).hexdigest() for p in pixels]
    return out


def cache_folder(bundle: DatasetBundle, weights_sha256: str, cache_dir: Path | str | None) -> Path:
    """Where a dataset's features live: one folder per (checksum, weights, size, view)."""
    text = f"{bundle.checksum}|{weights_sha256}|{bundle.image_size}|{VIEW}|v{FORMAT}"
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    root = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    return root / "features" / f"{bundle.name}-{bundle.image_size}px-{VIEW}-{key}"


def read_chunks(folder: Path) -> dict[str, torch.Tensor]:
    """digest -> feature row, from every complete chunk file (a damaged one is ignored: it is recomputed)."""
    known: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("chunk-*.pt")):
        try:
            data = torch.load(path, weights_only=True)
        except Exception:  # noqa: BLE001 - never trusted, rebuilt
            continue
        if isinstance(data, dict) and data.get("format") == FORMAT:
            known.update(zip(data["digests"], data["features"]))
    return known


def _forget_stale(folder: Path) -> None:
    # same dataset name, size and view, other content or weights: never valid again
    prefix = folder.name.rsplit("-", 1)[0]
    for other in folder.parent.glob(f"{prefix}-*"):
        if other != folder and other.is_dir():
            for f in other.glob("*"):
                f.unlink(missing_ok=True)
            other.rmdir()


class Forwards:
    """Runs forward batches side by side on the CPU's threads, one intra-op thread each (restored on exit).

    Measured on the 2-core box: 2 intra-op threads took 18-85 ms per 224 px photo (they wait on each
    other, worse when another process holds a core), two batches side by side 15-22 ms, 1 thread 27-30 ms.
    """

    def __init__(self, model, device: torch.device):
        self.model, self.threads = model, torch.get_num_threads()
        self.pool = ThreadPoolExecutor(self.threads) if device.type == "cpu" and self.threads > 1 else None

    def __enter__(self) -> "Forwards":
        if self.pool is not None:
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            torch.set_num_threads(self.threads)

    def _one(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():  # per thread: the mode is thread-local
            return self.model.features(batch).float().cpu()

    def features(self, batch: torch.Tensor) -> torch.Tensor:
        """Pooled features of a chunk, FORWARD_BATCH photos per forward."""
        parts = [batch[i:i + FORWARD_BATCH] for i in range(0, len(batch), FORWARD_BATCH)]
        return torch.cat(list(self.pool.map(self._one, parts)) if self.pool else [self._one(p) for p in parts])


def extract(model, images: list[torch.Tensor], names: list[str], folder: Path, callbacks,
            done_before: int, total: int) -> dict[str, torch.Tensor]:
    """Run the backbone over `images` in chunks, writing each chunk before the next; progress per chunk."""
    out: dict[str, torch.Tensor] = {}
    started = time.perf_counter()
    layout = memory_format(model)  # channels-last: ~1.4x faster through the backbone on oneDNN here
    model.eval().to(memory_format=layout)
    # said at once: the first chunk's report comes after a few seconds (minutes on a busy box)
    callbacks.on_progress(Progress(1, 1, done_before, total, 0.0, note=f"extracting features {done_before}/{total}"))
    with Forwards(model, images[0].device if images else torch.device("cpu")) as forwards:
        for start in range(0, len(images), CHUNK):
            if callbacks.should_stop():
                raise TrainingCancelled(1, 0, None)
            # a chunk stacked at a time: no second copy of every photo
            feats = forwards.features(torch.stack(images[start:start + CHUNK]).contiguous(memory_format=layout))
            chunk = names[start:start + CHUNK]
            name = hashlib.sha256("".join(chunk).encode()).hexdigest()[:16]
            _write_atomic(folder / f"chunk-{name}.pt", {"format": FORMAT, "digests": chunk, "features": feats})
            out.update(zip(chunk, feats))
            done = done_before + start + len(chunk)
            rate = (start + len(chunk)) / max(time.perf_counter() - started, 1e-9)
            callbacks.on_progress(Progress(1, 1, done, total, rate, note=f"extracting features {done}/{total}"))
    return out


def use_cached_features(model, bundle: DatasetBundle, splits: tuple[TensorSplit, ...], *,
                        weights_sha256: str, cache_dir: Path | str | None, callbacks) -> tuple[TensorSplit, ...]:
    """The splits with each image replaced by its pooled features, extracting only what the cache lacks.

    Records what happened in `bundle.extra["features"]` (the run's result reports it).
    """
    started = time.perf_counter()
    folder = cache_folder(bundle, weights_sha256, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    _forget_stale(folder)
    names = [digests(s.x, bundle.mean, bundle.std) for s in splits]
    known = read_chunks(folder)
    todo: dict[str, torch.Tensor] = {}  # digest -> its normalised image (a view), first occurrence
    for split, split_names in zip(splits, names):
        for row, digest in enumerate(split_names):
            if digest not in known and digest not in todo:
                todo[digest] = split.x[row]
    total = len(set().union(*names))
    if todo:
        known.update(extract(model, list(todo.values()), list(todo), folder, callbacks, total - len(todo), total))
    bundle.extra["features"] = _record(total, len(todo), folder, time.perf_counter() - started)
    width = next(iter(known.values())).shape[0]
    return tuple(_as_features(s, n, known, width) for s, n in zip(splits, names))


def _as_features(split: TensorSplit, names: list[str], known: dict[str, torch.Tensor], width: int) -> TensorSplit:
    rows = torch.stack([known[n] for n in names]) if names else torch.zeros(0, width)
    return TensorSplit(rows.to(split.x.device), split.y)


def _record(total: int, extracted: int, folder: Path, seconds: float) -> dict[str, Any]:
    cache = "hit" if extracted == 0 else "partial" if extracted < total else "miss"
    return {"cache": cache, "extraction_skipped": extracted == 0, "photos": total, "extracted": extracted,
            "reused": total - extracted, "seconds": round(seconds, 3), "folder": folder.name}


def frozen_outputs(model, bundle: DatasetBundle, splits: tuple[TensorSplit, ...], *,
                   callbacks) -> tuple[TensorSplit, ...]:
    """The splits with each photo replaced by what the frozen blocks make of it, computed once per run
    (for fine_tune without augmentation: every epoch would compute the same), when that is no larger."""
    started, layout = time.perf_counter(), memory_format(model)
    model.eval().to(memory_format=layout)
    with torch.no_grad():  # not inference_mode: the trainable blocks keep these for their backward
        probe = model.frozen_part(splits[0].x[:1].contiguous(memory_format=layout))
    if probe[0].numel() > splits[0].x[0].numel():  # early blocks' maps outweigh the photos: keep the photos
        return splits
    total, done, out = sum(len(s) for s in splits), 0, []
    for split in splits:
        parts = []
        for start in range(0, len(split), CHUNK):
            with torch.no_grad():
                parts.append(model.frozen_part(split.x[start:start + CHUNK].contiguous(memory_format=layout)))
            done += len(parts[-1])
            rate = done / max(time.perf_counter() - started, 1e-9)
            callbacks.on_progress(Progress(1, 1, done, total, rate, note=f"running the frozen blocks {done}/{total}"))
        rows = torch.cat(parts) if parts else probe[:0]
        out.append(TensorSplit(rows.contiguous(), split.y))
    bundle.extra["frozen_blocks"] = {"blocks": model.frozen_blocks, "photos": total,
                                     "seconds": round(time.perf_counter() - started, 3)}
    return tuple(out)
