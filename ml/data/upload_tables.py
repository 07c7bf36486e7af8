"""CSV uploads: a header row, numeric columns only, bad rows reported by line number; saved as tensors."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from ml.data.uploads import TABLE_FILE, UploadLimits, refusals
from ml.errors import BadUpload

# a whole-number target with at most this many distinct values is taken as class labels
MAX_INFERRED_CLASSES = 20

def _read_rows(source: Path, limits: UploadLimits) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        text = source.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadUpload(f"the CSV is not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise BadUpload("the CSV is empty; it needs a header row and data rows") from None
    except csv.Error as exc:
        raise BadUpload(f"the CSV header cannot be read ({exc})") from None
    if len(header) > limits.max_columns:
        raise BadUpload(f"the CSV has {len(header):,} columns; the limit is {limits.max_columns:,}", 413)
    if len(set(header)) != len(header) or "" in header:
        raise BadUpload("every CSV column needs a distinct, non-empty name in the header row")
    rows = []
    try:
        for row in reader:
            if len(rows) >= limits.max_rows:
                raise BadUpload(f"the CSV has more than {limits.max_rows:,} rows", 413)
            if row:
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise BadUpload(f"line {reader.line_num}: {exc}") from None
    return header, rows


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def ingest_csv(source: Path, out_dir: Path, target: str, task: str | None, limits: UploadLimits) -> dict[str, Any]:
    """Parse, check and save a CSV upload as `table.pt`; the manifest."""
    import torch

    header, rows = _read_rows(source, limits)
    if target not in header:
        raise BadUpload(f"no target column {target!r}; the columns are {', '.join(header)} "
                        "(name one with the form field `target`)")
    t = header.index(target)
    features = [h for i, h in enumerate(header) if i != t]
    if not features:
        raise BadUpload("the CSV needs at least one feature column besides the target")
    good, refused = _numeric_rows(header, rows)
    if len(good) < limits.min_rows:
        why = f"; e.g. line {refused[0]['line']}: {refused[0]['reason']}" if refused else ""
        raise BadUpload(f"{len(good)} usable row(s) of {len(rows)}; at least {limits.min_rows} are needed "
                        f"(numeric columns only){why}")
    data = torch.tensor(good, dtype=torch.float64)
    x = torch.cat([data[:, :t], data[:, t + 1:]], dim=1).float()
    task, y, classes = _targets(data[:, t], target, task)
    torch.save({"x": x.contiguous(), "y": y.contiguous()}, out_dir / TABLE_FILE)
    return {"kind": "csv", "task": task, "classes": classes, "columns": features, "target": target,
            "samples": len(good), "image_size": None, **refusals(refused)}


def _numeric_rows(header: list[str], rows: list[tuple[int, list[str]]]) -> tuple[list[list[float]], list[dict]]:
    """The rows whose every field is a finite number, and the others with their line and reason."""
    good, refused = [], []
    for line, row in rows:
        if len(row) != len(header):
            refused.append({"line": line, "reason": f"{len(row)} fields; the header has {len(header)}"})
            continue
        try:
            good.append([_number(v) for v in row])
        except ValueError:
            bad = next(h for h, v in zip(header, row) if not _is_number(v))
            refused.append({"line": line, "reason": f"column {bad!r} is not a finite number"})
    return good, refused


def _targets(y, target: str, task: str | None):
    """(task, y tensor, classes with counts): whole numbers with few values are classes unless told otherwise."""
    integral = bool((y == y.round()).all())
    task = task or ("classification" if integral and len(y.unique()) <= MAX_INFERRED_CLASSES else "regression")
    if task == "regression":
        return "regression", y.float().unsqueeze(1), []
    values, labels = y.unique(sorted=True, return_inverse=True)
    if len(values) < 2:
        raise BadUpload(f"the target column {target!r} has a single value; classification needs 2 or more")
    counts = labels.bincount().tolist()
    classes = [{"name": f"{v:g}", "count": c} for v, c in zip(values.tolist(), counts)]
    return ("binary" if len(values) == 2 else "classification"), labels.long(), classes


def _is_number(text: str) -> bool:
    try:
        _number(text)
        return True
    except ValueError:
        return False
