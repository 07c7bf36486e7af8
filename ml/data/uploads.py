"""Datasets users upload: an image-folder zip or a CSV, checked, normalised and described once.

`ingest_upload` turns the uploaded bytes into a dataset folder the service names by content hash
(PNG images under c000/, c001/, … or a table.pt of float tensors) and a manifest of what was
found and refused. `uploaded_spec` turns a stored manifest back into a DatasetSpec; the service's
database holds the manifests and finds a dataset's folder by name (`UploadedLookup`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ml.data.zipsafe import ZipLimits
from ml.errors import BadUpload

IMAGES_DIR, TABLE_FILE = "images", "table.pt"
DEFAULT_IMAGE_SIZE = 64
# at most this many refusals are listed one by one (the count is always given)
MAX_LISTED_REFUSALS = 100
IGNORED = ("__MACOSX", ".DS_Store", "Thumbs.db")


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
        from ml.data.upload_images import ingest_images

        return ingest_images(source, out_dir, limits)
    if kind in ("csv", "regression", "classification"):
        if is_zip:
            raise BadUpload("a CSV upload must be the .csv file itself, not a zip")
        task = kind if kind != "csv" else None
        from ml.data.upload_tables import ingest_csv

        return ingest_csv(source, out_dir, target or "target", task, limits)
    raise BadUpload("send a .zip of <class>/<image> folders or a .csv with a header row "
                    "(or set kind to image_folder, csv, regression or classification)")


def refusals(refused: list[dict[str, Any]]) -> dict[str, Any]:
    """The refused files or lines as a manifest lists them: the first ones and the count."""
    return {"refused": refused[:MAX_LISTED_REFUSALS], "refused_count": len(refused)}


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
        return dataclasses.replace(spec, checksum=checksum,
                                   load=lambda *args: dataclasses.replace(load_images(*args), checksum=checksum))
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
        uploaded=True, columns=tuple(manifest["columns"]), checksum=checksum,
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
