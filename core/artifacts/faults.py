"""Disk faults in plain words: what the OS or torch said, as the artifact error a user can read (no path)."""
from __future__ import annotations

import errno

from core.errors import ArtifactStorageError, ArtifactStorageFull, ArtifactStorageReadOnly


# torch's writer says ENOSPC in its own words: "[enforce fail at inline_container.cc:...] . unexpected pos"
_TORCH_WRITE_FAILURES = ("inline_container.cc", "PytorchStreamWriter failed")


def storage_error(exc: BaseException) -> ArtifactStorageError | None:
    """The plain-words error for a disk fault (full, read-only) found in `exc` or its causes; None otherwise."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ArtifactStorageError):
            return seen
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return ArtifactStorageFull()
        if isinstance(seen, OSError) and seen.errno == errno.EROFS:
            return ArtifactStorageReadOnly()
        if isinstance(seen, RuntimeError) and any(s in str(seen) for s in _TORCH_WRITE_FAILURES):
            return ArtifactStorageFull()  # torch hides the errno; a short write is a full disk
        seen = seen.__cause__ or seen.__context__
    return None
