"""The CUDA path, measured: mlp and cnn epochs in fp32 and bf16 (samples/s, peak memory, host syncs per
batch), and a checkpoint written on the GPU resumed on the CPU. Run by bench/gpu_smoke.sh; prints JSON lines.

    DATA_DIR=../shared/data python bench/gpu_smoke.py [--samples 20000]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from ml.callbacks import NoCallbacks  # noqa: E402
from ml.cli import default_data_dir  # noqa: E402
from ml.config import resolve_config  # noqa: E402
from ml.train import train  # noqa: E402


class CountBatches(NoCallbacks):
    """The training batches of a run: each epoch's count, from its (throttled) progress reports."""

    def __init__(self) -> None:
        self.per_epoch: dict[int, int] = {}

    def on_progress(self, progress) -> None:
        self.per_epoch[progress.epoch] = progress.batches

    @property
    def batches(self) -> int:
        return sum(self.per_epoch.values())


def epoch_figures(model: str, dataset: str, precision: str, samples: int, data_dir: Path, out: Path) -> dict:
    """Two epochs on cuda: the second's samples/s, the run's peak memory, and host syncs per training batch
    (counted over the whole run, so evaluation, checkpoints and setup are spread over the batches too)."""
    config = resolve_config(model, dataset, {"epochs": 2, "max_train_samples": samples, "max_eval_samples": 2000,
                                             "device": "cuda", "precision": precision, "augment": "none"})
    torch.cuda.reset_peak_memory_stats()
    counter = CountBatches()
    # "warn" makes every synchronising CUDA call (a .item(), a host copy) raise a warning we can count
    torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        result = train(config, data_dir=data_dir, out_dir=out / f"{model}-{precision}", callbacks=counter)
        seconds = time.perf_counter() - started
    torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    return {"check": "epoch", "model": model, "dataset": dataset, "precision": result.precision,
            "samples_per_s": result.epochs[-1].samples_per_second, "peak_mib": torch.cuda.max_memory_allocated() >> 20,
            "syncs_per_batch": round(syncs / max(counter.batches, 1), 2), "batches": counter.batches,
            "run_s": round(seconds, 1), "accuracy": result.test.accuracy if result.test else None}


def resume_on_cpu(data_dir: Path, out: Path) -> dict:
    """Epoch 1 of an augmented run on the GPU, epoch 2 on the CPU from its checkpoint (as a job moved to a CPU host)."""
    hp = {"epochs": 2, "max_train_samples": 2000, "max_eval_samples": 500, "augment": "basic"}
    gpu = train(resolve_config("mlp", "mnist", {**hp, "device": "cuda"}), data_dir=data_dir, out_dir=out / "gpu")
    saved = torch.load(out / "gpu" / "epoch-001.pt", weights_only=True)  # no map_location: must be CPU tensors
    devices = {t.device.type for t in saved["model_state"].values()}
    cpu = train(resolve_config("mlp", "mnist", {**hp, "device": "cpu"}), data_dir=data_dir, out_dir=out / "cpu",
                resume_from=out / "gpu" / "epoch-001.pt")
    return {"check": "resume_gpu_to_cpu", "saved_on": sorted(devices), "augment_saved_on": saved["rng"]["augment_device"],
            "epochs": [m.epoch for m in cpu.epochs], "notes": cpu.notes, "gpu_device": gpu.device,
            "ok": devices == {"cpu"} and [m.epoch for m in cpu.epochs] == [1, 2] and bool(cpu.notes)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000, help="training samples per epoch")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"check": "gpu", "skipped": "no GPU: torch.cuda.is_available() is False"}))
        return 0
    data_dir = default_data_dir()
    print(json.dumps({"check": "gpu", "name": torch.cuda.get_device_name(0),
                      "capability": list(torch.cuda.get_device_capability(0)), "torch": torch.__version__,
                      "native_bf16": torch.cuda.is_bf16_supported(including_emulation=False)}), flush=True)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for model, dataset in [("mlp", "mnist"), ("cnn", "mnist")]:
            for precision in ("fp32", "bf16"):
                print(json.dumps(epoch_figures(model, dataset, precision, args.samples, data_dir, Path(tmp))), flush=True)
        resumed = resume_on_cpu(data_dir, Path(tmp))
        ok = ok and resumed["ok"]
        print(json.dumps(resumed), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
