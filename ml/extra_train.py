"""Extra training rows from a folder of `<label>/<file>` images (a job's feedback set), appended to the
training split only, decoded and framed exactly as serving frames an upload of the same dataset.

The folder is written by the worker from inputs people sent to POST /v1/predict and corrected; a
model that learns from them must see them as it will see the next such upload: a drawn digit framed
like MNIST, a photo resized and centre-cropped. Validation and test stay the dataset's own, so the
figures a job reports stay comparable with a run without feedback.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ml.data.base import DatasetBundle, TensorSplit
from ml.data.transforms import normalize, photo_to_uint8
from ml.errors import BadImage
from ml.inference.content import nothing_to_read
from ml.inference.decode import decode_upload
from ml.inference.digits import frame, style_for

# the inputs were accepted by the predict route under its own caps; these only guard a hand-made folder
_MAX_BYTES, _MAX_PIXELS = 64 * 1024**2, 40_000_000


def label_folder(label: str) -> str:
    """A class's folder name in an image folder: its name, with path separators made plain ('t-shirt/top' → 't-shirt_top')."""
    return label.replace("/", "_").replace("\\", "_")


def upload_pixels(image: Image.Image, *, input_kind: str, upload_framing: str | None,
                  image_size: int | None) -> torch.Tensor | None:
    """A decoded upload as the predictor prepares it: uint8 (C, H, W) like a training sample, or None with nothing to read."""
    if nothing_to_read(image) is not None:
        return None
    if input_kind == "grayscale":
        framed = frame(image, style_for(upload_framing))
        return None if framed.empty else framed.pixels
    return photo_to_uint8(image, int(image_size))


@dataclass
class ExtraRows:
    """Decoded extra rows: uint8 images, class indices, and the files left out with why."""

    x: torch.Tensor
    y: torch.Tensor
    skipped: list[dict[str, str]] = field(default_factory=list)


def read_extra_rows(folder: Path, bundle: DatasetBundle) -> ExtraRows:
    """Every image under `folder/<label>/`, prepared like an upload of `bundle`'s dataset (decoded once, at load)."""
    by_folder = {label_folder(name): i for i, name in enumerate(bundle.classes)}
    framing = bundle.extra.get("upload_framing")
    images, labels, skipped = [], [], []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        index = by_folder.get(path.parent.name) if path.parent.parent == Path(folder) else None
        if index is None:
            skipped.append({"file": rel, "reason": f"not in a folder named after one of the classes of {bundle.name}"})
            continue
        try:
            image = decode_upload(path.read_bytes(), max_bytes=_MAX_BYTES, max_pixels=_MAX_PIXELS)
        except BadImage as exc:
            skipped.append({"file": rel, "reason": exc.reason})
            continue
        pixels = upload_pixels(image, input_kind=bundle.input_kind, upload_framing=framing,
                               image_size=bundle.image_size)
        if pixels is None:
            skipped.append({"file": rel, "reason": "nothing to read (the predictor abstains on it)"})
            continue
        images.append(pixels)
        labels.append(index)
    shape = (0, *bundle.input_shape)
    x = torch.stack(images) if images else torch.empty(shape, dtype=torch.uint8)
    return ExtraRows(x=x, y=torch.tensor(labels, dtype=torch.int64), skipped=skipped)


def append_extra_rows(bundle: DatasetBundle, folder: Path) -> int:
    """Append `folder`'s images to the training split (normalised with the dataset's own statistics); how many.

    The statistics stay the dataset's: serving normalises with the ones in the checkpoint, and a few
    dozen corrected inputs should not move them. Records the count and the skipped files in `bundle.extra`.
    """
    if not bundle.classes or bundle.image_size is None:
        raise ValueError(f"extra training rows are images of a classification dataset; {bundle.name} is not one")
    rows = read_extra_rows(folder, bundle)
    if len(rows.y):
        x = normalize(rows.x, bundle.mean, bundle.std).to(bundle.train.x.dtype)
        bundle.train = TensorSplit(torch.cat([bundle.train.x, x]).contiguous(), torch.cat([bundle.train.y, rows.y]))
    bundle.extra["feedback_rows"] = int(len(rows.y))
    bundle.extra["feedback_skipped"] = rows.skipped[:100]
    sizes = bundle.extra.get("sizes")
    if isinstance(sizes, dict):
        sizes["train"] = len(bundle.train)
    return int(len(rows.y))
