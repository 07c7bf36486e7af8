"""What a training config would allocate, estimated before anything is allocated, and the refusal
when that is over a budget: parameters, gradients, optimizer state, one batch of activations and the
dataset (memory: a run holds its three splits on its device, so on a GPU they take GPU memory), and
the full-state checkpoints it keeps (disk).

The model is built on PyTorch's meta device, so a 10⁶-unit layer costs no memory to measure, and the
estimate follows each model's real layers instead of a formula per model type.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ml.config import TrainConfig
from ml.errors import InvalidConfig

_FLOAT = 4  # bytes: training runs in float32
# optimizer state per parameter: momentum keeps one buffer, Adam two
_STATE_PER_PARAM = {"sgd": 0, "momentum": 1, "adam": 2}


@dataclass(frozen=True)
class Estimate:
    parameters: int
    batch: int
    weights_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    checkpoint_bytes: int
    checkpoints_kept: int
    dataset_bytes: int = 0  # the samples the run holds on its device (0: sizes unknown)
    trainable: int | None = None  # parameters that learn (None: all): only they have gradients and optimizer state

    @property
    def gradient_bytes(self) -> int:
        return self.weights_bytes if self.trainable is None else self.trainable * _FLOAT

    @property
    def memory_bytes(self) -> int:
        """Weights, gradients and optimizer state of what learns, one batch's activations (what backward
        keeps, with their gradients, plus the largest map a frozen part computes) and the dataset held
        on the device."""
        return self.weights_bytes + self.gradient_bytes + self.optimizer_bytes + self.activation_bytes \
            + self.dataset_bytes

    @property
    def disk_bytes(self) -> int:
        return self.checkpoint_bytes * self.checkpoints_kept


def input_shape(config: TrainConfig) -> tuple[int, ...]:
    """One sample's shape, from the dataset's spec (no data is read)."""
    from ml.data import get_dataset_spec

    ds = get_dataset_spec(config.dataset)
    if ds.is_image:
        size = ds.fixed_image_size or getattr(config.hp, "image_size", None) or ds.default_image_size or 28
        return (ds.channels or 1, size, size)
    return (max(len(ds.columns), 1),)


@lru_cache(maxsize=256)
def _samples(name: str, data_dir: str, checksum: str | None) -> int:
    # file counts or headers; cached per dataset (an upload's checksum tells a re-upload under its name apart)
    from ml.data import get_dataset_spec

    sizes = get_dataset_spec(name).sizes(Path(data_dir))
    return sizes.get("total") or sizes.get("train", 0) + sizes.get("test", 0)


def dataset_bytes(config: TrainConfig, data_dir: Path) -> int:
    """Bytes of the samples a run of `config` holds on its device (float32 inputs, 8-byte targets); 0 if unknown."""
    from ml.data import get_dataset_spec

    try:
        samples = _samples(config.dataset, str(data_dir), get_dataset_spec(config.dataset).checksum)
    except Exception:  # a dataset that cannot be counted: the estimate never blocks a job by failing
        return 0
    hp = config.hp
    if hp.max_train_samples is not None:  # the training split is cut; validation and test at most max_eval each
        samples = min(samples, hp.max_train_samples + 2 * (hp.max_eval_samples or samples))
    return samples * (math.prod(input_shape(config)) * _FLOAT + 8)


def estimate(config: TrainConfig, *, retention: int | None = None, data_dir: Path | None = None) -> Estimate:
    """The estimate for `config`; `retention`: the last N checkpoints kept besides the best (None: all);
    `data_dir`: where the datasets are, to count the samples held on the device (None: not counted)."""
    import torch

    from ml.data import get_dataset_spec
    from ml.models import build_model

    shape = input_shape(config)
    hp = config.hp
    batch = min(hp.batch_size, hp.max_train_samples or hp.batch_size)
    with torch.device("meta"):
        model = build_model(config, shape, max(len(get_dataset_spec(config.dataset).classes), 1))
        kept, passing = _activations(model, torch.empty((batch, *shape)))
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    weights = parameters * _FLOAT
    # only what learns has optimizer state (a frozen backbone has none); a checkpoint holds every weight
    optimizer = _STATE_PER_PARAM.get(hp.optimizer, 2) * trainable * _FLOAT
    saved = math.ceil(hp.epochs / hp.checkpoint_every)
    n_kept = saved if retention is None else min(saved, retention + 1)
    return Estimate(parameters=parameters, batch=batch, weights_bytes=weights, optimizer_bytes=optimizer,
                    activation_bytes=_FLOAT * (batch * math.prod(shape) + 2 * kept + 2 * passing),
                    checkpoint_bytes=weights + optimizer, checkpoints_kept=n_kept, trainable=trainable,
                    dataset_bytes=dataset_bytes(config, data_dir) if data_dir is not None else 0)


def _activations(model, x) -> tuple[int, int]:
    """(elements backward keeps, the largest map computed without gradients) of one forward of `x`.

    Outputs that need gradients stay until backward (and get a gradient each); a frozen part's maps
    (a pretrained backbone, which `head` mode runs once without autograd) live only until the next layer.
    """
    import torch

    kept, passing = [0], [0]

    def record(_module, _inputs, out) -> None:
        if out.requires_grad:
            kept[0] += out.numel()
        else:
            passing[0] = max(passing[0], out.numel())

    hooks = [m.register_forward_hook(record) for m in model.modules() if not list(m.children())]
    try:
        with torch.enable_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return kept[0], passing[0]


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_budget(config: TrainConfig, *, memory_bytes: int, disk_bytes: int,
                 retention: int | None = None, data_dir: Path | None = None) -> Estimate | None:
    """The estimate, or InvalidConfig saying what is over which budget, by how much, and what to lower
    (None when a model cannot be measured on the meta device: the estimate never blocks a job by failing)."""
    try:
        e = estimate(config, retention=retention, data_dir=data_dir)
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return None
    errors = []
    if e.memory_bytes > memory_bytes:
        errors.append({"field": "hyperparameters", "message": (
            f"training would need about {_gb(e.memory_bytes)} of memory: {e.parameters:,} parameters "
            f"({_gb(e.weights_bytes)}, {_gb(e.gradient_bytes)} for gradients, {_gb(e.optimizer_bytes)} of "
            f"{config.hp.optimizer} state), {_gb(e.activation_bytes)} of activations for a batch of {e.batch} and {_gb(e.dataset_bytes)} "
            f"for the dataset held on the device; the per-job budget is {_gb(memory_bytes)} "
            "(JOB_MEMORY_BUDGET_BYTES). Lower batch_size, the layer sizes, image_size or max_train_samples")})
    if e.disk_bytes > disk_bytes:
        errors.append({"field": "hyperparameters", "message": (
            f"its checkpoints would take about {_gb(e.disk_bytes)} of disk ({e.checkpoints_kept} of "
            f"{_gb(e.checkpoint_bytes)} each); the per-job budget is {_gb(disk_bytes)} (JOB_DISK_BUDGET_BYTES). "
            "Lower the layer sizes, raise checkpoint_every, or use fewer epochs")})
    if errors:
        raise InvalidConfig(errors)
    return e
