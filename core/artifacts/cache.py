"""A local copy of downloaded objects, content-addressed by sha256, bounded by size (least recently used go first)."""
from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from core.errors import ArtifactCorrupt

_CHUNK = 1 << 20


class ArtifactCache:
    """Files under `root/<sha256[:2]>/<sha256>`; a hit is touched, so eviction drops the least recently used."""

    def __init__(self, root: Path, max_bytes: int):
        self.root, self.max_bytes = Path(root), max_bytes
        self._lock = threading.Lock()

    def path_of(self, sha256: str) -> Path:
        """Where the copy of content `sha256` lives (whether or not it is there)."""
        return self.root / sha256[:2] / sha256

    def lookup(self, sha256: str) -> Path | None:
        """The cached copy of `sha256`, marked as just used; None on a miss."""
        path = self.path_of(sha256)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    def fill(self, key: str, download: Callable[[BinaryIO], None], sha256: str | None = None) -> Path:
        """Stream `download` into the cache, hashing as it goes; ArtifactCorrupt when `sha256` does not match."""
        if sha256 is not None and (hit := self.lookup(sha256)) is not None:
            return hit
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".incoming-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as out:
                hashing = _HashingWriter(out)
                download(hashing)  # type: ignore[arg-type]
            digest = hashing.digest.hexdigest()
            if sha256 is not None and digest != sha256:
                raise ArtifactCorrupt(key)
            path = self.path_of(digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)  # readers see no copy or the whole one
        finally:
            tmp.unlink(missing_ok=True)
        self.evict(keep=path)
        return path

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove the least recently used copies until the cache fits its cap; the files removed."""
        with self._lock:
            files = [p for p in self.root.glob("??/*") if p.is_file()]
            stats = {p: p.stat() for p in files}
            total = sum(s.st_size for s in stats.values())
            removed = []
            for path in sorted(files, key=lambda p: stats[p].st_mtime):
                if total <= self.max_bytes:
                    break
                if path == keep:
                    continue  # the copy just asked for stays, even when it alone is over the cap
                path.unlink(missing_ok=True)  # an open file stays readable until closed (POSIX)
                total -= stats[path].st_size
                removed.append(path)
            return removed


class _HashingWriter:
    """A write-only file that hashes what passes through it."""

    def __init__(self, out: BinaryIO):
        self.out, self.digest = out, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.out.write(data)


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
