"""A trained classifier ready to serve: rebuilt from its checkpoint, preprocessing as in evaluation."""
from __future__ import annotations

import base64
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image

from ml.checkpoint import load_checkpoint
from ml.data.transforms import normalize, photo_to_uint8
from ml.inference.content import nothing_to_read
from ml.inference.digits import frame, style_for
from ml.models import OutputKind, build_model, memory_format, model_outputs, output_kind, probabilities
from ml.ood import OodCalibration

# A batch of images at least this large (pixels each) is split across FORWARD_THREADS threads of one
# intra-op thread each: a 224 px photo costs ~30 ms of CPU, and one thread for a batch of 8 left the
# other core idle (8 clients: 0.59x a naive endpoint's threadpool). Digits (28x28, ~0.2 ms) are not worth a hop.
SPLIT_MIN_PIXELS = 96 * 96
FORWARD_THREADS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()

# Bump when serving preprocessing changes what a model sees for the same upload; responses carry it.
PREPROCESSING_VERSION = 2
NORMALISE_STEP = "scaled to [0, 1] and standardised with the training images' mean and std"

def low_confidence_threshold(dataset: dict[str, Any]) -> float:
    """Top-1 confidence under which an answer is flagged: the dataset's own, else by class count."""
    if dataset.get("low_confidence") is not None:
        return float(dataset["low_confidence"])
    # two classes: below 3:1 odds; more (mnist, fashion_mnist): the runner-up holds at least 40%
    return 0.75 if len(dataset["classes"]) == 2 else 0.6


@dataclass(frozen=True)
class Prepared:
    """One upload made ready for the model, or the reason it has nothing to read."""

    pixels: torch.Tensor | None  # uint8 (C, H, W) like a training sample; None when abstaining
    steps: list[str]
    abstain: str | None = None


@dataclass(frozen=True)
class Outputs:
    """A batch's class probabilities (n, classes) and, for a calibrated version, its OOD scores (n,)."""

    probs: torch.Tensor
    ood_scores: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.probs)

    def __getitem__(self, rows: slice) -> "Outputs":
        """The same rows of both: the batch worker hands each request its slice."""
        return Outputs(self.probs[rows], None if self.ood_scores is None else self.ood_scores[rows])


@dataclass(frozen=True)
class Prediction:
    """One image's answer: the most likely class and the `top_k` most likely, best first, or an abstention."""

    label: str | None
    class_index: int | None
    confidence: float | None
    top_k: list[dict[str, Any]] | None = None  # [{label, class_index, confidence}]; None when abstained
    low_confidence: bool | None = None
    abstained: bool = False
    reason: str | None = None  # why it abstained
    input_png: str | None = None  # explain: what the model saw, base64 PNG
    steps: list[str] | None = None  # explain: the preprocessing applied
    # versions calibrated at training (ml/ood.py): the input looks unlike the training data; None otherwise
    out_of_distribution: bool | None = None
    ood_score: float | None = None  # its energy: above the version's threshold means out_of_distribution

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))  # shallow: the fields are only read (asdict deep-copies, per request)


# what test-time augmentation adds to the steps `explain` lists
TTA_STEPS = {
    "none": [],
    "flip": ["scored together with its mirror image, the two outputs averaged"],
    "zoom_flip": ["scored together with its mirror image, its centre 80% resized back and that one's mirror, "
                  "the four outputs averaged"],
}


