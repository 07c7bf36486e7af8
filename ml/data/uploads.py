"""Datasets users upload: an image-folder zip or a CSV, checked, normalised and described once.

`ingest_upload` turns the uploaded bytes into a dataset folder the service names by content hash
(PNG images under c000/, c001/, … or a table.pt of float tensors) and a manifest of what was
found and refused. `uploaded_spec` turns a stored manifest back into a DatasetSpec; the service's
database holds the manifests and finds a dataset's folder by name (`UploadedLookup`).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ml.data.zipsafe import ZipLimits, safe_extract
from ml.errors import BadImage, BadUpload

IMAGES_DIR, TABLE_FILE = "images", "table.pt"
DEFAULT_IMAGE_SIZE = 64
# at most this many refusals are listed one by one (the count is always given)
MAX_LISTED_REFUSALS = 100
_IGNORED = ("__MACOSX", ".DS_Store", "Thumbs.db")


@dataclass(frozen=True)
class UploadLimits:
    """Caps on an uploaded dataset; the service fills them from its settings."""

    zip: ZipLimits = ZipLimits()
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    min_images_per_class: int = 5
    max_rows: int = 1_000_000
    max_columns: int = 1_000
    min_rows: int = 10


def ingest_upload(source: Path, *, filename: str, kind: str | None, target: str | None, out_dir: Path,
                  limits: UploadLimits = UploadLimits()) -> dict[str, Any]:
    """Check and normalise an upload into `out_dir` (empty); the manifest. BadUpload says what is wrong."""
    with open(source, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    kind = kind or ("image_folder" if is_zip else "csv" if filename.lower().endswith(".csv") else None)
    if kind == "image_folder":
        if not is_zip:
            raise BadUpload("an image_folder upload must be a .zip archive")
        return _ingest_images(source, out_dir, limits)
    if kind in ("csv", "regression", "classification"):
        if is_zip:
            raise BadUpload("a CSV upload must be the .csv file itself, not a zip")
        task = kind if kind != "csv" else None
        return _ingest_csv(source, out_dir, target or "target", task, limits)
    raise BadUpload("send a .zip of <class>/<image> folders or a .csv with a header row "
                    "(or set kind to image_folder, csv, regression or classification)")


# --- image folders ----------------------------------------------------------------------------

def _class_root(extracted: Path) -> Path:
    """`<class>/<image>` at the top, or under one folder."""
    top = [p for p in extracted.iterdir() if p.name not in _IGNORED and not p.name.startswith(".")]
    dirs = [p for p in top if p.is_dir()]
    if len(top) == 1 and dirs and any(c.is_dir() for c in dirs[0].iterdir()):
        return dirs[0]
    return extracted


def _ingest_images(source: Path, out_dir: Path, limits: UploadLimits) -> dict[str, Any]:
    from ml.inference.decode import decode_upload

    extracted = out_dir / "extracted"
    extracted.mkdir(parents=True)
    safe_extract(source, extracted, limits.zip)
    root = _class_root(extracted)
    refused: list[dict[str, str]] = []
    classes: list[dict[str, Any]] = []
    for entry in sorted(root.iterdir()):
        if entry.name in _IGNORED or entry.name.startswith("."):
            continue
        if not entry.is_dir():
            refused.append({"file": entry.relative_to(root).as_posix(), "reason": "not inside a class folder"})
            continue
        folder = out_dir / IMAGES_DIR / f"c{len(classes):03d}"
        folder.mkdir(parents=True)
        count = 0
        for path in sorted(p for p in entry.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if path.name in _IGNORED or path.name.startswith("."):
                continue
            try:
                image = decode_upload(path.read_bytes(), max_bytes=limits.max_image_bytes,
                                      max_pixels=limits.max_image_pixels)
            except BadImage as exc:
                refused.append({"file": rel, "reason": exc.reason})
                continue
            image.convert("RGB").save(folder / f"{count:06d}.png")  # our names, our format
            count += 1
        classes.append({"name": entry.name, "count": count})
    shutil.rmtree(extracted)
    _check_classes(classes, limits.min_images_per_class, refused)
    return {"kind": "image_folder", "task": "binary" if len(classes) == 2 else "classification",
            "classes": classes, "columns": [], "target": None, "samples": sum(c["count"] for c in classes),
            "image_size": DEFAULT_IMAGE_SIZE, **_refusals(refused)}


def _check_classes(classes: list[dict[str, Any]], minimum: int, refused: list[dict[str, str]]) -> None:
    if len(classes) < 2:
        found = ", ".join(c["name"] for c in classes) or "none"
        raise BadUpload(f"found {len(classes)} class folder(s) ({found}); an image dataset needs at least 2: "
                        "put each class's images in a folder named after the class")
    small = [f"{c['name']!r} has {c['count']}" for c in classes if c["count"] < minimum]
    if small:
        why = f" ({len(refused)} file(s) refused, e.g. {refused[0]['file']}: {refused[0]['reason']})" if refused else ""
        raise BadUpload(f"every class needs at least {minimum} readable images: {'; '.join(small)}{why}")


def _refusals(refused: list[dict[str, str]]) -> dict[str, Any]:
    return {"refused": refused[:MAX_LISTED_REFUSALS], "refused_count": len(refused)}


# --- tables -----------------------------------------------------------------------------------

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


def _ingest_csv(source: Path, out_dir: Path, target: str, task: str | None, limits: UploadLimits) -> dict[str, Any]:
    import torch

    header, rows = _read_rows(source, limits)
    if target not in header:
        raise BadUpload(f"no target column {target!r}; the columns are {', '.join(header)} "
                        "(name one with the form field `target`)")
    t = header.index(target)
    features = [h for i, h in enumerate(header) if i != t]
    if not features:
        raise BadUpload("the CSV needs at least one feature column besides the target")
    refused, good = [], []
    for line, row in rows:
        if len(row) != len(header):
            refused.append({"line": line, "reason": f"{len(row)} fields; the header has {len(header)}"})
            continue
        try:
            good.append([_number(v) for v in row])
        except ValueError:
            bad = next(h for h, v in zip(header, row) if not _is_number(v))
            refused.append({"line": line, "reason": f"column {bad!r} is not a finite number"})
    if len(good) < limits.min_rows:
        why = f"; e.g. line {refused[0]['line']}: {refused[0]['reason']}" if refused else ""
        raise BadUpload(f"{len(good)} usable row(s) of {len(rows)}; at least {limits.min_rows} are needed "
                        f"(numeric columns only){why}")
    data = torch.tensor(good, dtype=torch.float64)
    y, x = data[:, t], torch.cat([data[:, :t], data[:, t + 1:]], dim=1).float()
    integral = bool((y == y.round()).all())
    task = task or ("classification" if integral and len(y.unique()) <= 20 else "regression")
    classes: list[dict[str, Any]] = []
    if task == "classification":
        values, labels = y.unique(sorted=True, return_inverse=True)
        if len(values) < 2:
            raise BadUpload(f"the target column {target!r} has a single value; classification needs 2 or more")
        counts = torch.bincount(labels).tolist()
        classes = [{"name": f"{v:g}", "count": c} for v, c in zip(values.tolist(), counts)]
        y_tensor = labels.long()
        task = "binary" if len(values) == 2 else "classification"
    else:
        y_tensor = y.float().unsqueeze(1)
    torch.save({"x": x.contiguous(), "y": y_tensor.contiguous()}, out_dir / TABLE_FILE)
    return {"kind": "csv", "task": task, "classes": classes, "columns": features, "target": target,
            "samples": len(good), "image_size": None, **_refusals(refused)}


def _is_number(text: str) -> bool:
    try:
        _number(text)
        return True
    except ValueError:
        return False


# --- back from a manifest ---------------------------------------------------------------------

def uploaded_spec(name: str, manifest: dict[str, Any], folder: Path):
    """The DatasetSpec of an upload stored in `folder` with `manifest` (from ingest_upload plus sha256)."""
    from ml.data.photos import photo_folder_spec
    from ml.data.registry import DatasetSpec, Located

    classes = [c["name"] for c in manifest.get("classes", [])]
    checksum = manifest["sha256"]
    if manifest["kind"] == "image_folder":
        spec = photo_folder_spec(
            name, str(Path(folder) / IMAGES_DIR), classes, f"uploaded image folder, {manifest['samples']} images",
            default_image_size=int(manifest.get("image_size") or DEFAULT_IMAGE_SIZE),
            folders=[f"c{i:03d}" for i in range(len(classes))], cache_name=f"upload-{checksum[:16]}", uploaded=True)
        load_images = spec.load
        # a job records the upload's own sha256, the one the user was given
        return dataclasses.replace(spec, load=lambda *args: dataclasses.replace(load_images(*args), checksum=checksum))
    table = Path(folder) / TABLE_FILE

    def load(data_dir, image_size, cache_dir):
        import torch

        from ml.data.base import RawDataset

        data = torch.load(table, weights_only=True)
        return RawDataset(x=data["x"], y=data["y"], checksum=checksum, extra={"columns": manifest["columns"]})

    return DatasetSpec(
        name=name, task=manifest["task"], input_kind="tabular", classes=tuple(classes),
        description=f"uploaded CSV, {manifest['samples']} rows, target {manifest['target']!r}",
        has_test_split=False, channels=None, default_image_size=None,
        locate=lambda data_dir: Located("uploaded", [table], [] if table.is_file() else [TABLE_FILE]),
        load=load, sizes=lambda data_dir: {"total": manifest["samples"]},
        upload_framing="rows", servable=False,  # rows go to POST /v1/predict/{name}/rows, not the image route
        example_model="linear_regression" if manifest["task"] == "regression" else "mlp",
        uploaded=True, columns=tuple(manifest["columns"]),
    )


class UploadedLookup:
    """UploadedDatasets over two service functions: name -> (manifest, folder) or None, and all names."""

    def __init__(self, find: Callable[[str], tuple[dict[str, Any], Path] | None], names: Callable[[], list[str]]):
        self._find, self._names = find, names

    def get(self, name: str):
        found = self._find(name)
        return uploaded_spec(name, *found) if found is not None else None

    def names(self) -> list[str]:
        return self._names()
