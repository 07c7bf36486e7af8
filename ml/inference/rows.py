"""Feature rows in, predictions out: serving for models trained on tables (uploaded CSVs)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch

from ml.checkpoint import load_checkpoint
from ml.errors import BadUpload
from ml.models import OutputKind, build_model, output_kind, probabilities


class RowPredictor:
    """A table model and the column order it was trained with."""

    def __init__(self, model: torch.nn.Module, *, dataset: dict[str, Any], output: OutputKind | str):
        self.model, self.dataset, self.output = model.eval(), dataset, OutputKind(output)
        self.columns: list[str] = list(dataset.get("columns") or [])
        self.classes: list[str] = list(dataset.get("classes") or [])

    @classmethod
    def load(cls, checkpoint_path: Path | str) -> "RowPredictor":
        """Rebuild the model from its checkpoint (weights_only loading)."""
        state = load_checkpoint(checkpoint_path)
        dataset, config = state["dataset"], state["config"]
        if dataset.get("input_kind") != "tabular":
            raise ValueError(f"{config.get('model')} on {dataset.get('name')} was not trained on a table")
        model = build_model(config, dataset["input_shape"], len(dataset["classes"]))
        model.load_state_dict(state["model_state"])
        return cls(model, dataset=dataset, output=state.get("output") or output_kind(config))

    def features(self, rows: Sequence[Sequence[float] | dict[str, float]]) -> torch.Tensor:
        """Rows as lists in column order, or as {column: value}; BadUpload names the first bad row."""
        width = int(self.dataset["input_shape"][0])
        out = []
        for i, row in enumerate(rows):
            if isinstance(row, dict):
                missing = [c for c in self.columns if c not in row]
                extra = [c for c in row if c not in self.columns]
                if missing or extra:
                    raise BadUpload(f"row {i}: the columns are {', '.join(self.columns)}"
                                    + (f"; missing {', '.join(missing)}" if missing else "")
                                    + (f"; unknown {', '.join(extra)}" if extra else ""))
                row = [row[c] for c in self.columns]
            if len(row) != width:
                raise BadUpload(f"row {i}: {len(row)} values; the model takes {width} ({', '.join(self.columns)})")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in row):
                raise BadUpload(f"row {i}: every value must be a finite number")
            out.append([float(v) for v in row])
        return torch.tensor(out, dtype=torch.float32).reshape(len(out), width)

    def predict(self, rows: Sequence[Sequence[float] | dict[str, float]], top_k: int = 3) -> list[dict[str, Any]]:
        """One prediction per row: {"value"} for regression, {"label", "confidence", "top_k"} otherwise."""
        x = self.features(rows)
        with torch.inference_mode():
            outputs = self.model(x)
        if self.output.is_regression:
            return [{"value": float(v)} for v in outputs.reshape(-1).tolist()]
        probs = probabilities(outputs, self.output)
        k = max(1, min(int(top_k), len(self.classes)))
        values, indices = probs.topk(k, dim=1)
        return [{"label": self.classes[idx[0]], "class_index": idx[0], "confidence": round(vals[0], 6),
                 "top_k": [{"label": self.classes[i], "class_index": i, "confidence": round(v, 6)}
                           for v, i in zip(vals, idx)]}
                for vals, idx in zip(values.tolist(), indices.tolist())]
