"""A local folder as the artifact store: today's behaviour, and the default of `make run`."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from core.artifacts.cache import file_sha256
from core.errors import ArtifactCorrupt, ArtifactMissing
from core.artifacts.store import ObjectInfo, check_key


class LocalStore:
    """Keys are files under `root`; writers write in place, so a put of a staged file copies nothing."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def staging_dir(self, prefix: str) -> Path:
        """The store's own folder for `prefix`: files written there are stored already."""
        folder = self._path(prefix)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def release_staging(self, prefix: str) -> None:
        """Nothing to do: what was staged here is the stored object itself."""

    def put(self, key: str, source: Path) -> None:
        """Copy `source` to the key's file atomically (nothing to do when it is that file)."""
        target = self._path(key)
        if Path(source).resolve() == target:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def put_folder(self, prefix: str, folder: Path) -> None:
        """Move `folder` into place in one rename (same disk), or copy file by file when that cannot be."""
        target = self._path(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(folder, target)
            return
        except OSError:
            pass  # already there (content-addressed: the same files), or another disk
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                self.put(f"{prefix}/{path.relative_to(folder).as_posix()}", path)

    def open(self, key: str) -> BinaryIO:
        """The key's file, open for reading."""
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise ArtifactMissing(key) from None

    def get(self, key: str, sha256: str | None = None) -> Path:
        """The key's file itself (already local), checked against `sha256` when given."""
        path = self._path(key)
        if not path.is_file():
            raise ArtifactMissing(key)
        if sha256 is not None and file_sha256(path) != sha256:
            raise ArtifactCorrupt(key)
        return path

    def get_folder(self, prefix: str) -> Path:
        """The prefix's own folder (already local)."""
        return self._path(prefix)

    def exists(self, key: str) -> bool:
        """Whether the key's file exists."""
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the key's file."""
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> list[str]:
        """Remove every file under `prefix`, then its empty folders; the keys left behind."""
        failed = []
        for info in self.list(prefix):
            try:
                self._path(info.key).unlink(missing_ok=True)
            except OSError:
                failed.append(info.key)
        folder = self._path(prefix.rstrip("/"))
        if not failed and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)  # staging leftovers (temporary files) go too
        return failed

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every file under `prefix` (temporary files too: they are what a crash left)."""
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        if base.is_file():
            return [ObjectInfo(prefix, size)] if (size := _size(base)) is not None else []
        if not base.is_dir():
            return []
        found = ((p, _size(p)) for p in base.rglob("*") if p.is_file())
        return sorted((ObjectInfo(p.relative_to(self.root).as_posix(), size) for p, size in found if size is not None),
                      key=lambda o: o.key)


def _size(path: Path) -> int | None:
    """The file's size; None when it went between the listing and now (a worker renamed its temporary
    checkpoint into place: GET /v1/jobs/{id} answered a 500 for it on PostgreSQL's tier)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None
