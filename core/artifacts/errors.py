"""What can go wrong with stored artifacts, each said as a sentence without a server path."""
from __future__ import annotations

import errno

from core.errors import ServiceError


class ArtifactStorageError(ServiceError):
    """The artifact store could not do what was asked."""


class ArtifactMissing(ArtifactStorageError, LookupError):
    """No object has this key (deleted, or never uploaded)."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"artifact {key!r} is not in the artifact store")


class ArtifactCorrupt(ArtifactStorageError):
    """A downloaded object's sha256 is not the one recorded when it was stored."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"artifact {key!r} changed since it was stored (sha256 mismatch)")


class ArtifactStorageFull(ArtifactStorageError):
    """The artifact storage (or the local cache in front of it) has no space left."""

    def __init__(self) -> None:
        super().__init__("artifact storage is full")


class ArtifactStorageReadOnly(ArtifactStorageError):
    """The artifact storage refuses writes."""

    def __init__(self) -> None:
        super().__init__("artifact storage is read-only")


class ArtifactsNotRemoved(ArtifactStorageError):
    """Some objects of a job or dataset could not be removed; its rows stay, so a retry finds them."""

    def __init__(self, what: str, keys: list[str], why: str | None = None):
        self.keys = keys
        names = ", ".join(k.rsplit("/", 1)[-1] for k in keys[:5]) + (" ..." if len(keys) > 5 else "")
        because = f" ({why})" if why else ""
        super().__init__(f"{len(keys)} file(s) of {what} could not be removed{because}: {names}; "
                         "nothing else was deleted, try again later")


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
