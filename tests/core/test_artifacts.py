"""The artifact store on a local folder and on a real S3 server (SeaweedFS): the same verbs, the same answers."""
from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest

from core.artifacts import (
    ArtifactCache, ArtifactCorrupt, ArtifactMissing, ArtifactStorageFull, ArtifactStorageReadOnly, check_key,
    open_store, storage_error,
)
from core.settings import Settings
from tests.utils.seaweed import seaweed_s3


BUCKET = "trainserve"  # one bucket: SeaweedFS grows volumes per bucket (collection), a bucket a test runs them out


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    with seaweed_s3(tmp_path_factory.mktemp("seaweed")) as endpoint:
        _client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint


def _client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="any",
                        aws_secret_access_key="any")


def _s3_settings(endpoint: str, tmp: Path, **extra) -> Settings:
    return Settings(var_dir=tmp / "var", s3_endpoint_url=endpoint, aws_access_key_id="any",
                    aws_secret_access_key="any", aws_region="us-east-1", **extra)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_store((tmp_path / "store").as_uri(), Settings(var_dir=tmp_path / "var"))
    endpoint = request.getfixturevalue("s3_endpoint")
    return open_store(f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}", _s3_settings(endpoint, tmp_path))


def _file(tmp: Path, data: bytes) -> Path:
    path = tmp / f"src-{uuid.uuid4().hex[:6]}"
    path.write_bytes(data)
    return path


def test_put_get_open_list_delete(store, tmp_path):
    data = os.urandom(20_000)
    store.put("jobs/j1/epoch-001.pt", _file(tmp_path, data))
    store.put("jobs/j1/epoch-002.pt", _file(tmp_path, b"two"))
    store.put("jobs/j10/epoch-001.pt", _file(tmp_path, b"other job"))
    sha = hashlib.sha256(data).hexdigest()
    assert store.get("jobs/j1/epoch-001.pt", sha).read_bytes() == data
    with store.open("jobs/j1/epoch-002.pt") as stream:
        assert stream.read() == b"two"
    assert [(o.key, o.size_bytes) for o in store.list("jobs/j1/")] == [
        ("jobs/j1/epoch-001.pt", 20_000), ("jobs/j1/epoch-002.pt", 3)]
    assert store.exists("jobs/j1/epoch-002.pt") and not store.exists("jobs/j1/epoch-009.pt")
    store.delete("jobs/j1/epoch-002.pt")
    assert not store.exists("jobs/j1/epoch-002.pt")
    assert store.delete_prefix("jobs/j1/") == []
    assert [o.key for o in store.list("jobs/")] == ["jobs/j10/epoch-001.pt"]


def test_staged_files_are_stored_then_released(store):
    staged = store.staging_dir("jobs/j3") / "epoch-001.pt"
    staged.write_bytes(b"weights")
    store.put("jobs/j3/epoch-001.pt", staged)
    store.release_staging("jobs/j3")
    with store.open("jobs/j3/epoch-001.pt") as stream:
        assert stream.read() == b"weights"  # a local store's staged file is the object: kept
    assert staged.exists() == hasattr(store, "root")  # a remote store's staged copy is gone


def test_a_folder_goes_up_and_comes_down_whole(store, tmp_path):
    folder = tmp_path / "ingested"
    (folder / "cats").mkdir(parents=True)
    (folder / "cats" / "a.png").write_bytes(b"cat")
    (folder / "manifest.json").write_text("{}")
    store.put_folder("datasets/abc", folder)
    assert [o.key for o in store.list("datasets/abc/")] == ["datasets/abc/cats/a.png", "datasets/abc/manifest.json"]
    local = store.get_folder("datasets/abc")
    assert (local / "cats" / "a.png").read_bytes() == b"cat" and store.get_folder("datasets/abc") == local


def test_missing_and_changed_objects_are_said(store, tmp_path):
    with pytest.raises(ArtifactMissing):
        store.get("jobs/none/epoch-001.pt")
    with pytest.raises(ArtifactMissing):
        store.open("jobs/none/epoch-001.pt").read()
    store.put("jobs/j2/epoch-001.pt", _file(tmp_path, b"bytes"))
    with pytest.raises(ArtifactCorrupt, match="sha256 mismatch"):
        store.get("jobs/j2/epoch-001.pt", sha256="0" * 64)


