"""A trained classifier ready to serve: rebuilt from its checkpoint, preprocessing as in evaluation."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image

from ml.checkpoint import load_checkpoint
from ml.data.transforms import normalize, photo_to_uint8
from ml.inference.digits import style_for, to_mnist_uint8
from ml.models import build_model, output_kind, probabilities


@dataclass(frozen=True)
class Prediction:
    """One image's answer: the most likely class and the `top_k` most likely, best first."""

    label: str
    class_index: int
    confidence: float
    top_k: list[dict[str, Any]] = field(default_factory=list)  # [{label, class_index, confidence}]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Predictor:
    """A model and the preprocessing of the dataset it was trained on."""

    def __init__(self, model: torch.nn.Module, *, dataset: dict[str, Any], config: dict[str, Any],
                 output: str, device: torch.device, checkpoint_path: Path | None = None):
        if dataset.get("task") not in ("classification", "binary") or dataset.get("input_kind") not in ("grayscale", "photos"):
            raise ValueError(f"{config.get('model')} on {dataset.get('name')} is not an image classifier; "
                             "only image classifiers can be served")
        self.model = model.eval()
        self.dataset = dataset
        self.config = config
        self.output = output
        self.device = device
        self.checkpoint_path = checkpoint_path
        self.classes: list[str] = list(dataset["classes"])
        self.input_kind: str = dataset["input_kind"]
        self._mean, self._std = list(dataset["mean"]), list(dataset["std"])
        self._style = style_for(dataset.get("upload_framing"))

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
                   checkpoint_path=Path(checkpoint_path))

    @property
    def dataset_name(self) -> str:
        return self.dataset["name"]

    @property
    def model_type(self) -> str:
        return self.config["model"]

    def preprocess_one(self, image: Image.Image) -> torch.Tensor:
        """One decoded image -> uint8 tensor shaped like a training sample (as in evaluation)."""
        if self.input_kind == "grayscale":
            return to_mnist_uint8(image, self._style)
        return photo_to_uint8(image, int(self.dataset["image_size"]))

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Decoded images -> the normalised float batch the model takes."""
        batch = torch.stack([self.preprocess_one(img) for img in images])
        return normalize(batch, self._mean, self._std)

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """A normalised batch -> class probabilities (n, classes)."""
        with torch.inference_mode():
            return probabilities(self.model(batch.to(self.device)), self.output).cpu()

    def predict(self, images: Sequence[Image.Image], top_k: int = 3) -> list[Prediction]:
        """Class predictions for decoded images, in order, computed as one batch."""
        if not images:
            return []
        return self.predictions(self.probabilities(self.preprocess(images)), top_k)

    def predictions(self, probs: torch.Tensor, top_k: int = 3) -> list[Prediction]:
        """Probabilities (n, classes) -> one Prediction per row."""
        k = max(1, min(int(top_k), len(self.classes)))
        values, indices = probs.topk(k, dim=1)
        out = []
        for vals, idxs in zip(values.tolist(), indices.tolist()):
            ranked = [{"label": self.classes[i], "class_index": i, "confidence": round(v, 6)}
                      for v, i in zip(vals, idxs)]
            out.append(Prediction(label=ranked[0]["label"], class_index=ranked[0]["class_index"],
                                  confidence=ranked[0]["confidence"], top_k=ranked))
        return out


def set_inference_threads(threads: int) -> None:
    """Intra-op threads of this process's forward passes (a server runs requests in parallel instead)."""
    torch.set_num_threads(max(1, int(threads)))
