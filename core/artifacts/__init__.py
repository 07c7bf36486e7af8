"""Where a job's files live: an artifact store (a local folder or S3-compatible object storage) behind a few verbs.

Code asks the store for a key (`jobs/<id>/epoch-003.pt`) and gets a stream or a local cached copy; SQL keeps
keys, never host paths (MLflow's ArtifactRepository pattern, kept to the verbs we use).
"""
from core.artifacts.cache import ArtifactCache
from core.artifacts.faults import storage_error
from core.errors import (  # re-exported: the errors a store raises live with every service error
    ArtifactCorrupt, ArtifactMissing, ArtifactsNotRemoved, ArtifactStorageError, ArtifactStorageFull, ArtifactStorageReadOnly,
)
from core.artifacts.store import ArtifactStore, ObjectInfo, check_key, get_store, open_store

__all__ = [
    "ArtifactCache", "ArtifactCorrupt", "ArtifactMissing", "ArtifactsNotRemoved", "ArtifactStorageError", "ArtifactStorageFull",
    "ArtifactStorageReadOnly", "ArtifactStore", "ObjectInfo", "check_key", "get_store", "open_store",
    "storage_error",
]