def test_a_large_object_goes_up_in_parts_and_comes_down_whole(store, tmp_path):
    data = os.urandom(20 << 20)  # past the 8 MiB multipart threshold: three parts
    store.put("uploads/big.bin", _file(tmp_path, data))
    assert store.get("uploads/big.bin", hashlib.sha256(data).hexdigest()).read_bytes() == data


def test_s3_downloads_are_cached_by_content(s3_endpoint, tmp_path):
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    store = open_store(f"s3://{BUCKET}/{prefix}", _s3_settings(s3_endpoint, tmp_path))
    store.put("a.bin", _file(tmp_path, b"alpha"))
    sha = hashlib.sha256(b"alpha").hexdigest()
    first = store.get("a.bin", sha)
    assert first == tmp_path / "var" / "cache" / "artifacts" / sha[:2] / sha
    _client(s3_endpoint).delete_object(Bucket=BUCKET, Key=f"{prefix}/a.bin")  # a hit never asks the server
    assert store.get("a.bin", sha).read_bytes() == b"alpha"


def test_the_cache_evicts_the_least_recently_used(tmp_path):
    cache = ArtifactCache(tmp_path / "cache", max_bytes=2500)
    paths = [cache.fill(f"k{i}", lambda out, i=i: out.write(bytes([i]) * 1000)) for i in range(3)]
    assert not paths[0].exists() and paths[1].exists() and paths[2].exists()
    os.utime(paths[1], (1, 1))  # the oldest use now
    cache.lookup(hashlib.sha256(bytes([2]) * 1000).hexdigest())
    cache.fill("k3", lambda out: out.write(b"\x03" * 1000))
    assert not paths[1].exists() and paths[2].exists()


