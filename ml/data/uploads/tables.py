"""CSV uploads: a header row, numeric columns only, bad rows reported by line number; saved as tensors."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from ml.data.uploads.common import TABLE_FILE, UploadLimits, refusals
from ml.errors import BadUpload, UploadTooLarge

# a whole-number target with at most this many distinct values is taken as class labels
MAX_INFERRED_CLASSES = 20
MAX_CLASSES = 1000


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
        raise UploadTooLarge(f"the CSV has {len(header):,} columns; the limit is {limits.max_columns:,}")
    if len(set(header)) != len(header) or "" in header:
        raise BadUpload("every CSV column needs a distinct, non-empty name in the header row")
    rows = []
    try:
        for row in reader:
            if len(rows) >= limits.max_rows:
                raise UploadTooLarge(f"the CSV has more than {limits.max_rows:,} rows")
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
    named = task != "regression" and _mostly_words([row[t] for _, row in rows if len(row) == len(header)])
    x, labels, refused = _usable_rows(header, rows, t, named_classes=named)
    if len(x) < limits.min_rows:
        why = f"; e.g. line {refused[0]['line']}: {refused[0]['reason']}" if refused else ""
        raise BadUpload(f"{len(x)} usable row(s) of {len(rows)}; at least {limits.min_rows} are needed "
                        f"(numeric feature columns only){why}")
    task, y, classes = _targets(labels, target, task)
    torch.save({"x": torch.tensor(x, dtype=torch.float32), "y": y.contiguous()}, out_dir / TABLE_FILE)
    return {"kind": "csv", "task": task, "classes": classes, "columns": features, "target": target,
            "samples": len(x), "image_size": None, **refusals(refused)}


def _mostly_words(targets: list[str]) -> bool:
    """A target column of names (cat, dog) rather than numbers with a few bad cells."""
    words = sum(not _is_number(v) for v in targets)
    return words * 2 > len(targets)


def _usable_rows(header: list[str], rows: list[tuple[int, list[str]]], t: int, *, named_classes: bool):
    """Feature rows of finite numbers, their targets (numbers, or names when `named_classes`), and the
    refused rows with their line and reason."""
    x, labels, refused = [], [], []
    for line, row in rows:
        if len(row) != len(header):
            refused.append({"line": line, "reason": f"{len(row)} fields; the header has {len(header)}"})
            continue
        bad = next((h for i, (h, v) in enumerate(zip(header, row))
                    if not (i == t and named_classes) and not _is_number(v)), None)
        if bad is None and named_classes and not row[t].strip():
            bad = header[t]
        if bad is not None:
            what = "is empty" if named_classes and bad == header[t] else "is not a finite number"
            refused.append({"line": line, "reason": f"column {bad!r} {what}"})
            continue
        x.append([_number(v) for i, v in enumerate(row) if i != t])
        labels.append(row[t].strip() if named_classes else _number(row[t]))
    return x, labels, refused


def _targets(labels: list, target: str, task: str | None):
    """(task, y tensor, classes with counts): names, or whole numbers with few values, are classes
    unless told otherwise."""
    import torch

    if labels and isinstance(labels[0], str):
        names = sorted(set(labels))
        index = {n: i for i, n in enumerate(names)}
        y = torch.tensor([index[v] for v in labels], dtype=torch.long)
        return _classes(y, names, target)
    y = torch.tensor(labels, dtype=torch.float64)
    integral = bool((y == y.round()).all())
    task = task or ("classification" if integral and len(y.unique()) <= MAX_INFERRED_CLASSES else "regression")
    if task == "regression":
        return "regression", y.float().unsqueeze(1), []
    values, y = y.unique(sorted=True, return_inverse=True)
    return _classes(y, [f"{v:g}" for v in values.tolist()], target)


def _classes(y, names: list[str], target: str):
    if len(names) < 2:
        raise BadUpload(f"the target column {target!r} has a single value; classification needs 2 or more")
    if len(names) > MAX_CLASSES:
        raise BadUpload(f"the target column {target!r} has {len(names):,} classes; the limit is {MAX_CLASSES:,}")
    classes = [{"name": n, "count": c} for n, c in zip(names, y.bincount(minlength=len(names)).tolist())]
    return ("binary" if len(names) == 2 else "classification"), y.long(), classes


def _is_number(text: str) -> bool:
    try:
        _number(text)
        return True
    except ValueError:
        return False
