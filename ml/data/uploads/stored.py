"""A stored upload back as a dataset: its DatasetSpec from the manifest, found by name through the service."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from ml.data.uploads.common import DEFAULT_IMAGE_SIZE, IMAGES_DIR, TABLE_FILE


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
