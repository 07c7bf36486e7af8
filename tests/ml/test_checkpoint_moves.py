"""Checkpoints move between device kinds and hosts: a checkpoint shaped as a CUDA run's (built by hand here,
where there is no GPU) resumes on the CPU, and `precision: auto` never picks emulated bf16."""
from __future__ import annotations

import pytest
import torch

from ml.config import resolve_config
from ml.train import resolve_precision, train

pytestmark = pytest.mark.usefixtures("one_thread")

KW = dict(epochs=2, max_train_samples=300, max_eval_samples=200, augment="basic", dropout=0.2)


def _run(tmp_path, data_dir, cache_dir, out, resume_from=None):
    return train(resolve_config("mlp", "mnist", KW), data_dir=data_dir, out_dir=tmp_path / out,
                 cache_dir=cache_dir, resume_from=resume_from)


def _as_if_from_a_cuda_host(path, out, *, old_format: bool = False) -> None:
    """Rewrite a CPU checkpoint as an 8-GPU run writes one: Philox states (seed, offset) for the augmentation
    generator and each GPU; `old_format`: without the augment_device key, as checkpoints before it."""
    state = torch.load(path, weights_only=True)
    philox = torch.tensor([7, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0], dtype=torch.uint8)
    state["rng"]["augment"] = philox.clone()
    state["rng"]["cuda"] = [philox.clone() for _ in range(8)]
    if old_format:
        state["rng"].pop("augment_device", None)
    else:
        state["rng"]["augment_device"] = "cuda"
    torch.save(state, out)


@pytest.mark.parametrize("old_format", [False, True])
def test_a_checkpoint_from_a_cuda_host_resumes_on_the_cpu_and_says_it_reseeded(tmp_path, data_dir, cache_dir,
                                                                                 old_format):
    whole = _run(tmp_path, data_dir, cache_dir, "whole")
    moved = tmp_path / "from-gpu.pt"
    _as_if_from_a_cuda_host(tmp_path / "whole" / "epoch-001.pt", moved, old_format=old_format)

    first = _run(tmp_path, data_dir, cache_dir, "first", resume_from=moved)
    again = _run(tmp_path, data_dir, cache_dir, "again", resume_from=moved)

    assert [m.epoch for m in first.epochs] == [1, 2] and first.epochs[0] == whole.epochs[0]
    assert len(first.notes) == 1 and "saved on cuda" in first.notes[0] and "re-seeded" in first.notes[0]
    assert first.epochs[1].train_loss == again.epochs[1].train_loss  # the re-seed is the same on every resume
    assert whole.notes == []  # nothing moved, nothing said


def test_a_checkpoint_on_the_same_kind_of_device_resumes_exactly_and_says_nothing(tmp_path, data_dir, cache_dir):
    whole = _run(tmp_path, data_dir, cache_dir, "whole")
    resumed = _run(tmp_path, data_dir, cache_dir, "resumed", resume_from=tmp_path / "whole" / "epoch-001.pt")
    assert resumed.notes == [] and [m.train_loss for m in resumed.epochs] == [m.train_loss for m in whole.epochs]
    saved = torch.load(tmp_path / "whole" / "epoch-001.pt", weights_only=True)
    assert saved["rng"]["augment_device"] == "cpu"
    tensors = [*saved["model_state"].values(), *[v for s in saved["optimizer_state"]["state"].values()
                                                  for v in s.values() if isinstance(v, torch.Tensor)]]
    assert tensors and all(t.device.type == "cpu" for t in tensors)


def test_auto_precision_does_not_take_emulated_bf16_on_cuda(monkeypatch):
    # a T4 or V100: bf16 only by emulation (is_bf16_supported() says yes unless asked for native support)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # an A100
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
