"""Full-state checkpoints under named keys, written atomically and loaded with weights_only=True."""
from __future__ import annotations

import hashlib
import os
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from ml.errors import InvalidConfig

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model_state", "optimizer_state", "epoch", "rng", "config",
                 "metrics", "best", "dataset")


def checkpoint_name(epoch: int) -> str:
    """File name of an epoch's checkpoint."""
    return f"epoch-{epoch:03d}.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> tuple[str, int]:
    """Write `state` to `path` via a temporary file and os.replace; returns (sha256, size in bytes)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            # enums (the output kind) by value: weights_only loading reads plain types only
            plain = {k: v.value if isinstance(v, Enum) else v for k, v in state.items()}
            torch.save({"format_version": FORMAT_VERSION, **plain}, f)
            f.flush()
            os.fsync(f.fileno())
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        size = tmp.stat().st_size
        os.replace(tmp, path)  # readers see the old file or the whole new one, never half
    finally:
        tmp.unlink(missing_ok=True)
    return digest, size


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a checkpoint safely (tensors and plain types only) onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise InvalidConfig([{"field": "resume_from", "message": f"no checkpoint file at {path}"}])
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated, foreign or unsafe pickle: say so, never run it
        raise InvalidConfig([{"field": "resume_from",
                              "message": f"{path.name} is not a readable checkpoint ({exc.__class__.__name__})"}]) from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise InvalidConfig([{"field": "resume_from",
                              "message": f"{path.name} is not a trainserve checkpoint (missing {', '.join(missing)})"}])
    _upgrade_dataset_record(state["dataset"])
    return state


def _upgrade_dataset_record(record: dict[str, Any]) -> None:
    """Records written before dataset specs said 'digits' for 28x28 grey input and had no framing."""
    if record.get("input_kind") == "digits":
        record["input_kind"] = "grayscale"
    if "upload_framing" not in record:
        from ml.data import get_dataset_spec

        try:
            record["upload_framing"] = get_dataset_spec(record.get("name")).upload_framing
        except InvalidConfig:
            record["upload_framing"] = None


def capture_rng(shuffle: torch.Generator, augment: torch.Generator | None) -> dict[str, Any]:
    """Every random state a resumed run needs, by device kind: the CPU's always, CUDA's per visible GPU."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state(),
                           "augment": augment.get_state() if augment is not None else None,
                           "augment_device": augment.device.type if augment is not None else None,
                           "cuda": None}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(rng: dict[str, Any], shuffle: torch.Generator, augment: torch.Generator | None, *,
                reseed: int) -> str | None:
    """Put back the states captured by capture_rng on whatever devices this host has; a note when one could not be.

    The CPU states always carry over; CUDA's go to the GPUs both hosts have (a run saved with 8 visible
    resumes with 1, or none). A generator's state fits only its own device kind (CPU: Mersenne Twister,
    CUDA: Philox), so an augmentation generator saved on another kind is re-seeded with `reseed` (the
    caller derives it from the run's seed and position, so a second resume from the same checkpoint
    repeats it); the returned sentence says so.
    """
    torch.set_rng_state(rng["torch"])
    shuffle.set_state(rng["shuffle"])
    if rng.get("cuda") and torch.cuda.is_available():
        for index, state in enumerate(rng["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, index)
    if augment is None or rng.get("augment") is None:
        return None
    saved_on = rng.get("augment_device") or _generator_kind(rng["augment"])
    if saved_on == augment.device.type:
        augment.set_state(rng["augment"])
        return None
    augment.manual_seed(reseed)
    return (f"the augmentation generator was saved on {saved_on} and this run augments on {augment.device.type}, "
            f"where its state does not apply: re-seeded from the run's seed and position ({reseed}), so the "
            "augmented views from here differ from an uninterrupted run")


def _generator_kind(state: torch.Tensor) -> str:
    # checkpoints from before "augment_device": a CUDA (Philox) state is 16 bytes, a CPU one 5056
    return "cuda" if state.numel() <= 16 else "cpu"
