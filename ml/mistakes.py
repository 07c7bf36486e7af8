"""The test set's most confident mistakes as an image grid (`mistakes.png`), drawn once a run is tested."""
from __future__ import annotations

from pathlib import Path

import torch

from ml.data.base import DatasetBundle
from ml.results import TestMetrics

FILE_NAME = "mistakes.png"


def displayable(x: torch.Tensor, mean: list[float], std: list[float]):
    """A normalised CxHxW input back as an HxW or HxWx3 array in [0, 1], as people would see it."""
    x = x.detach().float().cpu()
    if mean and std:
        x = x * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    x = x.clamp(0, 1)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def write_mistakes(test: TestMetrics | None, bundle: DatasetBundle, out_dir: Path) -> Path | None:
    """Draw `test.top_mistakes` (indices into bundle.test) with true/predicted/confidence; None if there are none."""
    if test is None or not test.top_mistakes or bundle.input_kind == "tabular":
        return None
    from ml.plots import image_grid_png

    images = [displayable(bundle.test.x[m["index"]], bundle.mean, bundle.std) for m in test.top_mistakes]
    captions = [f"true {m['true']}\npredicted {m['predicted']} ({m['confidence']:.0%})" for m in test.top_mistakes]
    path = Path(out_dir) / FILE_NAME
    path.write_bytes(image_grid_png(images, captions, "Most confident mistakes (test)"))
    return path