class Predictor:
    """A model and the preprocessing of the dataset it was trained on."""

    def __init__(self, model: torch.nn.Module, *, dataset: dict[str, Any], config: dict[str, Any],
                 output: OutputKind | str, device: torch.device, checkpoint_path: Path | None = None,
                 ood: OodCalibration | None = None):
        if dataset.get("task") not in ("classification", "binary") or dataset.get("input_kind") not in ("grayscale", "photos"):
            raise ValueError(f"{config.get('model')} on {dataset.get('name')} is not an image classifier; "
                             "only image classifiers can be served")
        # conv nets run channels-last, as in training: a lone 28×28 image's forward 200 → 160 µs here
        self._layout = memory_format(model)
        self.model = model.eval().to(memory_format=self._layout)
        self.dataset = dataset
        self.config = config
        self.output = OutputKind(output)  # a checkpoint stores the plain string
        self.device = device
        self.checkpoint_path = checkpoint_path
        self.classes: list[str] = list(dataset["classes"])
        self.input_kind: str = dataset["input_kind"]
        # as tensors once: building them took a third of normalising a lone 28×28 upload
        self._mean = torch.tensor(dataset["mean"], dtype=torch.float32)
        self._std = torch.tensor(dataset["std"], dtype=torch.float32)
        self._style = style_for(dataset.get("upload_framing"))
        self.low_confidence_below = low_confidence_threshold(dataset)
        self.ood = ood  # None: a checkpoint from before calibration, whose answers carry no flag
        self.tta: str = (config.get("hyperparameters") or {}).get("tta", "none")  # as in its validation and test
        # what happens after preprocessing, for explain
        self._model_steps = [NORMALISE_STEP] + TTA_STEPS[self.tta]

    @classmethod
    def load(cls, checkpoint_path: Path | str, device: str = "cpu") -> "Predictor":
        """Rebuild the model from a checkpoint's config and dataset record (weights_only loading)."""
        state = load_checkpoint(checkpoint_path)
        dataset, config = state["dataset"], state["config"]
        model = build_model(config, dataset["input_shape"], len(dataset["classes"]))
        model.load_state_dict(state["model_state"])
        dev = torch.device(device)
        return cls(model.to(dev), dataset=dataset, config=config,
                   output=state.get("output") or output_kind(config), device=dev,
                   checkpoint_path=Path(checkpoint_path), ood=OodCalibration.from_dict(state.get("ood")))

    @property
    def dataset_name(self) -> str:
        return self.dataset["name"]

    @property
    def model_type(self) -> str:
        return self.config["model"]

    @property
    def preprocessing_version(self) -> str:
        """Names the framing and its revision, e.g. "digits/2": same version, same model input."""
        framing = self._style.name if self.input_kind == "grayscale" else "photos"
        return f"{framing}/{PREPROCESSING_VERSION}"

    def prepare(self, image: Image.Image) -> Prepared:
        """One decoded image -> a uint8 tensor shaped like a training sample, or why there is nothing to read."""
        empty = nothing_to_read(image)
        if empty is not None:
            return Prepared(None, [], abstain=empty)
        if self.input_kind == "grayscale":
            framed = frame(image, self._style)
            return Prepared(None if framed.empty else framed.pixels, framed.steps, abstain=framed.empty)
        size = int(self.dataset["image_size"])
        return Prepared(photo_to_uint8(image, size), ["converted to RGB", f"short side resized to {size} px",
                                                      f"centre-cropped to {size}×{size}"])

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (n, C, H, W) -> the normalised float batch the model takes."""
        return normalize(pixels, self._mean, self._std)

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """A normalised batch -> class probabilities (n, classes)."""
        return self.outputs(batch).probs

    def outputs(self, batch: torch.Tensor) -> Outputs:
        """A normalised batch -> class probabilities and, when calibrated, OOD scores, in one forward pass."""
        with torch.inference_mode():
            batch = batch.to(self.device).contiguous(memory_format=self._layout)
            raw = self._raw_outputs(batch)
            scores = self.ood.scores(raw, self.output).cpu() if self.ood is not None else None
            return Outputs(probabilities(raw, self.output).cpu(), scores)

    def _raw_outputs(self, batch: torch.Tensor) -> torch.Tensor:
        """The model's outputs (with its TTA); a large CPU batch in parts on threads side by side."""
        parts = min(FORWARD_THREADS, len(batch))
        if parts < 2 or batch.device.type != "cpu" or batch.shape[-2] * batch.shape[-1] < SPLIT_MIN_PIXELS:
            return model_outputs(self.model, batch, self.tta)
        return torch.cat(list(_forward_pool().map(self._part_outputs, batch.tensor_split(parts))))

    def _part_outputs(self, part: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():  # per thread: the mode is thread-local
            return model_outputs(self.model, part, self.tta)

    def predict(self, images: Sequence[Image.Image], top_k: int = 3, *, explain: bool = False) -> list[Prediction]:
        """One answer per decoded image, in order; the readable ones computed as one batch."""
        return self.answer([self.prepare(img) for img in images], top_k, explain=explain)

    def forward(self, prepared: Sequence[Prepared]) -> Outputs | None:
        """Outputs of the readable ones among `prepared`, in order, as one batch (None if none is)."""
        readable = [p.pixels for p in prepared if p.abstain is None]
        return self.outputs(self.normalise(torch.stack(readable))) if readable else None

    def answer(self, prepared: Sequence[Prepared], top_k: int = 3, *, explain: bool = False,
               probs: Outputs | None = None) -> list[Prediction]:
        """Prepared uploads -> one Prediction each; abstentions keep their place in the order.

        `probs`: the readable ones' Outputs when the caller computed them in a larger batch.
        """
        if probs is None:
            probs = self.forward(prepared)
        answers = iter(self.predictions(probs.probs, top_k, probs.ood_scores) if probs is not None else [])
        out = []
        for p in prepared:
            shown = {"steps": p.steps + ([] if p.abstain else self._model_steps),
                     "input_png": png_base64(p.pixels) if p.pixels is not None else None} if explain else {}
            if p.abstain is not None:
                out.append(Prediction(None, None, None, None, abstained=True, reason=p.abstain, **shown))
            else:
                out.append(replace(next(answers), **shown))
        return out

    def predictions(self, probs: torch.Tensor, top_k: int = 3,
                    ood_scores: torch.Tensor | None = None) -> list[Prediction]:
        """Probabilities (n, classes), and OOD scores (n,) of a calibrated version -> one Prediction per row."""
        k = max(1, min(int(top_k), len(self.classes)))
        values, indices = probs.topk(k, dim=1)
        flags = self._ood_flags(ood_scores, len(probs))
        out = []
        for vals, idxs, (flagged, score) in zip(values.tolist(), indices.tolist(), flags):
            ranked = [{"label": self.classes[i], "class_index": i, "confidence": round(v, 6)}
                      for v, i in zip(vals, idxs)]
            out.append(Prediction(label=ranked[0]["label"], class_index=ranked[0]["class_index"],
                                  confidence=ranked[0]["confidence"], top_k=ranked,
                                  low_confidence=ranked[0]["confidence"] < self.low_confidence_below,
                                  out_of_distribution=flagged, ood_score=score))
        return out

    def _ood_flags(self, scores: torch.Tensor | None, n: int) -> list[tuple[bool | None, float | None]]:
        """(out_of_distribution, ood_score) per row, compared as one tensor; (None, None) when uncalibrated."""
        if scores is None or self.ood is None:
            return [(None, None)] * n
        flagged = (scores > self.ood.threshold).tolist()
        return list(zip(flagged, [round(s, 4) for s in scores.tolist()]))


def png_base64(pixels: torch.Tensor) -> str:
    """uint8 (C, H, W) -> a base64 PNG of exactly that size (grayscale or RGB)."""
    array = pixels.permute(1, 2, 0).numpy()
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _forward_pool() -> ThreadPoolExecutor:
    """The process's forward threads, shared by every served model (made at the first large batch)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(FORWARD_THREADS, thread_name_prefix="forward")
        return _pool


def set_inference_threads(threads: int) -> None:
    """Intra-op threads of this process's forward passes (a server runs requests in parallel instead)."""
    torch.set_num_threads(max(1, int(threads)))
