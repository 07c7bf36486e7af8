"""Artifact storage full or read-only, on a real tmpfs: the job fails saying so, with no path, no orphan
file and no epoch row without its checkpoint; DELETE removes every file or says what it could not.

Needs root to mount (skipped otherwise). The stack's ARTIFACT_DIR is the tmpfs.
"""
from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests.utils.jobs import submit, wait_for
from tests.utils.stack import Stack

pytestmark = pytest.mark.service

QUICK = {"model": "linear_regression", "dataset": "synthetic_linear", "hyperparameters": {"epochs": 2, "batch_size": 32}}
SIZE_KIB = 2048


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A small tmpfs of its own, unmounted at the end."""
    point = tmp_path_factory.mktemp("artifacts-tmpfs")
    done = _mount("-t", "tmpfs", "-o", f"size={SIZE_KIB}k", "tmpfs", str(point))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield point
    _mount("-o", "remount,rw", str(point))
    subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, artifacts):
    s = Stack(tmp_path_factory.mktemp("stack"), extra_env={"ARTIFACT_DIR": str(artifacts)})
    s.start_redis()
    s.start_api()
    s.start_worker(f"disk-{uuid.uuid4().hex[:6]}@%h")
    yield s
    s.close()


@pytest.fixture
def read_only(artifacts):
    assert _mount("-o", "remount,ro", str(artifacts)).returncode == 0
    yield
    assert _mount("-o", "remount,rw", str(artifacts)).returncode == 0


def _files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _assert_failed_plainly(api, job: dict, message: str, root) -> None:
    assert job["status"] == "failed" and job["error"] == message, job["error"]
    assert str(root) not in str(job) and ".tmp" not in str(job) and "inline_container" not in str(job)
    assert job["latest_metrics"] is None  # no epoch row without its checkpoint
    assert api.get(f"/v1/jobs/{job['id']}/checkpoints").json()["count"] == 0


def test_a_full_artifact_disk_fails_the_job_plainly_and_leaves_nothing(api, artifacts):
    filler = artifacts / "filler"
    with open(filler, "wb") as f:  # leave less room than one checkpoint
        try:
            f.write(b"\0" * (SIZE_KIB * 1024))
        except OSError:
            pass
    try:
        job = wait_for(api, submit(api, QUICK)["id"], "failed", timeout_s=120)
        _assert_failed_plainly(api, job, "artifact storage is full", artifacts)
        assert _files(artifacts) == ["filler"]  # no half-written checkpoint left behind
    finally:
        filler.unlink()


def test_a_read_only_artifact_disk_fails_the_job_plainly(api, artifacts, read_only):
    job = wait_for(api, submit(api, QUICK)["id"], "failed", timeout_s=120)
    _assert_failed_plainly(api, job, "artifact storage is read-only", artifacts)


def test_delete_says_which_files_it_could_not_remove_and_keeps_the_job_to_retry(api, artifacts):
    job = wait_for(api, submit(api, QUICK)["id"], "succeeded", timeout_s=120)
    stored = [f for f in _files(artifacts) if f.startswith(f"jobs/{job['id']}/")]
    assert "epoch-001.pt" in " ".join(stored)
    assert _mount("-o", "remount,ro", str(artifacts)).returncode == 0
    try:
        refused = api.delete(f"/v1/jobs/{job['id']}")
        assert refused.status_code == 503, refused.text
        assert "could not be removed" in refused.json()["detail"] and "epoch-001.pt" in refused.json()["detail"]
        assert str(artifacts) not in refused.text
        assert api.get(f"/v1/jobs/{job['id']}").status_code == 200  # still there to retry
    finally:
        assert _mount("-o", "remount,rw", str(artifacts)).returncode == 0
    assert [f for f in _files(artifacts) if f.startswith(f"jobs/{job['id']}/")] == stored
    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert not (artifacts / "jobs" / job["id"]).exists() and os.path.isdir(artifacts)
