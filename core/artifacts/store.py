"""The artifact store's interface, and the one store of this process, chosen by ARTIFACT_STORE_URL."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from core.settings import Settings, get_settings


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key and size."""

    key: str
    size_bytes: int


class ArtifactStore(Protocol):
    """A flat namespace of keys (`jobs/<id>/epoch-003.pt`) to bytes; every reader and writer goes through one."""

    url: str

    def staging_dir(self, prefix: str) -> Path:
        """A local folder to write files in before `put` (for a local store: the store's own folder)."""

    def release_staging(self, prefix: str) -> None:
        """Remove this host's staged copies under `prefix` once stored (a local store's are the store: kept)."""

    def put(self, key: str, source: Path) -> None:
        """Store the local file `source` under `key` (streamed; multipart when large)."""

    def put_folder(self, prefix: str, folder: Path) -> None:
        """Store every file under `folder` at `prefix/<relative path>` (the folder may be moved: do not reuse it)."""

    def open(self, key: str) -> BinaryIO:
        """A stream of the object's bytes; ArtifactMissing when there is none."""

    def get(self, key: str, sha256: str | None = None) -> Path:
        """A local file with the object's bytes (a cached copy for a remote store), checked against `sha256`."""

    def get_folder(self, prefix: str) -> Path:
        """A local folder with every object under `prefix` (a cached copy for a remote store)."""

    def exists(self, key: str) -> bool:
        """Whether an object has this key."""

    def delete(self, key: str) -> None:
        """Remove one object (none there: nothing to do)."""

    def delete_prefix(self, prefix: str) -> list[str]:
        """Remove every object under `prefix`; the keys that could not be removed."""

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object under `prefix`, by key."""


def check_key(key: str) -> str:
    """`key` if it is a relative, normalised key (no `..`, no leading `/`); ValueError otherwise."""
    parts = key.rstrip("/").split("/")
    if not key or key.startswith("/") or any(p in ("..", ".", "") for p in parts) or "\\" in key:
        raise ValueError(f"not an artifact key: {key!r}")
    return key


def open_store(url: str, settings: Settings | None = None) -> ArtifactStore:
    """The store a URL names: `file:///path` or `s3://bucket/prefix`."""
    settings = settings or get_settings()
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from core.artifacts.local import LocalStore

        return LocalStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from core.artifacts.s3 import S3Store

        return S3Store(bucket=parsed.netloc, prefix=parsed.path.strip("/"), settings=settings)
    raise ValueError(f"ARTIFACT_STORE_URL must start with file:// or s3://, not {url!r}")


@lru_cache
def get_store() -> ArtifactStore:
    """This process's artifact store, opened once."""
    settings = get_settings()
    return open_store(settings.artifact_store_url, settings)
