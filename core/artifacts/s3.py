"""S3-compatible object storage as the artifact store (AWS S3, SeaweedFS, MinIO, Ceph...).

boto3: the AWS SDK, maintained by AWS, that every S3-compatible server tests against; its transfer
manager (`upload_file`, `download_fileobj`) streams in parts with bounded memory and retries, so a
checkpoint is never whole in memory. obstore is faster but younger; fsspec/s3fs adds an async layer we
do not need.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, BinaryIO

from core.artifacts.cache import ArtifactCache
from core.errors import ArtifactMissing, ArtifactStorageError
from core.artifacts.store import ObjectInfo, check_key
from core.settings import Settings

_MISSING = ("404", "NoSuchKey", "NotFound")


class S3Store:
    """Keys live under `s3://bucket/prefix/`; downloads land in a local cache checked by sha256."""

    def __init__(self, *, bucket: str, prefix: str, settings: Settings):
        import boto3
        from boto3.s3.transfer import TransferConfig

        self.bucket, self.prefix = bucket, f"{prefix}/" if prefix else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        self.client: Any = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.aws_region,
            aws_access_key_id=settings.aws_access_key_id, aws_secret_access_key=settings.aws_secret_access_key)
        self.transfer = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)
        cache_dir = Path(settings.cache_dir)
        # downloaded files and dataset folders share one cap (ARTIFACT_CACHE_BYTES)
        self.cache = ArtifactCache(cache_dir / "artifacts", settings.artifact_cache_bytes,
                                   folders=cache_dir / "folders")
        self._staging = cache_dir / "staging"

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (deployments run this once before the services start)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            with _said_plainly(self.bucket):
                self.client.create_bucket(Bucket=self.bucket)

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def staging_dir(self, prefix: str) -> Path:
        """A folder of this host's to write files in before they are uploaded."""
        folder = self._staging / check_key(prefix)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def release_staging(self, prefix: str) -> None:
        """Remove the staged files under `prefix` (they are in the bucket, or were never meant to be)."""
        shutil.rmtree(self._staging / check_key(prefix), ignore_errors=True)

    def put(self, key: str, source: Path) -> None:
        """Upload `source` (multipart past 8 MiB)."""
        with _said_plainly(key):
            self.client.upload_file(str(source), self.bucket, self._name(key), Config=self.transfer)

    def put_folder(self, prefix: str, folder: Path) -> None:
        """Upload every file under `folder`, one object each."""
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                self.put(f"{prefix}/{path.relative_to(folder).as_posix()}", path)

    def open(self, key: str) -> BinaryIO:
        """The object's body as a stream (read it in chunks)."""
        with _said_plainly(key):
            return self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]

    def get(self, key: str, sha256: str | None = None) -> Path:
        """A cached local copy: downloaded in parts on a miss, its sha256 checked."""
        def download(out: BinaryIO) -> None:
            with _said_plainly(key):
                self.client.download_fileobj(self.bucket, self._name(key), out, Config=self.transfer)

        return self.cache.fill(key, download, sha256)

    def get_folder(self, prefix: str) -> Path:
        """Download every object under `prefix` once into this host's cache (within its cap); later calls find it.

        Meant for content-addressed prefixes (an upload's `datasets/<sha256>`): what is there never changes.
        """
        base = check_key(prefix).rstrip("/")

        def download(into: Path) -> None:
            for info in self.list(base + "/"):
                target = into / info.key[len(base) + 1:]
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as out, _said_plainly(info.key):
                    self.client.download_fileobj(self.bucket, self._name(info.key), out, Config=self.transfer)

        return self.cache.fill_folder(base, download)

    def exists(self, key: str) -> bool:
        """Whether an object has this key (one HEAD request)."""
        try:
            with _said_plainly(key):
                self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ArtifactMissing:
            return False
        return True

    def delete(self, key: str) -> None:
        """Remove one object (S3 answers the same whether it was there or not)."""
        with _said_plainly(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def delete_prefix(self, prefix: str) -> list[str]:
        """Remove every object under `prefix`, 1000 per request; the keys the server refused to delete."""
        keys = [o.key for o in self.list(prefix)]
        failed: list[str] = []
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._name(k)} for k in keys[start:start + 1000]]
            with _said_plainly(prefix):
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            failed += [e["Key"][len(self.prefix):] for e in answer.get("Errors", [])]
        return failed

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object under `prefix`, page by page."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        with _said_plainly(prefix):
            return [ObjectInfo(o["Key"][len(self.prefix):], o["Size"]) for page in pages for o in page.get("Contents", [])]


class _said_plainly:
    """Turn the client's errors into ours: a missing key, or the server's error code (no endpoint, no secrets)."""

    def __init__(self, key: str):
        self.key = key

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise ArtifactMissing(self.key) from None
            raise ArtifactStorageError(f"artifact storage refused {self.key!r} ({code or 'error'})") from exc
        if isinstance(exc, BotoCoreError):
            raise ArtifactStorageError(f"artifact storage is unreachable ({type(exc).__name__})") from exc
        return False
