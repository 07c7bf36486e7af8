"""Datasets users upload: an image-folder zip or a CSV, checked, normalised and described once.

`ingest_upload` turns the uploaded bytes into a dataset folder the service names by content hash
(PNG images under c000/, c001/, … or a table.pt of float tensors) and a manifest of what was
found and refused. `uploaded_spec` turns a stored manifest back into a DatasetSpec; the service's
database holds the manifests and finds a dataset's folder by name (`UploadedLookup`).

Layers (an import-linter contract keeps them): ingest and stored on top, images and tables below,
common (limits, layout, refusals) at the bottom, importing neither.
"""
from ml.data.uploads.common import UploadLimits
from ml.data.uploads.ingest import ingest_upload
from ml.data.uploads.stored import UploadedLookup, uploaded_spec

__all__ = ["UploadLimits", "UploadedLookup", "ingest_upload", "uploaded_spec"]