def _folder_of(size: int, fill: int):
    """A `download` for fill_folder: two files of `size` // 2 bytes each."""
    def download(into: Path) -> None:
        (into / "images").mkdir()
        (into / "images" / "a.png").write_bytes(bytes([fill]) * (size // 2))
        (into / "table.pt").write_bytes(bytes([fill]) * (size // 2))
    return download


def test_folders_and_files_share_the_cap_and_the_least_recently_used_goes_first(tmp_path):
    cache = ArtifactCache(tmp_path / "cache" / "artifacts", max_bytes=2500, folders=tmp_path / "cache" / "folders")
    folder = cache.fill_folder("datasets/aaa", _folder_of(1000, 1))
    assert (folder / "images" / "a.png").stat().st_size == 500 and cache.fill_folder("datasets/aaa", None) == folder
    file = cache.fill("k1", lambda out: out.write(b"\x01" * 1000))
    os.utime(folder / ".complete", (1, 1))  # the folder is now the oldest use
    cache.fill("k2", lambda out: out.write(b"\x02" * 1000))  # 3000 bytes: one copy must go
    assert not folder.exists() and file.exists()
    assert cache.lookup_folder("datasets/aaa") is None
    assert [p.name for p in (tmp_path / "cache" / "folders").iterdir()] == []  # nothing half-deleted left

    again = cache.fill_folder("datasets/aaa", _folder_of(2000, 3))  # downloaded again, then files make room
    assert again == folder and not file.exists() and (again / "table.pt").read_bytes() == b"\x03" * 1000


def test_a_folder_alone_over_the_cap_stays_while_asked_for(tmp_path):
    cache = ArtifactCache(tmp_path / "artifacts", max_bytes=1000, folders=tmp_path / "folders")
    older = cache.fill_folder("datasets/old", _folder_of(800, 1))
    os.utime(older / ".complete", (1, 1))
    big = cache.fill_folder("datasets/big", _folder_of(4000, 2))
    assert big.is_dir() and not older.exists()


def test_s3_dataset_folders_count_against_the_download_cap(s3_endpoint, tmp_path):
    store = open_store(f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}",
                       _s3_settings(s3_endpoint, tmp_path, artifact_cache_bytes=1 << 20))
    for name in ("one", "two"):
        store.put(f"datasets/{name}/table.pt", _file(tmp_path, os.urandom(700_000)))
    first = store.get_folder("datasets/one")
    os.utime(first / ".complete", (1, 1))
    second = store.get_folder("datasets/two")  # 1.4 MB in all: over the 1 MiB cap, the older folder goes
    assert (second / "table.pt").stat().st_size == 700_000 and not first.exists()
    assert (store.get_folder("datasets/one") / "table.pt").stat().st_size == 700_000  # fetched again on demand


def test_the_cache_refuses_a_download_that_does_not_match(tmp_path):
    cache = ArtifactCache(tmp_path / "cache", max_bytes=10_000)
    with pytest.raises(ArtifactCorrupt):
        cache.fill("k", lambda out: out.write(b"tampered"), sha256=hashlib.sha256(b"original").hexdigest())
    assert list((tmp_path / "cache").rglob("*")) == []


@pytest.mark.parametrize("key", ["", "/etc/passwd", "jobs/../../x", "jobs//x", "a\\b", "./a"])
def test_keys_are_relative_and_normalised(key):
    with pytest.raises(ValueError):
        check_key(key)


def test_disk_faults_are_said_without_paths():
    full = OSError(errno.ENOSPC, "No space left on device", "/srv/artifacts/jobs/x/.epoch-002.pt.tmp-1")
    assert isinstance(storage_error(full), ArtifactStorageFull)
    assert str(storage_error(full)) == "artifact storage is full"
    read_only = OSError(errno.EROFS, "Read-only file system", "/srv/artifacts/jobs/x")
    assert str(storage_error(read_only)) == "artifact storage is read-only"
    assert isinstance(storage_error(RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")),
                      ArtifactStorageFull)
    try:
        try:
            raise read_only
        except OSError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as wrapped:
        assert isinstance(storage_error(wrapped), ArtifactStorageReadOnly)
    assert storage_error(ValueError("not a disk fault")) is None


def test_the_setting_picks_the_store(tmp_path):
    settings = Settings(var_dir=tmp_path)
    assert settings.artifact_store_url == (tmp_path / "artifacts").resolve().as_uri()
    assert open_store(settings.artifact_store_url, settings).root == (tmp_path / "artifacts").resolve()
    with pytest.raises(ValueError):
        Settings(var_dir=tmp_path, artifact_store_url="ftp://x")


def test_ensure_bucket_creates_a_missing_bucket_once(s3_endpoint, tmp_path):
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    store = open_store(f"s3://{bucket}/x", _s3_settings(s3_endpoint, tmp_path))
    store.ensure_bucket()
    store.ensure_bucket()  # already there: nothing to do
    store.put("k", _file(tmp_path, b"v"))
    assert [o.key for o in store.list()] == ["k"]
    _client(s3_endpoint).delete_object(Bucket=bucket, Key="x/k")


def test_listing_while_a_worker_renames_its_temporary_checkpoints_never_fails(tmp_path):
    # the worker writes `.epoch-N.pt.tmp-PID`, then renames it into place; GET /v1/jobs/{id} lists the
    # job's folder meanwhile (its disk bytes) and must never trip over a file that just went
    store = open_store((tmp_path / "store").as_uri(), Settings(var_dir=tmp_path / "var"))
    folder = tmp_path / "store" / "jobs" / "j1"
    folder.mkdir(parents=True)
    stop = threading.Event()

    def write_checkpoints() -> None:
        epoch = 0
        while not stop.is_set():
            epoch += 1
            temporary = folder / f".epoch-{epoch:03d}.pt.tmp-1"
            temporary.write_bytes(b"x" * 64)
            temporary.rename(folder / f"epoch-{epoch:03d}.pt")
            (folder / f"epoch-{epoch:03d}.pt").unlink()  # the folder stays small: keep-last-k
    writer = threading.Thread(target=write_checkpoints)
    writer.start()
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert all(o.key.startswith("jobs/j1/") and o.size_bytes <= 64 for o in store.list("jobs/j1/"))
    finally:
        stop.set()
        writer.join()
