"""A local copy of downloaded objects and folders, content-addressed by sha256, bounded by size (least recently
used go first)."""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from core.errors import ArtifactCorrupt

_CHUNK = 1 << 20
_COMPLETE = ".complete"  # written last in a cached folder, with its bytes: a folder without it is partial


class ArtifactCache:
    """Files under `root/<sha256[:2]>/<sha256>` and whole folders under `folders/<sha256 of their prefix>`, under
    one cap; a hit is touched, so eviction drops the least recently used, file or folder."""

    def __init__(self, root: Path, max_bytes: int, folders: Path | None = None):
        self.root, self.max_bytes = Path(root), max_bytes
        self.folders = Path(folders) if folders is not None else self.root.parent / "folders"
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

    def folder_of(self, prefix: str) -> Path:
        """Where the copy of the folder stored under `prefix` lives (one level deep, so eviction finds it cheaply)."""
        return self.folders / hashlib.sha256(prefix.encode()).hexdigest()

    def lookup_folder(self, prefix: str) -> Path | None:
        """The complete cached copy of the folder under `prefix`, marked as just used; None on a miss."""
        folder = self.folder_of(prefix)
        try:
            os.utime(folder / _COMPLETE)
        except FileNotFoundError:
            return None
        return folder

    def fill_folder(self, prefix: str, download: Callable[[Path], None]) -> Path:
        """The folder under `prefix`, downloaded once: `download` fills an empty folder, which then appears whole
        (its marker records its bytes, counted against the same cap as the files)."""
        if (hit := self.lookup_folder(prefix)) is not None:
            return hit
        folder = self.folder_of(prefix)
        tmp = self.folders / f".incoming-{uuid.uuid4().hex}"
        try:
            tmp.mkdir(parents=True)
            download(tmp)
            size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
            (tmp / _COMPLETE).write_text(str(size))  # written last: a folder without it is partial
            try:
                os.rename(tmp, folder)
            except OSError:
                if not (folder / _COMPLETE).is_file():  # not "another process finished it first"
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.evict(keep=folder)
        return folder

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove the least recently used copies, files and folders alike, until the cache fits its cap; the removed."""
        with self._lock:
            entries = self._entries()
            total = sum(size for _, size, _ in entries)
            removed = []
            for path, size, _ in sorted(entries, key=lambda entry: entry[2]):
                if total <= self.max_bytes:
                    break
                if path == keep:
                    continue  # the copy just asked for stays, even when it alone is over the cap
                self._remove(path)
                total -= size
                removed.append(path)
            return removed

    def _entries(self) -> list[tuple[Path, int, float]]:
        """(path, bytes, last use) of every cached file and complete folder."""
        entries = []
        for path in [*self.root.glob("??/*"), *self.folders.glob(f"*/{_COMPLETE}")]:
            try:
                stat = path.stat()
                if path.name == _COMPLETE:
                    entries.append((path.parent, int(path.read_text() or 0), stat.st_mtime))
                elif path.is_file():
                    entries.append((path, stat.st_size, stat.st_mtime))
            except (OSError, ValueError):
                continue  # removed meanwhile by another process's eviction
        return entries

    def _remove(self, path: Path) -> None:
        if path.parent != self.folders:
            path.unlink(missing_ok=True)  # an open file stays readable until closed (POSIX)
            return
        # renamed away first: a reader finds the whole folder or none, never one being deleted
        doomed = self.folders / f".evicted-{uuid.uuid4().hex}"
        try:
            os.rename(path, doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)


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
