"""Export a served classifier as ONNX, a torch.export program (.pt2) or TorchScript: normalised images in,
class probabilities out.

Each export carries its metadata (classes, input shape, the preprocessing and its version, mean and
std): `metadata.json` inside the .pt2 and TorchScript archives, the `metadata` property of the ONNX model.
PyTorch deprecates TorchScript (`torch.jit.load` warns so, and we leave its warning to the user's code):
ONNX and .pt2 are the formats to use; TorchScript stays for the clients that already load it. A
user can reproduce the service's answers without this code: decode, preprocess as described,
normalise, run. TorchScript is traced, not scripted: the course models have no data-dependent
control flow. ONNX uses torch's dynamo exporter (the `onnx` and `onnxscript` packages), batch dynamic.
"""
from __future__ import annotations

import io
import json
from typing import Any

import torch
from torch import nn

from ml.inference.digits import SIZE, style_for
from ml.inference.predictor import NORMALISE_STEP, Predictor
from ml.models import model_outputs, probabilities

METADATA_FILE = "metadata.json"


class _WithProbabilities(nn.Module):
    """The model (with its test-time augmentation) followed by its output's softmax (or sigmoid for one logit)."""

    def __init__(self, model: nn.Module, output: str, tta: str):
        super().__init__()
        self.model, self.output, self.tta = model, output, tta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return probabilities(model_outputs(self.model, x, self.tta), self.output)


def export_metadata(predictor: Predictor, fmt: str, **extra: Any) -> dict[str, Any]:
    """What a user needs to feed the exported model: classes, input and preprocessing."""
    dataset = predictor.dataset
    if predictor.input_kind == "grayscale":
        style = style_for(dataset["name"])
        steps = ["decode, first frame, EXIF orientation, alpha composited on white", "grayscale",
                 "invert when the background is light", "crop to the content",
                 *(["thicken strokes to MNIST's pen width"] if style.even_strokes else []),
                 f"fit the content into {style.box}×{style.box} keeping its aspect ratio",
                 "place in 28×28 centred by mass" if style.centre_by_mass else "place in 28×28 centred",
                 NORMALISE_STEP]
        size = SIZE
    else:
        size = int(dataset["image_size"])
        steps = ["decode, first frame, EXIF orientation, alpha composited on white", "convert to RGB",
                 f"resize the short side to {size} px (antialiased)", f"centre-crop {size}×{size}", NORMALISE_STEP]
    return {
        "format": fmt, "model": predictor.model_type, "dataset": dataset["name"],
        "classes": predictor.classes, "output": "probabilities (n, classes)",
        "input": {"shape": [None, *dataset["input_shape"]], "dtype": "float32", "layout": "NCHW",
                  "pixels": "uint8 / 255, then (x - mean) / std per channel"},
        "preprocessing": {"version": predictor.preprocessing_version, "kind": predictor.input_kind,
                          "size": size, "mean": dataset["mean"], "std": dataset["std"], "steps": steps},
        "test_time_augmentation": predictor.tta,  # done inside the export, nothing to do outside
        "low_confidence_below": predictor.low_confidence_below, **extra,
    }


FORMATS = ("torchscript", "onnx", "pt2")


def export_model(predictor: Predictor, fmt: str, **metadata: Any) -> bytes:
    """The predictor's model in format `fmt` (one of FORMATS), metadata inside."""
    if fmt == "onnx":
        return export_onnx(predictor, **metadata)
    if fmt == "torchscript":
        return export_torchscript(predictor, **metadata)
    if fmt == "pt2":
        return export_program(predictor, **metadata)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def export_onnx(predictor: Predictor, **metadata: Any) -> bytes:
    """The predictor's model as an ONNX model (bytes), batch size dynamic, metadata in its properties."""
    import onnx  # only exports need it

    model = _WithProbabilities(predictor.model, predictor.output, predictor.tta).eval().cpu()
    example = torch.zeros(2, *predictor.dataset["input_shape"])
    with torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(model, (example,), dynamo=True, verbose=False,
                                    dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {"metadata": json.dumps(export_metadata(predictor, "onnx", **metadata))})
    return proto.SerializeToString()


def export_program(predictor: Predictor, **metadata: Any) -> bytes:
    """The predictor's model as a torch.export program (a .pt2 archive), batch size dynamic, metadata.json inside."""
    model = _WithProbabilities(predictor.model, predictor.output, predictor.tta).eval().cpu()
    example = torch.zeros(2, *predictor.dataset["input_shape"])
    with torch.inference_mode(False), torch.no_grad():
        program = torch.export.export(model, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    buf = io.BytesIO()
    torch.export.save(program, buf, extra_files={METADATA_FILE: json.dumps(export_metadata(predictor, "pt2", **metadata))})
    return buf.getvalue()


def load_program(data: bytes) -> tuple[nn.Module, dict[str, Any]]:
    """An exported .pt2 archive -> (module, metadata); what `torch.export.load` does, as a user would."""
    extra = {METADATA_FILE: ""}
    program = torch.export.load(io.BytesIO(data), extra_files=extra)
    return program.module(), json.loads(extra[METADATA_FILE])


def export_torchscript(predictor: Predictor, **metadata: Any) -> bytes:
    """The predictor's model as a TorchScript archive (bytes) with metadata.json inside."""
    model = _WithProbabilities(predictor.model, predictor.output, predictor.tta).eval().cpu()
    example = torch.zeros(2, *predictor.dataset["input_shape"])
    with torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace(model, example)
    buf = io.BytesIO()
    torch.jit.save(traced, buf, _extra_files={METADATA_FILE: json.dumps(export_metadata(predictor, "torchscript", **metadata))})
    return buf.getvalue()


def load_torchscript(data: bytes) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """An exported archive -> (module, metadata)."""
    extra = {METADATA_FILE: ""}
    module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
    return module, json.loads(extra[METADATA_FILE])
